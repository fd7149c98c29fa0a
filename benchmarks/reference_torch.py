"""The PyTorch + timm reference run for the accuracy-parity check (issue 9). Dev-only: imports torch and timm.

Trains timm's model of the same name (``inception_next_atto`` by default) on exactly the data and recipe of the
lucid trainer (``scripts/train.py``, ``trainer/engine.py``), so that the two final top-1 figures can be compared:

    python benchmarks/reference_torch.py experiment=cifar10_atto data.root=/path/to/cifar10 trainer.epochs=15 \\
        --out results/torch_cifar10_atto.json

Positional arguments are Hydra overrides of ``conf/config.yaml``, composed exactly as ``scripts/train.py`` composes
them (same groups, same defaults), so the lucid run and this one read one config. Identical on purpose:

- data: ``trainer.data.build_data(cfg.data, cfg.seed)`` -- the lucid trainer's own loaders, hence the same
  validation hold-out, the same shuffles and the same augmented pixels batch for batch (random crop, flip, and
  mixup/cutmix soft targets when enabled); the NumPy batches are wrapped with ``torch.from_numpy``;
- model: ``timm.create_model(cfg.model.name, num_classes, in_chans, drop_path_rate, drop_rate, ls_init_value)``
  after ``torch.manual_seed(cfg.seed)``;
- optimizer: AdamW (or SGD) over ``timm.optim.param_groups_weight_decay`` (no decay on biases, norm weights and
  layer-scale gamma), as ``build_optimizer``;
- schedule: per-iteration ``SequentialLR(LinearLR(warmup_start_factor, total_iters=warmup_steps) ->
  CosineAnnealingLR(T_max=total - warmup, eta_min=min_lr))`` (or step / constant), as ``trainer.engine.build_scheduler`` (called with torch's classes);
- loss: ``CrossEntropyLoss(label_smoothing)`` (soft targets with mixup), optional ``clip_grad_norm_``, optional
  EMA of the weights (timm's ``ModelEmaV3``, the average lucid's ``AveragedModel`` reproduces);
- limits: ``trainer.limit_train_batches`` / ``limit_val_batches`` cap the batches as in the lucid trainer;
- metrics: ``trainer.metrics.MetricAccumulator`` (val loss is plain cross-entropy, top-k in percent).

What differs and why: weights are initialised by timm (the same scheme, other random numbers); drop-path draws
come from torch's RNG. Timing: ``train_time`` of an epoch spans the same work as the lucid trainer's
``epoch_time`` (from the first batch request to the last optimizer step, data preparation included);
``eval_time`` is the validation pass. The final weights, and the weights of the best validation epoch, are
evaluated on the test split at the end (like ``scripts/evaluate.py``: all test batches).

Output: one line per epoch on stdout and, with ``--out``, a JSON file (written atomically) with the per-epoch
lists under ``history``, the final / best figures, the test figures, the resolved config and the versions.
``benchmarks/plot_results.py`` reads it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Per-epoch series written under ``history`` in the JSON (all lists of the same length, one entry per epoch).
HISTORY_KEYS = ("epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_top1", "val_top5",
                "train_time", "eval_time", "train_images_per_second")
SCHEMA = "lucid.reference_torch/1"


# ------------------------------------------------------------------------------------------------ config
def compose_config(overrides: list[str]):
    """``conf/config.yaml`` composed with Hydra ``overrides`` (the groups and defaults scripts/train.py uses)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # e.g. called from a process that ran @hydra.main before
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3", job_name="reference_torch"):
        return compose(config_name="config", overrides=list(overrides))


def torch_device(name: str) -> str:
    """The lucid config's ``device`` (cpu | gpu | cuda) as a torch device string."""
    if name == "cpu":
        return "cpu"
    if name in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            from trainer.config import ConfigError

            raise ConfigError(f"device={name!r} asks for a GPU, but torch sees no CUDA device; use device=cpu")
        return "cuda"
    from trainer.config import ConfigError

    raise ConfigError(f"device={name!r} is invalid: expected 'cpu' or 'gpu'")


