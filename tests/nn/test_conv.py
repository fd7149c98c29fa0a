"""conv2d and nn.Conv2d against torch: forward, d_input, d_weight, d_bias over a grid of geometries and
input layouts; gradcheck in float64 per code path; the numba and NumPy depthwise kernels against each other.

Relative error = max |lucid - torch| / max |torch|. Set LUCID_PARITY_LOG=<file> to append the errors of every
case to a file (used for the report of worst errors).
"""
from __future__ import annotations

import math
import os
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.kernels import depthwise as dwk

FWD_TOL = 1e-5
GRAD_TOL = 1e-4

# torch warns that it copies the input for 'same' with even kernels; that is torch's business
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _relerr(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} vs torch {b.shape}"
    if b.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _log(case: str, errs: dict) -> None:
    path = os.environ.get("LUCID_PARITY_LOG")
    if path:
        with open(path, "a") as f:
            f.write(case + " " + " ".join(f"{k}={v:.3e}" for k, v in errs.items()) + "\n")


def _layout(x: np.ndarray, layout: str, rng) -> np.ndarray:
    """The same values stored NCHW-contiguous ('nchw'), channels-last ('cl'), or as a channel slice of a wider
    channels-last tensor ('slice', what InceptionNeXt's token mixer feeds its depthwise convs)."""
    if layout == "nchw" or x.ndim != 4:
        return np.ascontiguousarray(x)
    if layout == "cl":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "slice":
        n, c, h, w = x.shape
        wide = rng.standard_normal((n, h, w, c + 5)).astype(np.float32)
        wide[..., 2:2 + c] = x.transpose(0, 2, 3, 1)
        return wide.transpose(0, 3, 1, 2)[:, 2:2 + c]
    raise ValueError(layout)


