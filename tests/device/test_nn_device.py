"""Every lucid.nn layer and loss module on "cpu" and on "gpu" (the CuPy stand-in, or a real GPU): a copy of the
layer moved with ``.to("gpu")`` gives the CPU layer's outputs, input and parameter gradients, and buffers
(BatchNorm's running statistics), with no implicit host/device crossing. The last test checks that every
Module class lucid.nn exports has a case."""
from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest

import lucid
import lucid.nn as nn

from ..core._parity import arr, rng_for
from ._twin import close, seed_rng


def X(*shape, layout="c", seed="x"):  # noqa: N802
    return arr(shape, layout, rng_for(f"{seed}{shape}"))


def _targets(n, classes, seed=0):
    return np.random.default_rng(seed).integers(0, classes, size=n).astype(np.int64)


# (name, module factory, inputs, training): float inputs get requires_grad
LAYERS = [
    ("Linear", lambda: nn.Linear(4, 3), (X(2, 5, 4),), True),
    ("Identity", lambda: nn.Identity(7), (X(3, 2),), True),
    ("Flatten", lambda: nn.Flatten(), (X(2, 3, 2, 2),), True),
    ("Conv2d", lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=True), (X(2, 3, 6, 5, layout="cl"),), True),
    ("Conv2d_depthwise", lambda: nn.Conv2d(4, 4, (1, 5), padding=(0, 2), groups=4), (X(2, 4, 5, 7),), True),
    ("AvgPool2d", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), (X(2, 3, 7, 7),), True),
    ("MaxPool2d", lambda: nn.MaxPool2d(2, return_indices=True), (X(1, 3, 4, 6),), True),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((2, 3)), (X(2, 3, 5, 7, layout="cl"),), True),
    ("BatchNorm2d_train", lambda: nn.BatchNorm2d(3), (X(4, 3, 3, 3, layout="cl"),), True),
    ("BatchNorm2d_eval", lambda: nn.BatchNorm2d(3, affine=False), (X(4, 3, 3, 3),), False),
    ("BatchNorm2d_cumulative", lambda: nn.BatchNorm2d(3, momentum=None), (X(4, 3, 2, 2),), True),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(5), (X(6, 5),), True),
    ("LayerNorm", lambda: nn.LayerNorm((3, 4)), (X(2, 3, 4),), True),
    ("GroupNorm", lambda: nn.GroupNorm(2, 4), (X(2, 4, 3, 3, layout="cl"),), True),
    ("GELU", lambda: nn.GELU(), (X(2, 3, 4),), True),
    ("GELU_tanh", lambda: nn.GELU("tanh"), (X(2, 3, 4),), True),
    ("ReLU", lambda: nn.ReLU(), (X(2, 6),), True),
    ("SiLU", lambda: nn.SiLU(), (X(2, 6),), True),
    ("Sigmoid", lambda: nn.Sigmoid(), (X(2, 6),), True),
    ("Tanh", lambda: nn.Tanh(), (X(2, 6),), True),
    ("Softmax", lambda: nn.Softmax(dim=1), (X(2, 6),), True),
    ("LogSoftmax", lambda: nn.LogSoftmax(dim=-1), (X(2, 6),), True),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.2), (X(2, 6),), True),
    ("Softplus", lambda: nn.Softplus(beta=2.0), (X(2, 6),), True),
    ("Hardswish", lambda: nn.Hardswish(), (4 * X(2, 6),), True),
    ("Hardsigmoid", lambda: nn.Hardsigmoid(), (4 * X(2, 6),), True),
    ("ELU", lambda: nn.ELU(0.7), (X(2, 6),), True),
    ("Dropout_eval", lambda: nn.Dropout(0.5), (X(3, 4),), False),
    ("DropPath_eval", lambda: nn.DropPath(0.3), (X(3, 4),), False),
    ("Sequential", lambda: nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 2)), (X(3, 4),), True),
    ("ModuleList", lambda: _Stack(nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 3)])), (X(3, 4),), True),
    ("ModuleDict", lambda: _Stack(nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Tanh()})), (X(3, 4),), True),
    ("CrossEntropyLoss", lambda: nn.CrossEntropyLoss(weight=lucid.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1),
     (X(5, 3), _targets(5, 3)), True),
    ("NLLLoss", lambda: nn.NLLLoss(ignore_index=1), (X(5, 3), _targets(5, 3, 1)), True),
    ("MSELoss", lambda: nn.MSELoss(reduction="sum"), (X(3, 4), X(3, 4, seed="y")), True),
    ("BCEWithLogitsLoss", lambda: nn.BCEWithLogitsLoss(pos_weight=lucid.tensor([0.5, 2.0, 1.0])),
     (X(4, 3), np.random.default_rng(2).random((4, 3)).astype(np.float32)), True),
]


