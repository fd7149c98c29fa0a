"""Tensor factories, dtype rules, conversions, in-place ops and error messages, against torch where it applies."""
import numpy as np
import pytest
import torch

import lucid

from ._parity import arr, rng_for


def _same(lt, tt, tol=0.0):
    """Same shape, dtype and values as a torch tensor."""
    tv = tt.detach().numpy()
    assert tuple(lt.shape) == tuple(tv.shape), f"shape {tuple(lt.shape)} != torch {tv.shape}"
    assert lt.dtype == tv.dtype, f"dtype {lt.dtype} != torch {tv.dtype}"
    if tol:
        np.testing.assert_allclose(lt.detach().numpy(), tv, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(lt.detach().numpy(), tv)


# ---------------------------------------------------------------------------------------------------------
# factories
@pytest.mark.parametrize("data", [[1.0, 2.5], [[1, 2], [3, 4]], [True, False], 3.5, 7, True, [], [[1.5], [2]],
                                  np.array([1.0, 2.0]), np.array([1, 2], np.int32), np.array([1, 2], np.uint8),
                                  np.zeros((2, 0), np.float32)], ids=repr)
def test_tensor_from_data(data):
    _same(lucid.tensor(data), torch.tensor(data))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool"])
def test_tensor_with_dtype(dtype):
    lt = lucid.tensor([1, 0, 2], dtype=getattr(lucid, dtype) if dtype != "bool" else lucid.bool)
    _same(lt, torch.tensor([1, 0, 2], dtype=getattr(torch, dtype)))
    _same(lucid.tensor([1, 0, 2], dtype=dtype), torch.tensor([1, 0, 2], dtype=getattr(torch, dtype)))


def test_tensor_copies_its_input():
    a = np.ones(3, np.float32)
    t = lucid.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 1
    t2 = lucid.tensor(t)
    assert not np.shares_memory(t2.array, t.array)
    assert lucid.Tensor(a).array is a  # the constructor wraps without copying


@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("size", [(2, 3), ((2, 3),), ([4],), (0,), ()], ids=str)
def test_zeros_ones_empty(name, size):
    for dt in [None, "float64", "int64", "bool"]:
        kw = {} if dt is None else {"dtype": getattr(lucid, dt) if dt != "bool" else lucid.bool}
        tkw = {} if dt is None else {"dtype": getattr(torch, dt)}
        lt, tt = getattr(lucid, name)(*size, **kw), getattr(torch, name)(*(size or ((),)), **tkw)
        if name == "empty":
            assert tuple(lt.shape) == tuple(tt.shape) and lt.dtype == tt.detach().numpy().dtype
        else:
            _same(lt, tt)
    t = getattr(lucid, name)(2, requires_grad=True)
    assert t.requires_grad and t.is_leaf


def test_negative_size_errors():
    with pytest.raises(ValueError, match="-1"):
        lucid.zeros(2, -1)


@pytest.mark.parametrize("fill", [1.5, 7, True, -2.0])
def test_full(fill):
    _same(lucid.full((2, 3), fill), torch.full((2, 3), fill))
    _same(lucid.full((4,), fill, dtype=lucid.float64), torch.full((4,), fill, dtype=torch.float64))
    _same(lucid.full([2], fill), torch.full([2], fill))
    _same(lucid.full(3, fill), torch.full((3,), fill))


@pytest.mark.parametrize("args", [(5,), (2, 9), (2, 9, 3), (5, 0, -1), (0,), (1, 1), (-3, 4, 2)], ids=str)
def test_arange_int(args):
    _same(lucid.arange(*args), torch.arange(*args))


@pytest.mark.parametrize("args", [(0.0, 1.0, 0.1), (5.0,), (1, 2.5, 0.5), (-1.0, 1.0, 0.3), (2.0, -1.0, -0.7),
                                  (0, 1, 0.25)], ids=str)
def test_arange_float(args):
    _same(lucid.arange(*args), torch.arange(*args), tol=1e-6)
    _same(lucid.arange(*args, dtype=lucid.float64), torch.arange(*args, dtype=torch.float64), tol=1e-12)


def test_arange_dtype_and_errors():
    _same(lucid.arange(5, dtype=lucid.float32), torch.arange(5, dtype=torch.float32))
    with pytest.raises(ValueError, match="step"):
        lucid.arange(0, 5, 0)


@pytest.mark.parametrize("args", [(0, 1, 5), (-2.5, 3, 7), (1, 1, 1), (0, 1, 0), (3, -3, 4)], ids=str)
def test_linspace(args):
    _same(lucid.linspace(*args), torch.linspace(*args), tol=1e-6)
    _same(lucid.linspace(*args, dtype=lucid.float64), torch.linspace(*args, dtype=torch.float64), tol=1e-12)


@pytest.mark.parametrize("args", [(-2.5, 9.1, 1001), (1e3, -7.77, 333), (0, 1, 100), (float("nan"), 1, 3),
                                  (0, float("inf"), 3), (-float("inf"), 0, 1), (True, 1, 3)], ids=str)
def test_linspace_values_are_torchs(args):
    """float32 values bit for bit (NumPy's linspace was 1 ulp off in places), nan/inf endpoints all nan."""
    _same(lucid.linspace(*args), torch.linspace(*args))
    _same(lucid.linspace(0, 10, 4, dtype=lucid.int64), torch.linspace(0, 10, 4, dtype=torch.int64))
    _same(lucid.linspace(lucid.tensor(args[0]), lucid.tensor(args[1]), lucid.tensor(args[2])),
          torch.linspace(torch.tensor(args[0]), torch.tensor(args[1]), torch.tensor(args[2])))


@pytest.mark.parametrize("args,error,match", [
    ((0, 1, -1), ValueError, "steps must be non-negative, got -1"),
    ((0, 1, 2.5), TypeError, "steps must be an int, got float 2.5"),
    ((0, 1, True), TypeError, "steps must be an int, got bool"),
    ((0, 1, "3"), TypeError, "steps must be an int, got str"),
    ((0, 1, [5]), TypeError, "steps must be an int, got list"),
    ((0, 1, "t5.0"), TypeError, r"steps must be an int or a 0-d integer tensor, got a tensor of dtype float32"),
    ((0, 1, "t[5]"), TypeError, r"steps must be an int or a 0-d integer tensor, got .* shape \(1,\)"),
    (("t[0., 1.]", 1, 5), RuntimeError, r"only supports 0-dimensional start and end tensors, but got start with 1"),
    ((0, "t[1.]", 5), RuntimeError, r"but got end with 1 dimension"),
    (("a", 1, 3), TypeError, "start must be a number or a 0-d tensor, got str"),
    ((0, None, 3), TypeError, "end must be a number or a 0-d tensor, got NoneType"),
    ((0, 1j, 3), TypeError, r"end=1j is complex, and lucid has no complex dtypes"),  # torch: a complex64 result
])
def test_linspace_refuses_what_torch_refuses(args, error, match):
    def conv(v, lib):
        if isinstance(v, str) and v.startswith("t"):
            return lib.tensor(eval(v[1:]))
        return v

    if match.startswith("end=1j"):
        assert torch.linspace(*args).dtype == torch.complex64
    else:
        with pytest.raises((RuntimeError, TypeError)):  # torch refuses every one of these too
            torch.linspace(*[conv(v, torch) for v in args])
    with pytest.raises(error, match=match):
        lucid.linspace(*[conv(v, lucid) for v in args])


@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2), (0,), (1, 1)], ids=str)
def test_eye(args):
    _same(lucid.eye(*args), torch.eye(*args))
    _same(lucid.eye(*args, dtype=lucid.int64), torch.eye(*args, dtype=torch.int64))


