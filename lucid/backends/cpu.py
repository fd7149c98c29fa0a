"""The one seam for CPU tuning: what lucid changes in the process to run fast, and only when asked.

``import lucid`` changes no process-wide state. ``configure()`` applies three settings, each of which matters
on small machines (docs/benchmarks.md, "CPU seam", has the measurements and commands):

* **OpenBLAS thread timeout.** After every GEMM OpenBLAS's worker threads busy-wait ~0.1 s for more work; a
  train step alternates GEMMs with lucid's numba kernels, whose threads then share the cores with spinning
  workers. A timeout of 2**4 cycles makes them sleep at once. OpenBLAS reads it when NumPy loads it, so
  ``configure()`` re-reads its environment and restarts its thread pool through OpenBLAS's own exported
  functions (``lucid/backends/_openblas.py``): it takes effect whenever it is called, before or after NumPy.
* **glibc malloc thresholds.** Freed activation buffers stay in the process for reuse instead of going back
  to the OS and faulting in again, zeroed, every step (``lucid/backends/_malloc.py``).
* **numba's threading layer** "workqueue", whose idle threads sleep; the default OpenMP layer spin-waits
  against OpenBLAS (unless you chose a layer with ``NUMBA_THREADING_LAYER``).

``scripts/train.py``, ``evaluate.py`` and ``bench.py`` call it first thing; library users call it once at the
start of their program (lucid runs correctly without it, slower: row-split threading, for one, needs
sleeping BLAS workers and stays off)::

    import lucid
    lucid.backends.cpu.configure()          # -> {'blas_thread_timeout': True, 'malloc': True, ...}
    print(lucid.backends.cpu.status())

Feature flags (environment variables, read here and nowhere else, at each use so tests can flip them):
``LUCID_NO_NUMBA=1`` (pure-NumPy reference kernels), ``LUCID_ROW_THREADS=0`` (no row-split threading),
``LUCID_MALLOC_TUNING=0`` (``configure()`` leaves malloc alone). The measured thresholds the kernels use are
the named constants at the end of this module; each says how it was measured.
"""
from __future__ import annotations

import os

from . import _malloc, _openblas

__all__ = ["configure", "status", "numba_enabled", "row_threads_enabled", "malloc_tuning_enabled",
           "blas_workers_sleep"]

_FALSE = ("0", "false", "no", "off")


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value not in _FALSE


def numba_enabled() -> bool:
    """Whether lucid may use its numba kernels (``LUCID_NO_NUMBA`` unset or 0). Whether numba is installed
    is ``lucid.kernels._numba.HAVE_NUMBA``."""
    return not _flag("LUCID_NO_NUMBA", False)


def row_threads_enabled() -> bool:
    """Whether row-split threading may run (``LUCID_ROW_THREADS`` unset or 1); it also needs sleeping BLAS
    workers (``blas_workers_sleep``), see lucid/backends/row_threads.py."""
    return _flag("LUCID_ROW_THREADS", True)


def malloc_tuning_enabled() -> bool:
    """Whether ``configure()`` may raise glibc's malloc thresholds (``LUCID_MALLOC_TUNING`` unset or 1)."""
    return _flag("LUCID_MALLOC_TUNING", True)


def blas_workers_sleep() -> bool:
    """Whether NumPy's OpenBLAS workers sleep when idle (a thread timeout of at most 2**16 cycles in effect)."""
    return _openblas.workers_sleep(SLEEPY_TIMEOUT_MAX)


def configure(blas: bool = True, malloc: bool = True, numba_threading: bool = True) -> dict:
    """Apply lucid's CPU settings (see the module docstring); returns what is in effect afterwards.

    Idempotent. Call it at program start, before other threads use BLAS: restarting OpenBLAS's thread pool
    while a GEMM runs on another thread is not safe. A timeout you exported yourself
    (``OPENBLAS_THREAD_TIMEOUT``) and a threading layer you chose (``NUMBA_THREADING_LAYER``) win.
    """
    if blas:
        _openblas.set_thread_timeout(BLAS_THREAD_TIMEOUT)
    if malloc and malloc_tuning_enabled():
        _malloc.raise_thresholds(MALLOC_MMAP_THRESHOLD, MALLOC_TRIM_THRESHOLD)
    if numba_threading:
        _set_numba_threading_layer("workqueue")
    return status()