# -------------------------------------------------------------------------------------- building blocks
def build_model(cfg, num_classes: int, in_channels: int):
    """timm's model named like the lucid one, with the lucid config's regularisation settings."""
    import timm

    from trainer.config import ConfigError

    m = cfg.model
    if m.get("pretrained_path"):
        raise ConfigError(f"model.pretrained_path={m.pretrained_path!r}: the torch reference trains from scratch "
                          "only; leave it null")
    if m.name not in timm.list_models(m.name):
        raise ConfigError(f"model.name={m.name!r} is not a timm model; the reference needs a model timm has "
                          f"(e.g. {', '.join(timm.list_models('inception_next*'))})")
    return timm.create_model(m.name, pretrained=False, num_classes=num_classes, in_chans=in_channels,
                             drop_path_rate=float(m.drop_path_rate), drop_rate=float(m.drop_rate),
                             ls_init_value=float(m.ls_init_value))


def build_optimizer(cfg_optim, model):
    """Mirror of ``trainer.engine.build_optimizer`` with torch's optimizers and timm's parameter groups."""
    import torch
    from timm.optim import param_groups_weight_decay

    wd = float(cfg_optim.weight_decay)
    if cfg_optim.get("no_weight_decay_on_bias_and_norm", True) and wd > 0:
        params = param_groups_weight_decay(model, wd)
    else:
        params = [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": wd}]
    name = cfg_optim.name
    if name == "adamw":
        return torch.optim.AdamW(params, lr=float(cfg_optim.lr), betas=tuple(float(b) for b in cfg_optim.betas),
                                 eps=float(cfg_optim.eps), weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=float(cfg_optim.lr), momentum=float(cfg_optim.momentum),
                               nesterov=bool(cfg_optim.nesterov), weight_decay=wd)
    raise ValueError(f"optim.name={name!r} is not known; expected 'adamw' or 'sgd'")


def build_scheduler(cfg_sched, optimizer, steps_per_epoch: int, epochs: int):
    """The lucid trainer's ``build_scheduler`` with torch's scheduler classes: the same schedule by construction."""
    from torch.optim import lr_scheduler

    from trainer.engine import build_scheduler as lucid_build_scheduler

    return lucid_build_scheduler(cfg_sched, optimizer, steps_per_epoch, epochs, schedulers=lr_scheduler)


def _as_torch(array, device: str, channels_last: bool):
    """A loader batch (NumPy) as a torch tensor on ``device``.

    Loader images are NCHW views of NHWC buffers. Without ``channels_last`` they are made NCHW-contiguous, the
    layout a torchvision DataLoader hands to a typical torch training loop; with it they stay channels-last.
    """
    import torch

    t = torch.from_numpy(array)
    if t.ndim == 4:
        t = t.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return t.to(device, non_blocking=False)


def evaluate(model, loader, num_classes: int, device: str, channels_last: bool, limit_batches=None) -> dict:
    """Eval-mode pass: {'loss', 'top1', 'top5', 'num_samples', ...} from trainer.metrics.MetricAccumulator."""
    import torch

    from trainer.metrics import MetricAccumulator

    model.eval()
    acc = MetricAccumulator(num_classes)
    total = len(loader) if limit_batches is None else min(len(loader), int(limit_batches))
    batches = loader.epoch_batches(0)
    try:
        with torch.inference_mode():
            for i, (x, y) in enumerate(batches):
                if i >= total:
                    break
                logits = model(_as_torch(x, device, channels_last))
                acc.update(logits.float().cpu().numpy(), y)
    finally:
        batches.close()  # stops the loader's prefetch thread when we leave early
    return acc.compute()


def _metric_subset(m: dict) -> dict:
    return {k: float(m[k]) for k in ("top1", "top5", "loss")} | {"num_samples": int(m["num_samples"])}


def write_json_atomic(path: pathlib.Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` via a temporary file in the same folder and a rename (never half-written)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, allow_nan=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -------------------------------------------------------------------------------------------------- run
def run(cfg, *, threads: int, out: pathlib.Path | None = None, channels_last: bool = False,
        progress: bool = False) -> dict:
    """Train and evaluate as configured; returns (and, with ``out``, writes after every epoch) the result dict."""
    import numpy as np
    import timm
    import torch
    from omegaconf import OmegaConf
    from tqdm import tqdm

    from trainer.config import validate
    from trainer.data import build_data
    from trainer.engine import TrainingDiverged
    from trainer.logging import format_epoch_line

    validate(cfg)
    torch.set_num_threads(int(threads))
    tcfg = cfg.trainer
    seed = int(cfg.seed)
    device = torch_device(str(cfg.device))
    data = build_data(cfg.data, seed)
    torch.manual_seed(seed)
    model = build_model(cfg, data.num_classes, data.in_channels).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.optim, model)
    epochs = int(tcfg.epochs)
    steps_per_epoch = len(data.train) if tcfg.limit_train_batches is None else \
        min(len(data.train), int(tcfg.limit_train_batches))
    scheduler = build_scheduler(cfg.sched, optimizer, steps_per_epoch, epochs)
    ema = None
    if tcfg.ema.enabled:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=float(tcfg.ema.decay), use_warmup=bool(tcfg.ema.warmup))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=float(tcfg.label_smoothing))
    trainable = [p for p in model.parameters() if p.requires_grad]
    print(data.summary(), flush=True)
    print(f"torch {torch.__version__} / timm {timm.__version__}: {cfg.model.name}, "
          f"{sum(p.numel() for p in trainable):,} parameters, {steps_per_epoch} steps x {epochs} epochs, "
          f"{torch.get_num_threads()} threads, device {device}", flush=True)

    result: dict = {
        "schema": SCHEMA,
        "framework": "torch+timm",
        "model": str(cfg.model.name),
        "data": str(cfg.data.name),
        "seed": seed,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "threads": torch.get_num_threads(),
        "device": device,
        "channels_last": bool(channels_last),
        "num_parameters": int(sum(p.numel() for p in trainable)),
        "versions": {"torch": torch.__version__, "timm": timm.__version__, "python": platform.python_version(),
                     "numpy": np.__version__},
        "host": platform.node(),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "history": {k: [] for k in HISTORY_KEYS},
        "history_ema": {k: [] for k in ("val_loss", "val_top1", "val_top5")} if ema is not None else None,
        "final": None, "best": None, "test": None, "test_best": None, "test_ema": None, "complete": False,
    }
    hist = result["history"]
    best_top1, best_state, best_epoch = -math.inf, None, 0
    step = 0
    t_start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        run_loss, run_correct, run_count = 0.0, 0, 0
        batches = data.train.epoch_batches(epoch)
        try:
            for i, (x, y) in enumerate(tqdm(batches, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}",
                                            leave=False, disable=not progress)):
                if i >= steps_per_epoch:
                    break
                logits = model(_as_torch(x, device, channels_last))
                loss = criterion(logits, _as_torch(y, device, channels_last))
                loss_value = float(loss.item())
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(f"loss became {loss_value} at epoch {epoch + 1}, step {step}; stopped; "
                                           "try a lower optim.lr or trainer.grad_clip_norm")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if tcfg.grad_clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(trainable, float(tcfg.grad_clip_norm))
                optimizer.step()
                scheduler.step()
                step += 1
                if ema is not None:
                    ema.update(model, step=step)  # decay from the update count, as lucid's AveragedModel
                n = x.shape[0]
                labels = y.argmax(1) if y.ndim == 2 else y
                run_correct += int((logits.detach().argmax(1).cpu().numpy() == labels).sum())
                run_loss += loss_value * n
                run_count += n
        finally:
            batches.close()
        if device == "cuda":
            torch.cuda.synchronize()
        train_time = time.perf_counter() - t0
        t1 = time.perf_counter()
        val = evaluate(model, data.val, data.num_classes, device, channels_last, tcfg.limit_val_batches) \
            if data.val is not None else None
        eval_time = time.perf_counter() - t1
        val_ema = evaluate(ema.module, data.val, data.num_classes, device, channels_last, tcfg.limit_val_batches) \
            if ema is not None and data.val is not None else None
        lr = float(optimizer.param_groups[0]["lr"])
        nan = float("nan")
        row = {"epoch": epoch + 1, "step": step, "lr": lr, "train_loss": run_loss / max(run_count, 1),
               "train_acc": 100.0 * run_correct / max(run_count, 1),
               "val_loss": val["loss"] if val else nan, "val_top1": val["top1"] if val else nan,
               "val_top5": val["top5"] if val else nan, "train_time": train_time, "eval_time": eval_time,
               "train_images_per_second": run_count / train_time if train_time > 0 else 0.0}
        for k in HISTORY_KEYS:
            hist[k].append(float(row[k]) if k not in ("epoch", "step") else int(row[k]))
        if val_ema is not None:
            for k in ("loss", "top1", "top5"):
                result["history_ema"][f"val_{k}"].append(float(val_ema[k]))
        if val is not None and val["top1"] > best_top1:
            best_top1, best_epoch = val["top1"], epoch + 1
            # atto is ~4 M parameters: a CPU copy of the best weights costs little and spares a checkpoint file
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        result["final"] = {"epoch": epoch + 1, "val_top1": row["val_top1"], "val_top5": row["val_top5"],
                           "val_loss": row["val_loss"], "train_loss": row["train_loss"],
                           "train_acc": row["train_acc"]}
        if best_epoch:
            i = best_epoch - 1
            result["best"] = {"epoch": best_epoch, "val_top1": hist["val_top1"][i], "val_top5": hist["val_top5"][i],
                              "val_loss": hist["val_loss"][i]}
        result["mean_train_time"] = sum(hist["train_time"]) / len(hist["train_time"])
        result["mean_eval_time"] = sum(hist["eval_time"]) / len(hist["eval_time"])
        result["wall_time"] = time.perf_counter() - t_start
        print(format_epoch_line(epoch + 1, epochs, {
            "train/loss": row["train_loss"], "train/acc": row["train_acc"], "val/loss": val and val["loss"],
            "val/top1": val and val["top1"], "val/top5": val and val["top5"],
            "val_ema/top1": val_ema and val_ema["top1"], "lr": lr, "throughput": row["train_images_per_second"],
            "eval/time": eval_time}, train_time), flush=True)
        if out is not None:  # after every epoch, so a long run that is stopped still leaves its curves
            write_json_atomic(out, result)

    if data.test is not None:
        result["test"] = _metric_subset(evaluate(model, data.test, data.num_classes, device, channels_last))
        if ema is not None:
            result["test_ema"] = _metric_subset(evaluate(ema.module, data.test, data.num_classes, device,
                                                         channels_last))
        if best_state is not None:
            final_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            model.load_state_dict(best_state)
            result["test_best"] = _metric_subset(evaluate(model, data.test, data.num_classes, device,
                                                          channels_last)) | {"epoch": best_epoch}
            model.load_state_dict(final_state)
        print(f"test ({data.test.num_samples} images): final weights top-1 {result['test']['top1']:.2f}% "
              f"top-5 {result['test']['top5']:.2f}%" + (
                  f"; best-val weights (epoch {best_epoch}) top-1 {result['test_best']['top1']:.2f}%"
                  if result["test_best"] else ""), flush=True)
    result["wall_time"] = time.perf_counter() - t_start
    result["complete"] = True
    if out is not None:
        write_json_atomic(out, result)
        print(f"wrote {out}", flush=True)
    return result


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train timm's model with torch on the lucid trainer's data and recipe (Hydra overrides as "
                    "positional arguments, e.g. experiment=cifar10_atto data.root=/data/cifar10 trainer.epochs=15).")
    p.add_argument("overrides", nargs="*", help="Hydra overrides of conf/config.yaml, as for scripts/train.py")
    p.add_argument("--out", type=pathlib.Path, default=None,
                   help="JSON file for the results (rewritten atomically after every epoch)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--channels-last", action="store_true",
                   help="run torch in channels_last memory format (default: NCHW-contiguous, torch's usual)")
    p.add_argument("--progress", action="store_true", help="tqdm progress bar per epoch")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from trainer.cli import fail, run_guarded

    def go():
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        try:
            cfg = compose_config(args.overrides)
        except (HydraException, OmegaConfBaseException) as exc:
            fail(f"bad overrides {args.overrides}: {exc}".replace("\n", " "))
        run(cfg, threads=args.threads, out=args.out, channels_last=args.channels_last, progress=args.progress)
        return 0

    return run_guarded(go, fail) or 0


if __name__ == "__main__":
    sys.exit(main())
