"""lucid/_blas.py: ``import lucid`` before NumPy makes OpenBLAS's idle workers sleep instead of spinning.

Each case runs in a fresh interpreter, because OpenBLAS reads its environment once, when NumPy loads it.
"""
import json
import os
import subprocess
import sys

_PROBE = r"""
import json, os, resource, sys, time
if sys.argv[1] == "numpy-first":
    import numpy
import lucid
import numpy as np
import threadpoolctl

threadpoolctl.threadpool_limits(2, user_api="blas")
a = np.ones((1024, 512), np.float32)
a @ a.T  # a GEMM big enough to use the worker threads
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
c0, t0 = cpu(), time.perf_counter()
while time.perf_counter() - t0 < 0.2:  # the main thread busy for 0.2 s: how much CPU does the process use?
    pass
print(json.dumps({"timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT"), "cpu_per_wall": (cpu() - c0) / 0.2,
                  "workers_sleep": lucid._blas.workers_sleep(), "configured": lucid._blas.configure()}))
"""


def _probe(mode):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_lucid_first_sets_the_timeout_and_blas_threads_do_not_spin():
    r = _probe("lucid-first")
    assert r["timeout"] == "4" and r["workers_sleep"] is True
    # only the busy main thread runs; a spinning OpenBLAS worker would add up to one more core (measured
    # with OpenBLAS's default: ~1.6-2.0 CPU seconds per wall second on 2 cores)
    assert r["cpu_per_wall"] < 1.3, r


def test_numpy_first_leaves_the_environment_alone():
    r = _probe("numpy-first")
    assert r["timeout"] is None and r["configured"] is False
    assert r["workers_sleep"] is False  # so lucid/_row_threads.py does not split: the workers may spin
