"""The GEMM floor of an InceptionNeXt eval forward: the time of its block-MLP GEMMs alone, lucid's BLAS vs torch.

    python benchmarks/gemm_floor.py inception_next_tiny 32 128

For each block, the two 1x1-conv GEMMs of its MLP, ``(pixels, C) @ (C, D)`` and ``(pixels, D) @ (D, C)``,
are timed with NumPy (the BLAS lucid uses) and with ``torch.nn.functional.linear`` (no bias), 2 threads each,
median of two alternating warmed blocks per framework. Their sum is a lower bound for lucid's eval forward
that no op fusion can remove; compare it with the whole eval forward of torch in ``scripts/bench.py model``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

def _stages(name: str) -> list:
    """(depth, channels, mlp hidden channels) per stage, read off lucid's model."""
    import lucid

    model = lucid.models.create_model(name)
    return [(len(stage.blocks), stage.blocks[0].mlp.fc1.in_channels, stage.blocks[0].mlp.fc1.out_channels)
            for stage in model.stages]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a registered InceptionNeXt, e.g. inception_next_tiny")
    p.add_argument("size", type=int)
    p.add_argument("batch", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=15)
    args = p.parse_args()
    import threadpoolctl
    import torch

    threadpoolctl.threadpool_limits(args.threads, user_api="blas")
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    total = {"lucid": 0.0, "torch": 0.0}
    flops = 0
    for stage, (depth, c, hidden) in enumerate(_stages(args.model)):
        side = args.size // (4 * 2 ** stage)
        rows = args.batch * side * side
        for k_in, k_out in ((c, hidden), (hidden, c)):
            a = rng.standard_normal((rows, k_in), dtype=np.float32)
            w = rng.standard_normal((k_out, k_in), dtype=np.float32)
            ta, tw = torch.from_numpy(a), torch.from_numpy(w)
            fns = {"lucid": lambda: a @ w.T, "torch": lambda: torch.nn.functional.linear(ta, tw)}
            times = {k: [] for k in fns}
            # two alternating blocks per framework, each after a warm-up call: switching framework every
            # call would time each one against the other's still-spinning worker threads
            for _ in range(2):
                for name, f in fns.items():
                    f()
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        f()
                        times[name].append(time.perf_counter() - t0)
            for name in fns:
                total[name] += depth * float(np.median(times[name]))
            flops += depth * 2 * rows * k_in * k_out
    print(f"{args.model} {args.size}x{args.size} b{args.batch}: {flops / 1e9:.1f} GFLOP of block-MLP GEMMs; "
          f"lucid (NumPy BLAS) {1e3 * total['lucid']:.1f} ms ({flops / total['lucid'] / 1e9:.0f} GFLOP/s), "
          f"torch {1e3 * total['torch']:.1f} ms ({flops / total['torch'] / 1e9:.0f} GFLOP/s)")


if __name__ == "__main__":
    main()
