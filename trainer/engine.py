"""The training and evaluation loops: ``fit(cfg, run_dir)`` and ``evaluate(model, loader)``.

One iteration: forward, label-smoothed cross-entropy, backward, optional gradient clipping, optimizer step,
per-iteration lr schedule step, optional EMA update. Each epoch ends with validation (top-1, top-5, loss;
for the EMA weights too when enabled), TensorBoard scalars, and checkpoints (last / best / every N).
A run is reproducible from its seed: data order and augmentation depend only on (seed, epoch, batch), and
the lucid RNG state (drop-path) is stored in every checkpoint, so a resumed run matches an uninterrupted one.
"""
from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import lucid
from lucid import nn
from lucid.models import create_model
from lucid.optim import SGD, AdamW, lr_scheduler
from lucid.optim.param_groups import param_groups_weight_decay
from lucid.optim.swa_utils import AveragedModel

from .checkpoint import CheckpointError, CheckpointManager, load_checkpoint, resolve_resume
from .data import build_data
from .logging import ConsoleLogger, SummaryWriter
from .metrics import MetricAccumulator


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class FitResult:
    run_dir: Path
    best_top1: float
    final_metrics: dict
    epochs_run: int


# ---------------------------------------------------------------------------------------------------------
# building blocks from the config
def build_model(cfg, num_classes: int, in_channels: int) -> nn.Module:
    """The configured model; with ``fuse`` (the default) run through ``lucid.nn.fuse(model, inference=True)``:
    fused modules holding the same parameters (state-dict keys unchanged), BatchNorm folded in eval mode."""
    m = cfg.model
    model = create_model(m.name, pretrained_path=m.get("pretrained_path"), num_classes=num_classes,
                         in_channels=in_channels, drop_path_rate=float(m.drop_path_rate),
                         drop_rate=float(m.drop_rate), ls_init_value=float(m.ls_init_value))
    return nn.fuse(model, inference=True) if cfg.get("fuse", True) else model


