"""batch_norm, layer_norm, gelu and cross_entropy, forward and backward, lucid vs torch at the shapes
InceptionNeXt-tiny sees (scripts/bench.py runs this as part of the ``nn`` suite).

    python scripts/bench.py nn                      # through benchmarks/suite_nn.py
    python -c "import benchmarks.suite_nn_norm as s, argparse; \
               [print(r) for r in s.run(argparse.Namespace(repeat=5, quick=False, threads=2))]"

Shapes: 32x32 input at batch 128 (stage-0 activation (128, 96, 8, 8), MLP hidden (128, 384, 8, 8)) and
224x224 at batch 16 ((16, 96, 56, 56), (16, 384, 56, 56)). lucid activations are channels-last, as lucid's
conv ops produce them; torch gets its default contiguous NCHW tensors (what a torch CPU user runs).
layer_norm is timed ConvNeXt-style, over C of the (N, H, W, C) tensor. cross_entropy uses label smoothing
0.1 at (128, 100) (CIFAR-100) and (16, 1000) (ImageNet). "bwd" rows time the backward pass alone through
each library's autograd engine (the graph is built once and kept with retain_graph).
"""
from __future__ import annotations

import numpy as np

from benchmarks.timing import compare

SUITE = "nn"

SHAPES_32 = [(128, 96, 8, 8), (128, 384, 8, 8)]
SHAPES_224 = [(16, 96, 56, 56), (16, 384, 56, 56)]
CE_SHAPES = [(128, 100), (16, 1000)]


def _arrays(shape, seed):
    rng = np.random.default_rng(seed)
    n, c, h, w = shape
    nhwc = rng.standard_normal((n, h, w, c), dtype=np.float32)
    return nhwc.transpose(0, 3, 1, 2)  # NCHW shape, channels-last memory


def _fmt(shape) -> str:
    return "x".join(str(s) for s in shape)


def _bn_rows(shape, repeat):
    import torch

    import lucid
    import lucid.nn.functional as F

    C = shape[1]
    a = _arrays(shape, 0) * np.float32(1.5) + np.float32(0.3)
    g = _arrays(shape, 1)
    lx = lucid.Tensor(a, requires_grad=True)
    lw = lucid.Tensor(np.ones(C, np.float32), requires_grad=True)
    lb = lucid.Tensor(np.zeros(C, np.float32), requires_grad=True)
    lrm, lrv = lucid.zeros(C), lucid.ones(C)
    tx = torch.tensor(np.ascontiguousarray(a), requires_grad=True)
    tw = torch.ones(C, requires_grad=True)
    tb = torch.zeros(C, requires_grad=True)
    trm, trv = torch.zeros(C), torch.ones(C)

    def lf():
        return F.batch_norm(lx, lrm, lrv, lw, lb, training=True)

    def tf():
        return torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=True)

    rows = [compare(SUITE, f"batch_norm fwd train {_fmt(shape)}", lf, lambda: tf().detach(), repeat=repeat)]
    ly, ty = lf(), tf()
    lg, tg = lucid.Tensor(g), torch.tensor(np.ascontiguousarray(g))

    def lb_():
        lx.grad = lw.grad = lb.grad = None
        ly.backward(lg, retain_graph=True)

    rows.append(compare(SUITE, f"batch_norm bwd {_fmt(shape)}", lb_,
                        lambda: torch.autograd.grad(ty, (tx, tw, tb), tg, retain_graph=True), repeat=repeat))
    return rows


