"""Shared machinery of the core parity tests: run one op in lucid and in torch on the same data, compare.

``check(name, lucid_fn, torch_fn, *args)`` takes NumPy arrays (possibly non-contiguous views: lucid gets the
view itself, torch a contiguous copy of the same values) and non-tensor arguments, runs both functions,
compares every output (float: relative error, ints/bools: exact), then backpropagates the same random
upstream gradient through both and compares the input gradients. The worst errors per op name are kept in
``WORST`` and printed at the end of the session by ``conftest.py``.

``gradcheck(lucid_fn, *args)`` runs ``lucid.autograd.gradcheck`` on float64 copies of the array arguments.
"""
from __future__ import annotations

import contextlib
import zlib

import numpy as np
import torch

import lucid
from lucid.autograd import engine as _engine

FWD_TOL = 1e-5
GRAD_TOL = 1e-4

WORST: dict = {}  # op name -> [worst forward rel. err, worst gradient rel. err]


def rng_for(name: str) -> np.random.Generator:
    """A generator seeded from a test's name, so every case has its own but reproducible data."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def arr(shape, layout: str = "c", rng=None, low=None, kind: str = "normal") -> np.ndarray:
    """A float32 array of ``shape`` stored in one of several layouts.

    layout "c": C-contiguous; "t": a transposed view (reversed strides); "s": every other element of a
    twice-as-long last dim; "n": negative strides on the last dim; "cl": channels-last (4-D only: an NHWC
    buffer seen with NCHW shape, lucid's activation layout). ``low`` shifts |x| to be >= low (for
    log/sqrt inputs); kind "int" gives small integer values (to provoke ties).
    """
    rng = rng or np.random.default_rng(0)
    shape = tuple(shape)

    def draw(s):
        if kind == "int":
            x = rng.integers(-2, 3, size=s).astype(np.float32)
        else:
            x = rng.standard_normal(s).astype(np.float32)
        if low is not None:
            x = np.abs(x) + np.float32(low)
        return np.asarray(x, dtype=np.float32)

    if layout == "c" or len(shape) == 0:
        return draw(shape)
    if layout == "t":
        return draw(shape[::-1]).transpose()
    if layout == "s":
        return draw(shape[:-1] + (2 * shape[-1],))[..., ::2]
    if layout == "n":
        return draw(shape)[..., ::-1]
    if layout == "cl":
        n, c, h, w = shape
        return draw((n, h, w, c)).transpose(0, 3, 1, 2)
    raise ValueError(f"unknown layout {layout!r}")


def rel_err(actual, expected) -> float:
    """max |actual - expected| / max |expected| (0 for empty arrays); NaN/inf must match position-wise."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}"
    if a.size == 0:
        return 0.0
    fin = np.isfinite(e)
    if not np.array_equal(fin, np.isfinite(a)) or not np.array_equal(a[~fin], e[~fin], equal_nan=True):
        return float("inf")
    if not fin.any():
        return 0.0
    diff = np.abs(a[fin] - e[fin]).max()
    scale = np.abs(e[fin]).max()
    return float(diff / scale) if scale > 0 else float(diff)


def _record(name: str, fwd: float, grad: float) -> None:
    w = WORST.setdefault(name.split("[")[0], [0.0, 0.0])
    w[0] = max(w[0], fwd)
    w[1] = max(w[1], grad)


def _as_list(out):
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def _to_lucid(a, requires_grad: bool):
    if isinstance(a, np.ndarray):
        t = lucid.Tensor(a)  # keeps the array itself, strides included
        if requires_grad and a.dtype.kind == "f":
            t.requires_grad_(True)
        return t
    return a


def _to_torch(a, requires_grad: bool):
    if isinstance(a, np.ndarray):
        t = torch.from_numpy(np.array(a, order="C", copy=True))  # (ascontiguousarray makes 0-d 1-d)
        if requires_grad and a.dtype.kind == "f":
            t.requires_grad_(True)
        return t
    return a


@contextlib.contextmanager
def _strict_grad_dtypes(name):
    """Fail when a gradient reaches a leaf in another dtype than the leaf's: the engine would cast it
    silently, hiding float64 temporaries in an op's backward."""
    real = _engine._accumulate_leaf

    def strict(tensor, grad, stored):
        assert grad.dtype == tensor.array.dtype, (
            f"{name}: gradient of dtype {grad.dtype} reached a {tensor.array.dtype} leaf (a backward promotes)")
        return real(tensor, grad, stored)

    _engine._accumulate_leaf = strict
    try:
        yield
    finally:
        _engine._accumulate_leaf = real


