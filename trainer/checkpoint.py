"""Checkpoints: ``last``, ``best`` and every-N (keep-k) files, each one safetensors file written atomically.

A checkpoint holds everything a run needs to continue bit-for-bit: model, optimizer, scheduler and EMA
state, epoch and global step, the RNG state and the resolved config (JSON inside the safetensors header;
no pickle). ``lucid.save`` writes to a temporary name and renames, so a crash mid-write leaves the previous
file intact.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import lucid

CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("model", "epoch", "step", "config")


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable or does not fit the run; the message names the file."""


def load_checkpoint(path) -> dict:
    """Read and sanity-check a trainer checkpoint (or raise CheckpointError naming the file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = lucid.load(str(path))
    except Exception as exc:  # lucid.load already says what is wrong; add that it was a checkpoint
        raise CheckpointError(f"checkpoint {path} could not be read: {exc}") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a lucid trainer checkpoint (expected keys {list(REQUIRED_KEYS)}, "
                              f"found {keys}); for plain weights use model.pretrained_path")
    return state


class CheckpointManager:
    """Writes ``last.safetensors``, ``best.safetensors`` and ``epoch_NNNN.safetensors`` under ``directory``."""

    def __init__(self, directory, interval: int = 0, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.interval = int(interval)
        self.keep = int(keep)

    @property
    def last_path(self) -> Path:
        return self.directory / "last.safetensors"

    @property
    def best_path(self) -> Path:
        return self.directory / "best.safetensors"

    def save(self, state: dict, epoch: int, is_best: bool, epoch_end: bool = True) -> list:
        """Write last (always), best (when ``is_best``) and a numbered file every ``interval`` epochs."""
        self.directory.mkdir(parents=True, exist_ok=True)
        state = dict(state, checkpoint_version=CHECKPOINT_VERSION)
        written = [self.last_path]
        lucid.save(state, str(self.last_path))
        if is_best:
            lucid.save(state, str(self.best_path))
            written.append(self.best_path)
        if epoch_end and self.interval > 0 and (epoch + 1) % self.interval == 0:
            numbered = self.directory / f"epoch_{epoch + 1:04d}.safetensors"
            lucid.save(state, str(numbered))
            written.append(numbered)
            self._prune()
        return written

    def _prune(self) -> None:
        pattern = re.compile(r"epoch_(\d+)\.safetensors$")
        numbered = sorted((int(m.group(1)), p) for p in self.directory.iterdir() if (m := pattern.match(p.name)))
        for _, path in numbered[: max(len(numbered) - self.keep, 0)]:
            os.remove(path)


def resolve_resume(resume, run_dir) -> Path | None:
    """Map ``trainer.resume`` (None, "auto" or a path) to a checkpoint path, or None to start fresh."""
    if resume in (None, "", "null", False):
        return None
    if resume == "auto":
        candidate = Path(run_dir) / "checkpoints" / "last.safetensors"
        return candidate if candidate.is_file() else None
    path = Path(resume)
    if path.is_dir():
        path = path / "checkpoints" / "last.safetensors" if (path / "checkpoints").is_dir() else \
            path / "last.safetensors"
    if not path.is_file():
        raise CheckpointError(f"trainer.resume={resume!r}: no checkpoint at {path}")
    return path
