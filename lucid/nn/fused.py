"""Fused modules: drop-in replacements that ``lucid.nn.fuse`` swaps in for recognised sub-modules.

Each one holds the *same* child modules and parameters under the *same* names as the module it replaces, so
``state_dict()`` keys and values are unchanged (checkpoints and timm weight conversion do not notice), and
each computes exactly what the replaced module computes: through one fused op (lucid/ops/fused.py) when its
parts are the plain ones the op covers, otherwise by calling its children as the original forward does.
Whether the fused op applies (plain convs, GELU, dropout off, nobody hooked on a child) is decided once and
kept in a ``DerivedValue`` until one of those children changes through Module's API.

==========================  =================================================  ==================================
fused module                computes                                           fast path
==========================  =================================================  ==================================
FusedConvMlp                ``fc2(drop(act(norm(fc1(x)))))``, 1x1 convs         ``conv_mlp_gelu`` (GELU, Identity
                            (timm's ``ConvMlp``)                                norm, dropout off)
FusedDepthwiseBranches      ``cat(x_id, conv_0(x_0), conv_1(x_1), ...)``        ``depthwise_branches``
                            (InceptionNeXt's token mixer)
FusedMetaFormerBlock        ``x + drop_path(gamma * mlp(norm(mixer(x))))``      ``scaled_residual`` tail; with
                            (a MetaFormer/MetaNeXt block with layer scale)      ``inference``: BatchNorm and gamma
                                                                                folded into the MLP, one op
FusedConvNorm               ``Sequential(conv, bn)`` / ``Sequential(bn, conv)`` inference: one conv, BatchNorm
                                                                                folded into its weights
==========================  =================================================  ==================================

Folded weights (``inference``) are used only in eval mode with no gradient wanted for the parameters; they
are computed once and kept until a source tensor changes (its array or ``_version``: optimizer steps,
``copy_``, ``.data`` changes, ``load_state_dict``) or a source module changes; ``train()`` drops them.
"""
from __future__ import annotations

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd import is_grad_enabled
from ..ops.conv import conv2d
from ..ops.dropout import drop_path_scale
from ..ops.fused import DepthwiseBranches, branches_geometry, conv_mlp_gelu, scaled_residual
from ..ops.shape import cat, split
from .activation import GELU
from .containers import Sequential
from .conv import Conv2d
from .derived import DerivedValue
from .dropout import Dropout, DropPath
from .folding import batchnorm_scale_shift, fold_batchnorm_after_conv, fold_batchnorm_before_conv, frozen_batchnorm
from .linear import Identity
from .module import Module
from .norm import BatchNorm2d

__all__ = ["FusedConvMlp", "FusedConvNorm", "FusedDepthwiseBranches", "FusedMetaFormerBlock", "Fused"]


def _hooked(*modules) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def _plain_1x1(conv) -> bool:
    return (type(conv) is Conv2d and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.padding in ((0, 0), "valid") and conv.groups == 1 and conv.bias is not None
            and conv.padding_mode == "zeros")


def _adopt(fused: Module, original: Module) -> Module:
    """Give ``fused`` the original's children, parameters, buffers and mode under the same names, and its hooks
    (the same hook dicts, so handles returned before fusing still remove them)."""
    for store in ("_parameters", "_buffers", "_modules"):
        getattr(fused, store).update(getattr(original, store))
    for store in ("_forward_hooks", "_forward_pre_hooks"):
        object.__setattr__(fused, store, getattr(original, store))
    fused._non_persistent_buffers.update(original._non_persistent_buffers)
    object.__setattr__(fused, "training", original.training)
    return fused


class Fused(Module):
    """Base of the fused modules: ``inference`` (settable) says whether eval-mode folding is allowed."""

    inference: bool = False

    def train(self, mode: bool = True) -> "Fused":
        if mode:  # training changes the weights every step: do not hold folded copies meanwhile
            for value in self.__dict__.values():
                if isinstance(value, DerivedValue):
                    value.clear()
        return super().train(mode)


class FusedConvMlp(Fused):
    """timm's ``ConvMlp`` (fc1 -> norm -> act -> drop -> fc2, 1x1 convs) with fc1 -> GELU -> fc2 as one op.

    Input (N, C, H, W); output (N, C2, H, W). The fused op runs when act is ``GELU``, norm ``Identity``, drop a
    ``Dropout`` that is off (p = 0 or eval mode), both convs plain 1x1 convs with bias and no child hooked.
    """

    def __init__(self) -> None:
        super().__init__()
        self._plan = DerivedValue()

    @classmethod
    def from_module(cls, mlp: Module) -> "FusedConvMlp":
        return _adopt(cls(), mlp)

    def _build_plan(self):
        parts = (self.fc1, self.norm, self.act, self.drop, self.fc2)
        drop_off = type(self.drop) is Dropout and (self.drop.p == 0 or not self.drop.training)
        fusable = (type(self.act) is GELU and type(self.norm) is Identity and drop_off and _plain_1x1(self.fc1)
                   and _plain_1x1(self.fc2) and not _hooked(*parts))
        return fusable, (self, *parts)

    def fusable(self) -> bool:
        """Whether ``forward`` runs as the fused op now."""
        return self._plan.get(self._build_plan)

    def forward(self, x):
        if self.fusable():
            return conv_mlp_gelu(x, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias,
                                 self.act.approximate)
        return self.fc2(self.drop(self.act(self.norm(self.fc1(x)))))