def build_optimizer(cfg_optim, model: nn.Module):
    wd = float(cfg_optim.weight_decay)
    if cfg_optim.get("no_weight_decay_on_bias_and_norm", True) and wd > 0:
        params = param_groups_weight_decay(model, wd)
    else:
        params = [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": wd}]
    name = cfg_optim.name
    if name == "adamw":
        return AdamW(params, lr=float(cfg_optim.lr), betas=tuple(cfg_optim.betas), eps=float(cfg_optim.eps),
                     weight_decay=wd)
    if name == "sgd":
        return SGD(params, lr=float(cfg_optim.lr), momentum=float(cfg_optim.momentum),
                   nesterov=bool(cfg_optim.nesterov), weight_decay=wd)
    raise ValueError(f"optim.name={name!r} is not known; expected 'adamw' or 'sgd'")


def build_scheduler(cfg_sched, optimizer, steps_per_epoch: int, epochs: int, schedulers=lr_scheduler):
    """A per-iteration schedule: optional linear warmup, then cosine / step / constant.

    ``schedulers`` is the module providing the scheduler classes: lucid's by default; the PyTorch reference
    trainer (benchmarks/reference_torch.py) passes ``torch.optim.lr_scheduler``, whose classes have the same
    names and arguments, so both runs get the schedule from this one function.
    """
    total = max(steps_per_epoch * epochs, 1)
    warmup = min(int(round(float(cfg_sched.get("warmup_epochs", 0)) * steps_per_epoch)), total - 1)
    name = cfg_sched.name
    if name == "cosine":
        main = schedulers.CosineAnnealingLR(optimizer, T_max=max(total - warmup, 1),
                                            eta_min=float(cfg_sched.min_lr))
    elif name == "step":
        main = schedulers.StepLR(optimizer, step_size=max(int(cfg_sched.step_epochs) * steps_per_epoch, 1),
                                 gamma=float(cfg_sched.gamma))
    elif name == "constant":
        main = schedulers.ConstantLR(optimizer, factor=1.0, total_iters=0)
    else:
        raise ValueError(f"sched.name={name!r} is not known; expected 'cosine', 'step' or 'constant'")
    if warmup <= 0:
        return main
    # built after `main` so that LinearLR sets the starting lr last (as torch's SequentialLR usage does)
    warm = schedulers.LinearLR(optimizer, start_factor=float(cfg_sched.warmup_start_factor), end_factor=1.0,
                               total_iters=warmup)
    return schedulers.SequentialLR(optimizer, [warm, main], milestones=[warmup])


# ---------------------------------------------------------------------------------------------------------
def _to_tensor(array, device: str) -> lucid.Tensor:
    return lucid.Tensor(array, device=device) if device != "cpu" else lucid.Tensor._wrap(array)


def evaluate(model: nn.Module, loader, num_classes: int, device: str = "cpu", limit_batches=None,
             class_names=None, desc: str = "val", progress: bool = False) -> dict:
    """Eval-mode pass over ``loader``: {'loss', 'top1', 'top5', 'num_samples', ...} (see MetricAccumulator)."""
    from tqdm import tqdm

    model.eval()
    acc = MetricAccumulator(num_classes, class_names=class_names)
    total = len(loader) if limit_batches is None else min(len(loader), int(limit_batches))
    with lucid.no_grad():
        it = loader.epoch_batches(0)
        for i, (x, y) in enumerate(tqdm(it, total=total, desc=desc, leave=False, disable=not progress)):
            if i >= total:
                break
            logits = model(_to_tensor(x, device))
            acc.update(lucid._backend.to_device(logits.array, "cpu"), y)
    return acc.compute()


def _grad_norm(params) -> float:
    total = 0.0
    for p in params:
        if p.grad is not None:
            g = p.grad.array
            total += float((g * g).sum())
    return math.sqrt(total)


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        elif v is None:
            out[key] = "null"
        else:
            out[key] = str(v)
    return out


def fit(cfg, run_dir) -> FitResult:
    """Train ``cfg.model`` on ``cfg.data`` as configured; logs, checkpoints and returns the final metrics."""
    from omegaconf import OmegaConf
    from tqdm import tqdm

    run_dir = Path(run_dir)
    tcfg = cfg.trainer
    device = lucid._backend.normalize_device(cfg.device)
    lucid.manual_seed(int(cfg.seed))
    data = build_data(cfg.data, int(cfg.seed))
    model = build_model(cfg, data.num_classes, data.in_channels).to(device)
    optimizer = build_optimizer(cfg.optim, model)
    epochs = int(tcfg.epochs)
    steps_per_epoch = len(data.train) if tcfg.limit_train_batches is None else \
        min(len(data.train), int(tcfg.limit_train_batches))
    if steps_per_epoch == 0:
        raise ValueError(f"the training set has {data.train.num_samples} samples, fewer than one batch of "
                         f"{cfg.data.batch_size}; lower data.batch_size")
    scheduler = build_scheduler(cfg.sched, optimizer, steps_per_epoch, epochs)
    ema = AveragedModel(model, decay=float(tcfg.ema.decay), use_warmup=bool(tcfg.ema.warmup)) \
        if tcfg.ema.enabled else None
    criterion = nn.CrossEntropyLoss(label_smoothing=float(tcfg.label_smoothing))
    trainable = [p for p in model.parameters() if p.requires_grad]
    resolved = OmegaConf.to_container(cfg, resolve=True)

    console = ConsoleLogger(logging.getLogger("trainer"))
    fused = nn.fusion_summary(model)
    console.info("fused modules: " + (", ".join(f"{n} x{c}" for n, c in fused.items()) if fused else "none"
                                      + (" (fuse=false)" if not cfg.get("fuse", True) else "")))
    start_epoch, step, best_top1 = 0, 0, -1.0
    resume_path = resolve_resume(tcfg.resume, run_dir)
    if resume_path is not None:
        state = load_checkpoint(resume_path)
        _check_compatible(state, resolved, resume_path)
        model.load_state_dict(state["model"])
        with warnings.catch_warnings():  # replaying before any optimizer.step() is intended here
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(int(state["step"])):  # replay the schedule (exact, and right if epochs were raised)
                scheduler.step()
        optimizer.load_state_dict(state["optimizer"])
        for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
            group["lr"] = lr
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        lucid.random.set_rng_state(state["rng"])
        start_epoch, step = int(state["epoch"]), int(state["step"])
        best_top1 = float(state.get("best_top1", -1.0))
        console.info(f"resumed from {resume_path} at epoch {start_epoch}, step {step}")

    ckpt = CheckpointManager(run_dir / "checkpoints", int(tcfg.checkpoint_interval), int(tcfg.keep_checkpoints))
    # on resume, hide what a crashed run logged after its last checkpoint (TensorBoard drops events at
    # steps >= purge_step; the checkpoint's own epoch-end scalars were logged at `step`, so keep those)
    writer = SummaryWriter(str(run_dir / "tb"), purge_step=step + 1 if resume_path is not None else None)
    last_val: dict = {}
    try:
        if tcfg.image_grid and start_epoch == 0:
            x0, _ = next(iter(data.train.epoch_batches(0)))
            writer.add_images_grid("train/augmented_inputs", x0[:32], 0, mean=list(cfg.data.mean),
                                   std=list(cfg.data.std))
        for epoch in range(start_epoch, epochs):
            model.train()
            t_epoch = time.perf_counter()
            seen, run_loss, run_correct, run_count = 0, 0.0, 0, 0
            t_log = time.perf_counter()
            log_seen = 0
            bar = tqdm(data.train.epoch_batches(epoch), total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}",
                       leave=False, disable=not tcfg.progress)
            for i, (x, y) in enumerate(bar):
                if i >= steps_per_epoch:
                    break
                logits = model(_to_tensor(x, device))
                loss = criterion(logits, _to_tensor(y, device))
                loss_value = float(loss.item())
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(
                        f"loss became {loss_value} at epoch {epoch + 1}, step {step}; stopped. The last good "
                        f"checkpoint is {ckpt.last_path if ckpt.last_path.exists() else '(none yet)'}; try a "
                        "lower optim.lr or trainer.grad_clip_norm")
                optimizer.zero_grad()
                loss.backward()
                grad_norm = None
                if tcfg.grad_clip_norm is not None:
                    grad_norm = float(nn.utils.clip_grad_norm_(trainable, float(tcfg.grad_clip_norm)).item())
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                step += 1
                n = x.shape[0]
                seen += n
                log_seen += n
                preds = lucid._backend.to_device(logits.array, "cpu").argmax(1)
                labels = y.argmax(1) if y.ndim == 2 else y
                run_correct += int((preds == labels).sum())
                run_loss += loss_value * n
                run_count += n
                if step % int(tcfg.log_interval) == 0:
                    dt = time.perf_counter() - t_log
                    ips = log_seen / dt if dt > 0 else 0.0
                    if grad_norm is None:
                        grad_norm = _grad_norm(trainable)
                    lr = optimizer.param_groups[0]["lr"]
                    writer.add_scalars_dict({"train/loss": loss_value, "lr": lr, "grad_norm": grad_norm,
                                             "throughput": ips}, step)
                    bar.set_postfix(loss=f"{run_loss / run_count:.4f}", acc=f"{100 * run_correct / run_count:.1f}",
                                    lr=f"{lr:.2e}", ips=f"{ips:.0f}")
                    t_log, log_seen = time.perf_counter(), 0
            bar.close()
            train_loss = run_loss / max(run_count, 1)
            train_acc = 100.0 * run_correct / max(run_count, 1)
            train_time = time.perf_counter() - t_epoch
            val = evaluate(model, data.val, data.num_classes, device, tcfg.limit_val_batches, progress=tcfg.progress)
            scalars = {"train/acc": train_acc, "train/epoch_loss": train_loss, "val/loss": val["loss"],
                       "val/top1": val["top1"], "val/top5": val["top5"], "epoch_time": train_time,
                       "train/images_per_second": seen / train_time if train_time > 0 else 0.0}
            if ema is not None:
                val_ema = evaluate(ema.module, data.val, data.num_classes, device, tcfg.limit_val_batches, progress=tcfg.progress)
                scalars.update({"val_ema/loss": val_ema["loss"], "val_ema/top1": val_ema["top1"],
                                "val_ema/top5": val_ema["top5"]})
            writer.add_scalars_dict(scalars, step)
            if tcfg.histogram_interval and (epoch + 1) % int(tcfg.histogram_interval) == 0:
                writer.add_histograms(((n, lucid._backend.to_device(p.array, "cpu")) for n, p in
                                       model.named_parameters()), step, prefix="weights/")
            is_best = val["top1"] > best_top1
            best_top1 = max(best_top1, val["top1"])
            last_val = {"val/loss": val["loss"], "val/top1": val["top1"], "val/top5": val["top5"],
                        "train/loss": train_loss, "train/acc": train_acc, "best/top1": best_top1}
            state = {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "ema": ema.state_dict() if ema is not None else None,
                "epoch": epoch + 1, "step": step, "best_top1": best_top1, "rng": lucid.random.get_rng_state(),
                "config": resolved, "metrics": last_val,
                "model_name": cfg.model.name, "classes": list(data.classes),
            }
            ckpt.save(state, epoch, is_best)
            writer.flush()
            console.epoch(epoch + 1, epochs, {
                "train/loss": train_loss, "train/acc": train_acc, "val/loss": val["loss"], "val/top1": val["top1"],
                "val/top5": val["top5"], "val_ema/top1": scalars.get("val_ema/top1"),
                "lr": optimizer.param_groups[0]["lr"], "throughput": scalars["train/images_per_second"]},
                train_time)
        writer.add_hparams(_flatten({k: resolved[k] for k in ("model", "optim", "sched", "trainer", "seed")
                                     if k in resolved} | {"data.name": cfg.data.name}),
                           {f"hparam/{k}": v for k, v in last_val.items()})
    finally:
        writer.close()
    return FitResult(run_dir, best_top1, last_val, epochs - start_epoch)


def _check_compatible(state: dict, resolved: dict, path) -> None:
    old = state.get("config", {})
    for key in ("name",):
        a, b = old.get("model", {}).get(key), resolved["model"][key]
        if a != b:
            raise CheckpointError(f"checkpoint {path} was trained with model.{key}={a!r}, but this run asks for "
                                  f"{b!r}")
    a, b = old.get("data", {}).get("num_classes"), resolved["data"].get("num_classes")
    if a is not None and b is not None and a != b:
        raise CheckpointError(f"checkpoint {path} has {a} classes (data.name={old['data'].get('name')!r}), but this "
                              f"run's data has {b}")
