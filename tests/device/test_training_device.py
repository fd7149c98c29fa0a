"""The training machinery on "gpu" vs "cpu": optimizers (SGD with every option, Adam, AdamW on channels-last
and transposed parameters), gradient clipping, the EMA (lucid.optim.swa_utils), optimizer and model state
round trips, and checkpoints (save from the GPU, load to GPU and CPU). Same values on both devices, state
on the GPU, no implicit host/device crossing, and no device synchronisation inside a step."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import lucid
import lucid.nn as nn
from lucid.optim import SGD, Adam, AdamW
from lucid.optim.swa_utils import AveragedModel

from ._twin import close


def _model():
    lucid.manual_seed(0)
    # (no conv bias: BatchNorm cancels its gradient, leaving rounding noise that Adam would amplify)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.GELU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 5))


def _batch(step):
    rng = np.random.default_rng(step)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32).transpose(0, 2, 3, 1).copy().transpose(0, 3, 1, 2)
    return x, rng.integers(0, 5, size=4)


def _steps(model, opt, device, n=3, clip=None, ema=None):
    """n training steps; returns the clip norms (device tensors) seen."""
    norms = []
    for step in range(n):
        x, t = _batch(step)
        loss = nn.functional.cross_entropy(model(lucid.tensor(x, device=device)),
                                           lucid.tensor(t, device=device), label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            norms.append(nn.utils.clip_grad_norm_(model.parameters(), clip))
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
    return norms


OPTIMIZERS = {
    "sgd": lambda p: SGD(p, lr=0.1),
    "sgd_momentum_nesterov_wd": lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "sgd_dampening_maximize": lambda p: SGD(p, lr=0.05, momentum=0.8, dampening=0.3, maximize=True),
    "adam": lambda p: Adam(p, lr=1e-2),
    "adam_amsgrad": lambda p: Adam(p, lr=1e-2, amsgrad=True),
    "adamw": lambda p: AdamW(p, lr=1e-2, weight_decay=0.05),
    "adamw_reference_path": lambda p: AdamW(p, lr=1e-2, fused=False),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_steps_match(gpu, name):
    cpu = _model()
    dev = copy.deepcopy(cpu).to("gpu")
    oc, og = OPTIMIZERS[name](cpu.parameters()), OPTIMIZERS[name](dev.parameters())
    _steps(cpu, oc, "cpu")
    _steps(dev, og, "gpu")
    for (k, pc), (_, pg) in zip(cpu.named_parameters(), dev.named_parameters()):
        assert pg.device == "gpu"
        close(pg, pc, f"{name}: {k} after 3 steps", rtol=1e-4)
    for state in og.state.values():
        for key, v in state.items():
            if key != "step":  # torch keeps the step counter a CPU scalar; so does lucid
                assert v.device == "gpu", f"{name}: optimizer state {key} on {v.device}"


def test_adam_with_l2_weight_decay(gpu):
    cpu = _model()
    dev = copy.deepcopy(cpu).to("gpu")
    _steps(cpu, Adam(cpu.parameters(), lr=1e-2, weight_decay=0.1), "cpu")
    _steps(dev, Adam(dev.parameters(), lr=1e-2, weight_decay=0.1), "gpu")
    for pc, pg in zip(cpu.parameters(), dev.parameters()):
        close(pg, pc, "Adam with L2 decay", rtol=1e-4)
    assert not gpu.crossings(), "\n".join(map(str, gpu.crossings()))


def test_clip_grad_norm_and_value_match_and_do_not_sync(gpu):
    cpu = _model()
    dev = copy.deepcopy(cpu).to("gpu")
    nc = _steps(cpu, SGD(cpu.parameters(), lr=0.1), "cpu", clip=0.5)
    ng = _steps(dev, SGD(dev.parameters(), lr=0.1), "gpu", clip=0.5)
    for a, b in zip(ng, nc):
        assert a.device == "gpu"
        close(a, b, "total norm")
    for pc, pg in zip(cpu.parameters(), dev.parameters()):
        close(pg, pc, "parameters after clipped steps", rtol=1e-4)
    grads = [p.grad for p in dev.parameters()]
    inf_norm = nn.utils.get_total_norm(grads, "inf")
    close(inf_norm, nn.utils.get_total_norm([p.grad for p in cpu.parameters()], "inf"), "inf norm")
    with _no_sync(gpu):
        nn.utils.clip_grad_norm_(dev.parameters(), 0.1)
        nn.utils.clip_grad_value_(dev.parameters(), 0.01)
    for g in grads:
        assert float(g.abs().max().item()) <= 0.01 + 1e-7


def _no_sync(gpu):
    """cupyx.allow_synchronize(False): any device->host read inside raises (on real CuPy too)."""
    import cupyx

    return cupyx.allow_synchronize(False)


def test_a_training_step_makes_no_device_sync(gpu):
    """Forward, label-smoothed loss, backward, clipping, AdamW and EMA update: none reads the device back
    (the caller decides when to read the loss, once per logged step)."""
    model = _model().to("gpu")
    opt = AdamW(model.parameters(), lr=1e-3)
    ema = AveragedModel(model, decay=0.9)
    _steps(model, opt, "gpu", n=1, clip=1.0, ema=ema)  # first step: lazily created state
    x, t = _batch(5)
    x, t = lucid.tensor(x, device="gpu"), lucid.tensor(t, device="gpu")
    with _no_sync(gpu):
        loss = nn.functional.cross_entropy(model(x), t, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update_parameters(model)
    assert np.isfinite(loss.item())


def test_ema_matches_and_stays_on_the_gpu(gpu):
    cpu = _model()
    dev = copy.deepcopy(cpu).to("gpu")
    ec, eg = AveragedModel(cpu, decay=0.5, use_warmup=True), AveragedModel(dev, decay=0.5, use_warmup=True)
    eg.to("gpu")  # the counter buffer too
    _steps(cpu, SGD(cpu.parameters(), lr=0.1), "cpu", ema=ec)
    _steps(dev, SGD(dev.parameters(), lr=0.1), "gpu", ema=eg)
    for (k, a), (_, b) in zip(ec.state_dict().items(), eg.state_dict().items()):
        assert b.device == "gpu", f"EMA {k} on {b.device}"
        close(b, a, f"EMA {k}", rtol=1e-4)
    eg.load_state_dict(ec.state_dict())  # a resumed average reads its count once, then counts on the host
    assert eg._updates() == 3
    eg.set(dev)
    close(eg.module[0].weight, dev[0].weight, "EMA set()")


def test_optimizer_state_round_trip_between_devices(gpu, tmp_path):
    cpu = _model()
    dev = copy.deepcopy(cpu).to("gpu")
    og = AdamW(dev.parameters(), lr=1e-2)
    _steps(dev, og, "gpu", n=2)
    path = tmp_path / "run.safetensors"
    lucid.save({"model": dev.state_dict(), "optim": og.state_dict()}, path)
    ck_gpu, ck_cpu = lucid.load(path), lucid.load(path, map_location="cpu")
    assert all(v.device == "gpu" for v in ck_gpu["model"].values())
    assert all(v.device == "cpu" for v in ck_cpu["model"].values())
    resumed_cpu, resumed_gpu = _model(), _model().to("gpu")
    resumed_cpu.load_state_dict(ck_cpu["model"])
    resumed_gpu.load_state_dict(ck_cpu["model"])  # CPU values into a GPU model: moved, in place
    oc2 = AdamW(resumed_cpu.parameters(), lr=1e-2)
    oc2.load_state_dict(ck_cpu["optim"])
    og2 = AdamW(resumed_gpu.parameters(), lr=1e-2)
    og2.load_state_dict(ck_gpu["optim"])
    _steps(dev, og, "gpu", n=1)
    _steps(resumed_gpu, og2, "gpu", n=1)
    _steps(resumed_cpu, oc2, "cpu", n=1)
    for a, b, c in zip(dev.parameters(), resumed_gpu.parameters(), resumed_cpu.parameters()):
        close(b, a, "resumed on the gpu vs uninterrupted", rtol=1e-6)
        close(b, c, "resumed on the gpu vs resumed on the cpu", rtol=1e-4)


def test_checkpoint_of_raw_arrays_and_tensors(gpu, tmp_path):
    t = lucid.randn(3, 4, device="gpu")
    cl = lucid.randn(2, 3, 4, 5, device="gpu").contiguous("channels_last")
    raw = gpu.xp.arange(6, dtype=gpu.xp.float32).reshape(2, 3)
    lucid.save({"t": t, "cl": cl, "raw": raw, "n": 3}, tmp_path / "c.safetensors")
    back = lucid.load(tmp_path / "c.safetensors")
    assert back["t"].device == "gpu" and back["cl"].device == "gpu"
    close(back["t"], t, "tensor")
    close(back["cl"], cl, "channels-last tensor")
    np.testing.assert_array_equal(back["raw"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert back["n"] == 3


def test_parameter_vector_round_trip(gpu):
    dev = _model().to("gpu")
    vec = nn.utils.parameters_to_vector(dev.parameters())
    assert vec.device == "gpu"
    nn.utils.vector_to_parameters(vec * 2, dev.parameters())
    close(nn.utils.parameters_to_vector(dev.parameters()), vec * 2, "parameters after vector_to_parameters")
    cpu = _model()
    nn.utils.vector_to_parameters(vec.cpu(), cpu.parameters())  # CPU parameters from a GPU-born vector
    close(nn.utils.parameters_to_vector(cpu.parameters()), vec, "CPU parameters from the vector")
    assert "device='gpu'" in repr(vec[:2])