def fusable_depthwise_branch(conv, gc: int) -> bool:
    """Whether ``conv`` is a branch ``depthwise_branches`` computes: a plain depthwise Conv2d over ``gc``
    channels, stride 1, dilation 1, with bias, zero padding (k - 1) / 2 on each side (odd kernels)."""
    if type(conv) is not Conv2d or isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        return False
    return (conv.bias is not None and conv.stride == (1, 1) and conv.dilation == (1, 1)
            and conv.groups == conv.in_channels == conv.out_channels == gc
            and all(2 * p == k - 1 for p, k in zip(conv.padding, conv.kernel_size)))


class FusedDepthwiseBranches(Fused):
    """``cat(x_id, conv_0(x_0), conv_1(x_1), ...)`` over channel groups ``split_indexes`` (identity first), each
    conv a child named in ``branch_names``; one ``depthwise_branches`` op when every branch is a plain
    depthwise conv it covers (``fusable_depthwise_branch``) and none is hooked. (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, branch_names, split_indexes) -> None:
        super().__init__()
        self.branch_names = tuple(branch_names)
        self.split_indexes = tuple(split_indexes)
        self._plan = DerivedValue()

    @classmethod
    def from_module(cls, mixer: Module, branch_names) -> "FusedDepthwiseBranches":
        return _adopt(cls(branch_names, mixer.split_indexes), mixer)

    def _build_plan(self):
        convs = tuple(getattr(self, name) for name in self.branch_names)
        c_id, gc = self.split_indexes[0], self.split_indexes[1]
        if _hooked(*convs) or not all(fusable_depthwise_branch(c, gc) for c in convs) \
                or any(size != gc for size in self.split_indexes[1:]):
            return None, (self, *convs)
        geometry = branches_geometry([c.weight.shape for c in convs], [c.bias.shape for c in convs], c_id,
                                     sum(self.split_indexes))
        return (geometry, tuple(p for c in convs for p in (c.weight, c.bias))), (self, *convs)

    def forward(self, x):
        plan = self._plan.get(self._build_plan)
        if plan is not None:
            geometry, params = plan
            return DepthwiseBranches.apply(x, geometry, *params)
        x_id, *parts = split(x, self.split_indexes, dim=1)
        return cat([x_id] + [getattr(self, name)(part) for name, part in zip(self.branch_names, parts)], dim=1)


class FusedMetaFormerBlock(Fused):
    """``x + drop_path(gamma * mlp(norm(token_mixer(x))))`` on (N, C, H, W) (gamma None: no layer scale).

    Training: the tail ``shortcut + gamma * keep[n] * y`` is one op (``scaled_residual``), drawing the same
    drop-path numbers as ``DropPath``. With ``inference`` in eval mode, when no gradient is wanted for the
    parameters, the block after the mixer (a frozen BatchNorm, a fusable ``FusedConvMlp``, gamma, the
    shortcut) is one ``conv_mlp_gelu`` with BatchNorm folded into fc1 and gamma into fc2.
    """

    def __init__(self, inference: bool = False) -> None:
        super().__init__()
        self.inference = inference
        self._tail = DerivedValue()
        self._folded = DerivedValue()

    @classmethod
    def from_module(cls, block: Module, inference: bool = False) -> "FusedMetaFormerBlock":
        return _adopt(cls(inference), block)

    def _build_tail(self):
        """Whether the tail runs as ``scaled_residual``: layer scale on, drop-path a plain DropPath or Identity."""
        dp = self.drop_path
        fusable = self.gamma is not None and type(dp) in (Identity, DropPath) and not _hooked(dp)
        return fusable, (self, dp)

    def _build_fold(self):
        """((w1, b1, w2, b2, approximate, params) or None, sources): the eval block after the mixer as one MLP."""
        norm, mlp = self.norm, self.mlp
        sources = (self, norm, mlp, self.drop_path, *mlp._modules.values())
        if not (self.gamma is not None and frozen_batchnorm(norm) and isinstance(mlp, FusedConvMlp)
                and mlp.fusable() and not _hooked(self.drop_path)):
            return None, sources
        fc1, fc2 = mlp.fc1, mlp.fc2
        params = (norm.running_mean, norm.running_var, norm.weight, norm.bias, fc1.weight, fc1.bias, fc2.weight,
                  fc2.bias, self.gamma)
        mean, var, bn_w, bn_b, w1, b1, w2, b2, gamma = (None if t is None else t.array for t in params)
        scale, shift = batchnorm_scale_shift(mean, var, bn_w, bn_b, norm.eps)
        d, c = w1.shape[:2]
        folded = (w1 * scale.reshape(1, c, 1, 1), b1 + w1.reshape(d, c) @ shift,
                  w2 * gamma.reshape(-1, 1, 1, 1), b2 * gamma)
        dtype = w1.dtype
        weights = tuple(Tensor(a.astype(dtype, copy=False)) for a in folded)
        return (*weights, mlp.act.approximate, params), sources + params

    def forward(self, x):
        shortcut = x
        if self.inference and not self.training:
            folded = self._folded.get(self._build_fold)
            if folded is not None:
                *weights, approximate, params = folded
                if not (is_grad_enabled() and any(t is not None and t.requires_grad for t in params)):
                    return conv_mlp_gelu(self.token_mixer(x), *weights, approximate, residual=shortcut)
        y = self.mlp(self.norm(self.token_mixer(x)))
        if self._tail.get(self._build_tail):
            dp = self.drop_path
            keep = None if type(dp) is Identity else drop_path_scale(
                y.shape[0], dp.drop_prob, dp.training, dp.scale_by_keep, dtype=y.dtype, device=y.device)
            return scaled_residual(y, self.gamma, shortcut, keep)
        if self.gamma is not None:
            y = y.mul(self.gamma.reshape(1, -1, 1, 1))
        return self.drop_path(y) + shortcut


class FusedConvNorm(Sequential, Fused):
    """``Sequential(conv, bn)`` or ``Sequential(bn, conv)`` (keys ``0``, ``1`` kept) that, with ``inference``, runs
    as one conv in eval mode with BatchNorm folded into the conv's weights (a BatchNorm before the conv folds
    only when the conv has no padding and groups 1, where the fold is exact). Anything else (training, hooks,
    gradients wanted for the parameters) runs the two modules in order.
    """

    def __init__(self, *modules, inference: bool = True) -> None:
        super().__init__(*modules)
        self.inference = inference
        self._folded = DerivedValue()

    @classmethod
    def from_module(cls, seq: Sequential, inference: bool = True) -> "FusedConvNorm":
        fused = cls(inference=inference)
        return _adopt(fused, seq)

    @staticmethod
    def matches(seq: Sequential) -> bool:
        """Whether ``seq`` is exactly (Conv2d, BatchNorm2d) or (BatchNorm2d, Conv2d) with matching channels."""
        parts = list(seq._modules.values())
        if len(parts) != 2 or {type(p) for p in parts} != {Conv2d, BatchNorm2d}:
            return False
        if type(parts[0]) is BatchNorm2d:
            return parts[0].num_features == parts[1].in_channels
        return parts[1].num_features == parts[0].out_channels

    def _build_fold(self):
        """((weight, bias, conv, params) or None, sources)."""
        if not self.matches(self):  # changed after fusing (a module appended, a part replaced): run as modules
            return None, (self,)
        first, second = self._modules.values()
        bn_first = type(first) is BatchNorm2d
        bn, conv = (first, second) if bn_first else (second, first)
        sources = (self, bn, conv)
        if not (frozen_batchnorm(bn) and type(conv) is Conv2d and conv.padding_mode == "zeros"
                and not _hooked(conv)):
            return None, sources
        if bn_first and (conv.padding not in ((0, 0), "valid") or conv.groups != 1):
            return None, sources
        params = (bn.running_mean, bn.running_var, bn.weight, bn.bias, conv.weight, conv.bias)
        mean, var, gamma, beta, weight, bias = (None if t is None else t.array for t in params)
        scale, shift = batchnorm_scale_shift(mean, var, gamma, beta, bn.eps)
        fold = fold_batchnorm_before_conv if bn_first else fold_batchnorm_after_conv
        folded_w, folded_b = fold(scale, shift, weight, bias)
        dtype = weight.dtype
        # stored (Cout, kh, kw, Cin)-contiguous under its (Cout, Cin, kh, kw) shape: the patchify conv (the
        # stem's and downsample's path) multiplies by the (kh, kw, Cin) order, which then needs no copy
        folded_w = xp_of(folded_w).ascontiguousarray(folded_w.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        value = (Tensor(folded_w.astype(dtype, copy=False)), Tensor(folded_b.astype(dtype, copy=False)), conv,
                 params)
        return value, sources + params

    def forward(self, x):
        if self.inference and not self.training:
            folded = self._folded.get(self._build_fold)
            if folded is not None:
                weight, bias, conv, params = folded
                if not (is_grad_enabled() and any(t is not None and t.requires_grad for t in params)):
                    return conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        return super().forward(x)

