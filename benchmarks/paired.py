"""lucid vs torch on one InceptionNeXt case, alternated run by run: a check of scripts/bench.py's model rows.

    python benchmarks/paired.py inception_next_tiny --size 32 --batch 128 --mode eval --pairs 15
    python benchmarks/paired.py inception_next_tiny --size 224 --batch 16 --mode train --pairs 6

Each pair is one warm-up and one timed run of lucid, then the same for torch (channels_last, its faster format
in every case measured here), on the same weights and batch, with the bench's own step closures (label-smoothed
cross-entropy, AdamW). Prints both frameworks' times and three ratio estimates: of the minimums (the least
disturbed runs), of the medians, and the median of the per-pair ratios (robust to load that drifts slower than a
pair). On a machine whose load comes in phases of seconds, the three
agreeing is the sign that the measurement is not one phase's accident.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import lucid
import numpy as np

lucid.backends.cpu.configure()  # lucid's CPU tuning, as the scripts apply it (lucid/backends/cpu.py)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run as a script: the repo root
from benchmarks import suite_model  # noqa: E402


def _pair(name: str, images, labels) -> tuple:
    """((lucid eval forward, train step), (torch's, channels_last)) on the same timm-initialised weights: the
    closures scripts/bench.py's model suite times (benchmarks/suite_model.py)."""
    import timm
    import torch

    state = {k: v.detach().clone() for k, v in timm.create_model(name).state_dict().items()}
    lmodel = lucid.nn.fuse(lucid.models.create_model(name), inference=True)  # as the trainer runs it
    lmodel.load_state_dict({k: lucid.Tensor(v.numpy().copy()) for k, v in state.items()})
    lopt = lucid.optim.AdamW(lmodel.parameters(), lr=suite_model.LR, weight_decay=suite_model.WEIGHT_DECAY)
    tmodel, topt = suite_model._torch_model(name, state, "channels_last")
    tx = torch.from_numpy(images.copy()).contiguous(memory_format=torch.channels_last)
    return (suite_model._lucid_fns(lmodel, lopt, lucid.tensor(images), lucid.tensor(labels)),
            suite_model._torch_fns(tmodel, topt, tx, torch.from_numpy(labels)))


def _once_ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a registered InceptionNeXt, e.g. inception_next_tiny")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--mode", choices=("eval", "train"), default="eval")
    p.add_argument("--pairs", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import numba
    import threadpoolctl
    import torch

    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.batch, args.size, args.size, 3), dtype=np.float32).transpose(0, 3, 1, 2)
    labels = rng.integers(0, 1000, args.batch)
    (l_fwd, l_train), (t_fwd, t_train) = _pair(args.model, images, labels)
    lucid_fn, torch_fn = (l_fwd, t_fwd) if args.mode == "eval" else (l_train, t_train)
    saved = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))  # the most numba was started with
    lucid_ms, torch_ms = [], []
    try:
        with threadpoolctl.threadpool_limits(args.threads):
            for _ in range(args.pairs):
                lucid_fn()
                lucid_ms.append(_once_ms(lucid_fn))
                torch_fn()
                torch_ms.append(_once_ms(torch_fn))
    finally:  # leave the caller's thread counts as they were
        torch.set_num_threads(saved[0])
        numba.set_num_threads(saved[1])
    lt, tt = np.array(lucid_ms), np.array(torch_ms)
    print(f"{args.model} {args.size}x{args.size} b{args.batch} {args.mode}, {args.pairs} pairs, {args.threads} threads")
    print("  lucid ms: " + " ".join(f"{v:.1f}" for v in lt))
    print("  torch ms: " + " ".join(f"{v:.1f}" for v in tt))
    print(f"  lucid min {lt.min():.1f} median {np.median(lt):.1f} | torch min {tt.min():.1f} median {np.median(tt):.1f}")
    print(f"  ratio of minimums {lt.min() / tt.min():.3f}, of medians {np.median(lt) / np.median(tt):.3f}, "
          f"median of per-pair ratios {np.median(lt / tt):.3f}")


if __name__ == "__main__":
    main()