@pytest.mark.parametrize("src_dtype", ["float32", "int64", "float64"])
def test_like_factories(src_dtype):
    x = np.arange(6).reshape(2, 3).astype(src_dtype)
    lx, tx = lucid.tensor(x), torch.tensor(x)
    _same(lucid.zeros_like(lx), torch.zeros_like(tx))
    _same(lucid.ones_like(lx), torch.ones_like(tx))
    _same(lucid.full_like(lx, 3), torch.full_like(tx, 3))
    _same(lucid.zeros_like(lx, dtype=lucid.float64), torch.zeros_like(tx, dtype=torch.float64))
    _same(lucid.ones_like(lx, dtype=lucid.bool), torch.ones_like(tx, dtype=torch.bool))
    e = lucid.empty_like(lx)
    assert e.shape == lx.shape and e.dtype == lx.dtype
    assert lucid.zeros_like(lx).device == "cpu"
    assert lucid.random.rand_like(lucid.zeros(2, 3)).shape == (2, 3)
    assert lucid.random.randn_like(lucid.zeros(2, 3, dtype=lucid.float64)).dtype == lucid.float64


def test_lucid_dtype_aliases():
    assert lucid.float is lucid.float32 and lucid.double is lucid.float64 and lucid.long is lucid.int64
    assert lucid.half is lucid.float16
    assert lucid.tensor([1.0]).dtype == np.float32  # lucid dtypes are NumPy dtypes


