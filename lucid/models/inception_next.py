"""InceptionNeXt (Yu et al., 2023, "InceptionNeXt: When Inception Meets ConvNeXt") on lucid.

This file reads like timm's ``timm/models/inception_next.py``: the same classes, parameter names and
initialisation, so timm's published weights load after ``scripts/convert_timm.py`` and logits agree to 1e-5::

    stem:   Conv2d(in, dims[0], 4, stride 4) -> norm_layer                        (N, dims[0], H/4, W/4)
    stages: 4 x _IncepNeXtStage: downsample (Identity for the first; norm_layer -> Conv2d 2x2 stride 2 after)
            -> depth x MetaNeXtBlock
    head:   _MLPHead: global avg pool -> Linear(d, 3d) -> GELU -> LayerNorm -> Dropout -> Linear(3d, classes)

    block(x) = x + DropPath(gamma * mlp(norm(token_mixer(x))))
    token_mixer = InceptionDWConv2d: channels split into identity / 3x3 / 1xK / Kx1 depthwise branches

The modules here are plain: each forward is the textbook chain of lucid ops. Speed comes from an explicit
pass, ``lucid.nn.fuse(model)`` (training) or ``lucid.nn.fuse(model, inference=True)``, which swaps these
modules for fused ones holding the same parameters (lucid/models/fusion.py says which); the trainer and
``scripts/evaluate.py`` apply it. Build the real models with ``create_model("inception_next_tiny")`` or
``inception_next_tiny()``.
"""
from __future__ import annotations

from functools import partial
from typing import Optional, Sequence, Type

import numpy as np

from .. import nn
from .._tensor import Tensor
from ..nn import init
from ..ops.shape import cat, split
from .registry import register_model

__all__ = ["InceptionNeXt", "MetaNeXt", "InceptionDWConv2d", "ConvMlp", "MetaNeXtBlock", "inception_next_atto",
           "inception_next_tiny", "inception_next_small", "inception_next_base"]


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
        gc = int(in_chs * branch_ratio)  # channels of one conv branch
        square_padding = (square_kernel_size - 1) // 2 * dilation
        band_padding = (band_kernel_size - 1) // 2 * dilation
        self.dwconv_hw = nn.Conv2d(gc, gc, square_kernel_size, padding=square_padding, dilation=dilation,
                                   groups=gc)
        self.dwconv_w = nn.Conv2d(gc, gc, (1, band_kernel_size), padding=(0, band_padding), dilation=(1, dilation),
                                  groups=gc)
        self.dwconv_h = nn.Conv2d(gc, gc, (band_kernel_size, 1), padding=(band_padding, 0), dilation=(dilation, 1),
                                  groups=gc)
        self.split_indexes = (in_chs - 3 * gc, gc, gc, gc)

    def forward(self, x: Tensor) -> Tensor:
        x_id, x_hw, x_w, x_h = split(x, self.split_indexes, dim=1)
        return cat((x_id, self.dwconv_hw(x_hw), self.dwconv_w(x_w), self.dwconv_h(x_h)), dim=1)


class ConvMlp(nn.Module):
    """MLP with 1x1 convs that keeps the spatial dims: fc1 (C -> hidden) -> norm -> act -> drop -> fc2.

    Input (N, in_features, H, W); output (N, out_features, H, W).
    """

    def __init__(self, in_features: int, hidden_features: Optional[int] = None,
                 out_features: Optional[int] = None, act_layer: Type[nn.Module] = nn.ReLU,
                 norm_layer: Optional[Type[nn.Module]] = None, bias: bool = True, drop: float = 0.0) -> None:
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        bias = tuple(bias) if isinstance(bias, (tuple, list)) else (bias, bias)
        self.fc1 = nn.Conv2d(in_features, hidden_features, kernel_size=1, bias=bias[0])
        self.norm = norm_layer(hidden_features) if norm_layer else nn.Identity()
        self.act = act_layer()
        self.drop = nn.Dropout(drop)
        self.fc2 = nn.Conv2d(hidden_features, out_features, kernel_size=1, bias=bias[1])

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc1(x)
        x = self.norm(x)
        x = self.act(x)
        x = self.drop(x)
        return self.fc2(x)


