"""Smoke test of the model benchmark: scripts/bench.py model --quick end to end on a tiny batch, and the
peak-memory helper. Checks the shape of the output (rows, extras, JSON), never the speed."""
import importlib.util
import json
import mmap
import os
import pathlib
import time

import numpy as np
import pytest

from benchmarks import memory, suite_model

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not memory.available(), reason="needs Linux /proc/self/status (VmHWM)")


def _bench_main():
    spec = importlib.util.spec_from_file_location("lucid_bench_script", ROOT / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_reset_peak_then_hwm_follows_new_allocations():
    memory.reset_peak()
    before = memory.status_mib("VmRSS")
    assert memory.reset_peak()
    assert memory.status_mib("VmHWM") < before + 16  # reset to (about) the current RSS
    # 64 MiB of fresh pages, touched. Straight from mmap: lucid keeps freed NumPy buffers in the process
    # (lucid/backends/_malloc.py, applied by lucid.backends.cpu.configure()), so a NumPy array of that size may reuse pages that are already resident.
    block = mmap.mmap(-1, 64 * 2**20)
    block.write(b"\x01" * len(block))
    assert memory.status_mib("VmHWM") >= before + 60
    block.close()


def test_status_mib_names_the_missing_field():
    with pytest.raises(KeyError, match="NoSuchField"):
        memory.status_mib("NoSuchField")


def test_measure_rejects_unknown_framework():
    with pytest.raises(ValueError, match="'jax'"):
        memory.measure("jax", "inception_next_atto", 32, 2)


def test_bench_model_quick_rows_and_json(tmp_path, monkeypatch, capsys):
    # the --quick path with batch 2 instead of 16, so the smoke test stays a few seconds plus the two children
    monkeypatch.setattr(suite_model, "QUICK_CONFIGS", [("inception_next_atto", 32, 2)])
    from lucid.backends import cpu

    layer_was_free = cpu._numba_layer_in_use() is None  # no earlier test in this worker started numba's threads
    out = tmp_path / "bench.json"
    assert _bench_main()(["model", "--quick", "--threads", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()

    env_line = printed[0]
    assert env_line.startswith("model  env:") and "threads=1" in env_line and "OPENBLAS_CORETYPE=" in env_line
    if "NUMBA_THREADING_LAYER" not in os.environ and not os.environ.get("LUCID_NO_NUMBA") and layer_was_free:
        # the bench applies lucid.backends.cpu.configure(), which selects "workqueue"
        assert "numba_layer=workqueue" in env_line
    assert f"numba_layer={cpu.status()['numba_threading_layer']}" in env_line

    assert "device=cpu" in env_line
    data = json.loads(out.read_text())
    assert data["meta"]["threads"] == 1 and data["meta"]["device"] == "cpu"
    rows = data["rows"]
    assert [r["case"] for r in rows] == ["atto 32x32 b2 eval forward", "atto 32x32 b2 train step"]
    for r, line in zip(rows, printed[1:]):
        assert r["suite"] == "model" and r["case"] in line
        assert r["lucid_ms"] > 0 and r["torch_ms"] > 0
        assert r["ratio"] == pytest.approx(r["lucid_ms"] / r["torch_ms"])
        assert r["extra"]["torch_layout"] in ("contiguous", "channels_last")
        assert r["extra"]["ips_lucid"] == pytest.approx(2e3 / r["lucid_ms"], rel=0.01)
        assert r["extra"]["ips_torch"] == pytest.approx(2e3 / r["torch_ms"], rel=0.01)
    fwd, train = (r["extra"] for r in rows)
    assert float(fwd["maxdiff"]) < 1e-4  # the same network with the same weights on the same batch
    assert float(train["loss_diff"]) < 1e-4  # ... and the same label-smoothed loss
    assert train["mem_lucid_MiB"] >= 0 and train["mem_torch_MiB"] > 0
    assert train["mem_ratio"] == pytest.approx(train["mem_lucid_MiB"] / train["mem_torch_MiB"], abs=0.01)
    # absolute peaks hold at least the interpreter and the model; torch's child imports torch and timm
    assert train["peak_lucid_MiB"] > 50 and train["peak_torch_MiB"] > train["mem_torch_MiB"]
    assert "mem_note" not in train  # VmHWM was reset in both children


def test_compare_blocks_times_each_framework_in_warmed_blocks():
    calls = []

    def fake(name, seconds):
        def fn():
            calls.append(name)
            time.sleep(seconds)
        return fn

    row = suite_model.compare_blocks("case", fake("l", 0.004), fake("t", 0.001), repeat=5)
    # five blocks per framework, alternating, each one untimed warm-up run and one timed run
    assert calls == (["l"] * 2 + ["t"] * 2) * 5
    assert row.suite == "model" and row.case == "case"
    assert 4 <= row.lucid_ms < 40 and 1 <= row.torch_ms < row.lucid_ms


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_paired_check_prints_both_frameworks_and_three_ratios(mode, monkeypatch, capsys):
    from benchmarks import paired

    monkeypatch.setattr("sys.argv", ["paired.py", "inception_next_atto", "--size", "32", "--batch", "2",
                                     "--mode", mode, "--pairs", "2"])
    paired.main()
    out = capsys.readouterr().out
    lucid_line = next(line for line in out.splitlines() if line.strip().startswith("lucid ms:"))
    assert len(lucid_line.split(":")[1].split()) == 2  # one timed run per pair
    assert f"b2 {mode}, 2 pairs" in out and "ratio of minimums" in out and "median of per-pair ratios" in out


def test_gpu_rows_need_a_gpu_and_the_model_suite(monkeypatch, capsys):
    """``--device gpu``: the model suite on CUDA where lucid (CuPy) and torch both see a GPU; elsewhere a clear
    exit naming what is missing, before any model is built; other suites refuse it."""
    import torch

    from lucid import _backend

    with pytest.raises(SystemExit) as exc:
        _bench_main()(["nn", "--device", "gpu"])
    assert exc.value.code == 2 and "only the model suite" in capsys.readouterr().err
    monkeypatch.setattr(suite_model, "QUICK_CONFIGS", [("inception_next_atto", 32, 2)])
    if _backend.gpu_available() and torch.cuda.is_available():  # a CUDA machine: the rows themselves
        assert _bench_main()(["model", "--quick", "--device", "gpu"]) == 0
        assert "device=gpu" in capsys.readouterr().out
        return
    with pytest.raises(SystemExit, match="model suite --device gpu: .*(CuPy|torch.cuda)"):
        _bench_main()(["model", "--quick", "--device", "gpu"])
