"""Loss layers (PyTorch's names, arguments and buffers): ``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``,
``BCEWithLogitsLoss``. Class weights (and ``pos_weight``) are registered as buffers named as in torch, so
they move with ``.to()`` and appear in ``state_dict()`` the same way."""
from __future__ import annotations

from .._tensor import Tensor
from ..ops import loss as F
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCEWithLogitsLoss"]


def _as_tensor(v):
    return v if v is None or isinstance(v, Tensor) else Tensor(v)


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        F._check_reduction(reduction)
        self.reduction = reduction


class CrossEntropyLoss(_Loss):
    """Cross entropy of logits (N, C, ...) against class indices (N, ...) or class probabilities
    (N, C, ...), with optional class ``weight`` (C,), ``ignore_index`` and ``label_smoothing``
    (see ``lucid.nn.functional.cross_entropy``)."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _as_tensor(weight))
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C, ...) at class indices (N, ...)."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _as_tensor(weight))
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error between input and target (broadcast); "mean", "sum" or "none"."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross entropy of logits against targets of the same shape, with optional
    per-element ``weight`` and per-class ``pos_weight`` (broadcast along the last dim)."""

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _as_tensor(weight))
        self.register_buffer("pos_weight", _as_tensor(pos_weight))

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)
