"""``Linear``, ``Identity`` and ``Flatten`` layers (PyTorch's names, arguments, init and repr)."""
from __future__ import annotations

import math

from .. import _backend
from .._tensor import Tensor
from ..ops.linear import linear
from ..ops.shape import flatten
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Linear", "Identity", "Flatten"]


class Identity(Module):
    """Return the input unchanged; any constructor arguments are accepted and ignored (as in PyTorch), so it
    can stand in for a layer that was configured away.

    Shape: input (*), output (*), the same tensor object.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last dim.

    Args:
        in_features: size of each input sample's last dim.
        out_features: size of each output sample's last dim.
        bias: learn an additive bias (default True).
        device, dtype: where and in which floating dtype to create the parameters (default cpu, float32).

    Shape: input (*, in_features) with any number of leading dims; output (*, out_features).

    Attributes: ``weight`` (out_features, in_features) and ``bias`` (out_features,), initialised as PyTorch
    does: weight ~ U(-1/sqrt(in_features), 1/sqrt(in_features)) (kaiming_uniform_ with a=sqrt(5)), bias ~
    the same bound; values come from ``lucid.random``'s default generator, so ``lucid.manual_seed``
    makes them reproducible (they are not the numbers torch would draw).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {v!r}")
        dtype = _backend.normalize_dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Linear: dtype must be floating point, got {dtype}")
        device = _backend.normalize_device(device)
        self.in_features = in_features
        self.out_features = out_features
        xp = _backend.xp_for(device)
        self.weight = Parameter(xp.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(xp.empty((out_features,), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw weight and bias with PyTorch's default Linear initialisation."""
        # a=sqrt(5) makes the kaiming bound sqrt(6 / ((1 + 5) * fan_in)) = 1 / sqrt(fan_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Flatten dims ``start_dim`` .. ``end_dim`` (inclusive, negative counts from the end) into one.

    Shape: input (*, S_start, ..., S_end, *) -> output (*, prod(S_start..S_end), *); e.g. the default
    (N, C, H, W) -> (N, C*H*W), in NCHW (logical) order whatever the memory layout.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
