"""Pooling layers: ``AvgPool2d``, ``MaxPool2d``, ``AdaptiveAvgPool2d`` (PyTorch's arguments and repr).

Each layer stores its arguments as given (like PyTorch: ``stride`` defaults to ``kernel_size``) and calls the
functional op in ``lucid/ops/pool.py``; outputs are channels-last (N, C, Ho, Wo).
"""
from __future__ import annotations

from .._tensor import Tensor
from ..ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .module import Module

__all__ = ["AvgPool2d", "MaxPool2d", "AdaptiveAvgPool2d"]


class AvgPool2d(Module):
    """Average over kh x kw windows. See ``lucid.nn.functional.avg_pool2d`` for the arguments.

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, Ho, Wo) with
    ``Ho = (H + 2*ph - kh [+ sh-1 with ceil_mode]) // sh + 1``.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(Module):
    """Maximum over kh x kw windows. See ``lucid.nn.functional.max_pool2d`` for the arguments.

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, Ho, Wo) with
    ``Ho = (H + 2*ph - dh*(kh-1) - 1 [+ sh-1 with ceil_mode]) // sh + 1``.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor):  # noqa: A002
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                          self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (int or (Ho, Wo); None keeps that input size).

    ``AdaptiveAvgPool2d(1)`` is global average pooling: (N, C, H, W) -> (N, C, 1, 1).
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
