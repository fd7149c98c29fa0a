"""Checks on a composed training config, so a bad value stops the run before any work with one message."""
from __future__ import annotations


class ConfigError(Exception):
    """A configuration value that cannot work; the message names the key, the value and what is expected."""


def _positive(cfg, key: str, value, allow_zero: bool = False) -> None:
    try:
        ok = value >= 0 if allow_zero else value > 0
    except TypeError:
        ok = False
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: expected a {'non-negative' if allow_zero else 'positive'} "
                          "number")


def validate(cfg) -> None:
    """Raise ConfigError for the first value that cannot work."""
    from lucid.models import list_models

    if cfg.model.name not in list_models():
        import difflib

        close = difflib.get_close_matches(cfg.model.name, list_models(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"model.name={cfg.model.name!r} is not a known model{hint}; known: {', '.join(list_models())}")
    if cfg.device not in ("cpu", "gpu", "cuda"):
        raise ConfigError(f"device={cfg.device!r} is invalid: expected 'cpu' or 'gpu'")
    t, o, d = cfg.trainer, cfg.optim, cfg.data
    _positive(cfg, "optim.lr", o.lr)
    _positive(cfg, "optim.weight_decay", o.weight_decay, allow_zero=True)
    _positive(cfg, "trainer.epochs", t.epochs)
    _positive(cfg, "data.batch_size", d.batch_size)
    _positive(cfg, "data.eval_batch_size", d.eval_batch_size)
    _positive(cfg, "trainer.log_interval", t.log_interval)
    _positive(cfg, "trainer.keep_checkpoints", t.keep_checkpoints, allow_zero=True)
    _positive(cfg, "trainer.checkpoint_interval", t.checkpoint_interval, allow_zero=True)
    _positive(cfg, "trainer.histogram_interval", t.histogram_interval, allow_zero=True)
    _positive(cfg, "sched.warmup_epochs", cfg.sched.get("warmup_epochs", 0), allow_zero=True)
    if not 0.0 <= t.label_smoothing < 1.0:
        raise ConfigError(f"trainer.label_smoothing={t.label_smoothing!r} is invalid: expected 0 <= value < 1")
    for key in ("drop_path_rate", "drop_rate"):
        v = cfg.model[key]
        if not 0.0 <= v < 1.0:
            raise ConfigError(f"model.{key}={v!r} is invalid: expected 0 <= value < 1")
    if t.grad_clip_norm is not None:
        _positive(cfg, "trainer.grad_clip_norm", t.grad_clip_norm)
    if t.ema.enabled and not 0.0 < t.ema.decay < 1.0:
        raise ConfigError(f"trainer.ema.decay={t.ema.decay!r} is invalid: expected 0 < value < 1")
    for key in ("limit_train_batches", "limit_val_batches"):
        if t[key] is not None:
            _positive(cfg, f"trainer.{key}", t[key])
    if o.name == "adamw":
        b1, b2 = o.betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ConfigError(f"optim.betas={list(o.betas)} is invalid: expected two values in [0, 1)")
