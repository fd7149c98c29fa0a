"""The autograd engine and graph-mode switches (lucid/autograd), checked against torch where it has an answer."""
import numpy as np
import pytest
import torch

import lucid
from lucid.autograd import Function

from ._parity import arr, check, rng_for


def _pair(x: np.ndarray):
    """A lucid and a torch leaf holding the same float32 values, both requiring grad."""
    return lucid.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


def _close(lt, tt, tol=1e-5):
    np.testing.assert_allclose(lt.detach().numpy(), tt.detach().numpy(), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------------------------
# graph structure: accumulation, diamonds, reuse
def test_gradients_accumulate_over_two_backward_calls():
    x = arr((3, 4), "c", rng_for("acc"))
    lx, tx = _pair(x)
    for _ in range(2):
        (lx.exp() * 2).sum().backward()
        (tx.exp() * 2).sum().backward()
    _close(lx.grad, tx.grad)
    np.testing.assert_allclose(lx.grad.numpy(), 4 * np.exp(x), rtol=1e-6)


def test_accumulation_is_in_place_into_existing_grad():
    """torch adds into the existing .grad; a view of it (e.g. a flat gradient buffer) sees the sum."""
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    buf = x.grad.array
    view = buf[:1]
    (x * x).sum().backward()
    assert x.grad.array is buf
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 7.0])
    assert view[0] == 5.0
    x.grad = lucid.tensor([1.0, 1.0]).expand(2)  # a read-only grad set by the user: accumulate out of place
    (x * 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_diamond():
    """x -> a, b -> a * b: the gradient reaching x is the sum over both paths."""
    x = arr((5,), "c", rng_for("diamond"))

    def f(t, lib):
        a = t.exp() if lib == "l" else torch.exp(t)
        b = t * 3
        c = a.tanh() + b.sigmoid()
        return (c * a * b).sum()

    lx, tx = _pair(x)
    f(lx, "l").backward()
    f(tx, "t").backward()
    _close(lx.grad, tx.grad)


def test_reuse_of_intermediate_and_input_in_one_op():
    x = arr((4,), "c", rng_for("reuse"))
    lx, tx = _pair(x)
    for t in (lx, tx):
        y = t * t  # the same leaf twice in one op
        z = y * y + y  # the same non-leaf twice in one op and again in another
        (z * t).sum().backward()
    _close(lx.grad, tx.grad)


def test_deep_chain_and_wide_fanout():
    x = arr((3,), "c", rng_for("chain"))
    lx, tx = _pair(x)
    for t in (lx, tx):
        y = t
        for _ in range(200):
            y = y * 1.01 + 0.001
        outs = [y * k for k in range(1, 30)]
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        total.sum().backward()
    _close(lx.grad, tx.grad, tol=1e-4)


def test_leaf_and_non_leaf_flags():
    x = lucid.randn(3, requires_grad=True)
    c = lucid.randn(3)
    y = x * c
    assert x.is_leaf and x.grad_fn is None
    assert not y.is_leaf and y.requires_grad and y.grad_fn is not None
    assert "Mul" in repr(y.grad_fn)
    z = c * 2
    assert not z.requires_grad and z.grad_fn is None and z.is_leaf
    y.sum().backward()
    assert c.grad is None and y.grad is None  # non-leaf .grad is not kept without retain_grad


def test_backward_on_leaf_itself():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    x.backward(lucid.tensor([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


def test_autograd_grad_does_not_touch_dot_grad():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    x.grad = lucid.tensor([10.0, 10.0])
    (g,) = lucid.autograd.grad((x * x).sum(), [x])
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 10.0])


# ---------------------------------------------------------------------------------------------------------
# grad modes
def test_no_grad_context():
    x = lucid.randn(3, requires_grad=True)
    with lucid.no_grad():
        assert not lucid.is_grad_enabled()
        y = x * 2
        with lucid.enable_grad():
            assert lucid.is_grad_enabled()
            z = x * 2
        assert not lucid.is_grad_enabled()
    assert lucid.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None


def test_grad_modes_as_decorators():
    x = lucid.randn(3, requires_grad=True)

    @lucid.no_grad()
    def f(t):
        return t * 2

    @lucid.enable_grad()
    def g(t):
        return t * 2

    @lucid.set_grad_enabled(False)
    def h(t):
        return t * 2

    assert lucid.is_grad_enabled()  # defining h must not switch grad off
    assert not f(x).requires_grad
    assert f.__name__ == "f"
    with lucid.no_grad():
        assert g(x).requires_grad
        assert not lucid.is_grad_enabled()
    assert not h(x).requires_grad
    assert lucid.is_grad_enabled()


def test_set_grad_enabled_context_and_function():
    x = lucid.randn(3, requires_grad=True)
    with lucid.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with lucid.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not lucid.is_grad_enabled()
    assert lucid.is_grad_enabled()
    lucid.set_grad_enabled(False)  # a plain call switches until switched back, as in torch
    try:
        assert not (x * 2).requires_grad
    finally:
        lucid.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with lucid.no_grad():
            raise ValueError("boom")
    assert lucid.is_grad_enabled()


# ---------------------------------------------------------------------------------------------------------
# hooks and retain_grad
def test_register_hook_on_leaf_modifies_grad():
    x = arr((4,), "c", rng_for("hook_leaf"))
    lx, tx = _pair(x)
    seen = []
    for t in (lx, tx):
        t.register_hook(lambda g: seen.append(g.shape) or g * 10)
        (t * t).sum().backward()
    _close(lx.grad, tx.grad)
    np.testing.assert_allclose(lx.grad.numpy(), 20 * x, rtol=1e-6)
    assert tuple(seen[0]) == (4,)


def test_register_hook_on_non_leaf_modifies_upstream_grad():
    x = arr((4,), "c", rng_for("hook_nonleaf"))
    lx, tx = _pair(x)
    captured = []
    for t in (lx, tx):
        y = t.exp()
        y.register_hook(lambda g: captured.append(np.array(g.detach().numpy())) or g * 2)
        (y * 3).sum().backward()
    _close(lx.grad, tx.grad)
    np.testing.assert_allclose(captured[0], captured[1])  # the hook saw dL/dy = 3


def test_hook_returning_none_observes_only_and_handle_removes():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    h = x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    assert len(seen) == 1
    h.remove()
    (x * 3).sum().backward()
    assert len(seen) == 1


def test_hook_on_tensor_without_grad_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        lucid.ones(2).register_hook(lambda g: g)


def test_retain_grad():
    x = arr((3,), "c", rng_for("retain"))
    lx, tx = _pair(x)
    ys = []
    for t in (lx, tx):
        y = t * 2
        y.retain_grad()
        z = y.tanh()
        (z * y).sum().backward()  # y used twice: its retained grad is the sum
        ys.append(y)
    assert ys[0].grad is not None
    _close(ys[0].grad, ys[1].grad)
    _close(lx.grad, tx.grad)


def test_retain_grad_on_leaf_is_harmless():
    x = lucid.tensor([1.0], requires_grad=True)
    x.retain_grad()
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0])


