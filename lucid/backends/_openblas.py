"""OpenBLAS's idle-thread timeout, read and set at run time through OpenBLAS's exported functions.

OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` into a static variable when the library loads
(``openblas_read_env``) and its thread pool (``blas_thread_init``) takes the timeout from there when it starts.
Both functions, and ``blas_thread_shutdown_``, are exported by the OpenBLAS that NumPy ships, so setting the
variable, re-reading the environment and restarting the pool applies a new timeout after NumPy has loaded.
``openblas_thread_timeout()`` reports the value read. Where a build lacks these symbols (another BLAS, an
older OpenBLAS), nothing changes and ``thread_timeout()`` is None: export the variable before starting Python.
"""
from __future__ import annotations

import ctypes
import os

_state = {"lib": None, "probed": False}
_PREFIXES = ("", "scipy_")


def _library():
    """ctypes handle of the OpenBLAS NumPy loaded (found through threadpoolctl), or None."""
    if not _state["probed"]:
        _state["probed"] = True
        try:
            import numpy  # noqa: F401  (loads OpenBLAS)
            import threadpoolctl

            infos = threadpoolctl.threadpool_info()
            path = next((i["filepath"] for i in infos if i.get("internal_api") == "openblas"), None)
            _state["lib"] = ctypes.CDLL(path) if path else None
        except Exception:  # threadpoolctl missing, or the library cannot be opened: leave OpenBLAS alone
            _state["lib"] = None
    return _state["lib"]


def _symbol(name: str):
    lib = _library()
    if lib is None:
        return None
    for prefix in _PREFIXES:
        fn = getattr(lib, prefix + name, None)
        if fn is not None:
            return fn
    return None


def thread_timeout():
    """The timeout exponent OpenBLAS runs with (its pool clamps it to 4..30), or None if it cannot be read.
    0 means OpenBLAS's default (2**28 cycles)."""
    fn = _symbol("openblas_thread_timeout")
    return None if fn is None else int(fn())


def workers_sleep(max_exponent: int) -> bool:
    """Whether idle workers sleep within 2**max_exponent cycles."""
    timeout = thread_timeout()
    if timeout is None:  # unknown build: trust an exported variable
        value = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "").strip()
        return value.isdigit() and 0 < int(value) <= max_exponent
    return 0 < timeout <= max_exponent


def set_thread_timeout(exponent: int) -> bool:
    """Make OpenBLAS's idle workers spin at most 2**exponent cycles; True when that is now in effect. A value
    the user exported in ``OPENBLAS_THREAD_TIMEOUT`` is kept."""
    exported = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    if exported is not None and exported.strip():
        return thread_timeout() == int(exported) if exported.strip().isdigit() else False
    read_env, shutdown, init = (_symbol(n) for n in ("openblas_read_env", "blas_thread_shutdown_", "blas_thread_init"))
    if thread_timeout() == exponent:
        return True
    if None in (read_env, shutdown, init):
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(exponent)  # what a child process (a data-loader worker) inherits
    read_env()
    shutdown()  # the pool restarts with the new timeout (on the next call or now)
    init()
    return thread_timeout() == exponent
