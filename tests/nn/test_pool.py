"""avg_pool2d, max_pool2d, adaptive_avg_pool2d and their layers against torch (forward and d_input), on
NCHW-contiguous and channels-last inputs, plus gradcheck in float64.

Relative error = max |lucid - torch| / max |torch|; LUCID_PARITY_LOG=<file> appends every case's errors.
"""
from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lucid
import lucid.nn as nn
import lucid.nn.functional as F

FWD_TOL = 1e-5
GRAD_TOL = 1e-4


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


def check_pool(case, lucid_fn, torch_fn, x, layout="nchw"):
    """Run a pooling function in lucid and torch on ``x`` and compare the output and d_input."""
    rng = _rng(case)
    if layout == "cl":
        xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    else:
        xl = np.ascontiguousarray(x)
    lx = lucid.Tensor(xl, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ly, ty = lucid_fn(lx), torch_fn(tx)
    errs = {"fwd": _relerr(ly.detach().numpy(), ty.detach().numpy())}
    assert errs["fwd"] <= FWD_TOL, f"{case}: forward rel. err {errs['fwd']:.2e}"
    assert ly.dtype == np.float32
    if ly.ndim == 4:
        assert ly.array.transpose(0, 2, 3, 1).flags.c_contiguous, f"{case}: output is not channels-last"
    gy = rng.standard_normal(ty.shape).astype(np.float32)
    ly.backward(lucid.Tensor(gy))
    ty.backward(torch.tensor(gy))
    errs["dx"] = _relerr(lx.grad.numpy(), tx.grad.numpy())
    assert errs["dx"] <= GRAD_TOL, f"{case}: d_input rel. err {errs['dx']:.2e}"
    assert lx.grad.dtype == np.float32
    _log(case, errs)
    return ly


# (id, input shape, kernel, stride, padding, ceil_mode, count_include_pad)
AVG = [
    ("k2s2", (2, 3, 8, 6), 2, None, 0, False, True),
    ("k2s2-odd-crop", (2, 3, 7, 9), 2, None, 0, False, True),
    ("k2s2-odd-ceil", (2, 3, 7, 9), 2, None, 0, True, True),
    ("k3s1-pad1", (2, 4, 6, 7), 3, 1, 1, False, True),
    ("k3s1-pad1-exclude-pad", (2, 4, 6, 7), 3, 1, 1, False, False),
    ("k3s2-pad1-ceil", (1, 3, 8, 9), 3, 2, 1, True, True),
    ("k3s2-pad1-ceil-exclude-pad", (1, 3, 8, 9), 3, 2, 1, True, False),
    ("k(2,3)-s(1,2)-pad(1,1)", (2, 2, 5, 8), (2, 3), (1, 2), (1, 1), False, True),
    ("k3s3-ceil-overhang", (2, 2, 10, 11), 3, 3, 0, True, True),
    ("k4s2-pad2-exclude-ceil", (1, 2, 9, 9), 4, 2, 2, True, False),
    ("global-k5", (2, 3, 5, 5), 5, None, 0, False, True),
    ("k2s2-pad1-ceil-drops-last", (1, 2, 5, 5), 2, 2, 1, True, True),  # the 4th window would start in padding
    ("batch1-1x1-map", (1, 3, 1, 1), 1, None, 0, False, True),
]


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("case,shape,k,s,p,ceil,incl", AVG, ids=[c[0] for c in AVG])
def test_avg_pool2d_matches_torch(case, shape, k, s, p, ceil, incl, layout):
    x = _rng(case).standard_normal(shape).astype(np.float32)
    check_pool(f"avg-{case}/{layout}", lambda t: F.avg_pool2d(t, k, s, p, ceil, incl),
               lambda t: TF.avg_pool2d(t, k, s, p, ceil, incl), x, layout)


def test_avg_pool2d_divisor_override_and_unbatched():
    x = _rng("div").standard_normal((3, 6, 6)).astype(np.float32)
    y = check_pool("avg-divisor-unbatched", lambda t: F.avg_pool2d(t, 3, 2, 1, divisor_override=5),
                   lambda t: TF.avg_pool2d(t, 3, 2, 1, divisor_override=5), x)
    assert y.shape == (3, 3, 3)


# (id, input shape, kernel, stride, padding, dilation, ceil_mode)
MAX = [
    ("k2s2", (2, 3, 8, 6), 2, None, 0, 1, False),
    ("k3s2-pad1", (2, 4, 9, 7), 3, 2, 1, 1, False),
    ("k3s2-pad1-ceil", (2, 4, 8, 8), 3, 2, 1, 1, True),
    ("k3s1-pad1-overlap", (1, 3, 6, 7), 3, 1, 1, 1, False),
    ("k2s2-odd-ceil", (2, 2, 7, 9), 2, 2, 0, 1, True),
    ("k2s2-pad1-ceil-drops-last", (1, 2, 5, 5), 2, 2, 1, 1, True),
    ("k3s1-dil2", (2, 2, 9, 8), 3, 1, 0, 2, False),
    ("k3s2-pad1-dil2-ceil", (1, 2, 11, 10), 3, 2, 1, 2, True),
    ("k(1,3)-s(1,2)-pad(0,1)", (2, 3, 4, 9), (1, 3), (1, 2), (0, 1), 1, False),
    ("batch1-1x1-map", (1, 3, 1, 1), 1, None, 0, 1, False),
]


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("case,shape,k,s,p,d,ceil", MAX, ids=[c[0] for c in MAX])
def test_max_pool2d_matches_torch(case, shape, k, s, p, d, ceil, layout):
    x = _rng(case).standard_normal(shape).astype(np.float32)
    check_pool(f"max-{case}/{layout}", lambda t: F.max_pool2d(t, k, s, p, d, ceil),
               lambda t: TF.max_pool2d(t, k, s, p, d, ceil), x, layout)


@pytest.mark.parametrize("case,k,s,p", [("ties-k2s2", 2, 2, 0), ("ties-k3s1-pad1", 3, 1, 1),
                                        ("ties-k3s2-pad1", 3, 2, 1)])
def test_max_pool2d_ties_route_gradient_like_torch(case, k, s, p):
    # small integers make many equal maxima in each window; the gradient must go where torch sends it
    x = _rng(case).integers(-1, 2, size=(2, 3, 7, 8)).astype(np.float32)
    check_pool(f"max-{case}", lambda t: F.max_pool2d(t, k, s, p), lambda t: TF.max_pool2d(t, k, s, p), x)
    x[:] = 1.0  # every element equal
    check_pool(f"max-{case}-const", lambda t: F.max_pool2d(t, k, s, p), lambda t: TF.max_pool2d(t, k, s, p), x)


def test_max_pool2d_return_indices_match_torch():
    x = _rng("idx").standard_normal((2, 3, 9, 8)).astype(np.float32)
    for kw in ({"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 2, "dilation": 2, "ceil_mode": True}):
        y, idx = F.max_pool2d(lucid.Tensor(x), return_indices=True, **kw)
        ty, tidx = TF.max_pool2d(torch.tensor(x), return_indices=True, **kw)
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
        assert idx.dtype == np.int64
        np.testing.assert_array_equal(y.numpy(), ty.numpy())
    y, idx = F.max_pool2d(lucid.Tensor(x[0], requires_grad=True), 2, return_indices=True)
    assert idx.shape == (3, 4, 4) and y.requires_grad


def test_max_pool2d_nan_propagates_like_torch():
    x = _rng("nan").standard_normal((1, 2, 6, 6)).astype(np.float32)
    x[0, 0, 1, 2] = np.nan
    x[0, 1, 4, 4] = np.nan
    x[0, 1, 4, 5] = np.nan  # two NaNs in one window: torch keeps the last
    ly = F.max_pool2d(lucid.Tensor(x, requires_grad=True), 2)
    tx = torch.tensor(x, requires_grad=True)
    ty = TF.max_pool2d(tx, 2)
    np.testing.assert_array_equal(np.isnan(ly.detach().numpy()), np.isnan(ty.detach().numpy()))
    lx = lucid.Tensor(x, requires_grad=True)
    F.max_pool2d(lx, 2).sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy())


# (id, input shape, output size)
ADAPTIVE = [
    ("global", (2, 5, 7, 6), 1),
    ("divisible", (2, 3, 8, 6), (4, 3)),
    ("non-divisible", (2, 3, 7, 9), (3, 4)),
    ("upsample-like", (1, 2, 3, 2), (5, 4)),
    ("none-keeps-h", (2, 3, 5, 7), (None, 3)),
    ("mixed", (2, 2, 10, 5), (3, 5)),
    ("batch1-1x1-map", (1, 3, 1, 1), 2),
]


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("case,shape,out", ADAPTIVE, ids=[c[0] for c in ADAPTIVE])
def test_adaptive_avg_pool2d_matches_torch(case, shape, out, layout):
    x = _rng(case).standard_normal(shape).astype(np.float32)
    check_pool(f"adaptive-{case}/{layout}", lambda t: F.adaptive_avg_pool2d(t, out),
               lambda t: TF.adaptive_avg_pool2d(t, out), x, layout)


def test_adaptive_avg_pool2d_unbatched_and_channel_slice():
    x = _rng("ad-u").standard_normal((3, 7, 5)).astype(np.float32)
    y = check_pool("adaptive-unbatched", lambda t: F.adaptive_avg_pool2d(t, (2, 3)),
                   lambda t: TF.adaptive_avg_pool2d(t, (2, 3)), x)
    assert y.shape == (3, 2, 3)
    # a channel slice of a channels-last tensor (non-contiguous in every sense)
    wide = lucid.randn(2, 6, 5, 5).contiguous(memory_format=lucid.channels_last)
    part = wide[:, 1:4]
    np.testing.assert_allclose(F.adaptive_avg_pool2d(part, 1).numpy()[..., 0, 0],
                               part.numpy().mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)


def test_empty_batch():
    x = np.zeros((0, 3, 6, 6), np.float32)
    for lf, tf in [(lambda t: F.avg_pool2d(t, 3, 2, 1), lambda t: TF.avg_pool2d(t, 3, 2, 1)),
                   (lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: TF.max_pool2d(t, 3, 2, 1)),
                   (lambda t: F.adaptive_avg_pool2d(t, (4, 5)), lambda t: TF.adaptive_avg_pool2d(t, (4, 5)))]:
        ly = lf(lucid.Tensor(x))
        assert ly.shape == tuple(tf(torch.tensor(x)).shape)


# ---------------------------------------------------------------------------------------------------------
GRADCHECK = [
    ("avg-k3s2-pad1-ceil-excl", lambda t: F.avg_pool2d(t, 3, 2, 1, True, False)),
    ("avg-k2s2", lambda t: F.avg_pool2d(t, 2)),
    ("max-k3s2-pad1", lambda t: F.max_pool2d(t, 3, 2, 1)),
    ("max-k2-dil2-ceil", lambda t: F.max_pool2d(t, 2, 1, 0, 2, True)),
    ("adaptive-non-divisible", lambda t: F.adaptive_avg_pool2d(t, (2, 3))),
    ("adaptive-global", lambda t: F.adaptive_avg_pool2d(t, 1)),
]


@pytest.mark.parametrize("case,fn", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck_float64(case, fn):
    # distinct values so no max-pool window has a tie that a finite difference could flip
    x = lucid.Tensor(_rng(case).permutation(2 * 2 * 5 * 7).reshape(2, 2, 5, 7) / 10.0, dtype=lucid.float64,
                     requires_grad=True)
    assert lucid.autograd.gradcheck(fn, (x,), eps=1e-3 if case.startswith("max") else 1e-6)
    assert fn(x).dtype == np.float64


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call,match", [
    (lambda x: F.avg_pool2d(x, 2, padding=2), "at most half"),
    (lambda x: F.max_pool2d(x, 3, padding=2), "at most half"),
    (lambda x: F.max_pool2d(x, 0), "kernel_size must be >= 1"),
    (lambda x: F.avg_pool2d(x, 9), "too small"),
    (lambda x: F.adaptive_avg_pool2d(x, 0), "positive"),
    (lambda x: F.adaptive_avg_pool2d(x, (1, 2, 3)), "pair"),
    (lambda x: F.max_pool2d(x[0, 0], 2), "3-D"),
])
def test_pool_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(lucid.randn(1, 2, 5, 5))


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lmod,tmod", [
    (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
     torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
    (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
    (nn.MaxPool2d(3, 2, 1, dilation=1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, dilation=1, ceil_mode=True)),
    (nn.MaxPool2d((2, 3), (1, 2)), torch.nn.MaxPool2d((2, 3), (1, 2))),
    (nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1)),
    (nn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None))),
], ids=["avg-ceil", "avg", "max-ceil", "max-rect", "adaptive-1", "adaptive-none"])
def test_pool_modules_match_torch(lmod, tmod):
    assert repr(lmod) == repr(tmod)
    assert list(lmod.state_dict()) == []
    x = _rng(repr(tmod)).standard_normal((2, 3, 9, 8)).astype(np.float32)
    check_pool(f"module-{repr(tmod)}", lmod, tmod, x, "cl")


def test_max_pool_module_return_indices():
    y, idx = nn.MaxPool2d(2, return_indices=True)(lucid.randn(1, 2, 4, 4))
    assert y.shape == idx.shape == (1, 2, 2, 2)