def _numba_layer_in_use():
    """The threading layer numba started with, or None before its first parallel launch (or without numba)."""
    try:
        import numba

        return numba.threading_layer()
    except Exception:  # ImportError, or ValueError: no parallel kernel has run yet
        return None


def _set_numba_threading_layer(layer: str) -> None:
    if "NUMBA_THREADING_LAYER" in os.environ or _numba_layer_in_use() is not None:
        return  # the user's choice, or numba already runs on a layer (it cannot change any more)
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is optional
        return
    # numba picks the layer at its first parallel launch; before that, the config value decides
    numba.config.THREADING_LAYER = layer


def status() -> dict:
    """What is in effect now: {'blas_thread_timeout': int or None, 'blas_workers_sleep': bool, 'malloc':
    bool, 'numba_threading_layer': str (the layer numba runs on, or will start with), 'numba': bool,
    'row_threads': bool}."""
    try:
        import numba

        layer = _numba_layer_in_use() or numba.config.THREADING_LAYER
        have_numba = True
    except ImportError:  # pragma: no cover - numba is optional
        layer, have_numba = "n/a", False
    return {"blas_thread_timeout": _openblas.thread_timeout(), "blas_workers_sleep": blas_workers_sleep(),
            "malloc": _malloc.is_tuned(), "numba_threading_layer": layer, "numba": have_numba and numba_enabled(),
            "row_threads": row_threads_enabled() and blas_workers_sleep()}


# ---------------------------------------------------------------------------------------------------------
# Measured thresholds. Each was chosen from an A/B measurement on the 2-core development machines; the figures
# and commands are in docs/benchmarks.md ("Thresholds"). Change one only with a new measurement.

# OpenBLAS: log2 of the cycles an idle worker spins before sleeping (OpenBLAS's minimum; its default is 28).
BLAS_THREAD_TIMEOUT = 4
# timeouts up to 2**16 cycles count as "workers sleep when idle" for row-split threading
SLEEPY_TIMEOUT_MAX = 16

# glibc malloc: requests below 1 GiB come from the heap and are reused; the heap top is never trimmed below 2 GiB.
MALLOC_MMAP_THRESHOLD = 1 << 30
MALLOC_TRIM_THRESHOLD = (1 << 31) - 1

# numba kernels: elements of work below which a family's serial twin beats the parallel kernel (a parallel
# launch has a fixed cost). `python benchmarks/twins_ab.py` measures the whole-step effect.
SERIAL_BELOW = {"memory": 1_000_000, "mixer": 2_000_000, "stencil": 400_000, "gelu": 1_000_000}
# AdamW's serial loop below this many elements per parameter (a parallel launch vs the serial loop's per-element cost)
ADAMW_PARALLEL_MIN_ELEMENTS = 4096

# Block MLP (lucid/ops/fused.py) row split: at least this many rows per thread; chunks of about this many bytes
# of hidden activation (kept in cache between fc1, GELU and fc2), of at least max(rows below, 4 x in-channels)
MLP_MIN_ROWS_PER_THREAD = 256
MLP_CHUNK_BYTES = 1024 * 1024
MLP_MIN_CHUNK_ROWS = 256
# inference MLP with fewer rows than this many x in-channels splits over the hidden units instead of rows
MLP_HIDDEN_SPLIT_MAX_ROWS_PER_CHANNEL = 4

# Depthwise-branch mixer (lucid/kernels/mixer.py): maps of at most this many pixels take the fused kernel;
# its forward splits over images on row threads when each part gets at least this many elements
MIXER_FUSED_MAX_PIXELS = 16
MIXER_SPLIT_MIN_ELEMENTS = 150_000

# Patchify gather (lucid/kernels/patchify.py): split over images when each part gets this many elements
PATCHIFY_SPLIT_MIN_ELEMENTS = 100_000
