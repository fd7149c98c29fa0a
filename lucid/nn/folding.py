"""BatchNorm folding for inference: an eval-mode BatchNorm is a fixed per-channel affine map, so it merges
into the weights of the conv next to it. Pure array math (NumPy or CuPy); lucid/nn/fused.py uses it.

    bn(x)        = x * scale + shift,  scale = gamma / sqrt(running_var + eps),  shift = beta - mean * scale
    bn(conv(x))  = conv with  W' = W * scale[out],  b' = b * scale + shift
    conv(bn(x))  = conv with  W' = W * scale[in],   b' = b + sum_{in, kh, kw} W * shift[in]
                   (exact only without padding: a padded zero would have been ``shift`` before the conv)
"""
from __future__ import annotations

__all__ = ["batchnorm_scale_shift", "fold_batchnorm_after_conv", "fold_batchnorm_before_conv", "frozen_batchnorm"]


def frozen_batchnorm(bn) -> bool:
    """Whether ``bn`` computes a fixed affine map: a plain eval-mode BatchNorm2d with running statistics and
    nothing observing it (no hooks)."""
    from .norm import BatchNorm2d

    return (type(bn) is BatchNorm2d and not bn.training and bn.running_mean is not None
            and bn.running_var is not None and not (bn._forward_hooks or bn._forward_pre_hooks))


def batchnorm_scale_shift(mean, var, weight, bias, eps: float) -> tuple:
    """BatchNorm's per-channel (scale, shift) arrays; ``weight``/``bias`` may be None (affine=False)."""
    scale = (var + eps) ** -0.5
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    return scale, shift


def fold_batchnorm_before_conv(scale, shift, weight, bias) -> tuple:
    """(W', b') of ``conv(bn(x))`` for an unpadded conv with weight (Cout, Cin, kh, kw) and bias (Cout,) or
    None; ``scale``/``shift`` (Cin,) from ``batchnorm_scale_shift``."""
    folded_w = weight * scale.reshape(1, -1, 1, 1)
    folded_b = weight.sum(axis=(2, 3)) @ shift
    return folded_w, folded_b if bias is None else folded_b + bias


def fold_batchnorm_after_conv(scale, shift, weight, bias) -> tuple:
    """(W', b') of ``bn(conv(x))`` for a conv with weight (Cout, Cin, kh, kw) and bias (Cout,) or None;
    ``scale``/``shift`` (Cout,) from ``batchnorm_scale_shift``."""
    folded_w = weight * scale.reshape(-1, 1, 1, 1)
    return folded_w, shift if bias is None else shift + bias * scale