# ---------------------------------------------------------------------------------------------------------
# retain_graph
def test_second_backward_without_retain_graph_errors_clearly():
    x = lucid.randn(3, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = arr((3,), "c", rng_for("retain_graph"))
    lx, tx = _pair(x)
    for t in (lx, tx):
        y = (t.exp() * t).sum()
        y.backward(retain_graph=True)
        y.backward()
    _close(lx.grad, tx.grad)


# ---------------------------------------------------------------------------------------------------------
# in-place checks
def test_inplace_on_leaf_requiring_grad_errors():
    x = lucid.randn(3, requires_grad=True)
    for op in (lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.zero_(), lambda t: t.fill_(1.0),
               lambda t: t.copy_(lucid.ones(3)), lambda t: t.__setitem__(0, 5.0), lambda t: t.clamp_(0, 1)):
        with pytest.raises(RuntimeError, match="leaf"):
            op(x)
    with pytest.raises(RuntimeError, match="leaf"):
        x += 1


def test_inplace_on_leaf_allowed_under_no_grad():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    with lucid.no_grad():
        x.mul_(3)
        x -= 1
    np.testing.assert_array_equal(x.detach().numpy(), [2.0, 5.0])
    assert x.requires_grad and x.is_leaf


def test_inplace_on_saved_tensor_then_backward_errors():
    """A no-grad tensor saved by Mul and modified in place: backward must refuse (version counter)."""
    x = lucid.randn(3, requires_grad=True)
    w = lucid.randn(3)
    y = (x * w).sum()
    w.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_inplace_on_saved_leaf_under_no_grad_then_backward_errors():
    x = lucid.randn(3, requires_grad=True)
    y = (x * x).sum()
    with lucid.no_grad():
        x.add_(1)
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward()


def test_inplace_on_unsaved_tensor_is_fine():
    x = lucid.randn(3, requires_grad=True)
    w = lucid.randn(3)
    y = (x + w).sum()  # Add saves nothing
    w.mul_(2)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(3))


