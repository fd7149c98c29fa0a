"""``linear``: y = x @ W.T + b over the last dim, as one op with a hand-written backward.

Every leading dim of ``x`` is folded into the rows of one GEMM, ``(M, in) @ (in, out)`` with
``M = prod(x.shape[:-1])``, so a Linear applied to a (N, L, C) or channels-last activation costs a single
BLAS call forward and two backward (``dx = dy @ W``, ``dW = dy.T @ x``), plus a column sum for the bias.
"""
from __future__ import annotations

import math

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function

__all__ = ["linear"]


def _rows(x, in_features: int):
    """``x`` as an (M, in) matrix: a free reshape when x is C-contiguous, otherwise one copy."""
    m = math.prod(x.shape[:-1])
    return xp_of(x).ascontiguousarray(x).reshape(m, in_features)


class Linear(Function):
    """Forward args: x (*, in), weight (out, in), bias (out,) or None."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        out_features, in_features = weight.shape
        lead = x.shape[:-1]
        x2 = _rows(x, in_features)
        # weight.T is a free view; BLAS reads it as a transposed operand (no copy)
        y = x2 @ weight.T
        if bias is not None:
            y += bias  # y is fresh, so the bias add can be in place (saves one full-size temporary)
        # keep x itself (for the in-place-modification check) and its matrix view/copy for the GEMMs
        ctx.save_for_backward(x, weight, x2)
        ctx.has_bias = bias is not None
        return y.reshape(lead + (out_features,))

    @staticmethod
    def backward(ctx, grad):
        x, weight, x2 = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        out_features = weight.shape[0]
        g2 = xp_of(grad).ascontiguousarray(grad).reshape(x2.shape[0], out_features)
        gx = gw = gb = None
        if need_x:
            gx = (g2 @ weight).reshape(x.shape)
        if need_w:
            gw = g2.T @ x2
        if need_b and ctx.has_bias:
            gb = g2.sum(axis=0)
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Apply ``y = input @ weight.T + bias`` (PyTorch's ``F.linear``).

    Shapes: ``input`` (*, in_features) with any number (≥ 0) of leading dims, ``weight``
    (out_features, in_features), ``bias`` (out_features,) or None; result (*, out_features). A 1-D input
    gives a 1-D result. All tensors must share dtype and device.
    """
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"linear: {name} must be a lucid.Tensor, got {type(t).__name__}")
    if weight.ndim != 2:
        raise RuntimeError(f"linear: weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    if input.ndim == 0:
        raise RuntimeError("linear: input must have at least 1 dimension, got a 0-d tensor")
    out_features, in_features = weight.shape
    if input.shape[-1] != in_features:
        raise RuntimeError(f"linear: input shape {tuple(input.shape)} and weight shape {tuple(weight.shape)} "
                           f"do not match (input's last dim {input.shape[-1]} != in_features {in_features})")
    if bias is not None and tuple(bias.shape) != (out_features,):
        raise RuntimeError(f"linear: bias shape {tuple(bias.shape)} does not match weight shape "
                           f"{tuple(weight.shape)} (expected ({out_features},))")
    dtypes = {t.dtype for t in (input, weight, bias) if t is not None}
    if len(dtypes) > 1:
        named = ", ".join(f"{n}={t.dtype}" for n, t in (("input", input), ("weight", weight), ("bias", bias))
                          if t is not None)
        raise RuntimeError(f"linear: expected all tensors to have the same dtype, got {named}")
    return Linear.apply(input, weight, bias)