# ---------------------------------------------------------------------------------------------------------
# dtype rules
F32 = np.float32


def test_float32_default_and_python_scalars_stay_weak():
    x = lucid.randn(3)
    assert x.dtype == lucid.float32
    for y in [x * 2.5, 2.5 * x, x + 1, x - 1e10, x / 3, 3 / x, x ** 2.0, 2.0 ** x, x * np.float64(2.0),
              np.float64(2.0) * x, x * np.int64(3), x.clamp(0.5, 1.5), lucid.maximum(x, 0.1),
              lucid.where(x > 0, x, 0.0), x.exp() * 1e-3, x.mean() * 2.0]:
        assert y.dtype == lucid.float32, y


def test_no_float64_from_0d_float64_tensor():
    """torch: a 0-d tensor of the same category does not widen a tensor with dims."""
    x = np.ones(3, np.float32)
    z64 = np.asarray(np.float64(2.0))
    for op in [lambda a, b: a * b, lambda a, b: b + a, lambda a, b: a / b, lambda a, b: lucid.maximum(a, b)
               if isinstance(a, lucid.Tensor) else torch.maximum(a, b)]:
        _same(op(lucid.tensor(x), lucid.tensor(z64)), op(torch.tensor(x), torch.tensor(z64)))
    xi = np.ones(3, np.int32)
    _same(lucid.tensor(xi) + lucid.tensor(np.asarray(np.int64(2))),
          torch.tensor(xi) + torch.tensor(np.asarray(np.int64(2))))
    _same(lucid.tensor(xi) * lucid.tensor(np.asarray(np.float64(1.5))),
          torch.tensor(xi) * torch.tensor(np.asarray(np.float64(1.5))))
    _same(lucid.tensor(z64) * lucid.tensor(np.asarray(np.float32(2.0))),
          torch.tensor(z64) * torch.tensor(np.asarray(np.float32(2.0))))


@pytest.mark.parametrize("case", [
    ("int*float", lambda a, b: a * 2.5),
    ("int+int", lambda a, b: a + 1),
    ("int/int", lambda a, b: a / b),
    ("int/scalar", lambda a, b: a / 2),
    ("rdiv int", lambda a, b: 2 / b),
    ("int**2", lambda a, b: a ** 2),
    ("int32+int64", lambda a, b: a.int() + b),
    ("float32+int64", lambda a, b: a.float() + b),
    ("float32+float64", lambda a, b: a.float() + b.double()),
    ("bool+int", lambda a, b: (a > 1) + 1),
    ("bool*float", lambda a, b: (a > 1) * 2.5),
    ("bool+bool", lambda a, b: (a > 1) + (b > 1)),
    ("int.exp", lambda a, b: a.exp()),
    ("int.sigmoid", lambda a, b: a.sigmoid()),
    ("int.sum", lambda a, b: a.sum()),
    ("int32.sum", lambda a, b: a.int().sum()),
    ("bool.sum", lambda a, b: (a > 1).sum()),
    ("int.clamp_float", lambda a, b: a.clamp(0.5, 2.5)),
    ("int.clamp_int", lambda a, b: a.clamp(1, 2)),
    ("int.max", lambda a, b: a.max()),
    ("int.abs", lambda a, b: (-a).abs()),
    ("int.neg", lambda a, b: -a),
    ("int matmul", lambda a, b: a @ b),
    ("int.maximum", lambda a, b: (a.maximum(b) if hasattr(a, "maximum") else None)),
], ids=lambda c: c[0])
def test_dtype_rules_match_torch(case):
    _, fn = case
    a = np.array([1, 2, 3], np.int64)
    b = np.array([2, 2, 4], np.int64)
    if case[0] == "int.maximum":
        _same(lucid.maximum(lucid.tensor(a), lucid.tensor(b)), torch.maximum(torch.tensor(a), torch.tensor(b)))
        return
    _same(fn(lucid.tensor(a), lucid.tensor(b)), fn(torch.tensor(a), torch.tensor(b)), tol=1e-6)


