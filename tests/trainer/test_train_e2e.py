"""scripts/train.py and scripts/evaluate.py end to end, as subprocesses, on the embedded CIFAR-10 sample."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import lucid

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRAIN = [sys.executable, str(ROOT / "scripts" / "train.py")]
EVAL = [sys.executable, str(ROOT / "scripts" / "evaluate.py")]
QUICK = ["data.batch_size=32", "data.eval_batch_size=100", "trainer.progress=false", "trainer.histogram_interval=1",
         "trainer.log_interval=2"]


def run(cmd, run_dir, *overrides, check=True, timeout=600):
    out = subprocess.run(cmd + [f"hydra.run.dir={run_dir}", *overrides], capture_output=True, text=True,
                         cwd=ROOT, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}")
    return out


def scalars(run_dir, tag):
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0, "histograms": 0,
                                                               "tensors": 0})
    acc.Reload()
    return acc, [e.value for e in acc.Scalars(tag)] if tag else []


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("train") / "run"
    out = run(TRAIN, run_dir, *QUICK, "trainer.epochs=3", "trainer.limit_train_batches=12", "optim.lr=2e-3",
              "trainer.checkpoint_interval=1", "trainer.keep_checkpoints=2", "trainer.ema.enabled=true")
    return run_dir, out


def test_training_writes_events_and_checkpoints_and_learns(trained_run):
    run_dir, out = trained_run
    assert "best val top-1" in out.stdout and "checkpoints" in out.stdout
    acc, val_top1 = scalars(run_dir, "val/top1")
    tags = set(acc.Tags()["scalars"])
    for tag in ("train/loss", "train/acc", "val/loss", "val/top1", "val/top5", "lr", "grad_norm", "throughput",
                "epoch_time", "val_ema/top1"):
        assert tag in tags, f"missing TensorBoard tag {tag}; have {sorted(tags)}"
    assert len(val_top1) == 3
    assert "train/augmented_inputs" in acc.Tags()["images"]
    assert any(t.startswith("weights/stem.0.weight") for t in acc.Tags()["histograms"])
    losses = [e.value for e in acc.Scalars("train/epoch_loss")]
    assert losses[-1] < losses[0], f"training loss did not fall: {losses}"
    assert max(val_top1) > 15.0, f"no better than chance (10%): {val_top1}"
    lrs = [e.value for e in acc.Scalars("lr")]
    assert max(lrs) == pytest.approx(2e-3, rel=1e-3) and lrs[-1] < lrs[len(lrs) // 2]  # warmup then cosine
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["best.safetensors", "epoch_0002.safetensors", "epoch_0003.safetensors", "last.safetensors"]
    state = lucid.load(str(run_dir / "checkpoints" / "last.safetensors"))
    assert state["epoch"] == 3 and state["step"] == 36 and state["config"]["model"]["name"] == "inception_next_atto"
    assert {"model", "optimizer", "scheduler", "ema", "rng"} <= set(state)
    assert (run_dir / ".hydra" / "config.yaml").is_file()


def _final_weights(run_dir):
    return lucid.load(str(run_dir / "checkpoints" / "last.safetensors"))["model"]


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    common = [*QUICK, "trainer.epochs=2", "trainer.limit_train_batches=16", "trainer.image_grid=false"]
    straight = tmp_path / "straight"
    run(TRAIN, straight, *common)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(TRAIN + [f"hydra.run.dir={killed}", *common], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.safetensors"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed mid-epoch"
    assert lucid.load(str(last))["epoch"] == 1

    out = run(TRAIN, killed, *common, "trainer.resume=auto")
    assert "resumed from" in out.stdout + out.stderr
    a, b = _final_weights(straight), _final_weights(killed)
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)


def test_resume_can_extend_a_finished_run(trained_run, tmp_path):
    run_dir, _ = trained_run
    out = run(TRAIN, tmp_path / "more", *QUICK, "trainer.epochs=4", "trainer.limit_train_batches=12",
              "trainer.ema.enabled=true", f"trainer.resume={run_dir / 'checkpoints' / 'last.safetensors'}")
    assert "epoch 4/4" in out.stdout + out.stderr
    assert lucid.load(str(tmp_path / "more" / "checkpoints" / "last.safetensors"))["epoch"] == 4


@pytest.mark.parametrize("override,needle", [
    ("model.name=inception_next_huge", "model.name='inception_next_huge'"),
    ("optim.lr=-0.1", "optim.lr=-0.1"),
    ("data.batch_size=0", "data.batch_size=0"),
    ("trainer.epoch=3", "trainer.epoch"),          # typo'd key: Hydra's own one-line message
    ("model=inception_next_giant", "inception_next_giant"),
    ("data=cifar1000", "cifar1000"),
])
def test_bad_configuration_is_one_clear_message(tmp_path, override, needle):
    out = run(TRAIN, tmp_path / "bad", override, check=False, timeout=120)
    assert out.returncode != 0
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_missing_data_offline_says_where_it_looked(tmp_path):
    empty = tmp_path / "nothing-here"
    out = run(TRAIN, tmp_path / "run", "data=cifar100", f"data.root={empty}", "data.download=false", check=False,
              timeout=120)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert str(empty) in out.stderr


def test_corrupt_checkpoint_is_a_clear_error_and_is_left_alone(tmp_path):
    bad = tmp_path / "last.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    out = run(TRAIN, tmp_path / "run", *QUICK, f"trainer.resume={bad}", check=False, timeout=120)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert str(bad) in out.stderr
    assert bad.read_bytes() == b"\x00garbage" * 10


def test_diverging_loss_stops_with_a_message_and_keeps_the_checkpoint(tmp_path):
    out = run(TRAIN, tmp_path / "run", *QUICK, "optim=sgd", "optim.lr=1e30", "sched=constant", "trainer.epochs=3",
              "trainer.limit_train_batches=4", "trainer.label_smoothing=0", check=False)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "loss became" in out.stderr


def test_evaluate_writes_every_report_file(trained_run, tmp_path):
    run_dir, _ = trained_run
    eval_dir = tmp_path / "eval"
    out = run(EVAL, eval_dir, f"checkpoint={run_dir / 'checkpoints' / 'best.safetensors'}", "split=test",
              "progress=false", "hardest_k=8", "tta_hflip=true")
    assert "Top-1" in out.stdout
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    assert metrics["num_samples"] == 500 and 0 <= metrics["top1"] <= 100 and metrics["top5"] >= metrics["top1"]
    assert np.asarray(metrics["confusion"]).sum() == 500
    for name in ("report.md", "confusion_matrix.png", "misclassified.png"):
        assert (eval_dir / name).stat().st_size > 0
    assert "airplane" in (eval_dir / "report.md").read_text()
    acc = EventAccumulator(str(eval_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    assert {"eval/top1", "eval/top5", "eval/loss"} <= set(acc.Tags()["scalars"])
    ema = run(EVAL, tmp_path / "eval_ema", f"checkpoint={run_dir / 'checkpoints' / 'last.safetensors'}",
              "use_ema=true", "progress=false", "limit_batches=1")
    assert "Top-1" in ema.stdout


@pytest.mark.parametrize("content", ["missing", "truncated", "foreign"])
def test_evaluate_rejects_bad_checkpoints_clearly(trained_run, tmp_path, content):
    run_dir, _ = trained_run
    path = tmp_path / "ckpt.safetensors"
    if content == "truncated":
        path.write_bytes((run_dir / "checkpoints" / "last.safetensors").read_bytes()[:5000])
    elif content == "foreign":
        path.write_text(json.dumps({"hello": "world"}))
    out = run(EVAL, tmp_path / "eval", f"checkpoint={path}", "progress=false", check=False, timeout=120)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert str(path) in out.stderr


def test_evaluate_refuses_a_mismatched_model(trained_run, tmp_path):
    run_dir, _ = trained_run
    out = run(EVAL, tmp_path / "eval", f"checkpoint={run_dir / 'checkpoints' / 'last.safetensors'}",
              "model=inception_next_tiny", check=False, timeout=120)
    assert out.returncode != 0 and "inception_next_atto" in out.stderr and "Traceback" not in out.stderr


def test_evaluate_plain_weights_with_a_model_name(tmp_path):
    # e.g. weights converted from timm: a bare state dict, no trainer config; the model comes from model=
    model = lucid.models.create_model("inception_next_atto", num_classes=10)
    weights = tmp_path / "atto_weights.safetensors"
    lucid.save(model.state_dict(), str(weights))
    out = run(EVAL, tmp_path / "eval", f"checkpoint={weights}", "model=inception_next_atto", "progress=false",
              "limit_batches=1")
    assert "Top-1" in out.stdout
    assert "inception_next_atto from weights file" in (tmp_path / "eval" / "report.md").read_text()
    missing = run(EVAL, tmp_path / "eval2", f"checkpoint={weights}", "progress=false", check=False, timeout=120)
    assert missing.returncode != 0 and "model=<name>" in missing.stderr and "Traceback" not in missing.stderr
