"""Suite "optim": one AdamW step (weight_decay 0.05) over parameters shaped like InceptionNeXt-tiny's.

    python scripts/bench.py optim            # 256 tensors, 28.1 M floats (timm's inception_next_tiny)
    python scripts/bench.py optim --quick    # the first 64 tensors only

lucid's numba pass (``fused=True``) and NumPy ufunc reference (``fused=False``) against torch's default
AdamW (on CPU that is the single-tensor loop, ``foreach=False``), its ``foreach=True`` multi-tensor path
and its ``fused=True`` CPU kernel. Every optimizer has its own state; lucid's share one parameter set,
torch's another, with fixed random gradients. The ratio is lucid / torch (< 1: lucid is faster).
"""
from __future__ import annotations

import numpy as np

from .timing import compare


def _shapes(quick: bool) -> list[tuple]:
    import timm

    model = timm.create_model("inception_next_tiny")  # only the shapes are used
    shapes = [tuple(p.shape) for _, p in model.named_parameters()]
    return shapes[:64] if quick else shapes


def run(args) -> list:
    import torch

    import lucid
    from lucid import optim
    from lucid.kernels import adamw as kernel

    if kernel.numba_available():
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    shapes = _shapes(args.quick)
    numel = sum(int(np.prod(s)) for s in shapes)
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(np.float32) * 0.02 for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) * 1e-3 for s in shapes]

    lparams = []
    for v, g in zip(values, grads):
        p = lucid.nn.Parameter(v.copy())
        p.grad = lucid.Tensor(g)
        lparams.append(p)
    tparams = []
    for v, g in zip(values, grads):
        p = torch.nn.Parameter(torch.from_numpy(v.copy()))
        p.grad = torch.from_numpy(g)
        tparams.append(p)

    hp = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
    lucid_opts = {"numpy": optim.AdamW(lparams, fused=False, **hp)}
    if kernel.numba_available():
        lucid_opts["numba"] = optim.AdamW(lparams, fused=True, **hp)
    torch_opts = {"default(single-tensor)": torch.optim.AdamW(tparams, **hp),
                  "foreach": torch.optim.AdamW(tparams, foreach=True, **hp),
                  "fused": torch.optim.AdamW(tparams, fused=True, **hp)}
    for o in list(lucid_opts.values()) + list(torch_opts.values()):
        o.step()  # allocate the state (and compile/load the numba kernel) outside the timings

    rows = []
    extra = dict(tensors=len(shapes), Mparams=round(numel / 1e6, 2))
    pairs = [("numba", "default(single-tensor)"), ("numba", "foreach"), ("numba", "fused"),
             ("numpy", "default(single-tensor)"), ("numpy", "foreach")]
    for lname, tname in pairs:
        if lname not in lucid_opts:
            continue
        rows.append(compare("optim", f"AdamW step lucid-{lname} vs torch-{tname}", lucid_opts[lname].step,
                            torch_opts[tname].step, repeat=args.repeat, warmup=3, **extra))
    return rows
