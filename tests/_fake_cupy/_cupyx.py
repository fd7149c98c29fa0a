"""``cupyx`` of the stand-in: scatter_add/max/min, rsqrt, allow_synchronize (syncs become errors, as in
CuPy), errstate, pinned host buffers, and ``cupyx.scipy.special`` (SciPy's ufuncs behind CuPy's rules)."""
from __future__ import annotations

import contextlib
import types

import numpy as np

from ._core import ufunc
from ._log import LOG


class DeviceSynchronized(RuntimeError):
    """Raised when the device synchronizes inside ``cupyx.allow_synchronize(False)``."""


@contextlib.contextmanager
def allow_synchronize(allow: bool):
    prev = LOG.sync_allowed
    LOG.sync_allowed = bool(allow)
    try:
        yield
    finally:
        LOG.sync_allowed = prev


def scatter_add(a, slices, value):
    a.scatter_add(slices, value)


def scatter_max(a, slices, value):
    a.scatter_max(slices, value)


def scatter_min(a, slices, value):
    a.scatter_min(slices, value)


class _NumpyRsqrt:
    """1/sqrt(x) with the attributes ``ufunc`` reads from a NumPy ufunc (NumPy has no rsqrt)."""

    __name__ = "rsqrt"
    nin, nout, types = 1, 1, ["e->e", "f->f", "d->d"]

    def __call__(self, x, out=None, **kwargs):
        r = np.sqrt(x, out=out, **kwargs)
        return np.reciprocal(r, out=r if out is not None else None)


def _special(names) -> types.ModuleType:
    import scipy.special as sp

    special = types.ModuleType("cupyx.scipy.special")
    for name in names:
        f = getattr(sp, name, None)
        if isinstance(f, np.ufunc):
            setattr(special, name, ufunc(f, name))
    return special


def modules(names: dict) -> dict:
    cupyx = types.ModuleType("cupyx")
    cupyx.DeviceSynchronized = DeviceSynchronized
    cupyx.allow_synchronize = allow_synchronize
    cupyx.scatter_add, cupyx.scatter_max, cupyx.scatter_min = scatter_add, scatter_max, scatter_min
    cupyx.rsqrt = ufunc(_NumpyRsqrt(), "rsqrt")
    cupyx.errstate = lambda **kwargs: contextlib.nullcontext()
    cupyx.geterr = lambda: {"linalg": "ignore"}
    cupyx.seterr = lambda **kwargs: {"linalg": "ignore"}
    cupyx.empty_pinned = lambda shape, dtype=float, order="C": np.empty(shape, dtype, order)
    cupyx.zeros_pinned = lambda shape, dtype=float, order="C": np.zeros(shape, dtype, order)
    cupyx.empty_like_pinned = lambda a, dtype=None, order="K", subok=None, shape=None: np.empty(
        a.shape if shape is None else shape, dtype or a.dtype)
    cupyx.zeros_like_pinned = lambda a, dtype=None, order="K", subok=None, shape=None: np.zeros(
        a.shape if shape is None else shape, dtype or a.dtype)
    cupyx.get_runtime_info = lambda full=True: "CuPy stand-in (tests/_fake_cupy): NumPy on the host"
    scipy = types.ModuleType("cupyx.scipy")
    scipy.special = _special(names["cupyx.scipy.special"])
    cupyx.scipy = scipy
    return {"cupyx": cupyx, "cupyx.scipy": scipy, "cupyx.scipy.special": scipy.special}
