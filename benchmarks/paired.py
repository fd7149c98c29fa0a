"""lucid vs torch on one InceptionNeXt case, alternated run by run: a check of scripts/bench.py's model rows.

    python benchmarks/paired.py inception_next_tiny --size 32 --batch 128 --mode eval --pairs 15
    python benchmarks/paired.py inception_next_tiny --size 224 --batch 16 --mode train --pairs 6

Each pair is one warm-up and one timed run of lucid, then the same for torch (channels_last, its faster format
in every case measured here), on the same weights and batch. Prints both frameworks' times and three ratio
estimates: of the minimums (the least disturbed runs), of the medians, and the median of the per-pair ratios
(robust to load that drifts slower than a pair). On a machine whose load comes in phases of seconds, the three
agreeing is the sign that the measurement is not one phase's accident.
"""
from __future__ import annotations

import argparse
import time

import lucid  # first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads (lucid/_blas.py)
import numpy as np


def _lucid_fns(name: str, state: dict, images, labels):
    model = lucid.models.create_model(name)
    model.load_state_dict({k: lucid.Tensor(v.detach().numpy().copy()) for k, v in state.items()})
    opt = lucid.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    criterion = lucid.nn.CrossEntropyLoss(label_smoothing=0.1)
    x, y = lucid.tensor(images), lucid.tensor(labels)

    def forward():
        model.eval()
        with lucid.no_grad():
            model(x)

    def train_step():
        model.train()
        opt.zero_grad()
        criterion(model(x), y).backward()
        opt.step()

    return forward, train_step


def _torch_fns(name: str, images, labels):
    import timm
    import torch

    model = timm.create_model(name).to(memory_format=torch.channels_last)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.from_numpy(images.copy()).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(labels)

    def forward():
        model.eval()
        with torch.no_grad():
            model(x)

    def train_step():
        model.train()
        opt.zero_grad()
        criterion(model(x), y).backward()
        opt.step()

    return state, forward, train_step


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
    state, t_fwd, t_train = _torch_fns(args.model, images, labels)
    l_fwd, l_train = _lucid_fns(args.model, state, images, labels)
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
