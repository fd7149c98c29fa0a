"""Dropout layers: ``Dropout`` (torch) and ``DropPath`` (timm's stochastic depth)."""
from __future__ import annotations

from ..ops import dropout as F
from .module import Module

__all__ = ["Dropout", "DropPath"]


class Dropout(Module):
    """In training, zero each element with probability ``p`` and scale the others by ``1 / (1 - p)``;
    the identity in eval mode. Any shape. ``inplace`` is accepted and ignored."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class DropPath(Module):
    """Stochastic depth (timm): in training, zero a whole sample of the residual branch with probability
    ``drop_prob`` and scale kept samples by ``1 / (1 - drop_prob)`` (``scale_by_keep``); input (N, ...).
    The identity in eval mode and when ``drop_prob == 0``."""

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        if not 0.0 <= drop_prob <= 1.0:
            raise ValueError(f"drop_path probability has to be between 0 and 1, but got {drop_prob}")
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x):
        return F.drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self) -> str:
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"