# ---------------------------------------------------------------------------------------------------------
def test_detach():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.array, y.array)
    z = (d * x).sum()  # d is a constant for z
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    y2 = x * 2
    y2.detach_()
    assert not y2.requires_grad and y2.grad_fn is None


def test_requires_grad_rules():
    with pytest.raises(RuntimeError, match="floating point"):
        lucid.tensor([1, 2]).requires_grad_()
    y = lucid.randn(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    x = lucid.randn(2)
    assert x.requires_grad_() is x and x.requires_grad


def test_backward_on_non_scalar_without_gradient_errors():
    x = lucid.randn(2, 3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(2, 3\)"):
        y.backward()
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\).*\(2, 3\)"):
        y.backward(lucid.ones(3))
    y.backward(lucid.ones(2, 3))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))


def test_backward_of_single_element_non_0d():
    x = lucid.randn(1, 1, requires_grad=True)
    (x * 3).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[3.0]])


def test_backward_on_tensor_without_grad_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        lucid.ones(2).sum().backward()


# ---------------------------------------------------------------------------------------------------------
# gradient storage never aliases
def test_x_plus_x_grad_is_two():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_grads_of_two_leaves_do_not_alias():
    a = lucid.tensor([1.0, 2.0], requires_grad=True)
    b = lucid.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.array, b.grad.array)
    a.grad.mul_(5)
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(a.grad.numpy(), [5.0, 5.0])


def test_grads_through_views_do_not_alias():
    a = lucid.randn(2, 3, requires_grad=True)
    b = lucid.randn(6, requires_grad=True)
    (a.reshape(6) + b.reshape(6)).sum().backward()
    assert not np.shares_memory(a.grad.array, b.grad.array)
    assert a.grad.array.flags.writeable and b.grad.array.flags.writeable
    a.grad.zero_()
    np.testing.assert_array_equal(b.grad.numpy(), np.ones(6))


def test_grad_does_not_alias_the_gradient_argument():
    """x.backward(g) / (x + 0).backward(g): x.grad must be a new array, as in torch."""
    x = lucid.zeros(3, requires_grad=True)
    g = lucid.ones(3)
    (x + 0).backward(g)
    assert not np.shares_memory(x.grad.array, g.array)
    x.grad.mul_(7)
    np.testing.assert_array_equal(g.numpy(), np.ones(3))
    y = lucid.zeros(3, requires_grad=True)
    y.backward(g)
    assert not np.shares_memory(y.grad.array, g.array)


def test_grad_of_broadcast_input_is_writable_and_own():
    x = lucid.randn(3, requires_grad=True)
    x.expand(4, 3).sum().backward()
    assert x.grad.array.flags.writeable
    x.grad.zero_()  # must not raise on a read-only broadcast view
    x2 = lucid.randn(2, 3, requires_grad=True)
    x2.sum().backward()
    x2.grad.add_(1)
    np.testing.assert_array_equal(x2.grad.numpy(), np.full((2, 3), 2.0))


def test_grad_dtype_matches_leaf():
    x = lucid.randn(3, requires_grad=True)
    (x.double() * 2).sum().backward()
    assert x.grad.dtype == lucid.float32