def test_comparisons_give_bool():
    x = lucid.tensor([1.0, 2.0, 3.0])
    for r in [x > 1, x >= 2, x < 2.5, x <= 1, x == 2, x != 2, x == lucid.tensor([1.0, 0.0, 3.0]), 1 < x]:
        assert r.dtype == lucid.bool and not r.requires_grad
    np.testing.assert_array_equal((x == 2).numpy(), [False, True, False])
    np.testing.assert_array_equal((1 < x).numpy(), [False, True, True])
    xi = lucid.tensor([1, 2])
    assert (xi > 1.5).dtype == lucid.bool
    np.testing.assert_array_equal((xi > 1.5).numpy(), [False, True])


def test_int_tensor_cannot_require_grad_but_ops_on_it_work():
    xi = lucid.tensor([1, 2, 3])
    w = lucid.tensor([0.5, 0.5, 0.5], requires_grad=True)
    y = (xi * w).sum()
    assert y.dtype == lucid.float32
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------------------------------------------
# conversions and attributes
def test_item_tolist_numpy_size_numel_dim():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    lt, tt = lucid.tensor(x), torch.tensor(x)
    assert lt.tolist() == tt.tolist()
    assert lt.size() == tuple(tt.size()) and lt.size(1) == tt.size(1) and lt.size(-1) == 3
    assert lt.numel() == tt.numel() == lucid.numel(lt) and lt.dim() == tt.dim() == lt.ndim
    assert len(lt) == 2
    assert lt[1, 2].item() == tt[1, 2].item() == 5.0 and isinstance(lt[1, 2].item(), float)
    assert isinstance(lucid.tensor([3]).item(), int) and isinstance(lucid.tensor(True).item(), bool)
    assert float(lucid.tensor([2.5])) == 2.5 and int(lucid.tensor(4)) == 4
    assert [1, 2, 3][lucid.tensor(1)] == 2  # __index__
    a = lt.numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and np.shares_memory(a, lt.array)
    assert lucid.tensor(3.0).tolist() == 3.0
    assert lt.element_size() == 4 and lt.is_floating_point() and not lucid.tensor([1]).is_floating_point()
    assert lucid.is_tensor(lt) and not lucid.is_tensor(x)
    assert [r.tolist() for r in lt] == x.tolist()


def test_item_and_bool_errors():
    with pytest.raises(ValueError, match=r"one element.*\(2, 3\)"):
        lucid.zeros(2, 3).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(lucid.zeros(2))
    assert bool(lucid.tensor([1.0])) and not bool(lucid.tensor(0.0))
    with pytest.raises(TypeError, match="0-d"):
        len(lucid.tensor(1.0))
    with pytest.raises(RuntimeError, match="detach"):
        lucid.zeros(2, requires_grad=True).numpy()
    with lucid.no_grad():
        lucid.zeros(2, requires_grad=True).numpy()  # allowed without recording, as torch


def test_to_cpu_and_device():
    x = lucid.randn(2, 3)
    assert x.device == "cpu" and not x.is_cuda
    assert x.to("cpu") is x and x.cpu() is x
    y = x.to("cpu", lucid.float64)
    assert y.dtype == lucid.float64 and y.device == "cpu"
    z = x.to(device="cpu", dtype="float16")
    assert z.dtype == lucid.float16
    assert lucid.tensor([1.0], device="cpu").device == "cpu"
    assert lucid.zeros(2, device="cpu").device == "cpu"


def test_unknown_dtype_and_device_errors_list_the_allowed_ones():
    with pytest.raises(TypeError, match=r"complex64.*float32.*int64"):
        lucid.zeros(2, dtype="complex64")
    with pytest.raises(TypeError, match=r"expected one of.*float32"):
        lucid.zeros(2, dtype=np.complex64)
    with pytest.raises(TypeError, match="float32"):
        lucid.tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="float32"):
        lucid.randn(2).to(np.complex128)
    with pytest.raises(ValueError, match=r"'tpu'.*cpu.*gpu"):
        lucid.zeros(2, device="tpu")
    with pytest.raises(ValueError, match=r"'tpu'.*cpu.*gpu.*float32"):
        lucid.randn(2).to("tpu")
    with pytest.raises(ValueError, match="cuda:3"):
        lucid.randn(2).to(device="cuda:3")
    with pytest.raises(ValueError, match="cpu"):
        lucid.tensor([1.0], device="npu")


