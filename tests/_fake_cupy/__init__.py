"""A strict CuPy stand-in, so that lucid's ``device="gpu"`` path runs in every test run without a GPU.

See README.md beside this file for the contract (what it enforces, what it logs, what it cannot check).

    from tests._fake_cupy import LOG, modules
    mods = modules()            # {"cupy": ..., "cupy.cuda": ..., "cupyx": ..., "cupyx.scipy.special": ...}
    cp = mods["cupy"]
    x = cp.asarray(np.ones(3))  # an explicit upload (LOG.uploads)
    x + np.ones(3)              # TypeError: Unsupported type <class 'numpy.ndarray'> (LOG.crossings)
    np.asarray(x)               # TypeError: Implicit conversion to a NumPy array is not allowed (logged)
    float(x.sum())              # works, as on CuPy, but logged as an implicit sync

The tests use it through the ``gpu`` / ``device`` fixtures of ``plugin.py``, which put these modules in
``sys.modules`` for one test (or use real CuPy where it imports and sees a GPU).
"""
import contextlib
import sys

from ._log import LOG, Crossing
from ._modules import build as modules

__all__ = ["LOG", "Crossing", "modules", "installed"]


@contextlib.contextmanager
def installed():
    """The stand-in as ``cupy`` for the duration of a ``with`` block, outside pytest (scripts, probes);
    yields the log. The tests use the ``gpu`` fixture instead."""
    from lucid import _backend

    names = list(modules())
    saved = {n: sys.modules.get(n) for n in names}
    saved_cupy = _backend._cupy
    sys.modules.update(modules())
    _backend._cupy = None
    LOG.clear()
    try:
        yield LOG
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
        _backend._cupy = saved_cupy
