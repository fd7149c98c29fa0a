"""Convolutions and pooling at the shapes InceptionNeXt-tiny sees, lucid vs torch, forward and forward+backward.

Two regimes: CIFAR-size input (32x32, batch 128: stage-0 maps are 8x8) and ImageNet-size input (224x224,
batch 16: stage-0 maps are 56x56). lucid gets channels-last activations, as in the model (its ops produce
them); the stem's image batch is NCHW-contiguous for both. torch runs each case in both memory formats first
and is timed in the faster one (the ``torch_format`` column says which).

    python scripts/bench.py nn            # this suite runs as part of "nn"
    python -m benchmarks.suite_nn_conv    # alone
"""
from __future__ import annotations

import numpy as np

from .timing import Row, compare, time_ms

SUITE = "nn"


def _cases(quick: bool):
    """(name, x shape NCHW, out channels, kernel, stride, padding, groups, input needs grad); the stem is the
    one case whose input (the image batch) needs no gradient."""
    regimes = [("32px-b128", 128 if not quick else 16, 8, 32)]
    if not quick:
        regimes.append(("224px-b16", 16, 56, 224))
    for tag, n, r, img in regimes:
        yield f"conv stem 4x4/s4 3->96 {tag}", (n, 3, img, img), 96, (4, 4), 4, 0, 1, False
        yield f"conv dw 3x3 12ch {tag}", (n, 12, r, r), 12, (3, 3), 1, (1, 1), 12, True
        yield f"conv dw 1x11 12ch {tag}", (n, 12, r, r), 12, (1, 11), 1, (0, 5), 12, True
        yield f"conv dw 11x1 12ch {tag}", (n, 12, r, r), 12, (11, 1), 1, (5, 0), 12, True
        yield f"conv 1x1 96->384 {tag}", (n, 96, r, r), 384, (1, 1), 1, 0, 1, True
        yield f"conv 1x1 384->96 {tag}", (n, 384, r, r), 96, (1, 1), 1, 0, 1, True
        yield f"conv down 2x2/s2 96->192 {tag}", (n, 96, r, r), 192, (2, 2), 2, 0, 1, True


def run(args) -> list:
    import torch

    import lucid
    import lucid.nn.functional as F

    quick = bool(getattr(args, "quick", False))
    repeat = int(getattr(args, "repeat", 5))
    rows = []
    rng = np.random.default_rng(0)
    for name, xs, cout, k, stride, pad, groups, x_grad in _cases(quick):
        stem = not x_grad
        cin = xs[1]
        x = rng.standard_normal(xs, dtype=np.float32)
        w = (rng.standard_normal((cout, cin // groups) + k, dtype=np.float32) * 0.1)
        b = rng.standard_normal(cout, dtype=np.float32)
        x_l = x if stem else np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        lx = lucid.Tensor(x_l, requires_grad=x_grad)
        lw = lucid.Tensor(w, requires_grad=True)
        lb = lucid.Tensor(b, requires_grad=True)
        with lucid.no_grad():
            out_shape = F.conv2d(lx, lw, lb, stride, pad, 1, groups).shape
        gy = rng.standard_normal(out_shape, dtype=np.float32)
        lg = lucid.Tensor(np.ascontiguousarray(gy.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2))

        def lucid_fwd():
            with lucid.no_grad():
                F.conv2d(lx, lw, lb, stride, pad, 1, groups)

        def lucid_step():
            lx.grad = lw.grad = lb.grad = None
            F.conv2d(lx, lw, lb, stride, pad, 1, groups).backward(lg)

        torch_fns = {}
        for fmt in ("nchw", "channels_last"):
            mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
            tx = torch.tensor(x).contiguous(memory_format=torch.contiguous_format if stem else mf)
            tx.requires_grad_(x_grad)
            tw = torch.tensor(w).contiguous(memory_format=mf).requires_grad_()
            tb = torch.tensor(b, requires_grad=True)
            tg = torch.tensor(gy).contiguous(memory_format=mf)

            def torch_fwd(tx=tx, tw=tw, tb=tb):
                with torch.no_grad():
                    torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups)

            def torch_step(tx=tx, tw=tw, tb=tb, tg=tg):
                tx.grad = tw.grad = tb.grad = None
                torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups).backward(tg)

            torch_fns[fmt] = (torch_fwd, torch_step)
        for label, idx, lfn in (("fwd", 0, lucid_fwd), ("fwd+bwd", 1, lucid_step)):
            best = min(torch_fns, key=lambda f: time_ms(torch_fns[f][idx], repeat=3, warmup=1))
            rows.append(compare(SUITE, f"{name} {label}", lfn, torch_fns[best][idx], repeat=repeat,
                                torch_format=best))
    rows += _pool_rows(quick, repeat, rng)
    return rows


def _pool_rows(quick, repeat, rng) -> list:
    """Global average pooling of the last stage (the head's AdaptiveAvgPool2d(1)), forward+backward."""
    import torch

    import lucid
    import lucid.nn.functional as F

    rows = []
    shapes = [("32px-b128", (128 if not quick else 16, 768, 1, 1))]
    if not quick:
        shapes.append(("224px-b16", (16, 768, 7, 7)))
    for tag, xs in shapes:
        x = rng.standard_normal(xs, dtype=np.float32)
        lx = lucid.Tensor(np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2), requires_grad=True)
        tx = torch.tensor(x).contiguous(memory_format=torch.channels_last).requires_grad_()
        g = rng.standard_normal(xs[:2] + (1, 1), dtype=np.float32)
        lg, tg = lucid.Tensor(g), torch.tensor(g)

        def lucid_step():
            lx.grad = None
            F.adaptive_avg_pool2d(lx, 1).backward(lg)

        def torch_step():
            tx.grad = None
            torch.nn.functional.adaptive_avg_pool2d(tx, 1).backward(tg)

        rows.append(compare(SUITE, f"pool global avg 768ch {tag} fwd+bwd", lucid_step, torch_step, repeat=repeat,
                            torch_format="channels_last"))
    return rows


if __name__ == "__main__":
    import argparse

    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    for row in run(a):
        print(f"{row.case:48s} lucid {row.lucid_ms:9.2f} ms  torch {row.torch_ms:9.2f} ms  ratio {row.ratio:6.2f}  "
              f"{row.extra}")
