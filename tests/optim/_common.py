"""Shared pieces of the optimizer tests: a tiny tanh MLP written twice (lucid ops, torch ops) from the same
initial weights, and a relative-error measure whose worst values are reported at the end of the session."""
from __future__ import annotations

import numpy as np
import torch

import lucid
from lucid.nn import Parameter

TRAJ_TOL = 1e-5
WORST: dict = {}  # case name -> worst relative parameter error over the run


def rel_err(a, b) -> float:
    """max |a - b| / max |b| (b the torch reference), 0 for two empty arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if b.size == 0:
        return 0.0
    scale = max(np.abs(b).max(), 1e-30)
    return float(np.abs(a - b).max() / scale)


def record(name: str, err: float) -> None:
    WORST[name] = max(WORST.get(name, 0.0), err)


SHAPES = {"w1": (5, 8), "b1": (8,), "w2": (8, 3), "b2": (3,), "unused": (4,)}


def init_arrays(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(s) * 0.5).astype(np.float32) for k, s in SHAPES.items()}


def data(step: int, n: int = 16):
    """A fresh batch per step (so gradients keep changing), identical for both frameworks."""
    rng = np.random.default_rng(1000 + step)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    t = rng.standard_normal((n, 3)).astype(np.float32)
    return x, t


class LucidMLP:
    """y = tanh(x @ w1 + b1) @ w2 + b2; loss = mean((y - t)^2). ``unused`` never gets a gradient."""

    def __init__(self, arrays: dict, layouts: dict | None = None) -> None:
        layouts = layouts or {}
        self.params = {}
        for k, a in arrays.items():
            if layouts.get(k) == "t":  # same values, stored transposed (a Fortran-ordered parameter)
                a = np.ascontiguousarray(a.T).T
            self.params[k] = Parameter(a.copy() if layouts.get(k) != "t" else a)

    def loss(self, x, t):
        p = self.params
        h = lucid.tanh(lucid.Tensor(x) @ p["w1"] + p["b1"])
        y = h @ p["w2"] + p["b2"]
        d = y - lucid.Tensor(t)
        return (d * d).mean()


class TorchMLP:
    def __init__(self, arrays: dict) -> None:
        self.params = {k: torch.nn.Parameter(torch.tensor(a.copy())) for k, a in arrays.items()}

    def loss(self, x, t):
        p = self.params
        h = torch.tanh(torch.tensor(x) @ p["w1"] + p["b1"])
        y = h @ p["w2"] + p["b2"]
        return ((y - torch.tensor(t)) ** 2).mean()


def groups(params: dict, spec):
    """Param list or groups from a spec: None -> all params in one list; a list of (names, overrides)."""
    if spec is None:
        return list(params.values())
    return [dict(params=[params[n] for n in names], **over) for names, over in spec]
