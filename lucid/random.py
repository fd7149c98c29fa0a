"""Random numbers: a seeded default ``Generator`` and PyTorch-named samplers returning float32 tensors.

The samplers that take a size (``rand``, ``randn``, ``randint``, ``normal``, ``uniform``, ``permutation``,
``bernoulli`` with a number) draw from NumPy's PCG64 on the host and move the result to the GPU when asked,
so a seed gives the same numbers on every device (model initialisation, for instance). Draws whose size
follows a GPU tensor, made every step (dropout and drop-path masks, ``bernoulli`` of a GPU tensor), come
from the generator's device stream (``device_random``): a CuPy generator seeded once from this generator's
stream, so GPU runs are reproducible from ``manual_seed`` and no mask is copied from the host. Where lucid
differs from torch: the device stream is not part of ``get_rng_state()``; after ``set_rng_state`` (or
``manual_seed``) it restarts from a seed drawn from the restored host stream.
``get_rng_state()`` returns a JSON-serialisable dict, which is what checkpoints store.
"""
from __future__ import annotations

import numpy as np

from . import _backend
from ._tensor import Tensor


class Generator:
    """A random number generator (PCG64) with PyTorch's seeding methods."""

    def __init__(self, seed: int | None = None) -> None:
        self._seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2 ** 63))
        self.rng = np.random.Generator(np.random.PCG64(self._seed))
        self._device_rng = None  # the CuPy generator of the device stream, made on first use

    def manual_seed(self, seed: int) -> "Generator":
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
        self._seed = int(seed)
        self.rng = np.random.Generator(np.random.PCG64(self._seed))
        self._device_rng = None
        return self

    def seed(self) -> int:
        """Re-seed from OS entropy and return the new seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy % (2 ** 63)))
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return {"seed": self._seed, "bit_generator": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        if not isinstance(state, dict) or "bit_generator" not in state:
            raise ValueError("set_state: expected a dict from get_state()/get_rng_state()")
        self._seed = int(state.get("seed", self._seed))
        self.rng.bit_generator.state = state["bit_generator"]
        self._device_rng = None

    def device_rng(self, device: str):
        """The generator drawing on ``device``: this one's NumPy generator for "cpu"; for "gpu" a CuPy
        ``Generator`` seeded (once, and again after ``manual_seed``/``set_state``) with a number drawn from
        this generator's stream."""
        if device == "cpu":
            return self.rng
        if self._device_rng is None:
            seed = int(self.rng.integers(0, 2 ** 63))
            self._device_rng = _backend.cupy_module().random.default_rng(seed)
        return self._device_rng


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (and return it), like torch.manual_seed."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    default_generator.set_state(state)


def device_random(shape, device: str, generator=None, dtype=np.float32):
    """Uniform samples on [0, 1) of ``shape`` drawn on ``device`` (an array of that device, not a Tensor)
    from ``generator``'s (default: the default generator's) stream for that device; see the module doc."""
    return (generator or default_generator).device_rng(device).random(shape, dtype=dtype)


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(int(s) for s in size[0])
    return tuple(int(s) for s in size)


def _finish(array, dtype, device, requires_grad) -> Tensor:
    dtype = _backend.normalize_dtype(dtype)
    if array.dtype != dtype:
        array = array.astype(dtype)
    if device is not None:
        array = _backend.to_device(array, _backend.normalize_device(device))
    t = Tensor._wrap(array)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _gen(generator):
    return (generator or default_generator).rng


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples on [0, 1)."""
    return _finish(_gen(generator).random(_size(size), dtype=np.float32), dtype, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples."""
    return _finish(_gen(generator).standard_normal(_size(size), dtype=np.float32), dtype, device, requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None, device=None) -> Tensor:
    """Integers in [low, high), int64 by default. As in torch, ``randint(high, size)`` (a tuple or list as
    the second argument) and ``randint(high)`` draw from [0, high)."""
    if isinstance(high, (tuple, list)):  # torch.randint(high, size)
        low, high, size = 0, low, tuple(high)
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    arr = _gen(generator).integers(low, high, size=_size((size,) if isinstance(size, int) else (size,)))
    return _finish(arr, dtype or _backend.int64, device, False)


def normal(mean=0.0, std=1.0, size=(), generator=None, dtype=None, device=None) -> Tensor:
    if std < 0:
        raise ValueError(f"normal: std must be non-negative, got {std}")
    arr = _gen(generator).standard_normal(_size((size,) if isinstance(size, int) else (size,)),
                                          dtype=np.float32) * np.float32(std) + np.float32(mean)
    return _finish(arr, dtype, device, False)


def uniform(low=0.0, high=1.0, size=(), generator=None, dtype=None, device=None) -> Tensor:
    if high < low:
        raise ValueError(f"uniform: high ({high}) must not be smaller than low ({low})")
    arr = _gen(generator).random(_size((size,) if isinstance(size, int) else (size,)), dtype=np.float32)
    return _finish(arr * np.float32(high - low) + np.float32(low), dtype, device, False)


def permutation(n: int, generator=None, device=None) -> Tensor:
    """A random permutation of 0..n-1 (torch.randperm)."""
    return _finish(_gen(generator).permutation(int(n)), _backend.int64, device, False)


randperm = permutation


def bernoulli(p, size=None, generator=None, device=None) -> Tensor:
    """0/1 float32 samples, 1 with probability ``p`` (a float, or a tensor of probabilities)."""
    probs = p.array if isinstance(p, Tensor) else p
    shape = tuple(probs.shape) if size is None and hasattr(probs, "shape") else (
        np.shape(probs) if size is None else _size((size,) if isinstance(size, int) else (size,)))
    if _backend.is_array(probs) and _backend.device_of(probs) == "gpu":  # drawn where the probabilities are
        u = device_random(shape, "gpu", generator)
        arr = (u < probs).astype(np.float32)
    else:
        arr = (_gen(generator).random(shape, dtype=np.float32) < probs).astype(np.float32)
    dev = device if device is not None else (p.device if isinstance(p, Tensor) else None)
    return _finish(arr, _backend.float32, dev, False)


def rand_like(x: Tensor, generator=None) -> Tensor:
    return rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def randn_like(x: Tensor, generator=None) -> Tensor:
    return randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
