"""Activation layers (PyTorch's names and arguments). Each wraps one op from lucid/ops; none has
parameters. ``inplace=`` is accepted for compatibility and ignored (lucid returns new tensors)."""
from __future__ import annotations

from ..ops import activation as A
from ..ops import elementwise as E
from ..ops import reduce as R
from .module import Module

__all__ = ["GELU", "ReLU", "SiLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "LeakyReLU", "Softplus",
           "Hardswish", "Hardsigmoid", "ELU"]


class GELU(Module):
    """``x * Phi(x)`` (``approximate="none"``) or its tanh approximation (``"tanh"``); any shape."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return A.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class _Inplace(Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    """``max(x, 0)``; any shape."""

    def forward(self, input):
        return E.relu(input)


class SiLU(_Inplace):
    """``x * sigmoid(x)``; any shape."""

    def forward(self, input):
        return A.silu(input)


class Hardswish(_Inplace):
    """``x * relu6(x + 3) / 6``; any shape."""

    def forward(self, input):
        return A.hardswish(input)


class Hardsigmoid(_Inplace):
    """``relu6(x + 3) / 6``; any shape."""

    def forward(self, input):
        return A.hardsigmoid(input)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``; any shape."""

    def forward(self, input):
        return E.sigmoid(input)


class Tanh(Module):
    """``tanh(x)``; any shape."""

    def forward(self, input):
        return E.tanh(input)


class LeakyReLU(Module):
    """``x`` for ``x > 0``, else ``negative_slope * x``; any shape."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return A.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Softplus(Module):
    """``log(1 + exp(beta x)) / beta``, linear above ``threshold``; any shape."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        return A.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class ELU(Module):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``; any shape."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return A.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


def _legacy_softmax_dim(ndim: int) -> int:
    # torch's rule when Softmax(dim=None) (deprecated there too): dim 0 for 0-D, 1-D and 3-D inputs, else 1
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """Softmax along ``dim`` (rows sum to 1); any shape. ``dim=None`` uses torch's legacy implicit choice."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return R.softmax(input, self.dim if self.dim is not None else _legacy_softmax_dim(input.ndim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``log(softmax(x))`` along ``dim``, computed stably; any shape."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return R.log_softmax(input, self.dim if self.dim is not None else _legacy_softmax_dim(input.ndim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
