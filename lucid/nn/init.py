"""Parameter initialisation (PyTorch's ``torch.nn.init``): fill a tensor in place and return it.

Every function writes into the tensor's existing array (so optimizers holding it keep seeing it), without
recording a graph, and bumps its version counter. Random fills draw on the host from ``generator`` (default:
``lucid.random.default_generator``), so a seed gives the same values on every device; samples are drawn in
float32 for float32/float16 tensors (float64 only for float64 tensors).

    w = lucid.nn.Parameter(lucid.empty(64, 32))
    lucid.nn.init.kaiming_uniform_(w, a=math.sqrt(5))   # what nn.Linear does
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _backend
from .._tensor import Tensor
from .. import random as _random

__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
]


# -- helpers -------------------------------------------------------------------------------------------------
def _check_tensor(tensor, fn: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{fn}: expected a lucid.Tensor, got {type(tensor).__name__}")


def _check_float(tensor, fn: str) -> None:
    _check_tensor(tensor, fn)
    if tensor.dtype.kind != "f":
        raise TypeError(f"{fn}: expected a floating point tensor, got dtype {tensor.dtype}")


def _rng(generator):
    """The numpy Generator behind ``generator`` (a lucid Generator, a numpy Generator, or None)."""
    if generator is None:
        return _random.default_generator.rng  # looked up each call: manual_seed may replace its state
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(getattr(generator, "rng", None), np.random.Generator):
        return generator.rng
    raise TypeError(f"generator must be a lucid.random.Generator or None, got {type(generator).__name__}")


def _sample_dtype(tensor):
    # float16 has too few mantissa bits to transform samples in; draw in float32 and round once at the end
    return np.float64 if tensor.dtype == np.float64 else np.float32


def _write(tensor: Tensor, values) -> Tensor:
    """Copy host ``values`` into the tensor's array in place (keeping its dtype, layout and device)."""
    arr = tensor.array
    if _backend.device_of(arr) != "cpu":
        values = _backend.to_device(np.ascontiguousarray(values), _backend.device_of(arr))
    arr[...] = values
    tensor._version += 1
    return tensor


def _has_zero_dim(tensor: Tensor, fn: str) -> bool:
    if 0 in tensor.shape:
        warnings.warn(f"{fn}: initializing a zero-element tensor (shape {tuple(tensor.shape)}) is a no-op",
                      stacklevel=3)
        return True
    return False


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    linear, conv*, sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky_relu: sqrt(2 / (1 + slope^2)) with
    ``param`` the negative slope (default 0.01); selu: 3/4.
    """
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d")
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
                     f"{list(linear_fns) + ['sigmoid', 'tanh', 'relu', 'leaky_relu', 'selu']}")


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: Linear (out, in) -> (in, out); Conv (out, in/groups, *k) ->
    (in/groups * prod(k), out * prod(k)), exactly as PyTorch computes them."""
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
                         f"(got shape {shape})")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} is not supported; expected 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# -- fills ---------------------------------------------------------------------------------------------------
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with samples from U(a, b)."""
    _check_float(tensor, "uniform_")
    if b < a:
        raise ValueError(f"uniform_: expected a <= b, got a={a}, b={b}")
    dt = _sample_dtype(tensor)
    u = _rng(generator).random(tensor.shape, dtype=dt)
    return _write(tensor, u * dt(b - a) + dt(a))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with samples from N(mean, std^2)."""
    _check_float(tensor, "normal_")
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    dt = _sample_dtype(tensor)
    z = _rng(generator).standard_normal(tensor.shape, dtype=dt)
    return _write(tensor, z * dt(std) + dt(mean))


def _trunc_standard_normal(rng, n: int, lo: float, hi: float, dt) -> np.ndarray:
    """``n`` samples of N(0, 1) conditioned on [lo, hi].

    Rejection sampling (redraw the samples that fall outside) is exact and cheap when the interval holds a
    fair share of the mass (95% for the usual [-2, 2]). A narrow or far-out interval uses inverse-CDF
    sampling in float64 on the side of the mirror where the CDF values are small (so far tails such as
    [5, 6] keep their precision, unlike PyTorch's float32 erfinv, which is why lucid does not warn there).
    """
    mass = 0.5 * (math.erf(hi / math.sqrt(2.0)) - math.erf(lo / math.sqrt(2.0)))
    if mass >= 0.1:
        out = np.empty(n, dtype=dt)
        pending = np.arange(n)
        while pending.size:
            z = rng.standard_normal(pending.size, dtype=dt)
            ok = (z >= lo) & (z <= hi)
            out[pending[ok]] = z[ok]
            pending = pending[~ok]
        return out
    from scipy.special import ndtr, ndtri  # noqa: PLC0415  (only for rare narrow intervals)

    flip = lo > 0  # sample -z on [-hi, -lo], where the CDF is below 1/2 and keeps its relative precision
    a, b = (-hi, -lo) if flip else (lo, hi)
    p_lo, p_hi = ndtr(a), ndtr(b)
    z = ndtri(p_lo + rng.random(n) * (p_hi - p_lo))
    z = np.clip(-z if flip else z, lo, hi)
    return z.astype(dt)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None) -> Tensor:
    """Fill with samples from N(mean, std^2) truncated to [a, b] (absolute bounds, as in PyTorch/timm).

    Every value lies in [a, b]. Note the bounds are *not* in units of std: ``trunc_normal_(w, std=.02)``
    keeps the default [-2, 2], i.e. effectively no truncation.
    """
    _check_float(tensor, "trunc_normal_")
    if std <= 0:
        raise ValueError(f"trunc_normal_: std must be positive, got {std}")
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    dt = _sample_dtype(tensor)
    lo, hi = (a - mean) / std, (b - mean) / std
    z = _trunc_standard_normal(_rng(generator), math.prod(tensor.shape), lo, hi, dt).reshape(tensor.shape)
    # the affine map can round a value just past a bound in float32; clip keeps the promise
    return _write(tensor, np.clip(z * dt(std) + dt(mean), dt(a), dt(b)))


def constant_(tensor: Tensor, val) -> Tensor:
    """Fill with ``val``."""
    _check_tensor(tensor, "constant_")
    tensor.array[...] = val
    tensor._version += 1
    return tensor


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return constant_(tensor, 0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    _check_float(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out)) if fan_in + fan_out else 0.0
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator=generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    _check_float(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out)) if fan_in + fan_out else 0.0
    return normal_(tensor, 0.0, std, generator=generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).

    ``mode`` "fan_in" preserves the forward variance, "fan_out" the backward one. ``nn.Linear`` and
    ``nn.Conv2d`` use ``a=sqrt(5)``, which gives b = 1 / sqrt(fan_in).
    """
    _check_float(tensor, "kaiming_uniform_")
    if _has_zero_dim(tensor, "kaiming_uniform_"):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator=generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> Tensor:
    """He normal: N(0, std^2) with std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    _check_float(tensor, "kaiming_normal_")
    if _has_zero_dim(tensor, "kaiming_normal_"):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator=generator)