def _ln_rows(shape, repeat):
    import torch

    import lucid
    import lucid.nn.functional as F

    n, c, h, w = shape
    a = np.ascontiguousarray(_arrays(shape, 2).transpose(0, 2, 3, 1))  # (N, H, W, C)
    g = np.ascontiguousarray(_arrays(shape, 3).transpose(0, 2, 3, 1))
    lx = lucid.Tensor(a, requires_grad=True)
    lw = lucid.Tensor(np.ones(c, np.float32), requires_grad=True)
    lb = lucid.Tensor(np.zeros(c, np.float32), requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    tw = torch.ones(c, requires_grad=True)
    tb = torch.zeros(c, requires_grad=True)
    name = _fmt((n, h, w, c))

    def lf():
        return F.layer_norm(lx, (c,), lw, lb)

    def tf():
        return torch.nn.functional.layer_norm(tx, (c,), tw, tb)

    rows = [compare(SUITE, f"layer_norm fwd {name}", lf, lambda: tf().detach(), repeat=repeat)]
    ly, ty = lf(), tf()
    lg, tg = lucid.Tensor(g), torch.tensor(g)

    def lb_():
        lx.grad = lw.grad = lb.grad = None
        ly.backward(lg, retain_graph=True)

    rows.append(compare(SUITE, f"layer_norm bwd {name}", lb_,
                        lambda: torch.autograd.grad(ty, (tx, tw, tb), tg, retain_graph=True), repeat=repeat))
    return rows


def _gelu_rows(shape, repeat):
    import torch

    import lucid
    import lucid.nn.functional as F

    a = _arrays(shape, 4) * np.float32(2.0)
    g = _arrays(shape, 5)
    lx = lucid.Tensor(a, requires_grad=True)
    tx = torch.tensor(np.ascontiguousarray(a), requires_grad=True)
    rows = [compare(SUITE, f"gelu fwd {_fmt(shape)}", lambda: F.gelu(lx),
                    lambda: torch.nn.functional.gelu(tx).detach(), repeat=repeat)]
    ly, ty = F.gelu(lx), torch.nn.functional.gelu(tx)
    lg, tg = lucid.Tensor(g), torch.tensor(np.ascontiguousarray(g))

    def lb_():
        lx.grad = None
        ly.backward(lg, retain_graph=True)

    rows.append(compare(SUITE, f"gelu bwd {_fmt(shape)}", lb_,
                        lambda: torch.autograd.grad(ty, (tx,), tg, retain_graph=True), repeat=repeat))
    return rows


def _ce_rows(shape, repeat):
    import torch

    import lucid
    import lucid.nn.functional as F

    n, c = shape
    rng = np.random.default_rng(6)
    z = rng.standard_normal(shape, dtype=np.float32) * np.float32(3.0)
    t = rng.integers(0, c, n)
    lz, lt = lucid.Tensor(z, requires_grad=True), lucid.Tensor(t)
    tz, tt = torch.tensor(z, requires_grad=True), torch.tensor(t)

    def lf():
        return F.cross_entropy(lz, lt, label_smoothing=0.1)

    def tf():
        return torch.nn.functional.cross_entropy(tz, tt, label_smoothing=0.1)

    rows = [compare(SUITE, f"cross_entropy fwd ls=0.1 {_fmt(shape)}", lf, lambda: tf().detach(), repeat=repeat)]
    ly, ty = lf(), tf()

    def lb_():
        lz.grad = None
        ly.backward(retain_graph=True)

    rows.append(compare(SUITE, f"cross_entropy bwd ls=0.1 {_fmt(shape)}", lb_,
                        lambda: torch.autograd.grad(ty, (tz,), retain_graph=True), repeat=repeat))
    return rows


def run(args) -> list:
    """Rows for every op and shape; ``args.quick`` keeps the 32x32 shapes only, ``args.repeat`` sets the
    number of timed repetitions, ``args.threads`` the numba threads (torch's are set by scripts/bench.py)."""
    try:
        import numba

        numba.set_num_threads(min(getattr(args, "threads", 2) or 2, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # lucid runs its NumPy paths without numba
        pass
    repeat = getattr(args, "repeat", 5)
    shapes = SHAPES_32 if getattr(args, "quick", False) else SHAPES_32 + SHAPES_224
    rows = []
    for shape in shapes:
        rows += _bn_rows(shape, repeat)
    for shape in shapes:
        rows += _ln_rows(shape, repeat)
    for shape in shapes:
        rows += _gelu_rows(shape, repeat)
    for shape in CE_SHAPES:
        rows += _ce_rows(shape, repeat)
    return rows
