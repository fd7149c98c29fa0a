"""A/B of the numba kernels' serial twins (lucid/kernels/_numba.py) on whole InceptionNeXt steps, lucid only.

    python benchmarks/twins_ab.py                 # every family: always parallel vs the measured thresholds
    python benchmarks/twins_ab.py gelu            # one family (memory, mixer, stencil, gelu)

32x32 images, batch 128, 100 classes; train step (forward, label-smoothed cross-entropy, backward, AdamW) and
eval forward. The two settings alternate in three blocks of warmed repeats in one process; medians printed.
"""
from __future__ import annotations

import sys
import time

import numpy as np


def main(families) -> None:
    import numba
    import threadpoolctl

    import lucid

    lucid.backends.cpu.configure()
    from lucid.backends import cpu

    threadpoolctl.threadpool_limits(2, user_api="blas")
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    default = dict(cpu.SERIAL_BELOW)
    families = families or list(default)
    settings = {"always parallel": {f: 0 for f in families}, "twins": {f: default[f] for f in families}}
    rng = np.random.default_rng(0)
    images = rng.standard_normal((128, 32, 32, 3), dtype=np.float32)  # NHWC buffer, NCHW view (channels-last)
    x = lucid.tensor(images.transpose(0, 3, 1, 2))
    y = lucid.tensor(rng.integers(0, 100, 128))
    for name in ("inception_next_atto", "inception_next_tiny"):
        model = lucid.nn.fuse(lucid.models.create_model(name, num_classes=100), inference=True)
        opt = lucid.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
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

        for mode, step in (("train step", train), ("eval forward", evaluate)):
            times = {k: [] for k in settings}
            reps = 4 if name.endswith("tiny") and mode == "train step" else 8
            for _ in range(3):
                for label, thresholds in settings.items():
                    cpu.SERIAL_BELOW.update(thresholds)
                    step()
                    for _ in range(reps):
                        t0 = time.perf_counter()
                        step()
                        times[label].append(time.perf_counter() - t0)
            cpu.SERIAL_BELOW.update(default)
            print(f"{name} {mode} ({', '.join(families)}): "
                  + "  ".join(f"{k} {1e3 * np.median(v):.1f} ms" for k, v in times.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