class _MLPHead(nn.Module):
    """Global average pool -> Linear(d, ratio*d) -> act -> norm -> Dropout -> Linear(-> classes).

    Input (N, d, H, W); output (N, num_classes), or (N, ratio*d) with ``pre_logits=True`` (timm's
    ``MlpClassifierHead``).
    """

    def __init__(self, in_features: int, num_classes: int = 1000, mlp_ratio: float = 3,
                 act_layer: Type[nn.Module] = nn.GELU,
                 norm_layer: Type[nn.Module] = partial(nn.LayerNorm, eps=1e-6), drop: float = 0.0,
                 bias: bool = True) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_features = hidden_features = int(mlp_ratio * in_features)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.norm = norm_layer(hidden_features)
        self.fc2 = nn.Linear(hidden_features, num_classes, bias=bias) if num_classes > 0 else nn.Identity()
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.global_pool(x).flatten(1)
        x = self.fc1(x)
        x = self.act(x)
        x = self.norm(x)
        x = self.drop(x)
        return x if pre_logits else self.fc2(x)


class MetaNeXtBlock(nn.Module):
    """``x + DropPath(gamma * mlp(norm(token_mixer(x))))`` on (N, dim, H, W).

    Args:
        dim: channels.
        dilation: passed to the token mixer.
        token_mixer, norm_layer, mlp_layer, act_layer: the parts, built as ``token_mixer(dim, dilation=...)``,
            ``norm_layer(dim)``, ``mlp_layer(dim, int(mlp_ratio * dim), act_layer=act_layer)``.
        ls_init_value: initial layer scale ``gamma`` (0/None: no layer scale).
        drop_path: stochastic depth probability of the residual branch.
    """

    def __init__(self, dim: int, dilation: int = 1, token_mixer: Type[nn.Module] = InceptionDWConv2d,
                 norm_layer: Type[nn.Module] = nn.BatchNorm2d, mlp_layer: Type[nn.Module] = ConvMlp,
                 mlp_ratio: float = 4, act_layer: Type[nn.Module] = nn.GELU, ls_init_value: float = 1e-6,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.token_mixer = token_mixer(dim, dilation=dilation)
        self.norm = norm_layer(dim)
        self.mlp = mlp_layer(dim, int(mlp_ratio * dim), act_layer=act_layer)
        self.gamma = nn.Parameter(np.full(dim, ls_init_value, dtype=np.float32)) if ls_init_value else None
        self.drop_path = nn.DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.token_mixer(x)
        x = self.norm(x)
        x = self.mlp(x)
        if self.gamma is not None:
            x = x.mul(self.gamma.reshape(1, -1, 1, 1))
        return self.drop_path(x) + shortcut


class _IncepNeXtStage(nn.Module):
    """Downsample (Identity, or norm_layer -> Conv2d 2x2 stride 2) then ``depth`` MetaNeXtBlocks (timm's
    ``MetaNeXtStage``)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 2, depth: int = 2,
                 drop_path_rates: Optional[Sequence[float]] = None, ls_init_value: float = 1.0,
                 token_mixer: Type[nn.Module] = InceptionDWConv2d, act_layer: Type[nn.Module] = nn.GELU,
                 norm_layer: Type[nn.Module] = nn.BatchNorm2d, mlp_layer: Type[nn.Module] = ConvMlp,
                 mlp_ratio: float = 4) -> None:
        super().__init__()
        if stride > 1:
            self.downsample = nn.Sequential(norm_layer(in_chs),
                                            nn.Conv2d(in_chs, out_chs, kernel_size=2, stride=stride))
        else:
            self.downsample = nn.Identity()
        drop_path_rates = drop_path_rates or [0.0] * depth
        self.blocks = nn.Sequential(*[
            MetaNeXtBlock(dim=out_chs, drop_path=drop_path_rates[i], ls_init_value=ls_init_value,
                          token_mixer=token_mixer, act_layer=act_layer, norm_layer=norm_layer,
                          mlp_layer=mlp_layer, mlp_ratio=mlp_ratio)
            for i in range(depth)
        ])

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.downsample(x))


class InceptionNeXt(nn.Module):
    """InceptionNeXt image classifier (timm's ``MetaNeXt``): the seed document's signature, plus timm's
    ``norm_layer``, ``act_layer``, ``mlp_layer`` and ``in_channels``.

    Args:
        num_classes: classifier outputs (1000; 0 keeps the pooled features).
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
        norm_layer: normalisation of the stem, downsamples and blocks (``nn.BatchNorm2d``).
        act_layer: the blocks' MLP activation (``nn.GELU``).
        mlp_layer: the blocks' MLP (``ConvMlp``).
        in_channels: image channels (3; 1 for grey-scale data). ``in_chans`` (timm's name) is accepted too.
    Input (N, in_channels, H, W) with H, W multiples of 32; output (N, num_classes).
    """

    def __init__(self, num_classes: int = 1000, depths: Sequence[int] = (3, 3, 9, 3),
                 dims: Sequence[int] = (96, 192, 384, 768), token_mixers: Type[nn.Module] = nn.Identity,
                 mlp_ratios: Sequence[float] = (4, 4, 4, 3), head_fn: Type[nn.Module] = _MLPHead,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.0, ls_init_value: float = 1e-6,
                 norm_layer: Type[nn.Module] = nn.BatchNorm2d, act_layer: Type[nn.Module] = nn.GELU,
                 mlp_layer: Type[nn.Module] = ConvMlp, in_channels: int = 3, in_chans: Optional[int] = None) -> None:
        super().__init__()
        in_channels = in_channels if in_chans is None else in_chans
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

        self.stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], kernel_size=4, stride=4), norm_layer(dims[0]))
        rates = [float(r) for r in np.linspace(0.0, drop_path_rate, sum(depths))] if sum(depths) else []
        self.stages = nn.Sequential()
        prev_chs, start = dims[0], 0
        for i in range(num_stages):
            self.stages.append(_IncepNeXtStage(
                prev_chs, dims[i], stride=2 if i > 0 else 1, depth=depths[i],
                drop_path_rates=rates[start:start + depths[i]], ls_init_value=ls_init_value,
                token_mixer=token_mixers[i], act_layer=act_layer, norm_layer=norm_layer, mlp_layer=mlp_layer,
                mlp_ratio=mlp_ratios[i]))
            prev_chs, start = dims[i], start + depths[i]
        self.num_features = prev_chs
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


MetaNeXt = InceptionNeXt  # timm's name for the class


def _create(arch: dict, **kwargs) -> InceptionNeXt:
    """The variant's architecture with the caller's keyword arguments on top (timm: ``dict(model_args,
    **kwargs)``), so ``inception_next_tiny(depths=(2, 2, 2, 2))`` builds that architecture."""
    return InceptionNeXt(**dict(arch, **kwargs))


@register_model
def inception_next_atto(**kwargs) -> InceptionNeXt:
    """InceptionNeXt-atto: depths (2, 2, 6, 2), dims (40, 80, 160, 320), band kernel 9, branch ratio 0.25."""
    return _create(dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320),
                        token_mixers=partial(InceptionDWConv2d, band_kernel_size=9, branch_ratio=0.25)), **kwargs)


@register_model
def inception_next_tiny(**kwargs) -> InceptionNeXt:
    """InceptionNeXt-tiny: depths (3, 3, 9, 3), dims (96, 192, 384, 768); 28.06 M parameters."""
    return _create(dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), token_mixers=InceptionDWConv2d), **kwargs)


@register_model
def inception_next_small(**kwargs) -> InceptionNeXt:
    """InceptionNeXt-small: depths (3, 3, 27, 3), dims (96, 192, 384, 768); 49.37 M parameters."""
    return _create(dict(depths=(3, 3, 27, 3), dims=(96, 192, 384, 768), token_mixers=InceptionDWConv2d), **kwargs)


@register_model
def inception_next_base(**kwargs) -> InceptionNeXt:
    """InceptionNeXt-base: depths (3, 3, 27, 3), dims (128, 256, 512, 1024); 86.67 M parameters."""
    return _create(dict(depths=(3, 3, 27, 3), dims=(128, 256, 512, 1024), token_mixers=InceptionDWConv2d),
                   **kwargs)
