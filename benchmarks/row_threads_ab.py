"""A/B of row-split threading (lucid/backends/row_threads.py) on whole InceptionNeXt steps, lucid only.

    python benchmarks/row_threads_ab.py                       # atto and tiny, 32x32, batch 128
    python benchmarks/row_threads_ab.py inception_next_tiny 224 16

Train step (forward, label-smoothed cross-entropy, backward, AdamW) and eval forward, with
``LUCID_ROW_THREADS=0`` (off) and ``1`` (on) alternating run by run in one process after warm-up; prints the
medians and the median of the paired on/off ratios. Import order matters: lucid first, so that
``OPENBLAS_THREAD_TIMEOUT`` takes effect (without it the splits are off anyway).
"""
from __future__ import annotations

import os
import sys
import time

import lucid  # noqa: I001  (before NumPy: see the module docstring)
import numpy as np


def ab(name: str, size: int, batch: int) -> None:
    import numba
    import threadpoolctl

    threadpoolctl.threadpool_limits(2, user_api="blas")
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    classes = 100 if size <= 64 else 1000
    rng = np.random.default_rng(0)
    x = lucid.tensor(rng.standard_normal((batch, 3, size, size), dtype=np.float32))
    y = lucid.tensor(rng.integers(0, classes, batch))
    model = lucid.nn.fuse(lucid.models.create_model(name, num_classes=classes), inference=True)
    opt = lucid.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    criterion = lucid.nn.CrossEntropyLoss(label_smoothing=0.1)

    def train():
        model.train()
        opt.zero_grad()
        criterion(model(x), y).backward()
        opt.step()

    def evaluate():
        model.eval()
        with lucid.no_grad():
            model(x)

    saved = os.environ.get("LUCID_ROW_THREADS")
    for mode, step in (("eval forward", evaluate), ("train step", train)):
        reps = max(3, int(3000 / (batch * size * size / 4096)))  # fewer repeats for the slow cases
        reps = min(reps, 20)
        times = {"0": [], "1": []}
        for flag in ("0", "1", "0", "1"):  # warm-up
            os.environ["LUCID_ROW_THREADS"] = flag
            step()
        for _ in range(reps):
            for flag in ("0", "1"):
                os.environ["LUCID_ROW_THREADS"] = flag
                t0 = time.perf_counter()
                step()
                times[flag].append(time.perf_counter() - t0)
        off, on = np.array(times["0"]) * 1e3, np.array(times["1"]) * 1e3
        print(f"{name} {size}x{size} b{batch} {mode}: off {np.median(off):.1f} ms, on {np.median(on):.1f} ms, "
              f"paired on/off {np.median(on / off):.3f} ({reps} pairs)", flush=True)
    if saved is None:
        os.environ.pop("LUCID_ROW_THREADS", None)
    else:
        os.environ["LUCID_ROW_THREADS"] = saved


if __name__ == "__main__":
    if len(sys.argv) > 1:
        ab(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    else:
        for model_name in ("inception_next_atto", "inception_next_tiny"):
            ab(model_name, 32, 128)
