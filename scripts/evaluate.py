"""Evaluate a checkpoint on a held-out split:

    python scripts/evaluate.py checkpoint=outputs/<run>/checkpoints/best.safetensors data=cifar100 split=test
    python scripts/evaluate.py checkpoint=tiny_in1k.safetensors model=inception_next_tiny \
        data=imagefolder data.root=/data/imagenet split=val data.image_size=224

Writes metrics.json, report.md, confusion_matrix.png, misclassified.png and TensorBoard scalars under eval/
to the Hydra run directory and prints the headline table.
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


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    from trainer.cli import fail, run_guarded
    from trainer.evaluation import run_evaluation

    run_dir = pathlib.Path(HydraConfig.get().runtime.output_dir)
    return run_guarded(lambda: run_evaluation(cfg, run_dir)["top1"], fail)


if __name__ == "__main__":
    main()
