"""Tensor factories: tensor, zeros, ones, full, empty, arange, linspace, eye and the *_like versions."""
from __future__ import annotations

import numpy as np

from . import _backend
from ._tensor import Tensor


def _sizes(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    size = tuple(int(s) for s in size)
    for s in size:
        if s < 0:
            raise ValueError(f"negative dimension {s} in size {size}")
    return size


def _make(array, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(array)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (list, scalar, array or Tensor)."""
    if isinstance(data, Tensor):
        data = data.array
    if isinstance(data, np.ndarray) or _backend.device_of(data) == "gpu":
        data = data.copy()
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def _filled(kind, size, dtype, device, requires_grad, fill=None):
    dtype = _backend.normalize_dtype(dtype)
    xp = _backend.xp_for(_backend.normalize_device(device))
    size = _sizes(size)
    if kind == "zeros":
        arr = xp.zeros(size, dtype=dtype)
    elif kind == "ones":
        arr = xp.ones(size, dtype=dtype)
    elif kind == "empty":
        arr = xp.empty(size, dtype=dtype)
    else:
        arr = xp.full(size, fill, dtype=dtype)
    return _make(arr, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled("zeros", size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled("ones", size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled("empty", size, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    if dtype is None:
        dtype = _backend.bool_ if isinstance(fill_value, bool) else (
            _backend.int64 if isinstance(fill_value, int) else _backend.float32)
    return _filled("full", (size,) if isinstance(size, int) else (tuple(size),), dtype, device,
                   requires_grad, fill_value)


def _like(x: Tensor, dtype, device):
    return (x.dtype if dtype is None else dtype), (x.device if device is None else device)


def zeros_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return zeros(x.shape, dtype=_like(x, dtype, device)[0], device=_like(x, dtype, device)[1],
                 requires_grad=requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return ones(x.shape, dtype=_like(x, dtype, device)[0], device=_like(x, dtype, device)[1],
                requires_grad=requires_grad)


def empty_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return empty(x.shape, dtype=_like(x, dtype, device)[0], device=_like(x, dtype, device)[1],
                 requires_grad=requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    d, dev = _like(x, dtype, device)
    return full(x.shape, fill_value, dtype=d, device=dev, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values in [start, end) by ``step``; int64 when all arguments are ints, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        dtype = _backend.int64 if all(isinstance(v, int) for v in (start, end, step)) else _backend.float32
    dtype = _backend.normalize_dtype(dtype)
    xp = _backend.xp_for(_backend.normalize_device(device))
    n = max(int(np.ceil((end - start) / step)), 0)
    arr = (start + step * xp.arange(n, dtype=np.float64)).astype(dtype) if dtype.kind == "f" else \
        xp.arange(start, end, step, dtype=dtype)
    return _make(arr, requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` values from ``start`` to ``end`` inclusive, as torch.linspace.

    ``start``/``end`` are numbers or 0-d tensors and ``steps`` a non-negative int (or 0-d integer tensor);
    anything else is refused as torch refuses it (lucid has no complex dtypes, so complex endpoints are refused
    too). Values are computed as torch computes them: ``step`` in the output dtype, then from both ends
    (``start + i * step`` for the first half, ``end - (steps - 1 - i) * step`` for the rest) rounded once
    (torch's CPU kernel uses a fused multiply-add; lucid works in float64), so float32 results equal torch's
    bit for bit, float16/float64 ones to one unit in the last place of the larger endpoint, and a nan or
    infinite endpoint gives all nan as in torch (NumPy's linspace keeps the endpoint).
    """
    start, end = _linspace_end(start, "start"), _linspace_end(end, "end")
    if isinstance(steps, Tensor):
        if steps.ndim != 0 or steps.dtype.kind not in "iu":
            raise TypeError(f"linspace: steps must be an int or a 0-d integer tensor, got a tensor of dtype "
                            f"{steps.dtype} and shape {tuple(steps.shape)}")
        steps = steps.item()
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"linspace: steps must be an int, got {type(steps).__name__} {steps!r}")
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    dtype = _backend.normalize_dtype(dtype)
    xp = _backend.xp_for(_backend.normalize_device(device))
    ct = np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float64)  # integers: truncated, as torch
    if steps <= 1:
        arr = xp.full(steps, start, dtype=ct)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            s, e = ct.type(start), ct.type(end)
            step = float((e - s) / ct.type(steps - 1))  # in the output dtype, as torch
            s, e = float(s), float(e)
            i = xp.arange(steps, dtype=np.float64)
            arr = xp.where(i < steps // 2, s + i * step, e - (steps - 1 - i) * step)  # float64: one rounding
    return _make(arr.astype(dtype, copy=False), requires_grad)


def _linspace_end(v, name: str):
    """A linspace endpoint as a Python number (what torch accepts: numbers and 0-d tensors)."""
    if isinstance(v, Tensor):
        if v.ndim != 0:
            raise RuntimeError(f"linspace only supports 0-dimensional start and end tensors, but got {name} with "
                               f"{v.ndim} dimension(s)")
        v = v.item()
    if isinstance(v, (complex, np.complexfloating)):
        raise TypeError(f"linspace: {name}={v!r} is complex, and lucid has no complex dtypes")
    if not isinstance(v, (int, float, np.integer, np.floating, np.bool_)):
        raise TypeError(f"linspace: {name} must be a number or a 0-d tensor, got {type(v).__name__} {v!r:.40}")
    return v


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = _backend.xp_for(_backend.normalize_device(device))
    return _make(xp.eye(n, m, dtype=_backend.normalize_dtype(dtype)), requires_grad)
