"""Held-out evaluation of a checkpoint: rebuild the model, run a split, write the report files.

Used by scripts/evaluate.py. Outputs in the run directory: ``metrics.json``, ``report.md``,
``confusion_matrix.png``, ``misclassified.png`` and TensorBoard scalars and images under ``eval/``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import lucid
from lucid.models import create_model, list_models

from .checkpoint import CheckpointError
from .config import ConfigError
from .data import build_data
from .logging import SummaryWriter
from .metrics import MetricAccumulator
from .report import _atomic_write, console_table, plot_confusion_matrix, render_confusion_matrix, save_misclassified_grid
from .report import render_misclassified_grid, write_markdown_report


def load_model_for_eval(cfg, num_classes: int, in_channels: int):
    """(model, description) from a trainer checkpoint or a plain weights file; mismatches are errors."""
    path = Path(cfg.checkpoint)
    requested = cfg.model.name if cfg.get("model") else None
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = lucid.load(str(path))
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} could not be read: {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint or a state dict")
    if "model" in state and "config" in state:  # a trainer checkpoint
        saved = state["config"]
        name = saved["model"]["name"]
        if requested is not None and requested != name:
            raise ConfigError(f"model={requested!r} was requested, but checkpoint {path} holds a {name!r}")
        classes = len(state["classes"]) if state.get("classes") else int(saved["data"]["num_classes"])
        if classes != num_classes:
            raise ConfigError(f"checkpoint {path} predicts {classes} classes ({saved['data']['name']}), but "
                              f"data={cfg.data.name} has {num_classes}")
        weights = state["model"]
        if cfg.use_ema:
            if state.get("ema") is None:
                raise ConfigError(f"use_ema=true, but checkpoint {path} has no EMA weights (train with "
                                  "trainer.ema.enabled=true)")
            # AveragedModel's state dict holds the averaged copy under "module." (plus its counter)
            weights = {k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")}
        model = create_model(name, num_classes=classes, in_channels=int(saved["data"]["in_channels"]))
        what = f"{name} from trainer checkpoint {path} (epoch {state['epoch']}{', EMA' if cfg.use_ema else ''})"
    else:  # plain weights, e.g. converted from timm
        if requested is None:
            raise ConfigError(f"{path} holds plain weights without a config: say which model they are for with "
                              f"model=<name> (one of {', '.join(list_models())})")
        if cfg.use_ema:
            raise ConfigError("use_ema=true needs a trainer checkpoint; plain weights have no EMA copy")
        weights = state
        head = weights.get("head.fc2.weight")
        classes = int(head.shape[0]) if head is not None else num_classes
        if classes != num_classes:
            raise ConfigError(f"weights {path} predict {classes} classes, but data={cfg.data.name} has {num_classes}")
        model = create_model(requested, num_classes=classes, in_channels=in_channels)
        what = f"{requested} from weights file {path}"
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {path} do not fit the model: {exc}") from None
    if cfg.get("fuse", True):  # fused inference modules (BatchNorm folded), same weights: lucid/nn/fuse.py
        model = lucid.nn.fuse(model, inference=True)
    return model, what


def _per_sample_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(1))
    return lse - shifted[np.arange(len(labels)), labels]


class HardestBuffer:
    """The k misclassified samples with the highest loss seen so far, with their images (bounded memory)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.loss = np.zeros(0)
        self.images = None
        self.true = np.zeros(0, dtype=np.int64)
        self.pred = np.zeros(0, dtype=np.int64)
        self.prob = np.zeros(0)

    def update(self, images, logits, labels) -> None:
        if self.k <= 0:
            return
        pred = logits.argmax(1)
        wrong = pred != labels
        if not wrong.any():
            return
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        loss = _per_sample_loss(logits, labels)
        imgs = images[wrong]
        cat = lambda a, b: b if a is None else np.concatenate([a, b])  # noqa: E731
        self.loss = np.concatenate([self.loss, loss[wrong]])
        self.images = cat(self.images, imgs)
        self.true = np.concatenate([self.true, labels[wrong]])
        self.pred = np.concatenate([self.pred, pred[wrong]])
        self.prob = np.concatenate([self.prob, probs[wrong, pred[wrong]]])
        keep = np.argsort(-self.loss, kind="stable")[: self.k]
        self.loss, self.images, self.true, self.pred, self.prob = (
            self.loss[keep], self.images[keep], self.true[keep], self.pred[keep], self.prob[keep])


