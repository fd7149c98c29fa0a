"""``Conv2d``: the layer around ``lucid.nn.functional.conv2d`` (PyTorch's arguments, init, repr)."""
from __future__ import annotations

import math

from .. import _backend
from .._tensor import Tensor
from ..ops.conv import _pair, _same_padding, conv2d
from ..ops.shape import pad as _pad
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Conv2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class Conv2d(Module):
    """2-D convolution over an (N, C_in, H, W) input (or unbatched (C_in, H, W)).

    Args:
        in_channels, out_channels: channels of the input and of the output.
        kernel_size: int or (kh, kw).
        stride: int or (sh, sw) (default 1).
        padding: int, (ph, pw), ``'valid'`` or ``'same'`` (stride 1 only) (default 0).
        dilation: int or (dh, dw), spacing between kernel taps (default 1).
        groups: split channels into this many independent groups; ``groups == in_channels == out_channels``
            is a depthwise convolution (default 1).
        bias: learn an additive per-channel bias (default True).
        padding_mode: ``'zeros'`` (default), ``'reflect'``, ``'replicate'`` or ``'circular'``; other than
            zeros, the input is padded explicitly with ``F.pad`` and then convolved without padding.
        device, dtype: where and in which floating dtype to create the parameters (default cpu, float32).

    Shape: input (N, C_in, H, W); output (N, C_out, Ho, Wo) with
    ``Ho = (H + 2*ph - dh*(kh - 1) - 1) // sh + 1`` (same for W), stored channels-last.

    Attributes: ``weight`` (out_channels, in_channels / groups, kh, kw) and ``bias`` (out_channels,), both
    ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels / groups * kh * kw, PyTorch's default
    (kaiming_uniform_ with a=sqrt(5)); values come from ``lucid.random``, so ``lucid.manual_seed`` makes them
    reproducible (they are not the numbers torch would draw).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(v, int) or isinstance(v, bool) or v < (1 if name == "groups" else 0):
                raise ValueError(f"Conv2d: {name} must be a {'positive' if name == 'groups' else 'non-negative'} "
                                 f"int, got {v!r}")
        if in_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"Conv2d: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        stride = _pair(stride, "stride", "Conv2d")
        dilation = _pair(dilation, "dilation", "Conv2d")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv2d: padding must be an int, a pair of ints, 'same' or 'valid', got "
                                 f"{padding!r}")
            if padding == "same" and stride != (1, 1):
                raise ValueError(f"Conv2d: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride})")
        else:
            padding = _pair(padding, "padding", "Conv2d", minimum=0)
        dtype = _backend.normalize_dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Conv2d: dtype must be floating point, got {dtype}")
        xp = _backend.xp_for(_backend.normalize_device(device))

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = False
        self.output_padding = (0, 0)
        # F.pad order (left, right, top, bottom) for the non-zeros padding modes
        if padding == "valid":
            self._reversed_padding_repeated_twice = (0, 0, 0, 0)
        elif padding == "same":
            self._reversed_padding_repeated_twice = (_same_padding(kernel_size[1], dilation[1])
                                                     + _same_padding(kernel_size[0], dilation[0]))
        else:
            self._reversed_padding_repeated_twice = (padding[1], padding[1], padding[0], padding[0])
        self.weight = Parameter(xp.empty((out_channels, in_channels // groups) + kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(xp.empty((out_channels,), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw weight and bias with PyTorch's default Conv2d initialisation."""
        # a=sqrt(5) makes the kaiming bound sqrt(6 / ((1 + 5) * fan_in)) = 1 / sqrt(fan_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        if self.padding_mode != "zeros":
            padded = _pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv2d(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s
