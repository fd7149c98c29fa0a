"""Compiled kernels (numba on the CPU) for the few ops where NumPy alone is too slow; each module keeps the
pure-NumPy version it must match, used when numba is missing or ``LUCID_NO_NUMBA=1`` is set.

Threading: numba's default OpenMP layer spin-waits between kernels, and so do OpenBLAS's threads between
GEMMs; on a 2-core machine the two then fight for the cores and a 0.3 ms GELU takes 5-10 ms (a whole
InceptionNeXt-atto train step went from ~100 ms to ~800 ms). The "workqueue" layer sleeps instead, so lucid
selects it unless the user chose a layer with NUMBA_THREADING_LAYER. It is not meant for calling parallel
kernels from several Python threads at once; lucid runs its kernels on the training thread only.
"""
import os

try:
    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
except ImportError:  # pragma: no cover - numba is optional
    pass
