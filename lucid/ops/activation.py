"""Activation functions (``torch.nn.functional`` names and semantics): gelu, silu, softplus, leaky_relu,
hardswish, hardsigmoid, elu. (relu, sigmoid, tanh, softmax and log_softmax live in elementwise/reduce.)

Each is one ``Function`` that saves only its input (or only its output, where the derivative is cheaper
from it) and returns a result with the input's memory layout, so channels-last activations stay so.
GELU's float32 path runs the fused numba kernels of lucid/kernels/gelu.py (polynomial erf, forward and
backward each one parallel pass); float64, CuPy and ``LUCID_NO_NUMBA=1`` use the exact ufunc reference.

``inplace=`` arguments are accepted for PyTorch compatibility but lucid always returns a new tensor
(in-place activations would have to be undone for the backward pass).
"""
from __future__ import annotations

from .. import _backend
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from ..kernels import gelu as _gelu_kernels
from .elementwise import sigmoid_array

__all__ = ["gelu", "silu", "softplus", "leaky_relu", "hardswish", "hardsigmoid", "elu"]


def _float(x, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")
    return x if x.array.dtype.kind == "f" else x.to(_backend.float32)


class GELU(Function):
    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        return _gelu_kernels.forward(x, approximate)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return _gelu_kernels.backward(x, g, ctx.approximate), None


def gelu(input, approximate: str = "none"):
    """Gaussian Error Linear Unit: ``x * Phi(x)`` (``approximate="none"``, exact erf) or the tanh form
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (``approximate="tanh"``). Any shape."""
    if approximate not in _gelu_kernels.APPROXIMATIONS:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(_float(input, "gelu"), approximate)


class SiLU(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * sigmoid_array(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = sigmoid_array(x)
        # d/dx x s(x) = s + x s (1 - s) = s (1 + x (1 - s))
        return g * s * (x * (1 - s) + 1)


def silu(input, inplace: bool = False):
    """SiLU / swish: ``x * sigmoid(x)``. Any shape."""
    return SiLU.apply(_float(input, "silu"))


class Softplus(Function):
    @staticmethod
    def forward(ctx, x, beta, threshold):
        xp = xp_of(x)
        bx = x * beta
        # log(1 + exp(bx)) = max(bx, 0) + log1p(exp(-|bx|)): no overflow for large |bx|
        soft = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / beta
        ctx.save_for_backward(x)
        ctx.args = (beta, threshold)
        return xp.where(bx > threshold, x, soft).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        beta, threshold = ctx.args
        xp = xp_of(x)
        bx = x * beta
        return g * xp.where(bx > threshold, 1, sigmoid_array(bx)).astype(x.dtype, copy=False), None, None


def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    """``log(1 + exp(beta x)) / beta``, linear (``x``) where ``beta x > threshold``, as torch."""
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero")
    return Softplus.apply(_float(input, "softplus"), float(beta), float(threshold))


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, slope):
        xp = xp_of(x)
        pos = x > 0
        ctx.save_for_backward(pos)
        ctx.slope = slope
        return xp.where(pos, x, x * slope).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (pos,) = ctx.saved_tensors
        xp = xp_of(g)
        return xp.where(pos, g, g * ctx.slope).astype(g.dtype, copy=False), None


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    """``x`` where ``x > 0`` else ``negative_slope * x`` (the gradient at 0 is ``negative_slope``, as torch)."""
    return LeakyReLU.apply(_float(input, "leaky_relu"), float(negative_slope))


class Hardswish(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * xp_of(x).clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        xp = xp_of(x)
        # torch: 0 for x <= -3, x/3 + 1/2 strictly inside (-3, 3), 1 for x >= 3
        d = xp.where(x <= -3, 0, xp.where(x < 3, x / 3 + 0.5, 1)).astype(x.dtype, copy=False)
        return g * d


def hardswish(input, inplace: bool = False):
    """``x * relu6(x + 3) / 6``."""
    return Hardswish.apply(_float(input, "hardswish"))


class Hardsigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return xp_of(x).clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((x > -3) & (x < 3)) / 6


def hardsigmoid(input, inplace: bool = False):
    """``relu6(x + 3) / 6``; the gradient is 1/6 strictly inside (-3, 3), 0 elsewhere (torch)."""
    return Hardsigmoid.apply(_float(input, "hardsigmoid"))


class ELU(Function):
    @staticmethod
    def forward(ctx, x, alpha):
        xp = xp_of(x)
        y = xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0))).astype(x.dtype, copy=False)
        ctx.save_for_backward(x, y)
        ctx.alpha = alpha
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        xp = xp_of(x)
        return g * xp.where(x > 0, 1, y + ctx.alpha).astype(x.dtype, copy=False), None


def elu(input, alpha: float = 1.0, inplace: bool = False):
    """``x`` where ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    return ELU.apply(_float(input, "elu"), float(alpha))