def check_conv(case, x_shape, cout, k, stride=1, padding=0, dilation=1, groups=1, bias=True, layout="nchw",
               x_grad=True):
    """Run conv2d in lucid and torch on the same data and compare the output and all gradients."""
    rng = _rng(case)
    cin = x_shape[-3]
    k = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((cout, cin // groups) + k).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    xl = _layout(x, layout, rng)

    lx = lucid.Tensor(xl, requires_grad=x_grad)
    lw = lucid.Tensor(w, requires_grad=True)
    lb = lucid.Tensor(b, requires_grad=True) if bias else None
    ly = F.conv2d(lx, lw, lb, stride, padding, dilation, groups)

    tx = torch.tensor(x, requires_grad=x_grad)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    ty = TF.conv2d(tx, tw, tb, stride, padding, dilation, groups)

    errs = {"fwd": _relerr(ly.detach().numpy(), ty.detach().numpy())}
    assert errs["fwd"] <= FWD_TOL, f"{case}: forward rel. err {errs['fwd']:.2e}"
    if ly.ndim == 4:  # the output is an NHWC buffer under the NCHW shape
        assert ly.array.transpose(0, 2, 3, 1).flags.c_contiguous, f"{case}: output is not channels-last"

    gy = rng.standard_normal(ty.shape).astype(np.float32)
    ly.backward(lucid.Tensor(gy))
    ty.backward(torch.tensor(gy))
    pairs = [("dw", lw, tw)] + ([("dx", lx, tx)] if x_grad else []) + ([("db", lb, tb)] if bias else [])
    for name, lt, tt in pairs:
        assert lt.grad is not None, f"{case}: no {name}"
        assert lt.grad.dtype == np.float32, f"{case}: {name} dtype {lt.grad.dtype}"
        errs[name] = _relerr(lt.grad.numpy(), tt.grad.numpy())
        assert errs[name] <= GRAD_TOL, f"{case}: {name} rel. err {errs[name]:.2e}"
    assert ly.dtype == np.float32
    _log(case, errs)
    return ly


# (case id, input shape, out channels, kernel, stride, padding, dilation, groups, bias); the path each one
# takes is in the id
CASES = [
    ("1x1", (2, 6, 5, 7), 4, 1, 1, 0, 1, 1, True),
    ("1x1-nobias-batch1", (1, 3, 4, 4), 5, 1, 1, 0, 1, 1, False),
    ("1x1-valid", (2, 4, 3, 5), 6, 1, 1, "valid", 1, 1, True),
    ("1x1-stride2-general", (2, 4, 7, 6), 3, 1, 2, 0, 1, 1, True),
    ("1x1-pad1-general", (2, 4, 3, 3), 3, 1, 1, 1, 1, 1, True),
    ("3x3-pad1-general", (2, 4, 7, 9), 5, 3, 1, 1, 1, 1, True),
    ("3x3-same-groups2", (2, 4, 7, 7), 6, 3, 1, "same", 1, 2, True),
    ("3x3-valid-groups2-nobias", (1, 4, 6, 9), 4, 3, 1, "valid", 1, 2, False),
    ("3x3-dil2-pad2", (2, 3, 9, 8), 4, 3, 1, 2, 2, 1, True),
    ("3x3-stride2-pad1-odd", (2, 3, 9, 7), 4, 3, 2, 1, 1, 1, True),
    ("3x3-stride2-dil2-groups2", (2, 4, 11, 10), 6, 3, 2, 1, 2, 2, True),
    ("4x4-same-even", (2, 3, 7, 8), 2, 4, 1, "same", 1, 1, True),
    ("3x5-stride(2,1)-pad(2,1)", (1, 2, 9, 8), 3, (3, 5), (2, 1), (2, 1), 1, 1, True),
    ("1x11-pad(0,5)-dense", (2, 3, 5, 13), 2, (1, 11), 1, (0, 5), 1, 1, True),
    ("11x1-pad(5,0)-groups3", (1, 3, 13, 4), 3, (11, 1), 1, (5, 0), 1, 3, False),
    ("dw-3x3-pad1", (2, 5, 7, 9), 5, 3, 1, 1, 1, 5, True),
    ("dw-3x3-same-nobias", (2, 6, 8, 8), 6, 3, 1, "same", 1, 6, False),
    ("dw-3x3-valid", (2, 4, 6, 7), 4, 3, 1, "valid", 1, 4, True),
    ("dw-3x3-stride2-pad1", (2, 4, 9, 8), 4, 3, 2, 1, 1, 4, True),
    ("dw-3x3-dil2-same", (1, 3, 9, 9), 3, 3, 1, "same", 2, 3, True),
    ("dw-3x3-pad0-stride3-dil2", (2, 3, 13, 12), 3, 3, 3, 0, 2, 3, True),
    ("dw-1x11-pad(0,5)", (2, 6, 5, 13), 6, (1, 11), 1, (0, 5), 1, 6, True),
    ("dw-11x1-pad(5,0)", (2, 6, 13, 5), 6, (11, 1), 1, (5, 0), 1, 6, True),
    ("dw-1x11-on-2x2-map", (3, 4, 2, 2), 4, (1, 11), 1, (0, 5), 1, 4, True),  # 8 of 11 taps miss the image
    ("dw-11x1-pad(5,0)-batch1", (1, 4, 3, 3), 4, (11, 1), 1, (5, 0), 1, 4, True),
    ("dw-4x4-same-even", (2, 3, 6, 7), 3, 4, 1, "same", 1, 3, True),
    ("dw-pad(0,5)-on-11x1", (2, 3, 12, 6), 3, (11, 1), 1, (0, 5), 1, 3, True),
    ("dw-multiplier2-general", (2, 3, 7, 6), 6, 3, 1, 1, 1, 3, True),
    ("patch-4s4", (2, 3, 16, 12), 8, 4, 4, 0, 1, 1, True),
    ("patch-4s4-odd-crop", (2, 3, 17, 19), 8, 4, 4, 0, 1, 1, True),
    ("patch-2s2", (2, 6, 8, 8), 4, 2, 2, 0, 1, 1, True),
    ("patch-2s2-odd-crop-nobias", (1, 5, 7, 9), 6, 2, 2, 0, 1, 1, False),
    ("2s2-groups2-general", (2, 4, 8, 6), 6, 2, 2, 0, 1, 2, True),
    ("2s2-pad1-general", (2, 4, 7, 6), 3, 2, 2, 1, 1, 1, True),
]


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("case,x_shape,cout,k,stride,padding,dilation,groups,bias", CASES, ids=[c[0] for c in CASES])
def test_conv2d_matches_torch(case, x_shape, cout, k, stride, padding, dilation, groups, bias, layout):
    check_conv(f"{case}/{layout}", x_shape, cout, k, stride, padding, dilation, groups, bias, layout)


DW_CASES = [c for c in CASES if c[0].startswith("dw-") and "general" not in c[0]]


@pytest.mark.parametrize("impl", ["numba", "numpy"])
@pytest.mark.parametrize("case,x_shape,cout,k,stride,padding,dilation,groups,bias", DW_CASES,
                         ids=[c[0] for c in DW_CASES])
def test_depthwise_paths_on_channel_slices(case, x_shape, cout, k, stride, padding, dilation, groups, bias, impl,
                                           monkeypatch):
    """Both depthwise implementations, fed a channel slice of a wider channels-last tensor."""
    if impl == "numba" and not dwk.HAVE_NUMBA:
        pytest.skip("numba not installed")
    monkeypatch.setenv("LUCID_NO_NUMBA", "1" if impl == "numpy" else "0")
    check_conv(f"{case}/slice/{impl}", x_shape, cout, k, stride, padding, dilation, groups, bias, "slice")


@pytest.mark.parametrize("case,x_shape,cout,k,stride,padding,dilation,groups",
                         [("stem-no-input-grad", (2, 3, 8, 8), 4, 4, 4, 0, 1, 1),
                          ("dw-no-input-grad", (2, 3, 5, 5), 3, 3, 1, 1, 1, 3),
                          ("general-no-input-grad", (2, 4, 5, 5), 2, 3, 2, 1, 1, 2)])
def test_weight_grad_only(case, x_shape, cout, k, stride, padding, dilation, groups):
    check_conv(case, x_shape, cout, k, stride, padding, dilation, groups, True, "nchw", x_grad=False)


@pytest.mark.parametrize("case,x_shape,cout,k,stride,padding,groups", [
    ("unbatched-1x1", (4, 5, 6), 3, 1, 1, 0, 1),
    ("unbatched-dw", (4, 5, 6), 4, 3, 1, 1, 4),
    ("unbatched-patch", (3, 8, 8), 2, 2, 2, 0, 1),
    ("unbatched-general", (4, 5, 6), 2, 3, 2, 1, 2),
])
def test_unbatched_input(case, x_shape, cout, k, stride, padding, groups):
    y = check_conv(case, x_shape, cout, k, stride, padding, 1, groups)
    assert y.ndim == 3


@pytest.mark.parametrize("case,cout,k,stride,padding,groups", [
    ("empty-1x1", 3, 1, 1, 0, 1), ("empty-patch", 3, 2, 2, 0, 1), ("empty-dw", 4, 3, 1, 1, 4),
    ("empty-general", 2, 3, 1, 1, 2)])
def test_empty_batch(case, cout, k, stride, padding, groups):
    check_conv(case, (0, 4, 6, 6), cout, k, stride, padding, 1, groups)


def test_input_grad_is_nchw_shaped_and_accumulates():
    x = lucid.randn(2, 3, 5, 5, requires_grad=True)
    w = lucid.randn(3, 1, 3, 3, requires_grad=True)
    F.conv2d(x, w, padding=1, groups=3).sum().backward()
    first = x.grad.numpy().copy()
    F.conv2d(x, w, padding=1, groups=3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)
    assert x.grad.shape == (2, 3, 5, 5) and w.grad.shape == (3, 1, 3, 3)


def test_no_graph_without_grad():
    x = lucid.randn(1, 2, 4, 4)
    w = lucid.randn(2, 2, 3, 3)
    y = F.conv2d(x, w, padding=1)
    assert not y.requires_grad and y.grad_fn is None
    with lucid.no_grad():
        y = F.conv2d(x, w.requires_grad_(), padding=1)
    assert y.grad_fn is None


@pytest.mark.parametrize("k,groups", [(1, 1), (3, 2), (3, 1)])
def test_modifying_input_in_place_after_forward_is_detected(k, groups):
    # the 1x1, depthwise and general paths keep the input's own (channels-last) storage for d_weight
    x = lucid.randn(1, 2, 5, 5).contiguous(memory_format=lucid.channels_last)
    w = lucid.randn(2, 2 // groups, k, k, requires_grad=True)
    y = F.conv2d(x, w, padding=k // 2, groups=groups)
    x.add_(1.0)
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


# ---------------------------------------------------------------------------------------------------------
# gradcheck in float64, one case per code path
GRADCHECK = [
    ("1x1", (2, 3, 3, 2), 2, 1, 1, 0, 1, 1),
    ("patch", (1, 2, 5, 4), 3, 2, 2, 0, 1, 1),
    ("dw", (2, 2, 4, 5), 2, 3, 1, 1, 1, 2),
    ("dw-stride-dil", (1, 2, 6, 6), 2, 3, 2, 2, 2, 2),
    ("dw-band", (1, 2, 3, 6), 2, (1, 5), 1, (0, 2), 1, 2),
    ("general", (1, 4, 5, 4), 2, 3, 2, 1, 1, 2),
    ("general-dil-same", (1, 2, 5, 5), 2, (2, 3), 1, "same", 2, 1),
]


# numba only runs the depthwise path, so only those cases run twice
GRADCHECK_IMPL = [c + ("numpy",) for c in GRADCHECK] + [c + ("numba",) for c in GRADCHECK if c[0].startswith("dw")]


@pytest.mark.parametrize("case,x_shape,cout,k,stride,padding,dilation,groups,impl", GRADCHECK_IMPL,
                         ids=[f"{c[0]}-{c[-1]}" for c in GRADCHECK_IMPL])
def test_gradcheck_float64(case, x_shape, cout, k, stride, padding, dilation, groups, impl, monkeypatch):
    monkeypatch.setenv("LUCID_NO_NUMBA", "1" if impl == "numpy" else "0")
    rng = _rng("gc" + case)
    k = (k, k) if isinstance(k, int) else k
    x = lucid.Tensor(rng.standard_normal(x_shape), dtype=lucid.float64, requires_grad=True)
    w = lucid.Tensor(rng.standard_normal((cout, x_shape[1] // groups) + k), dtype=lucid.float64, requires_grad=True)
    b = lucid.Tensor(rng.standard_normal(cout), dtype=lucid.float64, requires_grad=True)
    fn = lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups)  # noqa: E731
    assert lucid.autograd.gradcheck(fn, (x, w, b))
    assert fn(x, w, b).dtype == np.float64


# ---------------------------------------------------------------------------------------------------------
# the two depthwise implementations, directly
@pytest.mark.skipif(not dwk.HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("seed", range(8))
def test_depthwise_numba_matches_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    Ho = Wo = 0
    while Ho < 1 or Wo < 1:  # draw random geometries (asymmetric padding too) until the output is not empty
        N, C = int(rng.integers(1, 3)), int(rng.integers(1, 6))
        H, W = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        sh, sw, dh, dw = (int(v) for v in rng.integers(1, 4, size=4))
        pt, pl = int(rng.integers(0, kh + 1)), int(rng.integers(0, kw + 1))
        pb, pr = int(rng.integers(0, kh + 1)), int(rng.integers(0, kw + 1))
        Ho = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
        Wo = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    geom = (sh, sw, pt, pl, dh, dw)
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    w = rng.standard_normal((C, kh, kw)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    gy = rng.standard_normal((N, Ho, Wo, C)).astype(np.float32)
    np.testing.assert_allclose(dwk.forward_numba(x, w, (Ho, Wo), geom, b),
                               dwk.forward_ref(x, w, (Ho, Wo), geom, b), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dwk.grad_input_numba(gy, w, (H, W), geom),
                               dwk.grad_input_ref(gy, w, (H, W), geom), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dwk.grad_weight_numba(gy, x, (kh, kw), geom),
                               dwk.grad_weight_ref(gy, x, (kh, kw), geom), rtol=1e-5, atol=1e-4)


def test_tap_range():
    # input position o*stride + offset must land in [0, size_in)
    for size_in, size_out, offset, stride in [(5, 5, -1, 1), (5, 5, 1, 1), (9, 5, -1, 2), (3, 3, -7, 1),
                                              (3, 3, 4, 1), (10, 4, 2, 3)]:
        lo, hi, first = dwk.tap_range(size_in, size_out, offset, stride)
        valid = [o for o in range(size_out) if 0 <= o * stride + offset < size_in]
        assert list(range(lo, max(lo, hi))) == valid
        if valid:
            assert first == valid[0] * stride + offset


# ---------------------------------------------------------------------------------------------------------
# argument errors
@pytest.mark.parametrize("kwargs,x_shape,w_shape,match", [
    ({}, (1, 3, 5, 5), (2, 4, 3, 3), "has 3 channels"),
    ({"groups": 2}, (1, 4, 5, 5), (3, 2, 3, 3), "divisible by groups"),
    ({"padding": "same", "stride": 2}, (1, 2, 5, 5), (2, 2, 3, 3), "strided"),
    ({"padding": "full"}, (1, 2, 5, 5), (2, 2, 3, 3), "'same' or 'valid'"),
    ({"padding": -1}, (1, 2, 5, 5), (2, 2, 3, 3), "padding must be >= 0"),
    ({"stride": 0}, (1, 2, 5, 5), (2, 2, 3, 3), "stride must be >= 1"),
    ({}, (1, 2, 2, 2), (2, 2, 3, 3), "smaller than the dilated kernel"),
    ({}, (2, 5, 5), (2, 2, 3), "4-D weight"),
    ({}, (5, 5), (2, 2, 3, 3), "3-D"),
])
def test_conv2d_errors(kwargs, x_shape, w_shape, match):
    with pytest.raises((ValueError, TypeError), match=match):
        F.conv2d(lucid.randn(*x_shape), lucid.randn(*w_shape), **kwargs)


def test_conv2d_bias_and_dtype_errors():
    x, w = lucid.randn(1, 2, 5, 5), lucid.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match=r"expected \(3,\)"):
        F.conv2d(x, w, lucid.randn(2))
    with pytest.raises(TypeError, match="dtype"):
        F.conv2d(x.double(), w)


# ---------------------------------------------------------------------------------------------------------
# nn.Conv2d
def _copy_to_torch(conv: nn.Conv2d) -> torch.nn.Conv2d:
    t = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                        conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(conv.weight.detach().numpy()))
        if conv.bias is not None:
            t.bias.copy_(torch.tensor(conv.bias.detach().numpy()))
    return t


@pytest.mark.parametrize("args,kwargs", [
    ((3, 8, 3), {}),
    ((3, 8, 3), {"padding": 1, "bias": False}),
    ((4, 6, (1, 11)), {"padding": (0, 5), "groups": 2}),
    ((4, 4, 3), {"padding": "same", "groups": 4, "dilation": 2}),
    ((3, 8, 4), {"stride": 4}),
    ((4, 8, 3), {"padding": 2, "padding_mode": "reflect"}),
    ((4, 4, 3), {"padding": 1, "padding_mode": "replicate", "groups": 4}),
    ((4, 5, 3), {"padding": (1, 2), "padding_mode": "circular", "stride": 2}),
    ((4, 5, 4), {"padding": "same", "padding_mode": "reflect"}),
])
def test_conv2d_module_matches_torch(args, kwargs):
    lucid.manual_seed(0)
    conv = nn.Conv2d(*args, **kwargs)
    tconv = _copy_to_torch(conv)
    assert repr(conv) == repr(tconv)
    assert [n for n, _ in conv.named_parameters()] == [n for n, _ in tconv.named_parameters()]
    x = np.random.default_rng(1).standard_normal((2, args[0], 9, 8)).astype(np.float32)
    lx = lucid.Tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ly, ty = conv(lx), tconv(tx)
    assert _relerr(ly.detach().numpy(), ty.detach().numpy()) <= FWD_TOL
    gy = np.random.default_rng(2).standard_normal(ty.shape).astype(np.float32)
    ly.backward(lucid.Tensor(gy))
    ty.backward(torch.tensor(gy))
    assert _relerr(lx.grad.numpy(), tx.grad.numpy()) <= GRAD_TOL
    assert _relerr(conv.weight.grad.numpy(), tconv.weight.grad.numpy()) <= GRAD_TOL
    if conv.bias is not None:
        assert _relerr(conv.bias.grad.numpy(), tconv.bias.grad.numpy()) <= GRAD_TOL


def test_conv2d_module_init_follows_pytorch_bounds():
    lucid.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3, groups=2)
    bound = 1 / math.sqrt(8 * 9)  # fan_in = in_channels / groups * kh * kw
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    assert w.shape == (32, 8, 3, 3) and b.shape == (32,)
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # a uniform on [-bound, bound] has std bound/sqrt(3)
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    lucid.manual_seed(0)
    again = nn.Conv2d(16, 32, 3, groups=2)
    np.testing.assert_array_equal(again.weight.detach().numpy(), w)


@pytest.mark.parametrize("kwargs,match", [
    ({"in_channels": 3, "out_channels": 4, "kernel_size": 3, "groups": 2}, "in_channels"),
    ({"in_channels": 4, "out_channels": 3, "kernel_size": 3, "groups": 2}, "out_channels"),
    ({"in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding_mode": "mirror"}, "padding_mode"),
    ({"in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": "same", "stride": 2}, "strided"),
    ({"in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": "half"}, "padding"),
    ({"in_channels": 4, "out_channels": 4, "kernel_size": 0}, "kernel_size"),
])
def test_conv2d_module_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.Conv2d(**kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_patchify_kernel_matches_numpy_reference(dtype):
    """The numba patch gather (NCHW-ordered input) against the NumPy transpose copy: contiguous, cropped
    (H, W not multiples of the kernel), strided views, empty batch; channels-last input keeps NumPy's copy."""
    from lucid.kernels import patchify

    if not patchify.HAVE_NUMBA:
        pytest.skip("numba not installed")
    rng = np.random.default_rng(0)
    big = rng.standard_normal((6, 5, 19, 23)).astype(dtype)
    cases = [(big, 4, 4), (big[::2, 1:4], 2, 3), (big[:, :, 1:, ::-1], 3, 2), (big[:0], 4, 4)]
    for x, kh, kw in cases:
        Ho, Wo = x.shape[2] // kh, x.shape[3] // kw
        assert patchify.use_kernel(x)
        got = patchify.patches(x, kh, kw, Ho, Wo)
        assert got.flags.c_contiguous and got.shape == (x.shape[0], Ho, Wo, kh, kw, x.shape[1])
        np.testing.assert_array_equal(got, patchify.patches_ref(x, kh, kw, Ho, Wo))
    assert not patchify.use_kernel(np.ascontiguousarray(big.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2))
