"""BatchNorm folding for inference: an eval-mode BatchNorm is a fixed per-channel affine map, so it merges
into the weights of the conv next to it.

    bn(x)        = x * scale + shift,  scale = gamma / sqrt(running_var + eps),  shift = beta - mean * scale
    bn(conv(x))  = conv with  W' = W * scale[out],  b' = b * scale + shift
    conv(bn(x))  = conv with  W' = W * scale[in],   b' = b + sum_{in, kh, kw} W * shift[in]
                   (exact only without padding: a padded zero would have been ``shift`` before the conv)

``ConvNormSequential`` is InceptionNeXt's stem (conv -> BatchNorm) and downsample (BatchNorm -> conv): an
``nn.Sequential`` (so its state-dict keys stay timm's ``stem.0.weight``, ``stem.1.running_mean``) that in
inference runs as the one conv, saving the BatchNorm op (~0.2-0.3 ms each at batch 128, 32x32).
"""
from __future__ import annotations

from .. import nn
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd import is_grad_enabled
from ..nn.derived import DerivedValue
from ..ops.conv import conv2d

__all__ = ["ConvNormSequential", "fold_affine", "fold_batchnorm_into_1x1", "frozen_batchnorm"]


def _hooked(m: nn.Module) -> bool:
    return bool(m._forward_hooks or m._forward_pre_hooks)


def frozen_batchnorm(bn) -> bool:
    """Whether ``bn`` computes a fixed affine map: a plain eval-mode BatchNorm2d with running statistics and
    nothing observing it."""
    return (type(bn) is nn.BatchNorm2d and not bn.training and bn.running_mean is not None
            and bn.running_var is not None and not _hooked(bn))


def _scale_shift(mean, var, bn_weight, bn_bias, eps):
    """BatchNorm's (scale, shift) per channel; the same code for tensors and NumPy/CuPy arrays."""
    scale = (var + eps) ** -0.5
    if bn_weight is not None:
        scale = scale * bn_weight
    shift = -mean * scale
    if bn_bias is not None:
        shift = shift + bn_bias
    return scale, shift


def fold_affine(mean, var, bn_weight, bn_bias, weight, bias, eps):
    """(W', b') of a 1x1 conv after a BatchNorm (see the module docstring); tensors or arrays alike."""
    scale, shift = _scale_shift(mean, var, bn_weight, bn_bias, eps)
    d, c = weight.shape[:2]
    return weight * scale.reshape(1, c, 1, 1), bias + weight.reshape(d, c) @ shift


def fold_batchnorm_into_1x1(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> tuple:
    """(weight, bias) Tensors of ``conv(bn(x))`` as one 1x1 conv, for ``bn`` in eval mode.

    With autograd on and a parameter that wants a gradient the formula runs on the tensors, so gradients reach
    bn's and conv's parameters; otherwise (inference) on their arrays, without ~8 small ops' dispatch.
    """
    parts = (bn.running_mean, bn.running_var, bn.weight, bn.bias, conv.weight, conv.bias)
    if is_grad_enabled() and any(t is not None and t.requires_grad for t in parts):
        return fold_affine(*parts, bn.eps)
    weight, bias = fold_affine(*(None if t is None else t.array for t in parts), bn.eps)
    dtype = conv.weight.dtype
    return Tensor(weight.astype(dtype, copy=False)), Tensor(bias.astype(dtype, copy=False))


def _plain_conv(conv) -> bool:
    return type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and not _hooked(conv)


class ConvNormSequential(nn.Sequential):
    """``nn.Sequential(conv, bn)`` or ``nn.Sequential(bn, conv)`` that runs as one conv in inference.

    Inference means: eval mode, BatchNorm with running statistics, no hooks on either part, and no gradient
    wanted for their parameters (under ``no_grad``, or with frozen parameters). The folded weights are kept
    (``lucid.nn.derived.DerivedValue``) until a source tensor or the modules change; ``train()`` drops them.
    Anything else runs the two modules in order, exactly as ``nn.Sequential``. Without padding-free convs a
    BatchNorm before the conv cannot fold (see the module docstring) and runs as a module.
    """

    def __init__(self, *modules) -> None:
        super().__init__(*modules)
        self._folded = DerivedValue()  # (weight, bias, conv, sources) or None, see _fold

    def train(self, mode: bool = True) -> "ConvNormSequential":
        if mode:  # training makes the folded copy stale every step: do not hold it
            self._folded.clear()
        return super().train(mode)

    def _fold(self):
        """((W', b', conv, sources) or None, sources) for DerivedValue."""
        parts = list(self._modules.values())
        if len(parts) != 2:
            return None, ()
        bn_first = type(parts[0]) is nn.BatchNorm2d
        bn, conv = (parts[0], parts[1]) if bn_first else (parts[1], parts[0])
        if not (frozen_batchnorm(bn) and _plain_conv(conv)):
            return None, ()
        if bn_first and (conv.padding != (0, 0) or conv.groups != 1 or bn.num_features != conv.in_channels):
            return None, ()
        if not bn_first and bn.num_features != conv.out_channels:
            return None, ()
        sources = (bn.running_mean, bn.running_var, bn.weight, bn.bias, conv.weight, conv.bias)
        mean, var, gamma, beta, weight, bias = (None if t is None else t.array for t in sources)
        scale, shift = _scale_shift(mean, var, gamma, beta, bn.eps)
        if bn_first:
            folded_w = weight * scale.reshape(1, -1, 1, 1)
            folded_b = weight.sum(axis=(2, 3)) @ shift + (0 if bias is None else bias)
        else:
            folded_w = weight * scale.reshape(-1, 1, 1, 1)
            folded_b = shift + (0 if bias is None else bias * scale)
        dtype = weight.dtype
        # stored (Cout, kh, kw, Cin)-contiguous under its (Cout, Cin, kh, kw) shape: the patchify conv (the
        # stem's and downsample's path) multiplies by the (kh, kw, Cin) order, which then needs no copy (tiny's
        # last downsample: 0.8 ms per call for its 4.7 MB weight)
        folded_w = xp_of(folded_w).ascontiguousarray(folded_w.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        value = (Tensor(folded_w.astype(dtype, copy=False)), Tensor(folded_b.astype(dtype, copy=False)), conv,
                 sources)
        return value, sources

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            folded = self._folded.get(self._fold)
            if folded is not None:
                weight, bias, conv, sources = folded
                if not (is_grad_enabled() and any(t is not None and t.requires_grad for t in sources)):
                    return conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        return super().forward(x)
