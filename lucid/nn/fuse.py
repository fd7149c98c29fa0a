"""``fuse(model)``: the explicit pass that swaps recognised sub-modules for fused ones (lucid/nn/fused.py).

Models stay plain, as timm writes them; speed is opt-in and visible::

    model = lucid.models.create_model("inception_next_tiny")
    model = lucid.nn.fuse(model)                    # training: fused mixer, MLP and residual tail
    model = lucid.nn.fuse(model, inference=True)    # also fold BatchNorm/layer scale in eval mode
    print(lucid.nn.fusion_summary(model))           # {'FusedMetaFormerBlock': 18, ...}

A fused module holds the same children and parameters under the same names, so ``state_dict()`` is unchanged,
and it computes what the original computes (it falls back to calling its children whenever its fast path
does not apply: a hook, a changed layer, dropout on). The pass works in place on the module tree and returns
the root (a new object only when the root itself was swapped).

Which module types fuse into what is a registry: ``register_fusion(SomeModule, make_fused)``. The generic
rule for ``Sequential(conv, bn)`` / ``Sequential(bn, conv)`` lives here; model families register their own
(lucid/models/fusion.py for InceptionNeXt). Rules match the exact type, not subclasses, since a subclass may
compute something else.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, NamedTuple, Optional

from .containers import Sequential
from .fused import Fused, FusedConvNorm
from .module import Module

__all__ = ["fuse", "fusion_summary", "register_fusion"]


class _Rule(NamedTuple):
    make: Callable[[Module, bool], Optional[Module]]
    inference_only: bool


_RULES: dict = {}  # module type -> _Rule


def register_fusion(module_type: type, make: Callable[[Module, bool], Optional[Module]], *,
                    inference_only: bool = False) -> None:
    """Fuse every module of exactly ``module_type`` with ``make(module, inference) -> fused module or None``
    (None: this instance does not match, keep it). ``inference_only`` rules run only for
    ``fuse(..., inference=True)``."""
    if not (isinstance(module_type, type) and issubclass(module_type, Module)):
        raise TypeError(f"register_fusion: module_type must be a Module subclass, got {module_type!r}")
    _RULES[module_type] = _Rule(make, inference_only)


def _fuse_one(module: Module, inference: bool) -> Module:
    if isinstance(module, Fused):
        if inference and not module.inference:  # fuse(model) then fuse(model, inference=True)
            module.inference = True
        return module
    rule = _RULES.get(type(module))
    if rule is None or (rule.inference_only and not inference):
        return module
    fused = rule.make(module, inference)
    return module if fused is None else fused


def fuse(model: Module, inference: bool = False) -> Module:
    """Swap the recognised sub-modules of ``model`` for fused modules (in place); returns the root.

    ``inference=True`` also lets fused modules fold BatchNorm and layer scale into neighbouring weights when
    they run in eval mode without gradients (the folded copies are kept until a weight changes; ``train()``
    drops them). Training is unaffected either way. Calling it again is harmless.
    """
    if not isinstance(model, Module):
        raise TypeError(f"fuse: expected a lucid.nn.Module, got {type(model).__name__}")

    def visit(module: Module) -> None:
        for name, child in list(module._modules.items()):
            if child is None:
                continue
            visit(child)  # children first: a fused block finds its MLP already fused
            fused = _fuse_one(child, inference)
            if fused is not child:
                setattr(module, name, fused)

    visit(model)
    return _fuse_one(model, inference)


def fusion_summary(model: Module) -> dict:
    """{fused module class name: count} over ``model``'s tree, for logs ("what was fused")."""
    counts = Counter(type(m).__name__ for m in model.modules() if isinstance(m, Fused))
    return dict(sorted(counts.items()))


def _conv_norm(seq: Sequential, inference: bool) -> Optional[Module]:
    return FusedConvNorm.from_module(seq, inference=True) if FusedConvNorm.matches(seq) else None


register_fusion(Sequential, _conv_norm, inference_only=True)