def run_evaluation(cfg, run_dir) -> dict:
    """Evaluate ``cfg.checkpoint`` on ``cfg.split`` of ``cfg.data``; write the outputs; return the metrics."""
    from tqdm import tqdm

    run_dir = Path(run_dir)
    if cfg.split not in ("test", "val", "train"):
        raise ConfigError(f"split={cfg.split!r} is invalid: expected 'test', 'val' or 'train'")
    device = lucid._backend.normalize_device(cfg.device)
    data = build_data(cfg.data, int(cfg.seed))
    loader = {"test": data.test, "val": data.val, "train": data.train}[cfg.split]
    split = cfg.split
    if loader is None and split == "test":
        loader, split = data.val, "val"
    if cfg.split == "train":
        loader = data.train_eval if hasattr(data, "train_eval") else data.train
    model, what = load_model_for_eval(cfg, data.num_classes, data.in_channels)
    model.to(device).eval()

    acc = MetricAccumulator(data.num_classes, class_names=list(data.classes), n_bins=int(cfg.ece_bins))
    hardest = HardestBuffer(int(cfg.hardest_k))
    total = len(loader) if cfg.limit_batches is None else min(len(loader), int(cfg.limit_batches))
    with lucid.no_grad():
        for i, (x, y) in enumerate(tqdm(loader.epoch_batches(0), total=total, desc=f"eval {split}",
                                        disable=not cfg.progress)):
            if i >= total:
                break
            xt = lucid.Tensor(x, device=device)
            logits = model(xt).array
            if cfg.tta_hflip:
                logits = (logits + model(lucid.Tensor(np.ascontiguousarray(x[..., ::-1]), device=device)).array) / 2
            logits = np.asarray(lucid._backend.to_device(logits, "cpu"), dtype=np.float32)
            acc.update(logits, y)
            hardest.update(x, logits, y)
    metrics = acc.compute()
    metrics.update({"checkpoint": str(cfg.checkpoint), "model": what, "data": cfg.data.name, "split": split,
                    "tta_hflip": bool(cfg.tta_hflip), "classes": list(data.classes)})

    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(metrics, indent=2, allow_nan=False).encode()
    _atomic_write(run_dir / "metrics.json", lambda f: f.write(text))
    names = list(data.classes)
    plot_confusion_matrix(np.asarray(metrics["confusion"]), names, run_dir / "confusion_matrix.png")
    figures = {"Confusion matrix": "confusion_matrix.png"}
    mean, std = list(cfg.data.mean), list(cfg.data.std)
    if hardest.images is not None and len(hardest.loss):
        save_misclassified_grid(hardest.images, [names[t] for t in hardest.true], [names[p] for p in hardest.pred],
                                hardest.prob, run_dir / "misclassified.png", mean=mean, std=std)
        figures["Hardest misclassified (highest loss)"] = "misclassified.png"
    write_markdown_report(metrics, names, run_dir / "report.md", title=f"Evaluation: {cfg.data.name} / {split}",
                          figures=figures, notes=[what, f"split: {split}, samples: {metrics['num_samples']}",
                                                  f"horizontal-flip TTA: {bool(cfg.tta_hflip)}"])
    with SummaryWriter(str(run_dir / "tb")) as writer:
        writer.add_scalars_dict({f"eval/{k}": metrics[k] for k in ("top1", "top5", "loss", "ece")}, 0)
        writer.add_image("eval/confusion_matrix", render_confusion_matrix(np.asarray(metrics["confusion"]), names), 0)
        if hardest.images is not None and len(hardest.loss):
            writer.add_image("eval/misclassified", render_misclassified_grid(
                hardest.images, [names[t] for t in hardest.true], [names[p] for p in hardest.pred], hardest.prob,
                mean=mean, std=std), 0)
    print(console_table(metrics))
    print(f"report: {run_dir / 'report.md'}")
    return metrics
