"""Elementwise ops: arithmetic with broadcasting, unary math, clamp/maximum/minimum/where, comparisons.

Each op is a ``Function`` with its backward beside it. Python scalars stay "weak" (NumPy 2 semantics), so
``float32_tensor * 2.5`` stays float32, as in PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from ._util import result_type, unbroadcast

_SCALARS = (int, float, bool, np.generic)


def _shape(x):
    return getattr(x, "shape", ())


def _prepare(a, b, need_float: bool = False):
    """Bring two operands (tensor or scalar, at least one tensor) to PyTorch's result dtype."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if not ta and not tb:
        raise TypeError(f"expected at least one Tensor operand, got {type(a).__name__} and {type(b).__name__}")
    if ta and tb:
        if a.device != b.device:  # a 0-d CPU tensor is a scalar on any device, as in torch
            if b.ndim == 0 and b.device == "cpu":
                b = b.to(a.device)
            elif a.ndim == 0 and a.device == "cpu":
                a = a.to(b.device)
        da, db = a.array.dtype, b.array.dtype
        if da != db:
            target = result_type(da, db, a.array.ndim == 0, b.array.ndim == 0)
            if need_float and target.kind != "f":
                target = _backend.float32
            a = a if da == target else a.to(target)
            b = b if db == target else b.to(target)
        elif need_float and da.kind != "f":
            a, b = a.to(_backend.float32), b.to(_backend.float32)
        return a, b
    t, s = (a, b) if ta else (b, a)
    if isinstance(s, np.ndarray) or _backend.device_of(s) == "gpu":
        s = Tensor(s, device=t.device)
        return _prepare(a if ta else s, s if ta else b, need_float)
    if not isinstance(s, _SCALARS):
        raise TypeError(f"unsupported operand type {type(s).__name__} for a Tensor operation")
    if isinstance(s, np.generic):
        s = s.item()
    kind = t.array.dtype.kind
    if kind != "f" and (isinstance(s, float) or need_float):
        t = t.to(_backend.float32)
    elif kind == "b" and isinstance(s, int) and not isinstance(s, bool):
        t = t.to(_backend.int64)
    return (t, s) if ta else (s, t)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        return a + b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g, sa) if na else None), (unbroadcast(g, sb) if nb else None)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        return a - b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g, sa) if na else None), (unbroadcast(-g, sb) if nb else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g * b, _shape(a)) if na else None), (unbroadcast(g * a, _shape(b)) if nb else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(g / b, _shape(a)) if na else None
        gb = unbroadcast(-g * a / (b * b), _shape(b)) if nb else None
        return ga, gb


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = a ** b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = gb = None
        # a == 0 legitimately gives inf/nan before the masks below: no RuntimeWarnings for that
        with np.errstate(divide="ignore", invalid="ignore"):
            if na:
                if isinstance(b, _SCALARS):
                    ga = g * b * a ** (b - 1) if b != 0 else g * 0
                else:
                    xp = xp_of(b)
                    ga = unbroadcast(xp.where(b == 0, 0, g * b * a ** (b - 1)), _shape(a))
            if nb:
                xp = xp_of(out)
                if isinstance(a, _SCALARS):
                    loga = math.log(a) if a > 0 else float("-inf") if a == 0 else float("nan")
                else:
                    loga = xp.log(a)
                # d(a^b)/db = a^b log a; PyTorch defines it as 0 where a == 0 and b >= 0
                gb = g * out * loga
                if not isinstance(a, _SCALARS):
                    gb = xp.where((a == 0) & (b >= 0), 0, gb)
                elif a == 0:
                    gb = xp.where(b >= 0, 0, gb)
                gb = unbroadcast(gb, _shape(b))
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


def _binary(op, a, b):
    """``op.apply(a, b)``, turning NumPy's broadcasting ValueError into an error that names both shapes."""
    try:
        return op.apply(a, b)
    except ValueError as exc:
        if "broadcast" not in str(exc):
            raise
        raise RuntimeError(f"{op.__name__.lower()}: shapes {tuple(_shape(a))} and {tuple(_shape(b))} cannot "
                           "be broadcast together") from None


def add(a, b, alpha=1):
    if alpha != 1:  # scale first: b may be a number (x.add(2, alpha=0.5))
        b = mul(b, alpha) if isinstance(b, Tensor) else b * alpha
    a, b = _prepare(a, b)
    return _binary(Add, a, b)


def sub(a, b, alpha=1):
    if alpha != 1:  # scale first: b may be a number (x.sub(2, alpha=0.5))
        b = mul(b, alpha) if isinstance(b, Tensor) else b * alpha
    a, b = _prepare(a, b)
    return _binary(Sub, a, b)


def mul(a, b):
    return _binary(Mul, *_prepare(a, b))


def div(a, b):
    return _binary(Div, *_prepare(a, b, need_float=True))


def pow(a, b):  # noqa: A001 (PyTorch's name)
    return _binary(Pow, *_prepare(a, b))


def neg(a):
    return Neg.apply(a)


# ---------------------------------------------------------------------------------------------------------
# unary math
def _float_input(x: Tensor) -> Tensor:
    return x if x.array.dtype.kind == "f" else x.to(_backend.float32)


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = xp_of(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return xp_of(x).log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = xp_of(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g / (2 * y)


class Rsqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = 1 / xp_of(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (-0.5) * y * y * y


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return xp_of(x).abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * xp_of(x).sign(x)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = xp_of(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


def sigmoid_array(x):
    """Numerically stable logistic function of an array."""
    xp = xp_of(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = sigmoid_array(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


class Relu(Function):
    @staticmethod
    def forward(ctx, x):
        y = xp_of(x).maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (y > 0)


def erf_array(x):
    """erf of an array: SciPy on the CPU, cupyx on the GPU (both keep float32 as float32)."""
    if isinstance(x, np.ndarray):
        from scipy.special import erf as _erf
    else:
        from cupyx.scipy.special import erf as _erf
    return _erf(x)


class Erf(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return erf_array(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (2.0 / math.sqrt(math.pi)) * xp_of(x).exp(-x * x)


def exp(x):
    return Exp.apply(_float_input(x))


def log(x):
    return Log.apply(_float_input(x))


def sqrt(x):
    return Sqrt.apply(_float_input(x))


def rsqrt(x):
    return Rsqrt.apply(_float_input(x))


def abs(x):  # noqa: A001
    return Abs.apply(x)


def tanh(x):
    return Tanh.apply(_float_input(x))


def sigmoid(x):
    return Sigmoid.apply(_float_input(x))


def relu(x):
    return Relu.apply(x)


def erf(x):
    return Erf.apply(_float_input(x))


# ---------------------------------------------------------------------------------------------------------
# clamp, maximum, minimum, where
class Clamp(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        xp = xp_of(x)
        # strictly inside the bounds, as PyTorch 2.14 does: a value sitting on a bound gets no gradient
        mask = xp.ones(x.shape, dtype=bool)
        if lo is not None:
            mask &= x > lo
        if hi is not None:
            mask &= x < hi
        ctx.save_for_backward(mask)
        return xp.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask, None, None


def clamp(x, min=None, max=None):  # noqa: A002
    """Clamp into [min, max] (either may be None).

    With number bounds the gradient passes where min < x < max (not on the bounds), as in PyTorch. With
    tensor bounds it is ``minimum(maximum(x, min), max)``: a tie with a bound splits the gradient evenly
    between ``x`` and the bound, which is also what PyTorch does.
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min if isinstance(min, Tensor) else Tensor(min, dtype=x.dtype))
        if max is not None:
            out = minimum(out, max if isinstance(max, Tensor) else Tensor(max, dtype=x.dtype))
        return out
    if x.array.dtype.kind != "f" and (isinstance(min, float) or isinstance(max, float)):
        x = x.to(_backend.float32)
    return Clamp.apply(x, min, max)


class _MaxMin(Function):
    pick_first = None  # ufunc name: "greater" for maximum, "less" for minimum

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.save_for_backward(a, b)
        xp = xp_of(a)
        return xp.maximum(a, b) if cls.pick_first == "greater" else xp.minimum(a, b)

    @classmethod
    def backward(cls, ctx, g):
        a, b = ctx.saved_tensors
        xp = xp_of(a)
        first = getattr(xp, cls.pick_first)(a, b)
        tie = a == b
        # ties split the gradient evenly, as PyTorch does
        wa = xp.where(tie, 0.5, first.astype(g.dtype)).astype(g.dtype, copy=False)
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(g * wa, _shape(a)) if na else None
        gb = unbroadcast(g * (1 - wa), _shape(b)) if nb else None
        return ga, gb


class Maximum(_MaxMin):
    pick_first = "greater"


class Minimum(_MaxMin):
    pick_first = "less"


def maximum(a, b):
    return _binary(Maximum, *_prepare(a, b))


def minimum(a, b):
    return _binary(Minimum, *_prepare(a, b))


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond = cond
        ctx.shapes = (_shape(a), _shape(b))
        return xp_of(cond).where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        cond = ctx.cond
        sa, sb = ctx.shapes
        _, na, nb = ctx.needs_input_grad
        ga = unbroadcast(g * cond, sa) if na else None
        gb = unbroadcast(g * ~cond, sb) if nb else None
        return None, ga, gb


def where(condition, input, other):  # noqa: A002
    """Elements of ``input`` where ``condition`` is true, else of ``other`` (broadcasting)."""
    cond = condition.array if isinstance(condition, Tensor) else _backend.as_array(condition)
    if cond.dtype != np.bool_:
        cond = cond.astype(bool)
    if isinstance(input, Tensor) or isinstance(other, Tensor):
        input, other = _prepare(input, other)
    else:
        input, other = Tensor(input), Tensor(other)
    device = (input if isinstance(input, Tensor) else other).device
    if _backend.device_of(cond) != device:
        if isinstance(condition, Tensor):
            raise RuntimeError(f"where: expected all tensors on the same device, got condition on "
                               f"{_backend.device_of(cond)} and values on {device}")
        cond = _backend.to_device(cond, device)  # a list / NumPy mask goes where the values are
    return Where.apply(cond, input, other)


def compare(ufunc_name: str, a, b) -> Tensor:
    """Comparison / logical op: a bool tensor without gradient."""
    a, b = _prepare(a, b)
    xa = a.array if isinstance(a, Tensor) else a
    xb = b.array if isinstance(b, Tensor) else b
    xp = xp_of(xa) if isinstance(a, Tensor) else xp_of(xb)
    return Tensor._wrap(getattr(xp, ufunc_name)(xa, xb))
