"""Everything lucid's kernels need from numba, in one place: whether to use it, and which compilation to launch.

``use_numba(array, dtypes)``: numba is installed, not switched off (``LUCID_NO_NUMBA``, read by
lucid/backends/cpu.py), and ``array`` is a NumPy array of a dtype the kernel handles. Every kernel module asks
this; the pure-NumPy (or CuPy) reference path next to each kernel runs otherwise.

Serial twins. A ``parallel=True`` kernel pays a fixed cost per call before any work (handing the loop to the
threading layer's workers and waiting for them), and right after a GEMM the second core may still be busy;
the same loop compiled without ``parallel`` costs about a microsecond to call. ``add_serial_twins(*kernels)`` (at a kernel
module's import) compiles each kernel's twin; ``pick`` and ``pick_parts`` choose per call: the twin below the
family's threshold (``lucid.backends.cpu.SERIAL_BELOW``), and always inside a part of a row split
(``lucid.backends.row_threads.inside()``: the caller is one of several threads already, and numba's threading
layers must not be entered from several threads at once).

The twins follow NumPy's error model: under numba's default ("python") a division carries a zero check that
raises ZeroDivisionError (on the inf/nan activations of a diverging run) and keeps LLVM from vectorising.
numba's on-disk cache is keyed by a function's qualified name, not by compile options, so each compilation
of one Python function gets its own name (``renamed_copy``); when changing a twin's options, change its
suffix too (now ``_serial_nogil``), or a stale cache is loaded.
"""
from __future__ import annotations

import types

import numpy as np

from ..backends import cpu, row_threads

try:  # numba is a dependency, but lucid must keep working (slower) without it
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None
    HAVE_NUMBA = False

FLOAT32 = (np.dtype(np.float32),)
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def enabled() -> bool:
    """numba installed and not switched off with ``LUCID_NO_NUMBA=1``."""
    return HAVE_NUMBA and cpu.numba_enabled()


def use_numba(array, dtypes=FLOAT32) -> bool:
    """Whether a numba kernel should handle ``array``: a NumPy array of one of ``dtypes``, numba enabled."""
    return type(array) is np.ndarray and array.dtype in dtypes and enabled()


def renamed_copy(fn, name: str):
    """A copy of Python function ``fn`` under another name, so that numba caches its compilations apart."""
    clone = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    clone.__qualname__ = name
    clone.__module__ = fn.__module__
    return clone


def serial_twin(kernel):
    """The non-parallel, GIL-free compilation of numba dispatcher ``kernel`` (same options otherwise, cached)."""
    twin = renamed_copy(kernel.py_func, kernel.py_func.__qualname__ + "_serial_nogil")
    options = {k: v for k, v in kernel.targetoptions.items() if k not in ("parallel", "nopython")}
    options.setdefault("error_model", "numpy")
    return numba.njit(cache=True, nogil=True, **options)(twin)


_TWINS: dict = {}  # parallel dispatcher -> its serial twin


def add_serial_twins(*kernels) -> None:
    """Compile (or load from numba's cache) the serial twin of each parallel kernel, for ``pick``."""
    for kernel in kernels:
        _TWINS[kernel] = serial_twin(kernel)


def _serial(work: int, family: str) -> bool:
    return work < cpu.SERIAL_BELOW[family] or row_threads.inside()


def pick(kernel, work: int, family: str):
    """The kernel to launch for ``work`` elements: its serial twin below the family's threshold or inside a
    row split, else ``kernel``."""
    return _TWINS[kernel] if _serial(work, family) else kernel


def pick_parts(kernel, work: int, family: str, parallel_parts: int) -> tuple:
    """(kernel, parts) for kernels that reduce over ``parts`` row chunks, one per thread: the serial twin with
    a single chunk where ``pick`` would take it, else ``kernel`` with ``parallel_parts``."""
    if _serial(work, family):
        return _TWINS[kernel], 1
    return kernel, parallel_parts
