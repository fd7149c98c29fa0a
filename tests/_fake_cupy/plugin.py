"""pytest fixtures that make lucid's ``device="gpu"`` run on the CuPy stand-in, or on real CuPy and a GPU.

``gpu``: for the duration of one test, lucid's GPU backend is
  - real CuPy, when ``import cupy`` works and it sees a CUDA device (``LUCID_TEST_GPU=real`` demands it and
    errors otherwise), else
  - the stand-in (``LUCID_TEST_GPU=fake`` forces it even where a GPU exists): its modules replace ``cupy``,
    ``cupyx`` and their submodules in ``sys.modules`` and lucid's cached cupy module is reset, so lucid's own
    ``import cupy`` finds them. lucid's code has no test hook; after the test everything is restored.
  The fixture yields a ``GpuBackend``; at teardown it fails the test if the stand-in logged an implicit
  host/device crossing (mark a test ``@pytest.mark.allow_crossings`` when provoking one is its point).
``device``: parametrizes a test over "cpu" and "gpu" (requesting ``gpu`` for the second).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import pytest

from . import LOG, modules

_REAL: list = []  # [cupy or None], probed once per session


def real_cupy():
    """Real CuPy when it imports and sees a GPU (and LUCID_TEST_GPU is not "fake"), else None."""
    mode = os.environ.get("LUCID_TEST_GPU", "auto")
    if mode not in ("auto", "fake", "real"):
        raise pytest.UsageError(f"LUCID_TEST_GPU={mode!r}: expected auto, fake or real")
    if mode == "fake":
        return None
    if not _REAL:
        found = None
        fake_mods = modules()
        if sys.modules.get("cupy") is not fake_mods["cupy"]:
            try:
                import cupy  # noqa: PLC0415

                if cupy.cuda.runtime.getDeviceCount() > 0:
                    found = cupy
            except Exception:  # not installed, or no driver / device: the stand-in it is
                found = None
        _REAL.append(found)
    if mode == "real" and _REAL[0] is None:
        pytest.fail("LUCID_TEST_GPU=real but CuPy does not import or sees no CUDA device")
    return _REAL[0]


@dataclass
class GpuBackend:
    xp: object  # the cupy module lucid uses for "gpu"
    fake: bool  # True under the stand-in
    log: object  # the stand-in's LOG, or None on real CuPy

    def crossings(self) -> list:
        return list(self.log.crossings) if self.log is not None else []

    def syncs(self) -> list:
        return list(self.log.syncs) if self.log is not None else []


@pytest.fixture
def gpu(monkeypatch, request):
    from lucid import _backend

    real = real_cupy()
    if real is not None:
        monkeypatch.setattr(_backend, "_cupy", real)
        yield GpuBackend(real, False, None)
        return
    for name, mod in modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(_backend, "_cupy", None)
    LOG.clear()
    yield GpuBackend(modules()["cupy"], True, LOG)
    crossings, refused = LOG.report(), list(LOG.refused)
    LOG.clear()
    if crossings and request.node.get_closest_marker("allow_crossings") is None:
        pytest.fail("the CuPy stand-in logged implicit host/device crossings:\n" + crossings, pytrace=False)
    if refused and request.node.get_closest_marker("allow_crossings") is None:
        pytest.fail(f"GPU-only kernels were called under the stand-in: {refused}", pytrace=False)


@pytest.fixture(params=["cpu", "gpu"])
def device(request):
    if request.param == "gpu":
        request.getfixturevalue("gpu")
    return request.param


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_crossings: the test provokes host/device crossings on purpose "
                                       "(the gpu fixture does not fail it for them)")
