"""InceptionNeXt (Yu et al., 2023, "InceptionNeXt: When Inception Meets ConvNeXt") on lucid.

The structure, parameter names and initialisation follow timm's ``inception_next.py`` exactly, so timm's
published weights load after ``scripts/convert_timm.py`` and logits agree to 1e-5::

    stem:   Conv2d(in, dims[0], 4, stride 4) -> BatchNorm2d                        (N, dims[0], H/4, W/4)
    stages: 4 x _IncepNeXtStage: downsample (Identity for the first; BatchNorm2d -> Conv2d 2x2 stride 2 after)
            -> depth x MetaNeXtBlock
    head:   _MLPHead: global avg pool -> Linear(d, 3d) -> GELU -> LayerNorm -> Dropout -> Linear(3d, classes)

    block(x) = x + DropPath(gamma * mlp(norm(token_mixer(x))))
    token_mixer = InceptionDWConv2d: channels split into identity / 3x3 / 1xK / Kx1 depthwise branches

Build the real models with ``create_model("inception_next_tiny")`` or ``inception_next_tiny()``.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence, Type

import numpy as np

from .. import nn
from .._tensor import Tensor
from ..autograd import is_grad_enabled
from ..nn import init
from ..nn.derived import DerivedValue
from ..ops.dropout import drop_path_scale
from ..ops.fused import InceptionDWConv, conv_mlp_gelu, inception_branches, is_fusable_branch, scaled_residual
from ._folding import ConvNormSequential, fold_affine, fold_batchnorm_into_1x1, frozen_batchnorm
from .registry import register_model

__all__ = ["InceptionNeXt", "InceptionDWConv2d", "MetaNeXtBlock", "inception_next_atto", "inception_next_tiny",
           "inception_next_small", "inception_next_base"]


class InceptionDWConv2d(nn.Module):
    """Inception depthwise token mixer: split channels into (identity, 3x3, 1xK, Kx1) branches, concatenate.

    Args:
        in_chs: channels C of the input (N, C, H, W); output has the same shape.
        square_kernel_size: kernel of the square depthwise branch (3).
        band_kernel_size: K of the 1xK and Kx1 band branches (11; atto uses 9).
        branch_ratio: fraction of channels per conv branch, gc = int(C * ratio) (0.125; atto 0.25).
    The first C - 3*gc channels pass through unchanged (timm's order: id, hw, w, h).
    """

    def __init__(self, in_chs: int, square_kernel_size: int = 3, band_kernel_size: int = 11,
                 branch_ratio: float = 0.125, dilation: int = 1) -> None:
        super().__init__()
        gc = int(in_chs * branch_ratio)
        sq_pad = (square_kernel_size - 1) // 2 * dilation
        band_pad = (band_kernel_size - 1) // 2 * dilation
        self.dwconv_hw = nn.Conv2d(gc, gc, square_kernel_size, padding=sq_pad, dilation=dilation, groups=gc)
        self.dwconv_w = nn.Conv2d(gc, gc, (1, band_kernel_size), padding=(0, band_pad), dilation=(1, dilation),
                                  groups=gc)
        self.dwconv_h = nn.Conv2d(gc, gc, (band_kernel_size, 1), padding=(band_pad, 0), dilation=(dilation, 1),
                                  groups=gc)
        self.split_indexes = (in_chs - 3 * gc, gc, gc, gc)
        self._fused = DerivedValue()  # (Branches, params) when the fused op applies, else None; see _plan

    def _plan(self):
        """((Branches, branch parameters) or None, sources) for DerivedValue: the fused op's geometry, worked
        out once per change to the modules instead of on every call (~0.1 ms)."""
        convs = (self.dwconv_hw, self.dwconv_w, self.dwconv_h)
        if any(c._forward_hooks or c._forward_pre_hooks or not is_fusable_branch(c, self.split_indexes[1])
               for c in convs):
            # someone observes the convs (a hook, lucid.models.summary), or a dilated/changed conv the fused op
            # does not cover: they run as modules
            return None, ()
        return (inception_branches(convs, self.split_indexes), tuple(p for c in convs for p in (c.weight, c.bias))), ()

    def forward(self, x: Tensor) -> Tensor:
        plan = self._fused.get(self._plan)
        if plan is None:  # call the convs as modules, as timm does
            from .. import cat, split

            x_id, x_hw, x_w, x_h = split(x, self.split_indexes, dim=1)
            return cat((x_id, self.dwconv_hw(x_hw), self.dwconv_w(x_w), self.dwconv_h(x_h)), dim=1)
        # otherwise one fused op (lucid/ops/fused.py) computing exactly that, channels-last, in one buffer
        branches, params = plan
        return InceptionDWConv.apply(x, branches, *params)


class ConvMlp(nn.Module):
    """1x1-conv MLP keeping the spatial dims: fc1 (C -> hidden) -> GELU -> Dropout -> fc2 (hidden -> C).

    With its default parts (GELU, no dropout at work, no hooks) it runs as one fused op
    (``lucid.ops.fused.conv_mlp_gelu``); anything else runs the modules one by one, as timm does.
    """

    def __init__(self, in_features: int, hidden_features: int, act_layer: Type[nn.Module] = nn.GELU,
                 drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(in_features, hidden_features, kernel_size=1)
        self.norm = nn.Identity()  # timm keeps this slot (norm_layer=None) so the key layout matches
        self.act = act_layer()
        self.drop = nn.Dropout(drop)
        self.fc2 = nn.Conv2d(hidden_features, in_features, kernel_size=1)

    def fusable(self) -> bool:
        """Whether ``forward`` can run as the fused op: exactly fc1 -> GELU -> fc2 with nothing observing them."""
        parts = (self.fc1, self.norm, self.act, self.drop, self.fc2)
        if any(m._forward_hooks or m._forward_pre_hooks for m in parts):
            return False
        drop_is_identity = isinstance(self.drop, nn.Dropout) and (self.drop.p == 0 or not self.drop.training)
        return (type(self.act) is nn.GELU and type(self.norm) is nn.Identity and drop_is_identity
                and _is_plain_1x1(self.fc1) and _is_plain_1x1(self.fc2))

    def forward(self, x: Tensor) -> Tensor:
        if self.fusable():
            return conv_mlp_gelu(x, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias,
                                 self.act.approximate)
        return self.fc2(self.drop(self.act(self.norm(self.fc1(x)))))


def _is_plain_1x1(conv) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.padding in ((0, 0), "valid") and conv.groups == 1 and conv.bias is not None
            and conv.padding_mode == "zeros")


class MetaNeXtBlock(nn.Module):
    """x + DropPath(gamma * mlp(norm(token_mixer(x)))) on (N, dim, H, W).

    Inference (eval mode, no gradient wanted for the block's parameters) runs the block as two ops: the token
    mixer, then one fused MLP (lucid.ops.fused.conv_mlp_gelu) whose fc1 has BatchNorm folded in and whose fc2
    has gamma folded in, adding the shortcut as it writes its output. The folded weights are computed once and
    kept (lucid.nn.derived.DerivedValue) until a source tensor changes (its ``_version``, bumped by every
    in-place change through lucid, or a new ``.array``), a module changes, or the block goes back to training
    mode; writing into ``.array`` directly bypasses that check, as it bypasses autograd's.
    """

    def __init__(self, dim: int, token_mixer: Type[nn.Module] = nn.Identity, mlp_ratio: float = 4,
                 ls_init_value: float = 1e-6, drop_path: float = 0.0) -> None:
        super().__init__()
        self.token_mixer = token_mixer(dim)
        self.norm = nn.BatchNorm2d(dim)
        self.mlp = ConvMlp(dim, int(mlp_ratio * dim))
        self.gamma = nn.Parameter(np.full(dim, ls_init_value, dtype=np.float32)) if ls_init_value else None
        self.drop_path = nn.DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self._inference = DerivedValue()  # (w1, b1, w2, b2, approximate, sources) or None, see _fold_mlp

    def train(self, mode: bool = True) -> "MetaNeXtBlock":
        if mode:  # training changes the weights: do not hold a folded copy meanwhile (eval() keeps it)
            self._inference.clear()
        return super().train(mode)

    def _norm_can_fold(self) -> bool:
        """Whether the block's BatchNorm (eval mode: a fixed per-channel affine map) can fold into fc1."""
        return (not self.training and frozen_batchnorm(self.norm) and isinstance(self.mlp, ConvMlp)
                and self.mlp.fusable())

    def _fold_mlp(self):
        """((w1, b1, w2, b2, approximate, sources) or None, sources) for DerivedValue: the whole eval-mode
        block after the mixer, ``x + gamma * mlp(bn(x))``, as one MLP with BatchNorm folded into fc1 and gamma
        into fc2 (Tensors); None when the block must run op by op (training, a hook, a part the fused op does
        not cover)."""
        if self.gamma is None or type(self.drop_path) not in (nn.Identity, nn.DropPath) or not self._norm_can_fold():
            return None, ()
        bn, fc1, fc2 = self.norm, self.mlp.fc1, self.mlp.fc2
        sources = (bn.running_mean, bn.running_var, bn.weight, bn.bias, fc1.weight, fc1.bias, fc2.weight,
                   fc2.bias, self.gamma)
        w1, b1 = fold_affine(*(None if t is None else t.array for t in sources[:6]), bn.eps)
        gamma = self.gamma.array
        w2 = fc2.weight.array * gamma.reshape(-1, 1, 1, 1)
        b2 = fc2.bias.array * gamma
        dtype = fc1.weight.array.dtype
        weights = tuple(Tensor(a.astype(dtype, copy=False)) for a in (w1, b1, w2, b2))
        return (*weights, self.mlp.act.approximate, sources), sources

    def _norm_folds_into_mlp(self, x: Tensor) -> bool:
        """Eval mode with gradients for the parameters (e.g. fine-tuning with frozen statistics): BatchNorm
        folds into fc1 through tensor ops, so that gradients still reach its parameters."""
        # folding costs a pass over fc1's weight (hidden x C) instead of the BatchNorm op's pass over the
        # activation (pixels x C) plus its fixed cost of ~0.1 ms: it pays up to hidden ~ 4 x pixels
        fc1 = getattr(self.mlp, "fc1", None)
        if fc1 is None or fc1.weight.shape[0] > 4 * x.shape[0] * x.shape[2] * x.shape[3]:
            return False
        return self._norm_can_fold()

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.token_mixer(x)
        if not self.training:
            folded = self._inference.get(self._fold_mlp)
            if folded is not None:
                *weights, approximate, sources = folded
                if not (is_grad_enabled() and any(t is not None and t.requires_grad for t in sources)):
                    return conv_mlp_gelu(x, *weights, approximate, residual=shortcut)
        if self._norm_folds_into_mlp(x):
            mlp = self.mlp
            w1, b1 = fold_batchnorm_into_1x1(self.norm, mlp.fc1)
            x = conv_mlp_gelu(x, w1, b1, mlp.fc2.weight, mlp.fc2.bias, mlp.act.approximate)
        else:
            x = self.mlp(self.norm(x))
        if self.gamma is None:
            return self.drop_path(x) + shortcut
        # shortcut + drop_path(x * gamma) as one fused op, drawing the same drop-path numbers as DropPath
        keep = None
        if isinstance(self.drop_path, nn.DropPath):
            keep = drop_path_scale(x.shape[0], self.drop_path.drop_prob, self.drop_path.training,
                                   self.drop_path.scale_by_keep, dtype=x.dtype)
        return scaled_residual(x, self.gamma, shortcut, keep)


class _IncepNeXtStage(nn.Module):
    """Downsample (Identity, or BatchNorm2d -> Conv2d 2x2 stride 2) then ``depth`` MetaNeXtBlocks."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, depth: int, drop_path_rates: Sequence[float],
                 ls_init_value: float, token_mixer: Type[nn.Module], mlp_ratio: float) -> None:
        super().__init__()
        if stride > 1:  # folded into one conv in inference (lucid/models/_folding.py)
            self.downsample = ConvNormSequential(nn.BatchNorm2d(in_chs),
                                                 nn.Conv2d(in_chs, out_chs, kernel_size=2, stride=stride))
        else:
            self.downsample = nn.Identity()
        self.blocks = nn.Sequential(*[
            MetaNeXtBlock(out_chs, token_mixer=token_mixer, mlp_ratio=mlp_ratio, ls_init_value=ls_init_value,
                          drop_path=drop_path_rates[i])
            for i in range(depth)
        ])

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.downsample(x))


class _MLPHead(nn.Module):
    """Global average pool -> Linear(d, ratio*d) -> GELU -> LayerNorm(eps 1e-6) -> Dropout -> Linear(-> classes).

    Input (N, d, H, W); output (N, num_classes), or (N, ratio*d) with ``pre_logits=True``.
    """

    def __init__(self, in_features: int, num_classes: int = 1000, mlp_ratio: float = 3, drop: float = 0.0) -> None:
        super().__init__()
        hidden = int(mlp_ratio * in_features)
        self.num_features = hidden
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(in_features, hidden)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(hidden, eps=1e-6)
        self.drop = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.global_pool(x).flatten(1)
        x = self.drop(self.norm(self.act(self.fc1(x))))
        return x if pre_logits else self.fc2(x)


class InceptionNeXt(nn.Module):
    """InceptionNeXt image classifier (the seed document's signature, plus ``in_channels``).

    Args:
        num_classes: classifier outputs (1000).
        depths: blocks per stage ([3, 3, 9, 3]).
        dims: channels per stage ([96, 192, 384, 768]).
        token_mixers: module class (or one per stage) built as ``token_mixers(dim)``. The default is the seed's
            documented ``nn.Identity`` (a MetaFormer baseline); the registered variants
            (``inception_next_tiny()`` etc.) pass ``InceptionDWConv2d``, which is the real InceptionNeXt.
        mlp_ratios: MLP expansion per stage ([4, 4, 4, 3]).
        head_fn: head class built as ``head_fn(dims[-1], num_classes, drop=drop_rate)`` (``_MLPHead``).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, rising linearly over all blocks from 0 to this value.
        ls_init_value: initial layer-scale ``gamma`` (1e-6; 0/None disables layer scale).
        in_channels: image channels (3; 1 for grey-scale data).
    Input (N, in_channels, H, W) with H, W multiples of 32; output (N, num_classes).
    """

    def __init__(self, num_classes: int = 1000, depths: Sequence[int] = (3, 3, 9, 3),
                 dims: Sequence[int] = (96, 192, 384, 768), token_mixers: Type[nn.Module] = nn.Identity,
                 mlp_ratios: Sequence[float] = (4, 4, 4, 3), head_fn: Type[nn.Module] = _MLPHead,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.0, ls_init_value: float = 1e-6,
                 in_channels: int = 3) -> None:
        super().__init__()
        depths, dims = list(depths), list(dims)
        num_stages = len(depths)
        if len(dims) != num_stages:
            raise ValueError(f"depths {depths} and dims {dims} must have the same length")
        if not isinstance(token_mixers, (list, tuple)):
            token_mixers = [token_mixers] * num_stages
        if not isinstance(mlp_ratios, (list, tuple)):
            mlp_ratios = [mlp_ratios] * num_stages
        if len(token_mixers) != num_stages or len(mlp_ratios) != num_stages:
            raise ValueError(f"token_mixers and mlp_ratios need one entry per stage ({num_stages})")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if not 0.0 <= drop_path_rate < 1.0 or not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate ({drop_rate}) and drop_path_rate ({drop_path_rate}) must be in [0, 1)")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.drop_rate = drop_rate

        self.stem = ConvNormSequential(nn.Conv2d(in_channels, dims[0], kernel_size=4, stride=4),
                                       nn.BatchNorm2d(dims[0]))  # one conv in inference (models/_folding.py)
        total = sum(depths)
        rates = [float(r) for r in np.linspace(0.0, drop_path_rate, total)] if total else []
        self.stages = nn.Sequential()
        prev, start = dims[0], 0
        for i in range(num_stages):
            self.stages.append(_IncepNeXtStage(
                prev, dims[i], stride=2 if i > 0 else 1, depth=depths[i],
                drop_path_rates=rates[start:start + depths[i]], ls_init_value=ls_init_value,
                token_mixer=token_mixers[i], mlp_ratio=mlp_ratios[i]))
            prev, start = dims[i], start + depths[i]
        self.num_features = prev
        self.head = head_fn(self.num_features, num_classes, drop=drop_rate)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                init.constant_(m.bias, 0.0)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> (N, dims[-1], H/32, W/32)."""
        return self.stages(self.stem(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """(N, dims[-1], h, w) -> logits (N, num_classes), or pooled MLP features with ``pre_logits``."""
        return self.head(x, pre_logits=pre_logits) if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"InceptionNeXt expects input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head.fc2


def _build(depths, dims, mixer, **kwargs) -> InceptionNeXt:
    kwargs.setdefault("token_mixers", mixer)
    return InceptionNeXt(depths=kwargs.pop("depths", depths), dims=kwargs.pop("dims", dims), **kwargs)


@register_model
def inception_next_atto(**kwargs) -> InceptionNeXt:
    """InceptionNeXt-atto: depths (2, 2, 6, 2), dims (40, 80, 160, 320), band kernel 9, branch ratio 0.25."""
    return _build((2, 2, 6, 2), (40, 80, 160, 320),
                  partial(InceptionDWConv2d, band_kernel_size=9, branch_ratio=0.25), **kwargs)


@register_model
def inception_next_tiny(**kwargs) -> InceptionNeXt:
    """InceptionNeXt-tiny: depths (3, 3, 9, 3), dims (96, 192, 384, 768); 28.06 M parameters."""
    return _build((3, 3, 9, 3), (96, 192, 384, 768), InceptionDWConv2d, **kwargs)


@register_model
def inception_next_small(**kwargs) -> InceptionNeXt:
    """InceptionNeXt-small: depths (3, 3, 27, 3), dims (96, 192, 384, 768); 49.37 M parameters."""
    return _build((3, 3, 27, 3), (96, 192, 384, 768), InceptionDWConv2d, **kwargs)


@register_model
def inception_next_base(**kwargs) -> InceptionNeXt:
    """InceptionNeXt-base: depths (3, 3, 27, 3), dims (128, 256, 512, 1024); 86.67 M parameters."""
    return _build((3, 3, 27, 3), (128, 256, 512, 1024), InceptionDWConv2d, **kwargs)
