"""Train a lucid model: ``python scripts/train.py model=inception_next_tiny data=cifar100``.

Hydra composes conf/config.yaml with the chosen groups and overrides; outputs (TensorBoard events under
tb/, checkpoints under checkpoints/, the config under .hydra/) go to the Hydra run directory.
"""
from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lucid  # noqa: E402

lucid.backends.cpu.configure()  # OpenBLAS idle threads, malloc reuse, numba's threading layer (lucid/backends/cpu.py)
import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    from trainer.cli import fail, run_guarded

    run_dir = pathlib.Path(HydraConfig.get().runtime.output_dir)

    def train():
        from trainer.config import validate
        from trainer.engine import fit

        validate(cfg)
        result = fit(cfg, run_dir)
        print(f"done: best val top-1 {result.best_top1:.2f}%")
        print(f"TensorBoard logs: {run_dir / 'tb'}   (tensorboard --logdir {run_dir.parent})")
        print(f"checkpoints:      {run_dir / 'checkpoints'}")
        return result.best_top1

    return run_guarded(train, fail)


if __name__ == "__main__":
    main()
