"""Gradient clipping and parameter/vector conversion (PyTorch's ``torch.nn.utils``).

    loss.backward()
    total = lucid.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # 0-d Tensor
    optimizer.step()

The clipping functions work on ``p.grad`` arrays in place, outside autograd, on whatever device they live.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_",
           "parameters_to_vector", "vector_to_parameters"]


def _as_list(tensors, fn: str) -> list:
    if isinstance(tensors, Tensor):
        return [tensors]
    try:
        tensors = list(tensors)
    except TypeError:
        raise TypeError(f"{fn}: expected a Tensor or an iterable of Tensors, got {type(tensors).__name__}") \
            from None
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: element {i} is a {type(t).__name__}, expected a Tensor")
    return tensors


def _norm_type(norm_type) -> float:
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise ValueError(f"norm_type must be a number or 'inf', got {norm_type!r}") from None
    if math.isnan(p):
        raise ValueError("norm_type must not be nan")
    return p


def _flat(arr):
    """All elements of ``arr`` as a 1-D array, without a copy when the memory is dense in any order
    (a channels-last gradient seen through an NCHW view included): norms do not care about element order."""
    if arr.flags.c_contiguous:
        return arr.reshape(-1)
    if arr.flags.f_contiguous:
        return arr.T.reshape(-1)
    order = sorted(range(arr.ndim), key=lambda i: -arr.strides[i])
    t = arr.transpose(order)
    return t.reshape(-1) if t.flags.c_contiguous else arr.reshape(-1)


def _vector_norm(x, p: float):
    """p-norm of an array's elements as a 0-d array of its dtype (torch.linalg.vector_norm's definitions,
    with 0 for an empty array)."""
    xp = xp_of(x)
    v = _flat(x)
    if v.size == 0:
        return xp.zeros((), dtype=x.dtype)
    if p == 2.0:
        return xp.sqrt(xp.dot(v, v))  # one BLAS pass, no |x|^2 temporary
    a = xp.abs(v)
    if p == math.inf:
        return a.max()
    if p == -math.inf:
        return a.min()
    if p == 0.0:
        return xp.asarray(xp.count_nonzero(v), dtype=x.dtype)
    if p == 1.0:
        return a.sum()
    return (a ** p).sum() ** (1.0 / p)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """The norm of the norms of ``tensors`` (as if all were concatenated into one vector), a 0-d Tensor.

    ``norm_type`` may be ``float('inf')`` / ``'inf'`` (largest absolute value). An empty list gives 0.
    """
    arrays = [t.array for t in _as_list(tensors, "get_total_norm")]
    p = _norm_type(norm_type)
    if not arrays:
        return Tensor._wrap(_backend.xp_for("cpu").zeros((), dtype=_backend.float32))
    xp = xp_of(arrays[0])
    device = _backend.device_of(arrays[0])
    norms = [_backend.to_device(_vector_norm(a, p), device) for a in arrays]
    total = _vector_norm(xp.stack(norms), p)
    # the check reads the norm back to the host (one sync), so it is made only when asked for, as in torch
    if error_if_nonfinite and not bool(_backend.to_device(xp.isfinite(total), "cpu")):
        raise RuntimeError(
            f"the total norm of order {p} for gradients from {len(arrays)} parameters is non-finite "
            f"({float(_backend.to_device(total, 'cpu'))}), so it cannot be clipped; set error_if_nonfinite=False "
            "to clip anyway "
            "(the gradients then become nan)")
    return Tensor._wrap(xp.asarray(total))


def clip_grads_with_norm_(parameters, max_norm: float, total_norm) -> None:
    """Scale the gradients in place by ``min(1, max_norm / (total_norm + 1e-6))`` (PyTorch's formula)."""
    grads = [p.grad.array for p in _as_list(parameters, "clip_grads_with_norm_") if p.grad is not None]
    if not grads:
        return
    xp = xp_of(grads[0])
    tn = total_norm.array if isinstance(total_norm, Tensor) else xp.asarray(total_norm)
    # computed in the norm's dtype (float32 for float32 grads), as PyTorch does, so the factors agree bit for bit
    # (xp.true_divide, not ``scalar / array``: a NumPy scalar on the left would be NumPy's call on device data)
    t = tn.dtype.type
    coef = xp.minimum(xp.true_divide(t(max_norm), tn + t(1e-6)), t(1.0))
    with np.errstate(invalid="ignore"):  # a non-finite norm gives nan grads, silently, as in torch
        for g in grads:
            c = coef if xp_of(g) is xp else _backend.to_device(coef, _backend.device_of(g))
            g *= c.astype(g.dtype, copy=False)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Rescale the gradients of ``parameters`` in place so that their total norm is at most ``max_norm``.

    The total norm is computed over all gradients together (as if concatenated); each gradient is then
    multiplied by ``min(1, max_norm / (total_norm + 1e-6))``. Parameters without a gradient are skipped.

    Args:
        parameters: a Tensor or an iterable of Tensors (e.g. ``model.parameters()``).
        max_norm: the largest allowed total norm.
        norm_type: order of the norm; ``float('inf')`` or ``'inf'`` for the max-abs norm.
        error_if_nonfinite: raise when the total norm is nan or inf instead of scaling by it.
        foreach: accepted for PyTorch compatibility and ignored.

    Returns:
        The total norm of the gradients before clipping, a 0-d Tensor (0 when no parameter has a gradient).
    """
    params = _as_list(parameters, "clip_grad_norm_")
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if grads:
        clip_grads_with_norm_(params, float(max_norm), total)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient of ``parameters`` in place to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for p in _as_list(parameters, "clip_grad_value_"):
        if p.grad is not None:
            g = p.grad.array
            xp_of(g).clip(g, -clip_value, clip_value, out=g)


def parameters_to_vector(parameters) -> Tensor:
    """Concatenate the parameters, each flattened in row-major (logical) order, into one 1-D Tensor.

    Differentiable, like PyTorch's. All parameters must be on one device.
    """
    from ..ops.shape import cat, reshape  # noqa: PLC0415

    params = _as_list(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    devices = {p.device for p in params}
    if len(devices) > 1:
        raise RuntimeError(f"parameters_to_vector: parameters are on different devices {sorted(devices)}")
    return cat([reshape(p, -1) for p in params], 0)


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters (the inverse of parameters_to_vector).

    Where lucid differs: PyTorch makes each ``param.data`` a view into ``vec``; lucid copies the values into
    the parameters' existing arrays, so optimizers (and their flat buffers) that hold those arrays stay valid
    and later changes to ``vec`` do not leak into the model.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, got {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: vec must be 1-D, got shape {tuple(vec.shape)}")
    params = _as_list(parameters, "vector_to_parameters")
    total = sum(p.numel() for p in params)
    if total != vec.shape[0]:
        raise ValueError(f"vector_to_parameters: vec has {vec.shape[0]} elements but the parameters hold {total}")
    src = vec.array
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            chunk = _backend.to_device(src[offset:offset + n], p.device).reshape(p.shape)
            p.array[...] = chunk
            p._version += 1
            offset += n