# ---------------------------------------------------------------------------------------------------------
# custom Function subclasses
class ScaledCube(Function):
    """y = scale * x^3, with a non-tensor argument."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return scale * x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.scale * 3 * x * x, None


class WeightedSum(Function):
    """sum(a * b) with needs_input_grad respected."""

    calls = []

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return (a * b).sum()

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        WeightedSum.calls.append(ctx.needs_input_grad)
        ga = g * b if ctx.needs_input_grad[0] else None
        gb = g * a if ctx.needs_input_grad[1] else None
        return ga, gb


def test_custom_function():
    x = arr((4,), "c", rng_for("custom"))
    out = check("custom_function", lambda t: ScaledCube.apply(t, 0.5), lambda t: 0.5 * t ** 3, x)
    assert isinstance(out[0].grad_fn, ScaledCube)
    lucid.autograd.gradcheck(lambda t: ScaledCube.apply(t, 2.0), lucid.tensor(x.astype(np.float64),
                                                                            requires_grad=True))


def test_custom_function_needs_input_grad():
    WeightedSum.calls.clear()
    a = lucid.randn(3, requires_grad=True)
    b = lucid.randn(3)
    WeightedSum.apply(a, b).backward()
    assert WeightedSum.calls == [(True, False)]
    np.testing.assert_allclose(a.grad.numpy(), b.numpy())
    assert b.grad is None
    with lucid.no_grad():
        out = WeightedSum.apply(a, b)
    assert not out.requires_grad


def test_custom_function_wrong_gradient_shape_errors():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    x = lucid.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Bad.backward returned a gradient of shape \(\).*\(3,\)"):
        Bad.apply(x).sum().backward()


# ---------------------------------------------------------------------------------------------------------
# memory: the graph must not keep activations alive longer than needed
@pytest.fixture
def no_cyclic_gc():
    import gc

    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_output_saved_by_its_own_node_is_freed_by_refcount(no_cyclic_gc):
    """Exp saves its output; the node must not hold the output strongly (a cycle only gc would break)."""
    import weakref

    x = lucid.randn(100, requires_grad=True)
    for op in (lambda t: t.exp(), lambda t: t.tanh(), lambda t: t.sigmoid(), lambda t: t.relu(),
               lambda t: t.abs().sqrt(), lambda t: t.softmax(0)):
        y = op(x)
        ref = weakref.ref(y)
        del y
        assert ref() is None


def test_backward_frees_intermediates_while_root_is_alive(no_cyclic_gc):
    import weakref

    x = lucid.randn(100, requires_grad=True)
    y = x * 2
    z = (y + 1).exp()
    loss = z.sum()
    refs = [weakref.ref(y), weakref.ref(z)]
    del y, z
    assert all(r() is not None for r in refs)  # needed for backward
    loss.backward()
    assert all(r() is None for r in refs)  # ... and dropped by it, although `loss` is still held
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_retain_graph_keeps_what_a_second_backward_needs(no_cyclic_gc):
    x = lucid.randn(5, requires_grad=True)
    loss = ((x * 2).exp() * x).sum()
    loss.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1, rtol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# gradcheck itself must be able to fail
def test_gradcheck_catches_a_wrong_backward():
    class WrongSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # should be 2 * g * x

    x = lucid.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with pytest.raises(AssertionError, match="gradcheck failed for input 0"):
        lucid.autograd.gradcheck(WrongSquare.apply, (x,))
    assert lucid.autograd.gradcheck(WrongSquare.apply, (x,), raise_exception=False) is False
    assert lucid.autograd.gradcheck(lambda t: t * t, (x,))


def test_gradcheck_argument_errors():
    with pytest.raises(TypeError, match="float64"):
        lucid.autograd.gradcheck(lambda t: t * 2, (lucid.randn(3, requires_grad=True),))
    with pytest.raises(ValueError, match="requires_grad"):
        lucid.autograd.gradcheck(lambda t: t * 2, (lucid.randn(3, dtype=lucid.float64),))
