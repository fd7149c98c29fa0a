"""Core ops, lucid vs torch, forward + backward on the same float32 inputs.

    python scripts/bench.py core            # full sizes
    python scripts/bench.py core --quick    # one case per family, smaller tensors

Cases: matmul (square, wide GEMM, batched), an elementwise chain on 4M elements, sum/mean/var over each
dim of a (128, 384, 8, 8) activation-sized tensor, softmax/log_softmax at classifier and attention sizes.
Each timed call builds the graph and backpropagates a fixed upstream gradient; leaf gradients are reset
between calls so accumulation does not add work.
"""
from __future__ import annotations

import numpy as np
import torch

import lucid

from .timing import compare

SUITE = "core"


def _leaves(arrays):
    """lucid and torch leaves over the same float32 data."""
    ls = [lucid.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ls, ts


def _fwd_bwd(lucid_op, torch_op, arrays, seed_grad: np.ndarray):
    """Two closures running op + backward(seed_grad) in lucid and in torch."""
    ls, ts = _leaves(arrays)
    lg = lucid.tensor(seed_grad)
    tg = torch.tensor(seed_grad)

    def run_lucid():
        for t in ls:
            t.grad = None
        lucid_op(*ls).backward(lg)

    def run_torch():
        for t in ts:
            t.grad = None
        torch_op(*ts).backward(tg)

    return run_lucid, run_torch


def _check(lucid_op, torch_op, arrays, tol=1e-4) -> float:
    """Relative forward error, so that a fast but wrong op cannot hide in the table."""
    with lucid.no_grad(), torch.no_grad():
        lo = lucid_op(*[lucid.tensor(a) for a in arrays]).numpy().astype(np.float64)
        to = torch_op(*[torch.tensor(a) for a in arrays]).numpy().astype(np.float64)
    err = float(np.abs(lo - to).max() / max(np.abs(to).max(), 1e-30))
    if err > tol:
        raise AssertionError(f"bench core: lucid and torch disagree (rel. err {err:.2e})")
    return err


def _case(rows, args, name, lucid_op, torch_op, shapes, rng, out_shape, **extra):
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    err = _check(lucid_op, torch_op, arrays)
    seed = rng.standard_normal(out_shape).astype(np.float32)
    lf, tf = _fwd_bwd(lucid_op, torch_op, arrays, seed)
    rows.append(compare(SUITE, name, lf, tf, repeat=args.repeat, warmup=1, rel_err=f"{err:.1e}", **extra))


def run(args) -> list:
    quick = getattr(args, "quick", False)
    rng = np.random.default_rng(0)
    rows: list = []

    # -- matmul ---------------------------------------------------------------------------------------------
    mm = [((512, 512), (512, 512))] if quick else [
        ((512, 512), (512, 512)),
        ((2048, 512), (512, 2048)),
        ((16, 196, 64), (16, 64, 196)),  # batched, attention-like
        ((8, 128, 256), (256, 128)),  # batch x matrix (broadcast weight)
    ]
    for sa, sb in mm:
        out = tuple(np.broadcast_shapes(sa[:-2], sb[:-2])) + (sa[-2], sb[-1])
        _case(rows, args, f"matmul {sa}@{sb} fwd+bwd", lambda a, b: a @ b, lambda a, b: a @ b, [sa, sb], rng, out)

    # -- elementwise chain ----------------------------------------------------------------------------------
    n = 1 << 20 if quick else 1 << 22
    shape = (n // 1024, 1024)
    _case(rows, args, f"(x*y+z).exp().tanh() {n // (1 << 20)}M fwd+bwd",
          lambda x, y, z: (x * y + z).exp().tanh(), lambda x, y, z: (x * y + z).exp().tanh(),
          [shape, shape, shape], rng, shape)

    # -- reductions over each dim ---------------------------------------------------------------------------
    rshape = (32, 384, 8, 8) if quick else (128, 384, 8, 8)
    dims = [1] if quick else [0, 1, 2, 3]
    for op in ["sum", "mean", "var"]:
        for d in dims:
            out = rshape[:d] + rshape[d + 1:]
            _case(rows, args, f"{op}(dim={d}) {rshape} fwd+bwd",
                  lambda x, op=op, d=d: getattr(x, op)(dim=d), lambda x, op=op, d=d: getattr(x, op)(dim=d),
                  [rshape], rng, out)

    # -- softmax / log_softmax ------------------------------------------------------------------------------
    sm = [(128, 1000)] if quick else [(128, 1000), (16, 196, 196)]
    for op in ["softmax", "log_softmax"]:
        for s in sm:
            _case(rows, args, f"{op}(dim=-1) {s} fwd+bwd", lambda x, op=op: getattr(x, op)(-1),
                  lambda x, op=op: getattr(x, op)(-1), [s], rng, s)
    return rows