class _Stack(nn.Module):
    """Runs the modules of a ModuleList / ModuleDict in order (containers have no forward of their own)."""

    def __init__(self, mods) -> None:
        super().__init__()
        self.mods = mods

    def forward(self, x):
        for m in (self.mods.values() if isinstance(self.mods, nn.ModuleDict) else self.mods):
            x = m(x)
        return x


def _inputs(arrays, device):
    out = []
    for a in arrays:
        t = lucid.tensor(a, device=device)
        if a.dtype.kind == "f":
            t.requires_grad_(True)
        out.append(t)
    return out


@pytest.mark.parametrize("name,make,arrays,training", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_on_gpu_matches_cpu(gpu, name, make, arrays, training):
    lucid.manual_seed(0)
    cpu = make()
    dev = copy.deepcopy(cpu).to("gpu")
    for p in dev.parameters():
        assert p.device == "gpu", f"{name}: parameter left on {p.device} by .to('gpu')"
    cpu.train(training)
    dev.train(training)
    xc, xg = _inputs(arrays, "cpu"), _inputs(arrays, "gpu")
    for step in range(2):  # twice: running statistics and cumulative counters evolve
        oc, og = cpu(*xc), dev(*xg)
        oc = [oc] if isinstance(oc, lucid.Tensor) else list(oc)
        og = [og] if isinstance(og, lucid.Tensor) else list(og)
        for k, (c, g) in enumerate(zip(oc, og)):
            assert g.device == "gpu", f"{name}: output {k} on {g.device}"
            close(g, c, f"{name} step {step}: output {k}")
        seed = seed_rng(f"{name}{step}").standard_normal(oc[0].shape).astype(oc[0].dtype)
        if oc[0].requires_grad:
            oc[0].backward(lucid.tensor(seed))
            og[0].backward(lucid.tensor(seed, device="gpu"))
    for i, (c, g) in enumerate(zip(xc, xg)):
        if c.grad is not None:
            assert g.grad.device == "gpu"
            close(g.grad, c.grad, f"{name}: input {i} gradient")
    for (k, pc), (_, pg) in zip(cpu.named_parameters(), dev.named_parameters()):
        assert (pc.grad is None) == (pg.grad is None), f"{name}: {k} has a gradient on one device only"
        if pc.grad is not None:
            assert pg.grad.device == "gpu"
            close(pg.grad, pc.grad, f"{name}: gradient of {k}")
    for (k, bc), (_, bg) in zip(cpu.named_buffers(), dev.named_buffers()):
        assert bg.device == "gpu", f"{name}: buffer {k} on {bg.device}"
        close(bg, bc, f"{name}: buffer {k}")


def test_factory_arguments_put_parameters_on_the_gpu(gpu):
    layer = nn.Linear(3, 2, device="gpu")
    assert layer.weight.device == "gpu" and layer.bias.device == "gpu"
    assert layer(lucid.randn(4, 3, device="gpu")).device == "gpu"


def test_every_layer_has_a_case():
    names = {c[0].split("_")[0] for c in LAYERS}
    layers = {n for n, cls in vars(nn).items() if inspect.isclass(cls) and issubclass(cls, nn.Module)
              and cls is not nn.Module}
    assert not layers - names, f"nn layers without a device case: {sorted(layers - names)}"