def test_repr():
    assert repr(lucid.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert repr(lucid.tensor([1, 2])) == "tensor([1, 2])"
    r = repr(lucid.tensor([1.0, 2.0], requires_grad=True))
    assert r.startswith("tensor([1., 2.]") and r.endswith("requires_grad=True)")
    assert "dtype=lucid.float64" in repr(lucid.tensor([1.0], dtype=lucid.float64))
    assert "dtype" not in repr(lucid.tensor([True]))
    assert "grad_fn=<MulBackward>" in repr(lucid.tensor([1.0], requires_grad=True) * 2)
    assert repr(lucid.tensor(3.0)) == "tensor(3.)"
    assert "\n" in repr(lucid.zeros(2, 2))
    big = repr(lucid.zeros(100, 100))
    assert "..." in big and len(big) < 2000


# ---------------------------------------------------------------------------------------------------------
# in-place ops on tensors that do not require grad
def _inplace_pair(x=None):
    x = arr((3, 4), "c", rng_for("inplace")) if x is None else x
    return lucid.tensor(x), torch.tensor(x)


@pytest.mark.parametrize("case", [
    ("iadd", lambda t, o: t.__iadd__(o)),
    ("isub", lambda t, o: t.__isub__(o)),
    ("imul", lambda t, o: t.__imul__(o)),
    ("itruediv", lambda t, o: t.__itruediv__(o)),
    ("add_", lambda t, o: t.add_(o)),
    ("add_alpha", lambda t, o: t.add_(o, alpha=2.0)),
    ("sub_", lambda t, o: t.sub_(o)),
    ("sub_alpha", lambda t, o: t.sub_(o, alpha=-0.5)),
    ("mul_", lambda t, o: t.mul_(o)),
    ("div_", lambda t, o: t.div_(o)),
], ids=lambda c: c[0])
@pytest.mark.parametrize("other", ["scalar", "row", "same"])
def test_inplace_arithmetic(case, other):
    lt, tt = _inplace_pair()
    o = {"scalar": 1.5, "row": np.linspace(1, 2, 4).astype(np.float32),
         "same": arr((3, 4), "t", rng_for("o"), low=0.5)}[other]
    lo = o if other == "scalar" else lucid.tensor(o)
    to = o if other == "scalar" else torch.tensor(o)
    ptr, version = lt.array.ctypes.data, lt._version
    res = case[1](lt, lo)
    case[1](tt, to)
    assert res is lt and lt.array.ctypes.data == ptr  # same object, same storage
    assert lt._version == version + 1
    _same(lt, tt, tol=1e-6)


def test_inplace_operator_keeps_identity():
    x = lucid.ones(3)
    y = x
    y += 2
    assert y is x
    np.testing.assert_array_equal(x.numpy(), [3.0, 3.0, 3.0])
    y *= lucid.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x.numpy(), [3.0, 6.0, 9.0])


def test_inplace_on_views_writes_through():
    base = lucid.zeros(3, 4)
    row = base[1]
    row += 1
    base[:, 0].fill_(5)
    expected = torch.zeros(3, 4)
    expected[1] += 1
    expected[:, 0].fill_(5)
    _same(base, expected)


def test_zero_fill_copy():
    lt, tt = _inplace_pair()
    lt.zero_(), tt.zero_()
    _same(lt, tt)
    lt.fill_(2.5), tt.fill_(2.5)
    _same(lt, tt)
    lt.fill_(lucid.tensor(1.5)), tt.fill_(torch.tensor(1.5))
    _same(lt, tt)
    src = arr((4,), "c", rng_for("copy"))
    lt.copy_(lucid.tensor(src)), tt.copy_(torch.tensor(src))  # broadcasting copy
    _same(lt, tt)
    lt.copy_(np.ones((3, 4))), tt.copy_(torch.ones(3, 4, dtype=torch.float64))  # float64 source cast down
    _same(lt, tt)
    li = lucid.zeros(2, dtype=lucid.int64)
    li.copy_(lucid.tensor([1.7, -2.2]))
    ti = torch.zeros(2, dtype=torch.int64)
    ti.copy_(torch.tensor([1.7, -2.2]))
    _same(li, ti)
    with pytest.raises(ValueError, match=r"broadcast|\(5,\)"):
        lucid.zeros(3, 4).copy_(lucid.zeros(5))


