"""The PyTorch/timm reference trainer (benchmarks/reference_torch.py) and the results plot (plot_results.py).

A smoke run of the reference script (2 epochs x 2 batches on the embedded CIFAR-10 sample) checks the JSON it
writes; unit checks show that its schedule and weight-decay groups equal the lucid trainer's; plot_results.py is
run on that JSON plus a small lucid event file written with trainer.logging.SummaryWriter.
"""
from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("timm")
torch = pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import plot_results, reference_torch  # noqa: E402

EPOCHS = 2
# small batches and one validation batch keep the smoke run to a few seconds of compute
SMOKE_OVERRIDES = [f"trainer.epochs={EPOCHS}", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                   "data.batch_size=16", "data.eval_batch_size=100", "trainer.ema.enabled=true"]


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """Run the script as the lead will (a subprocess, Hydra overrides + flags); returns (json dict, path, stdout)."""
    out = tmp_path_factory.mktemp("ref") / "sub" / "torch.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "reference_torch.py"), "data=cifar10_sample",
           *SMOKE_OVERRIDES, "--out", str(out), "--threads", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), out, proc.stdout


def test_reference_json_fields(torch_run):
    res, out, stdout = torch_run
    assert res["complete"] is True
    assert res["framework"] == "torch+timm" and res["model"] == "inception_next_atto"
    assert res["data"] == "cifar10_sample" and res["seed"] == 0
    assert res["epochs"] == EPOCHS and res["steps_per_epoch"] == 2 and res["threads"] == 1
    assert set(res["versions"]) >= {"torch", "timm"}
    assert res["versions"]["torch"] == torch.__version__
    # the resolved Hydra config travels with the figures, overrides applied
    assert res["config"]["trainer"]["epochs"] == EPOCHS and res["config"]["data"]["batch_size"] == 16
    hist = res["history"]
    assert set(hist) == set(reference_torch.HISTORY_KEYS)
    assert all(len(v) == EPOCHS for v in hist.values())
    assert hist["epoch"] == [1, 2] and hist["step"] == [2, 4]
    for k in ("val_top1", "val_top5"):
        assert all(0.0 <= v <= 100.0 for v in hist[k])
    assert all(t > 0 for t in hist["train_time"] + hist["eval_time"])
    assert all(math.isfinite(v) and v > 0 for v in hist["train_loss"] + hist["val_loss"])
    # per-iteration cosine schedule: after the last step the lr is the cosine's eta_min
    assert hist["lr"][-1] == pytest.approx(res["config"]["sched"]["min_lr"])
    assert res["final"]["val_top1"] == hist["val_top1"][-1]
    assert res["best"]["val_top1"] == max(hist["val_top1"])
    assert res["mean_train_time"] == pytest.approx(sum(hist["train_time"]) / EPOCHS)
    for key in ("test", "test_best", "test_ema"):
        assert res[key]["num_samples"] == 500 and 0 <= res[key]["top1"] <= res[key]["top5"] <= 100
    assert len(res["history_ema"]["val_top1"]) == EPOCHS
    # one console line per epoch, then the test line
    assert sum(line.startswith("epoch ") for line in stdout.splitlines()) == EPOCHS
    assert "test (500 images)" in stdout
    assert not list(out.parent.glob("*.tmp"))  # the atomic write left no temporary behind


def test_reference_soft_targets_in_process(tmp_path):
    """Mixup/cutmix give (N, C) float targets: torch's CrossEntropyLoss takes them with label smoothing."""
    cfg = reference_torch.compose_config(["trainer.epochs=1", "trainer.limit_train_batches=1",
                                          "trainer.limit_val_batches=1", "data.batch_size=8",
                                          "data.eval_batch_size=250", "data.num_workers=0",
                                          "data.augment.mixup_alpha=0.8", "data.augment.cutmix_alpha=1.0"])
    res = reference_torch.run(cfg, threads=1, out=tmp_path / "r.json")
    assert res["complete"] and (tmp_path / "r.json").is_file()
    assert math.isfinite(res["history"]["train_loss"][0])
    assert res["history_ema"] is None and res["test_ema"] is None


