"""F.linear and nn.Linear / Identity / Flatten against PyTorch."""
import math

import numpy as np
import pytest
import torch

import lucid
from lucid import nn
from lucid.autograd import gradcheck
from lucid.nn import functional as F

RNG = np.random.default_rng(1234)


def rel_err(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def _run_both(x_np, w_np, b_np, make_x=None):
    """Forward + backward of linear in lucid and torch with the same inputs and upstream gradient."""
    xl = lucid.Tensor(x_np, requires_grad=True) if make_x is None else make_x(x_np)
    wl = lucid.Tensor(w_np, requires_grad=True)
    bl = None if b_np is None else lucid.Tensor(b_np, requires_grad=True)
    yl = F.linear(xl, wl, bl)
    xt = torch.tensor(x_np, requires_grad=True)
    wt = torch.tensor(w_np, requires_grad=True)
    bt = None if b_np is None else torch.tensor(b_np, requires_grad=True)
    yt = torch.nn.functional.linear(xt, wt, bt)
    g = RNG.standard_normal(yt.shape).astype(np.float32)
    yl.backward(lucid.Tensor(g))
    yt.backward(torch.tensor(g))
    return (yl, xl, wl, bl), (yt, xt, wt, bt)


@pytest.mark.parametrize("x_shape", [(5,), (4, 5), (2, 3, 5), (2, 1, 3, 5), (0, 5), (3, 0, 5)],
                         ids=["1d", "2d", "3d", "4d", "empty-rows", "empty-mid"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_parity(x_shape, bias):
    x = RNG.standard_normal(x_shape).astype(np.float32)
    w = RNG.standard_normal((7, 5)).astype(np.float32)
    b = RNG.standard_normal(7).astype(np.float32) if bias else None
    (yl, xl, wl, bl), (yt, xt, wt, bt) = _run_both(x, w, b)
    assert yl.shape == tuple(yt.shape)
    assert yl.dtype == lucid.float32
    assert rel_err(yl.numpy() if not yl.requires_grad else yl.detach().numpy(), yt.detach().numpy()) <= 1e-5
    assert xl.grad.shape == x.shape
    assert rel_err(xl.grad.numpy(), xt.grad.numpy()) <= 1e-4
    if x.size:
        assert rel_err(wl.grad.numpy(), wt.grad.numpy()) <= 1e-4
    else:
        assert np.all(wl.grad.numpy() == 0)
    if bias:
        if x.size:
            assert rel_err(bl.grad.numpy(), bt.grad.numpy()) <= 1e-4
        assert bl.grad.shape == (7,)


def test_linear_zero_in_features():
    x = np.zeros((3, 0), np.float32)
    w = np.zeros((4, 0), np.float32)
    b = RNG.standard_normal(4).astype(np.float32)
    (yl, xl, wl, bl), (yt, *_rest) = _run_both(x, w, b)
    np.testing.assert_array_equal(yl.detach().numpy(), yt.detach().numpy())
    assert xl.grad.shape == (3, 0) and wl.grad.shape == (4, 0)


def test_linear_non_contiguous_input():
    """Transposed and channels-last (NCHW view of NHWC) inputs give the same numbers as torch."""
    base = RNG.standard_normal((6, 2, 3)).astype(np.float32)
    x_t = base.transpose(1, 2, 0)  # (2, 3, 6), non-contiguous
    assert not x_t.flags.c_contiguous
    w = RNG.standard_normal((4, 6)).astype(np.float32)
    b = RNG.standard_normal(4).astype(np.float32)
    (yl, xl, wl, bl), (yt, xt, wt, bt) = _run_both(x_t, w, b)
    assert rel_err(yl.detach().numpy(), yt.detach().numpy()) <= 1e-5
    assert rel_err(xl.grad.numpy(), xt.grad.numpy()) <= 1e-4
    assert rel_err(wl.grad.numpy(), wt.grad.numpy()) <= 1e-4
    # a strided slice (every other row) as input
    x_s = RNG.standard_normal((8, 6)).astype(np.float32)[::2]
    (yl, xl, wl, _), (yt, xt, wt, _) = _run_both(x_s, w, None)
    assert rel_err(yl.detach().numpy(), yt.detach().numpy()) <= 1e-5
    assert rel_err(wl.grad.numpy(), wt.grad.numpy()) <= 1e-4
    # a non-contiguous weight (a transposed view)
    wt_np = np.ascontiguousarray(w.T).T
    (yl, _, wl, _), (yt, _, wt2, _) = _run_both(x_s, wt_np, None)
    assert rel_err(yl.detach().numpy(), yt.detach().numpy()) <= 1e-5
    assert rel_err(wl.grad.numpy(), wt2.grad.numpy()) <= 1e-4


def test_linear_only_some_grads():
    x = lucid.Tensor(RNG.standard_normal((3, 5)).astype(np.float32))  # no grad
    w = lucid.Tensor(RNG.standard_normal((2, 5)).astype(np.float32), requires_grad=True)
    b = lucid.Tensor(RNG.standard_normal(2).astype(np.float32))  # no grad
    F.linear(x, w, b).sum().backward()
    assert x.grad is None and b.grad is None
    np.testing.assert_allclose(w.grad.numpy(), np.tile(x.numpy().sum(0), (2, 1)), rtol=1e-5)


def test_linear_no_grad_mode():
    w = lucid.Tensor(RNG.standard_normal((2, 5)).astype(np.float32), requires_grad=True)
    with lucid.no_grad():
        y = F.linear(lucid.randn(3, 5), w)
    assert not y.requires_grad and y.grad_fn is None


def test_linear_gradcheck():
    x = lucid.Tensor(RNG.standard_normal((2, 3, 4)), requires_grad=True)
    w = lucid.Tensor(RNG.standard_normal((5, 4)), requires_grad=True)
    b = lucid.Tensor(RNG.standard_normal(5), requires_grad=True)
    assert gradcheck(F.linear, (x, w, b))
    x1 = lucid.Tensor(RNG.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda a, c: F.linear(a, c), (x1, w))
    xt = lucid.Tensor(RNG.standard_normal((4, 3)).T, requires_grad=True)  # non-contiguous float64
    assert gradcheck(F.linear, (xt, w, b))


def test_linear_float64_stays_float64():
    x = lucid.Tensor(RNG.standard_normal((3, 4)))
    w = lucid.Tensor(RNG.standard_normal((2, 4)))
    assert F.linear(x, w).dtype == lucid.float64


@pytest.mark.parametrize("x_shape, w_shape, b_shape, match", [
    ((3, 4), (2, 5), None, r"\(3, 4\).*\(2, 5\)"),
    ((3, 4), (2, 4, 1), None, "2-D"),
    ((3, 4), (2, 4), (3,), r"bias shape \(3,\)"),
    ((), (2, 4), None, "0-d"),
])
def test_linear_shape_errors(x_shape, w_shape, b_shape, match):
    x = lucid.zeros(*x_shape) if x_shape else lucid.tensor(1.0)
    w = lucid.zeros(*w_shape)
    b = None if b_shape is None else lucid.zeros(*b_shape)
    with pytest.raises(RuntimeError, match=match):
        F.linear(x, w, b)


def test_linear_dtype_mismatch_error():
    with pytest.raises(RuntimeError, match="float64"):
        F.linear(lucid.zeros(3, 4), lucid.zeros(2, 4, dtype=lucid.float64))


def test_linear_inplace_modification_detected():
    x = lucid.randn(3, 4)
    w = lucid.Tensor(RNG.standard_normal((2, 4)).astype(np.float32), requires_grad=True)
    y = F.linear(x, w)
    x += 1.0
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


# -- nn.Linear -----------------------------------------------------------------------------------------------
def test_linear_module_matches_torch_with_copied_weights():
    m = nn.Linear(5, 3)
    tm = torch.nn.Linear(5, 3)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight.detach().numpy()))
        tm.bias.copy_(torch.tensor(m.bias.detach().numpy()))
    x = RNG.standard_normal((4, 2, 5)).astype(np.float32)
    yl, yt = m(lucid.Tensor(x)), tm(torch.tensor(x))
    assert rel_err(yl.detach().numpy(), yt.detach().numpy()) <= 1e-5
    yl.sum().backward()
    yt.sum().backward()
    assert rel_err(m.weight.grad.numpy(), tm.weight.grad.numpy()) <= 1e-4
    assert rel_err(m.bias.grad.numpy(), tm.bias.grad.numpy()) <= 1e-4


def test_linear_module_init_bounds_and_attributes():
    lucid.manual_seed(0)
    m = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert w.shape == (300, 400) and b.shape == (300,)
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # uniform on [-bound, bound]: std = bound / sqrt(3)
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert m.weight.requires_grad and m.bias.requires_grad
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.in_features == 400 and m.out_features == 300


def test_linear_module_no_bias_and_repr():
    m = nn.Linear(4, 2, bias=False)
    assert m.bias is None
    assert list(m.state_dict()) == ["weight"]
    assert repr(m) == repr(torch.nn.Linear(4, 2, bias=False))
    assert repr(nn.Linear(4, 2)) == repr(torch.nn.Linear(4, 2))
    y = m(lucid.randn(3, 4))
    assert y.shape == (3, 2)


def test_linear_module_dtype_and_seed():
    m = nn.Linear(3, 2, dtype=lucid.float64)
    assert m.weight.dtype == lucid.float64 and m.bias.dtype == lucid.float64
    lucid.manual_seed(7)
    a = nn.Linear(6, 4).weight.detach().numpy().copy()
    lucid.manual_seed(7)
    b = nn.Linear(6, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(-1, 3)
    with pytest.raises(TypeError, match="floating"):
        nn.Linear(2, 3, dtype=lucid.int64)


def test_identity_and_flatten():
    x = lucid.randn(2, 3, 4, 5)
    ident = nn.Identity(54, unused="x")
    assert ident(x) is x
    assert repr(ident) == "Identity()"
    xt = torch.tensor(x.numpy())
    for args in [(), (0,), (1, 2), (2, -1), (-3, -2), (0, -1)]:
        yl, yt = nn.Flatten(*args)(x), torch.nn.Flatten(*args)(xt)
        assert yl.shape == tuple(yt.shape), args
        np.testing.assert_array_equal(yl.numpy(), yt.numpy())
    assert repr(nn.Flatten()) == repr(torch.nn.Flatten())
    # channels-last storage (NCHW view of an NHWC buffer) flattens in logical NCHW order
    nhwc = RNG.standard_normal((2, 4, 5, 3)).astype(np.float32)
    x_cl = lucid.Tensor(nhwc.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(nn.Flatten()(x_cl).numpy(),
                                  torch.flatten(torch.tensor(nhwc).permute(0, 3, 1, 2), 1).numpy())
    # gradient flows through Flatten
    xg = lucid.randn(2, 3, 2, requires_grad=True)
    nn.Flatten()(xg).sum().backward()
    np.testing.assert_array_equal(xg.grad.numpy(), np.ones((2, 3, 2), np.float32))
