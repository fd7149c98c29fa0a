"""``cupy.random`` of the stand-in: the Generator API (``default_rng``, ``Generator``, ``XORWOW``...) and the
legacy ``RandomState`` functions, drawing on the device (no host array ever appears).

The numbers come from NumPy's PCG64 seeded the same way, so they are reproducible under a seed but are NOT
the numbers real CuPy's XORWOW/cuRAND draws; tests may compare devices statistically or by seeding, never
by expecting CuPy's exact stream.
"""
from __future__ import annotations

import types

import numpy as np

from ._core import ndarray, not_in_fusion, operand, wrap


def _size(size):
    return () if size is None else (tuple(size) if isinstance(size, (tuple, list)) else (int(size),))


class BitGenerator:
    def __init__(self, seed=None, *, size=-1) -> None:
        self._seed = seed
        self._np = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))


class XORWOW(BitGenerator):
    pass


class MRG32k3a(BitGenerator):
    pass


class Philox4x3210(BitGenerator):
    pass


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"Unsupported dtype {dtype.name}")
    return dtype


class Generator:
    """``cupy.random.Generator(bit_generator)``: CuPy's subset of NumPy's Generator methods."""

    def __init__(self, bit_generator) -> None:
        if not isinstance(bit_generator, BitGenerator):
            raise TypeError("Generator needs a cupy.random.BitGenerator")
        self.bit_generator = bit_generator
        self._rng = bit_generator._np

    def _out(self, values, out):
        not_in_fusion("cupy.random")
        if out is None:
            return wrap(np.asarray(values))
        if type(out) is not ndarray:
            raise TypeError("out must be a cupy.ndarray")
        out._a[...] = values
        return out

    def random(self, size=None, dtype=np.float64, out=None):
        size = out.shape if out is not None else _size(size)
        return self._out(self._rng.random(size, dtype=_float_dtype(dtype)), out)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        size = out.shape if out is not None else _size(size)
        return self._out(self._rng.standard_normal(size, dtype=_float_dtype(dtype)), out)

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return self._out(self._rng.integers(low, high, _size(size), dtype=dtype, endpoint=endpoint), None)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        lo, hi = (operand(v, "Generator.uniform") for v in (low, high))
        return self._out(self._rng.uniform(lo, hi, _size(size)).astype(_float_dtype(dtype)), None)

    def standard_exponential(self, size=None, dtype=np.float64, method="inv", out=None):
        return self._out(self._rng.standard_exponential(_size(size), dtype=_float_dtype(dtype)), out)

    def exponential(self, scale=1.0, size=None):
        return self._out(self._rng.exponential(operand(scale, "exponential"), _size(size)), None)

    def poisson(self, lam=1.0, size=None):
        return self._out(self._rng.poisson(operand(lam, "poisson"), _size(size)), None)

    def binomial(self, n, p, size=None):
        return self._out(self._rng.binomial(operand(n, "binomial"), operand(p, "binomial"), _size(size)), None)


def default_rng(seed=None):
    if isinstance(seed, Generator):
        return seed
    if isinstance(seed, BitGenerator):
        return Generator(seed)
    return Generator(XORWOW(seed))


class RandomState:
    """The legacy API (``cupy.random.RandomState``), float64 by default as NumPy's."""

    def __init__(self, seed=None, method=None) -> None:
        self.seed(seed)

    def seed(self, seed=None) -> None:
        self._rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))

    def _f(self, values, dtype=None):
        not_in_fusion("cupy.random")
        a = np.asarray(values)
        return wrap(a if dtype is None else a.astype(dtype))

    def rand(self, *size, dtype=float):
        return self._f(self._rng.random(size), dtype)

    def randn(self, *size, dtype=float):
        return self._f(self._rng.standard_normal(size), dtype)

    def random_sample(self, size=None, dtype=float):
        return self._f(self._rng.random(_size(size)), dtype)

    def standard_normal(self, size=None, dtype=float):
        return self._f(self._rng.standard_normal(_size(size)), dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return self._f(self._rng.uniform(operand(low, "uniform"), operand(high, "uniform"), _size(size)), dtype)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        return self._f(self._rng.normal(operand(loc, "normal"), operand(scale, "normal"), _size(size)), dtype)

    def randint(self, low, high=None, size=None, dtype="l"):
        return self._f(self._rng.integers(low, high, _size(size)), dtype)

    def permutation(self, num):
        if type(num) is ndarray:
            return wrap(self._rng.permutation(num._a))
        return self._f(self._rng.permutation(int(num)))

    def shuffle(self, a) -> None:
        if type(a) is not ndarray:
            raise TypeError("The array must be cupy.ndarray")
        self._rng.shuffle(a._a)

    def choice(self, a, size=None, replace=True, p=None):
        a = a._a if type(a) is ndarray else a
        return self._f(self._rng.choice(a, _size(size) or None, replace, None if p is None else operand(p, "p")))


_STATE = [RandomState()]


def module():
    m = types.ModuleType("cupy.random")
    for cls in (BitGenerator, XORWOW, MRG32k3a, Philox4x3210, RandomState):  # (Generator: not exported by CuPy 14)
        setattr(m, cls.__name__, cls)
    m.default_rng = default_rng
    m.get_random_state = lambda: _STATE[0]
    m.set_random_state = lambda rs: _STATE.__setitem__(0, rs)
    m.reset_states = lambda: _STATE.__setitem__(0, RandomState())
    m.seed = lambda seed=None: _STATE[0].seed(seed)
    for name in ("rand", "randn", "random_sample", "standard_normal", "uniform", "normal", "randint",
                 "permutation", "shuffle", "choice"):
        setattr(m, name, (lambda n: lambda *a, **k: getattr(_STATE[0], n)(*a, **k))(name))
    m.random = m.ranf = m.sample = m.random_sample
    return m