def test_reference_bad_config_is_one_line_error(capsys):
    with pytest.raises(SystemExit) as exc:
        reference_torch.main(["model.name=inception_next_nope", "--threads", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model.name='inception_next_nope'") and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        reference_torch.main(["no_such_group=x"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: bad overrides")


@pytest.mark.parametrize("overrides, steps_per_epoch, epochs", [
    ([], 7, 3),                                                              # cosine, 1 warmup epoch
    (["sched.warmup_epochs=0.5", "sched.min_lr=1e-4"], 5, 4),                # fractional warmup (rounded)
    (["sched.warmup_epochs=0"], 4, 2),                                       # cosine without warmup
    (["sched=step", "sched.step_epochs=1", "sched.warmup_epochs=1"], 3, 4),
    (["sched=constant", "sched.warmup_epochs=2"], 3, 3),
    (["sched.warmup_epochs=5"], 2, 2),                                       # warmup longer than the run
])
def test_schedule_matches_lucid_trainer(overrides, steps_per_epoch, epochs):
    """Every iteration's lr equals the lucid trainer's (trainer.engine.build_scheduler)."""
    import lucid
    from trainer import engine

    cfg = reference_torch.compose_config(overrides)
    t_opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=float(cfg.optim.lr))
    l_opt = lucid.optim.AdamW([lucid.nn.Parameter(lucid.zeros(2))], lr=float(cfg.optim.lr))
    t_sched = reference_torch.build_scheduler(cfg.sched, t_opt, steps_per_epoch, epochs)
    l_sched = engine.build_scheduler(cfg.sched, l_opt, steps_per_epoch, epochs)
    t_lrs, l_lrs = [], []
    for _ in range(steps_per_epoch * epochs):
        t_lrs.append(t_opt.param_groups[0]["lr"])
        l_lrs.append(l_opt.param_groups[0]["lr"])
        t_opt.step()  # no gradients: the steps only keep both libraries' order checks quiet
        l_opt.step()
        t_sched.step()
        l_sched.step()
    np.testing.assert_allclose(t_lrs, l_lrs, rtol=1e-12, atol=0)
    assert len(set(t_lrs)) > 1 or cfg.sched.name == "constant"


def test_optimizer_and_model_match_lucid_trainer():
    """Same hyper-parameters, and weight decay on exactly the same tensors as the lucid model (timm's names)."""
    from trainer import engine

    cfg = reference_torch.compose_config(["optim.weight_decay=0.07", "optim.lr=3e-3", "model.drop_path_rate=0.2"])
    t_model = reference_torch.build_model(cfg, 10, 3)
    l_model = engine.build_model(cfg, 10, 3)
    t_opt = reference_torch.build_optimizer(cfg.optim, t_model)
    l_opt = engine.build_optimizer(cfg.optim, l_model)
    assert isinstance(t_opt, torch.optim.AdamW)
    t_names = {id(p): n for n, p in t_model.named_parameters()}
    l_names = {id(p): n for n, p in l_model.named_parameters()}
    assert len(t_opt.param_groups) == len(l_opt.param_groups) == 2
    for tg, lg in zip(t_opt.param_groups, l_opt.param_groups):
        assert tg["weight_decay"] == lg["weight_decay"]
        assert tg["lr"] == lg["lr"] == 3e-3 and tuple(tg["betas"]) == tuple(lg["betas"]) and tg["eps"] == lg["eps"]
        assert {t_names[id(p)] for p in tg["params"]} == {l_names[id(p)] for p in lg["params"]}
    assert t_opt.param_groups[1]["weight_decay"] == 0.07
    # same architecture: state-dict keys and shapes agree (so the parity run compares like with like)
    t_sd = {k: tuple(v.shape) for k, v in t_model.state_dict().items() if not k.endswith("num_batches_tracked")}
    l_sd = {k: tuple(v.shape) for k, v in l_model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert t_sd == l_sd
    assert max(m.drop_prob for m in t_model.modules() if type(m).__name__ == "DropPath") == pytest.approx(0.2)


# ------------------------------------------------------------------------------------------- plot_results
def _fake_lucid_run(run_dir: pathlib.Path, top1, loss, times, steps_per_epoch=3):
    from trainer.logging import SummaryWriter

    with SummaryWriter(run_dir / "tb") as w:
        for e, (a, l, t) in enumerate(zip(top1, loss, times)):
            step = (e + 1) * steps_per_epoch
            w.add_scalars_dict({"train/loss": l + 0.1, "lr": 1e-3}, step - 1)  # per-iteration tags: not epochs
            w.add_scalars_dict({"val/top1": a, "val/top5": 90.0, "train/epoch_loss": l, "epoch_time": t}, step)
    return run_dir


def test_plot_results_on_event_file_and_reference_json(torch_run, tmp_path, capsys):
    res, torch_json, _ = torch_run
    run = _fake_lucid_run(tmp_path / "lucid_run", [20.0, 30.0], [2.2, 2.0], [4.0, 2.0])
    test_metrics = tmp_path / "metrics.json"
    test_metrics.write_text(json.dumps({"top1": 27.5, "top5": 80.0, "loss": 2.0, "num_samples": 500}))
    png, md = tmp_path / "plots" / "curves.png", tmp_path / "table.md"
    rc = plot_results.main(["--lucid-run", str(run), "--torch", str(torch_json), "--lucid-test", str(test_metrics),
                            "--out", str(png), "--markdown", str(md)])
    assert rc == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    table = capsys.readouterr().out
    assert md.read_text() == table
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines()[2:]}
    t_final = res["history"]["val_top1"][-1]
    assert rows["final val top-1 (%)"] == ["30.00", f"{t_final:.2f}", f"{30.0 - t_final:+.2f} points"]
    assert rows["best val top-1 (%)"][0] == "30.00 (epoch 2)"
    assert rows["test top-1 (%), final weights"][:2] == ["27.50", f"{res['test']['top1']:.2f}"]
    t_mean = res["mean_train_time"]
    assert rows["mean train time per epoch (s)"] == ["3.0", f"{t_mean:.1f}", f"{3.0 / t_mean:.2f}x"]
    assert rows["mean train time per epoch, epochs 2+ (s)"][0] == "2.0"


