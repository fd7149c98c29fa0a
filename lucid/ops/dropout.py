"""Dropout and stochastic depth (``torch.nn.functional.dropout``, timm's ``drop_path``).

Random numbers come from ``lucid.random``'s default generator, drawn on the tensor's device (NumPy PCG64 on
the CPU; on the GPU the generator's device stream, a CuPy generator seeded from it: see lucid/random.py), so
``lucid.manual_seed`` makes masks reproducible on every device and no mask is copied from the host. (A seed
gives different masks on the CPU and the GPU, as in torch.) Masks are drawn in the tensor's logical (C)
order, so they do not depend on its memory layout; the output keeps the input's layout (a channels-last
activation stays channels-last).
"""
from __future__ import annotations

import numpy as np

from .. import _backend
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from .. import random as _random

__all__ = ["dropout", "drop_path"]


class _MaskMul(Function):
    """``x * mask`` with a precomputed, pre-scaled mask that broadcasts against x (it gets no gradient)."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        out = xp_of(x).empty_like(x)  # order "K": the input's layout
        xp_of(x).multiply(x, mask, out=out)
        return out

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask, None


def _check_p(p, name):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} probability has to be between 0 and 1, but got {p}")


def _keep_mask(shape, keep_prob, dtype, device):
    """Bernoulli(keep_prob) mask of ``shape`` on ``device``, scaled by 1/keep_prob (all zeros when
    keep_prob == 0)."""
    u = _random.device_random(shape, device)
    mask = (u < keep_prob).astype(dtype)
    if keep_prob > 0:
        mask *= 1.0 / keep_prob
    return mask


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` (so the expectation is
    unchanged); the identity (the same tensor) when ``training`` is False or ``p == 0``. ``p == 1`` gives
    zeros. ``inplace`` is accepted for compatibility; lucid returns a new tensor."""
    _check_p(p, "dropout")
    if not isinstance(input, Tensor):
        raise TypeError(f"dropout: input must be a Tensor, got {type(input).__name__}")
    if not training or p == 0.0:
        return input
    if input.array.dtype.kind != "f":
        raise TypeError(f"dropout: input must be floating point, got dtype {input.dtype}")
    mask = _keep_mask(input.shape, 1.0 - p, input.dtype, input.device)
    return _MaskMul.apply(input, mask)


def drop_path(x, drop_prob: float = 0.0, training: bool = False, scale_by_keep: bool = True):
    """Stochastic depth per sample (timm's ``drop_path``): with probability ``drop_prob`` a sample's whole
    residual branch ``x[i]`` is zeroed; kept samples are scaled by ``1 / (1 - drop_prob)`` when
    ``scale_by_keep``. One Bernoulli draw per sample, broadcast over the other dims of ``x`` (N, ...).
    The identity when ``drop_prob == 0`` or not ``training``."""
    scale = drop_path_scale(x.shape[0], drop_prob, training, scale_by_keep, x.dtype, device=x.device)
    if scale is None:
        return x
    mask = scale.reshape((x.shape[0],) + (1,) * (x.ndim - 1))
    return _MaskMul.apply(x, mask)


def drop_path_scale(n: int, drop_prob: float, training: bool, scale_by_keep: bool = True, dtype=np.float32,
                    device: str = "cpu"):
    """The per-sample factors of ``drop_path`` as an (n,) array of ``device`` (0 or 1/keep_prob), or None
    when drop-path is off. Draws exactly the random numbers ``drop_path`` draws on that device, so fused ops
    that take the factors (``lucid.ops.fused.scaled_residual``) give the same results for the same seed;
    pass the activation's device (a GPU model needs its factors drawn on the GPU)."""
    _check_p(drop_prob, "drop_path")
    if drop_prob == 0.0 or not training:
        return None
    keep_prob = 1.0 - drop_prob
    u = _random.device_random((n, 1, 1, 1), _backend.normalize_device(device)).reshape(n)
    mask = (u < keep_prob).astype(dtype)
    if keep_prob > 0.0 and scale_by_keep:
        mask *= 1.0 / keep_prob
    return mask
