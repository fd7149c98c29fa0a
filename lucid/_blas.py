"""Make OpenBLAS's idle worker threads sleep instead of spinning; must run before NumPy loads OpenBLAS.

Why: after every GEMM, OpenBLAS's worker threads busy-wait for new work for about 2**28 cycles (~0.1 s)
before they sleep. A train step alternates GEMMs with lucid's numba kernels (GELU, BatchNorm, depthwise
convs), whose threads then share the cores with the spinning workers: on 2 cores a GELU right after a GEMM
ran at one-thread speed (1.07 ms instead of 0.74 ms for 1.3 M elements). ``OPENBLAS_THREAD_TIMEOUT=4`` (2**4
cycles) makes the workers sleep at once; measured on InceptionNeXt-atto, 32x32, batch 128, three alternating
runs each: train step 136.8 / 141.0 / 142.7 ms with OpenBLAS's default, 126.5 / 134.1 / 127.5 ms with it.

OpenBLAS reads the variable once, when NumPy first imports it, so ``configure()`` (run by ``import lucid``)
sets it only if NumPy is not imported yet and the user has not set it. Import lucid before NumPy, or export
the variable yourself, to get it; set it to another value to keep OpenBLAS's spinning.
"""
from __future__ import annotations

import os
import sys

THREAD_TIMEOUT = "4"  # log2 of the cycles a worker spins before sleeping; OpenBLAS's minimum (default 28)
SLEEPY_TIMEOUT_MAX = 16  # timeouts up to 2**16 cycles (~25 us) count as "workers sleep when idle"
_workers_sleep = False  # decided by configure(), from the environment OpenBLAS started with


def configure() -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` when it can still take effect; True if it is now lucid's value."""
    global _workers_sleep
    numpy_loaded = "numpy" in sys.modules
    if not numpy_loaded:  # once NumPy has loaded OpenBLAS, changing the variable would mislead
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", THREAD_TIMEOUT)
    # with NumPy imported first, the variable counts only if it was set before that (by the user)
    value = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "").strip()
    _workers_sleep = value.isdigit() and int(value) <= SLEEPY_TIMEOUT_MAX
    return not numpy_loaded and value == THREAD_TIMEOUT


def workers_sleep() -> bool:
    """Whether OpenBLAS's idle workers sleep (a short ``OPENBLAS_THREAD_TIMEOUT`` was set when it loaded), as
    lucid/_row_threads.py needs: a spinning worker holds a core."""
    return _workers_sleep
