"""lucid/backends/cpu.py: importing lucid changes nothing process-wide; ``configure()`` applies the CPU tuning
(OpenBLAS's idle threads sleep, freed buffers are reused, numba's workqueue layer), at any point of a program.

Each case runs in a fresh interpreter: OpenBLAS, malloc and numba settings are process-wide.
"""
import json
import os
import platform
import subprocess
import sys

import pytest

_PROBE = r"""
import json, os, resource, sys, time
import numpy as np          # NumPy (and OpenBLAS) first, as any program may do
import threadpoolctl
import lucid
from lucid.backends import _malloc, cpu

def spin_cpu_per_wall():
    threadpoolctl.threadpool_limits(2, user_api="blas")
    a = np.ones((1024, 512), np.float32)
    a @ a.T  # a GEMM big enough to use the worker threads
    usage = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    c0, t0 = usage(), time.perf_counter()
    while time.perf_counter() - t0 < 0.2:  # the main thread busy for 0.2 s: how much CPU does the process use?
        pass
    return (usage() - c0) / 0.2

def mmapped_bytes_of_a_live_buffer():
    # how many bytes glibc serves with fresh mmap pages for a live 48 MiB array (above glibc's largest
    # adaptive mmap threshold, 32 MiB): such pages go back to the OS on free and fault in again next time
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = MallInfo2
    before = libc.mallinfo2().hblkhd
    a = np.ones(12 * 2**20, np.float32)
    during = libc.mallinfo2().hblkhd
    del a
    return during - before

import numba
out = {"env_after_import": os.environ.get("OPENBLAS_THREAD_TIMEOUT"), "layer_after_import": numba.config.THREADING_LAYER,
       "status_after_import": cpu.status()}
if sys.argv[1] == "configure":
    out["configured"] = cpu.configure()
out["cpu_per_wall"] = spin_cpu_per_wall()
out["mmapped"] = mmapped_bytes_of_a_live_buffer()
out["status"] = cpu.status()
print(json.dumps(out))
"""


def _probe(mode, **env):
    # two BLAS threads, whatever the test worker runs with (tests/conftest.py pins workers to one)
    run_env = {k: v for k, v in os.environ.items()
               if k not in ("OPENBLAS_THREAD_TIMEOUT", "NUMBA_THREADING_LAYER", "LUCID_MALLOC_TUNING",
                            "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    run_env.update(env)
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env=run_env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_import_changes_nothing():
    r = _probe("import-only")
    assert r["env_after_import"] is None and r["layer_after_import"] == "default"
    # OpenBLAS's default timeout (0: 2**28 cycles): a worker spins ~0.1 s after each GEMM (measured 1.5-2.0 CPU
    # seconds per wall second on 2 cores while the main thread runs; not asserted: it depends on the load)
    assert r["status"]["blas_thread_timeout"] == 0 and r["status"]["blas_workers_sleep"] is False
    assert r["status"]["malloc"] is False
    assert r["status"]["row_threads"] is False  # needs sleeping BLAS workers
    if _GLIBC and r["mmapped"] is not None:  # glibc's default: the buffer is its own mmap, unmapped on free
        assert r["mmapped"] >= 48 * 2**20, r


def test_configure_after_numpy_makes_blas_workers_sleep_and_reuses_buffers():
    r = _probe("configure")
    assert r["configured"]["blas_thread_timeout"] == 4 and r["configured"]["blas_workers_sleep"] is True
    assert r["configured"]["numba_threading_layer"] == "workqueue"
    # only the busy main thread runs now
    assert r["cpu_per_wall"] < 1.3, r
    if _GLIBC:
        assert r["configured"]["malloc"] is True
        if r["mmapped"] is not None:  # from the heap, whose freed pages stay for the next step's buffers
            assert r["mmapped"] == 0, r


def test_user_choices_win():
    r = _probe("configure", OPENBLAS_THREAD_TIMEOUT="20", NUMBA_THREADING_LAYER="omp", LUCID_MALLOC_TUNING="0")
    assert r["configured"]["blas_thread_timeout"] == 20 and r["configured"]["blas_workers_sleep"] is False
    assert r["configured"]["numba_threading_layer"] == "omp" and r["configured"]["malloc"] is False


def test_flags_are_read_in_one_place(monkeypatch):
    from lucid.backends import cpu
    from lucid.kernels import _numba

    monkeypatch.setenv("LUCID_NO_NUMBA", "1")
    assert not cpu.numba_enabled() and not _numba.use_numba(__import__("numpy").ones(3, "float32"))
    monkeypatch.setenv("LUCID_NO_NUMBA", "0")
    assert cpu.numba_enabled() == _numba.HAVE_NUMBA or not _numba.HAVE_NUMBA
    monkeypatch.setenv("LUCID_ROW_THREADS", "off")
    assert not cpu.row_threads_enabled()
    monkeypatch.delenv("LUCID_ROW_THREADS")
    assert cpu.row_threads_enabled()