def check(name, lucid_fn, torch_fn, *args, grad: bool = True, grad_args=None, fwd_tol: float = FWD_TOL,
          grad_tol: float = GRAD_TOL):
    """Compare ``lucid_fn(*largs)`` with ``torch_fn(*targs)``, forward and backward (see module docstring).

    ``grad_args``: indices of the array arguments that require grad (default: every float array).
    Returns the lucid outputs for further checks.
    """
    idx = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    wants = set(idx if grad_args is None else grad_args) if grad else set()
    largs = [_to_lucid(a, i in wants) for i, a in enumerate(args)]
    targs = [_to_torch(a, i in wants) for i, a in enumerate(args)]
    lout = _as_list(lucid_fn(*largs))
    tout = _as_list(torch_fn(*targs))
    assert len(lout) == len(tout), f"{name}: {len(lout)} outputs, torch gives {len(tout)}"
    worst_fwd = 0.0
    for k, (lo, to) in enumerate(zip(lout, tout)):
        assert isinstance(lo, lucid.Tensor), f"{name}: output {k} is {type(lo).__name__}, not a Tensor"
        tv = to.detach().numpy()
        assert tuple(lo.shape) == tuple(tv.shape), f"{name}: output {k} shape {tuple(lo.shape)} != torch {tv.shape}"
        assert lo.dtype == tv.dtype, f"{name}: output {k} dtype {lo.dtype} != torch {tv.dtype}"
        lv = lo.detach().numpy()
        if tv.dtype.kind in "fc":
            err = rel_err(lv, tv)
            worst_fwd = max(worst_fwd, err)
            assert err <= fwd_tol, f"{name}: output {k} forward rel. err {err:.3g} > {fwd_tol}"
        else:
            np.testing.assert_array_equal(lv, tv, err_msg=f"{name}: output {k}")
    worst_grad = 0.0
    if wants:
        rng = rng_for(name + "/grad")
        float_outs = [(lo, to) for lo, to in zip(lout, tout) if to.dtype.is_floating_point and to.requires_grad]
        assert float_outs or not any(a.requires_grad for a in targs if isinstance(a, torch.Tensor)), \
            f"{name}: torch output carries no gradient"
        for lo, to in float_outs:
            assert lo.requires_grad, f"{name}: lucid output does not require grad but torch's does"
        seeds = [rng.standard_normal(to.shape).astype(np.float32) for _, to in float_outs]
        with _strict_grad_dtypes(name):
            for j, ((lo, _), s) in enumerate(zip(float_outs, seeds)):
                lo.backward(lucid.Tensor(s.astype(lo.dtype)), retain_graph=j < len(float_outs) - 1)
        if float_outs:
            torch.autograd.backward([to for _, to in float_outs], [torch.from_numpy(s) for s in seeds])
        for i in sorted(wants):
            lt, tt = largs[i], targs[i]
            if not isinstance(tt, torch.Tensor) or not tt.requires_grad:
                continue
            tg = np.zeros(tt.shape, np.float32) if tt.grad is None else tt.grad.numpy()
            assert lt.grad is not None or not np.any(tg), f"{name}: input {i} got no gradient"
            lg = np.zeros(tt.shape, np.float32) if lt.grad is None else lt.grad.numpy()
            assert lt.grad is None or lt.grad.dtype == lt.dtype, f"{name}: grad dtype {lt.grad.dtype} != {lt.dtype}"
            err = rel_err(lg, tg)
            worst_grad = max(worst_grad, err)
            assert err <= grad_tol, f"{name}: gradient of input {i} rel. err {err:.3g} > {grad_tol}"
    _record(name, worst_fwd, worst_grad)
    return lout


def gradcheck(lucid_fn, *args, grad_args=None, **kw) -> None:
    """``lucid.autograd.gradcheck`` of ``lucid_fn`` on float64 copies of the float array arguments.

    Several outputs are flattened and concatenated into one (gradcheck needs a single tensor); integer
    outputs (indices) are dropped.
    """
    idx = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    wants = set(idx if grad_args is None else grad_args)
    inputs = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            a64 = a.astype(np.float64) if a.dtype.kind == "f" else a
            inputs.append(lucid.Tensor(a64, requires_grad=i in wants))
        else:
            inputs.append(a)

    def fn(*xs):
        out = lucid_fn(*xs)
        if isinstance(out, (tuple, list)):
            parts = [o.reshape(-1) for o in out if o.dtype.kind == "f"]
            return parts[0] if len(parts) == 1 else lucid.cat(parts)
        return out

    tensors = [x for x in inputs if isinstance(x, lucid.Tensor)]
    others = {i: x for i, x in enumerate(inputs) if not isinstance(x, lucid.Tensor)}

    def wrapped(*ts):
        it = iter(ts)
        full = [others[i] if i in others else next(it) for i in range(len(inputs))]
        return fn(*full)

    assert lucid.autograd.gradcheck(wrapped, tuple(tensors), **kw)
