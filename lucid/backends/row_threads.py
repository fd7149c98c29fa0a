"""Row-split threading: a job over the rows of a matrix runs as one part per core, each on its own thread
with single-threaded BLAS, instead of one thread calling a multi-threaded GEMM, then a parallel kernel, then
another multi-threaded GEMM.

Why. A block MLP at 32x32 input runs fc1 GEMM -> bias + GELU -> fc2 GEMM on, e.g., 8192 x 40 -> 8192 x 160 ->
8192 x 40. Each multi-threaded call hands its work to sleeping worker threads and waits for all of them
(tens of microseconds per hand-off), and the 4x-wide hidden activation makes a round trip through memory
between the three calls. Split by rows instead, each thread runs the whole chain on its own rows, in chunks
whose hidden part stays in its core's cache, and the threads meet once at the end
(``python benchmarks/row_threads_ab.py`` measures it; docs/benchmarks.md has the figures).

It needs BLAS worker threads that sleep when idle (``lucid.backends.cpu.configure()`` sets OpenBLAS's thread
timeout): a spinning OpenBLAS worker holds the second core and the split ran slower. So it is used only when
that holds, when NumPy's BLAS is OpenBLAS with more than one thread (its current count is the number of
parts), and when ``LUCID_ROW_THREADS`` is not ``0``.

    parts = row_threads.parts(rows, min_rows=256)   # 1: run the job inline
    row_threads.run(job, rows, parts)               # job(r0, r1) for each part; part 0 on the calling thread

While a split runs, BLAS is limited to one thread and restored afterwards; one split runs at a time (a call
from a second Python thread meanwhile runs its job inline). Jobs must release the GIL in their heavy parts
(NumPy's GEMMs do; numba kernels need ``nogil=True``) and must not start splits themselves. While a job of a
split runs, ``inside()`` is True on its thread: lucid's kernels then pick their single-threaded twins
(lucid/kernels/_numba.py) instead of launching parallel loops from several threads at once.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from . import cpu

_busy = threading.Lock()  # held while a split runs
_local = threading.local()  # .inside: this thread runs a part of a split


def inside() -> bool:
    """Whether the calling thread runs a part of a split (then kernels must stay single-threaded)."""
    return getattr(_local, "inside", False)
_state = {"blas": None, "pool": None, "pool_size": 0}  # blas: None until probed, then a list of controllers


def _reset_after_fork() -> None:
    """A forked child (e.g. a data-loader worker) inherits no threads: drop the pool and the lock."""
    global _busy
    _busy = threading.Lock()
    _state["pool"], _state["pool_size"] = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _blas_controllers() -> list:
    """threadpoolctl controllers of the OpenBLAS libraries loaded in this process ([] without threadpoolctl)."""
    if _state["blas"] is None:
        try:
            import threadpoolctl

            ctl = threadpoolctl.ThreadpoolController().select(internal_api="openblas")
            _state["blas"] = list(ctl.lib_controllers)
        except Exception:  # threadpoolctl missing or unable to inspect the process: no split
            _state["blas"] = []
    return _state["blas"]


def enabled() -> bool:
    """Whether splits may run here: not switched off, OpenBLAS present, its idle workers sleeping."""
    return cpu.row_threads_enabled() and cpu.blas_workers_sleep() and bool(_blas_controllers())


def parts(rows: int, min_rows: int) -> int:
    """Parts a job over ``rows`` rows would run as now: BLAS's thread count, at most one per ``min_rows``
    rows; 1 when splits are off (then run the job inline)."""
    if rows < 2 * min_rows or not enabled():
        return 1
    threads = max(c.get_num_threads() for c in _blas_controllers())
    return max(1, min(threads, rows // min_rows))


def _pool(workers: int) -> ThreadPoolExecutor:
    if _state["pool_size"] < workers:
        if _state["pool"] is not None:
            _state["pool"].shutdown(wait=False)
        _state["pool"] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lucid-rows")
        _state["pool_size"] = workers
    return _state["pool"]


def _as_part(job):
    """``job`` marked, on whichever thread runs it, as a part of a split (see ``inside``)."""
    def part(r0: int, r1: int) -> None:
        outer = inside()
        _local.inside = True
        try:
            job(r0, r1)
        finally:
            _local.inside = outer
    return part


def run(job, rows: int, n_parts: int) -> None:
    """``job(r0, r1)`` over ``[0, rows)`` in ``n_parts`` contiguous parts of near-equal size, concurrently.

    Returns when every part has finished; an exception in any part is raised here (after all parts end).
    """
    if n_parts <= 1 or rows <= 1:
        job(0, rows)
        return
    part = _as_part(job)
    if not _busy.acquire(blocking=False):  # another thread's split holds the cores: run inline, single-threaded
        part(0, rows)
        return
    try:
        controllers = _blas_controllers()
        saved = [c.get_num_threads() for c in controllers]
        for c in controllers:
            c.set_num_threads(1)
        try:
            bounds = [rows * k // n_parts for k in range(n_parts + 1)]
            pool = _pool(n_parts - 1)
            futures = [pool.submit(part, bounds[k], bounds[k + 1]) for k in range(1, n_parts)]
            error = None
            try:
                part(bounds[0], bounds[1])
            except BaseException as exc:  # still wait for the other parts: they write into shared buffers
                error = exc
            for f in futures:
                try:
                    f.result()
                except BaseException as exc:
                    error = error or exc
            if error is not None:
                raise error
        finally:
            for c, n in zip(controllers, saved):
                c.set_num_threads(n)
    finally:
        _busy.release()