@pytest.mark.parametrize("case", [
    ("int", lambda t, v: t.__setitem__(1, v)),
    ("slice", lambda t, v: t.__setitem__((slice(None), slice(1, 3)), v)),
    ("neg_step", lambda t, v: t.__setitem__((slice(None), slice(None, None, -1)), v)),
    ("mask", lambda t, v: t.__setitem__(t > 0, v)),
    ("int_index", lambda t, v: t.__setitem__([0, 2], v)),
    ("ellipsis", lambda t, v: t.__setitem__((Ellipsis, 0), v)),
], ids=lambda c: c[0])
def test_setitem(case):
    lt, tt = _inplace_pair()
    version = lt._version
    case[1](lt, 7.0)
    if case[0] == "neg_step":
        tt.copy_(torch.full_like(tt, 7.0))
    else:
        case[1](tt, 7.0)
    _same(lt, tt)
    assert lt._version == version + 1


def test_setitem_with_tensor_values_and_tensor_index():
    lt, tt = _inplace_pair()
    v = np.arange(4, dtype=np.float32)
    lt[lucid.tensor([0, 2])] = lucid.tensor(v)
    tt[torch.tensor([0, 2])] = torch.tensor(v)
    _same(lt, tt)
    lt[lucid.tensor(1)] = lucid.tensor(-1.0)
    tt[torch.tensor(1)] = torch.tensor(-1.0)
    _same(lt, tt)


def test_clamp_inplace():
    lt, tt = _inplace_pair()
    lt.clamp_(-0.5, 0.5), tt.clamp_(-0.5, 0.5)
    _same(lt, tt)
    lt.clamp_(min=0.0), tt.clamp_(min=0.0)
    _same(lt, tt)


def test_inplace_dtype_errors():
    xi = lucid.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="int64"):
        xi.div_(2)
    with pytest.raises(RuntimeError, match=r"\(3,\)"):
        xi.add_(1.5)
    x = lucid.zeros(3)
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(4,\)"):
        x.add_(lucid.zeros(4))


# ---------------------------------------------------------------------------------------------------------
# error messages name both shapes
def test_shape_errors_name_both_shapes():
    a, b = lucid.zeros(2, 3), lucid.zeros(4)
    for op in [lambda: a + b, lambda: a - b, lambda: a * b, lambda: a / b, lambda: a ** b,
               lambda: lucid.maximum(a, b), lambda: lucid.minimum(a, b), lambda: lucid.add(a, b, alpha=2)]:
        with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(4,\)"):
            op()
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(4,\)"):
        a @ b
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(4,\)"):
        lucid.cat([a, b])
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(4,\)"):
        a.requires_grad_() + b


def test_unsupported_operand_errors():
    with pytest.raises(TypeError, match="str"):
        lucid.zeros(2) + "a"
    with pytest.raises(TypeError):
        lucid.zeros(2) * [1, 2]  # lists are not implicitly converted (neither in torch)


# ---------------------------------------------------------------------------------------------------------
# NumPy interoperability
def test_np_asarray_of_tensor():
    t = lucid.tensor([[1.0, 2.0]])
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.shape == (1, 2) and np.shares_memory(a, t.array)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert not np.shares_memory(np.array(t), t.array)
    np.testing.assert_array_equal(t, [[1.0, 2.0]])  # numpy's testing helpers accept tensors
    with pytest.raises(RuntimeError, match="detach"):
        np.asarray(lucid.ones(2, requires_grad=True))


def test_tensor_from_list_of_0d_tensors():
    _same(lucid.tensor([lucid.tensor(1.5), lucid.tensor(2.0)]), torch.tensor([torch.tensor(1.5), torch.tensor(2.0)]))
    _same(lucid.stack([lucid.tensor(1), lucid.tensor(2)]), torch.stack([torch.tensor(1), torch.tensor(2)]))


def test_ragged_data_is_refused():
    with pytest.raises(ValueError, match="inhomogeneous"):
        lucid.tensor([[1, 2], [3]])
    with pytest.raises(TypeError, match="object"):
        lucid.tensor(["a", None])


def test_ndarray_op_tensor_gives_tensor():
    t = lucid.tensor([1.0, 2.0], requires_grad=True)
    for r in [np.ones(2, np.float32) + t, np.ones(2, np.float32) * t, np.float32(2.0) * t, np.float64(2.0) - t,
              np.ones((2, 2), np.float32) @ t]:
        assert isinstance(r, lucid.Tensor) and r.requires_grad and r.dtype == lucid.float32