def test_plot_reads_resumed_runs_and_json_inputs(tmp_path):
    run = _fake_lucid_run(tmp_path / "run", [10.0, 99.0], [2.5, 9.9], [5.0, 9.0])
    # a resumed run: a second event file rewrites epoch 2 (step 6) and adds epoch 3
    from trainer.logging import SummaryWriter

    with SummaryWriter(run / "tb", purge_step=3) as w:
        w.add_scalars_dict({"val/top1": 15.0, "train/epoch_loss": 2.3, "epoch_time": 4.0}, 6)
        w.add_scalars_dict({"val/top1": 12.0, "train/epoch_loss": 2.1, "epoch_time": 4.0}, 9)
    c = plot_results.read_lucid_events(run / "tb")
    assert c.val_top1 == [10.0, 15.0, 12.0] and c.train_loss == pytest.approx([2.5, 2.3, 2.1])
    assert c.best == (15.0, 2) and c.final_top1 == 12.0 and c.mean_time() == pytest.approx(13 / 3)
    # the same curves from a flat JSON and from a list of per-epoch objects
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"val/top1": c.val_top1, "train/epoch_loss": c.train_loss, "epoch_time": c.train_time}))
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"val_top1": a, "train_loss": b} for a, b in zip(c.val_top1, c.train_loss)]))
    for path in (flat, rows):
        j = plot_results.read_json_curves(path, "lucid")
        assert j.val_top1 == c.val_top1 and j.train_loss == pytest.approx(c.train_loss)
    assert math.isnan(plot_results.read_json_curves(rows, "lucid").mean_time())
    png = plot_results.plot([c, plot_results.read_json_curves(rows, "other")], tmp_path / "p.png", title="t")
    assert png.is_file()


def test_plot_results_errors_name_the_file(tmp_path, capsys):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert plot_results.main(["--lucid-run", str(empty), "--torch", str(tmp_path / "t.json")]) == 2
    assert "no TensorBoard event file" in capsys.readouterr().err
    run = tmp_path / "run"
    from trainer.logging import SummaryWriter

    with SummaryWriter(run / "tb") as w:
        w.add_scalar("train/loss", 1.0, 1)
    assert plot_results.main(["--lucid-run", str(run), "--torch", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert "'val/top1'" in err and "train/loss" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"val_top1": [1.0, 2.0], "train_loss": [1.0]}))
    assert plot_results.main(["--lucid-json", str(bad), "--torch", str(bad)]) == 2
    assert "differ in length" in capsys.readouterr().err
