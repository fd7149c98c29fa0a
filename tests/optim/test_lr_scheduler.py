"""lucid.optim.lr_scheduler against torch.optim.lr_scheduler: the lr (and momentum) sequence of every
schedule over 100 steps, on two param groups with different lrs, equal to 1e-12; state_dict round trips."""
from __future__ import annotations

import copy
import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tsched

import lucid
from lucid import optim
from lucid.nn import Parameter
from lucid.optim import lr_scheduler as lsched

TOL = 1e-12


def _opts(kind: str = "sgd"):
    """A lucid and a torch optimizer with two groups (lr 0.1 and 0.05); no gradients, so steps are no-ops."""
    lp = [Parameter(np.zeros(2, np.float32)), Parameter(np.zeros(3, np.float32))]
    tp = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    if kind == "sgd":
        return (optim.SGD([{"params": [lp[0]]}, {"params": [lp[1]], "lr": 0.05}], lr=0.1, momentum=0.9),
                torch.optim.SGD([{"params": [tp[0]]}, {"params": [tp[1]], "lr": 0.05}], lr=0.1, momentum=0.9))
    return (optim.AdamW([{"params": [lp[0]]}, {"params": [lp[1]], "lr": 0.05}], lr=0.1),
            torch.optim.AdamW([{"params": [tp[0]]}, {"params": [tp[1]], "lr": 0.05}], lr=0.1))


def _snapshot(opt):
    out = []
    for g in opt.param_groups:
        out.append(g["lr"])
        if "momentum" in g:
            out.append(g["momentum"])
        if "betas" in g:
            out.extend(g["betas"])
    return out


def _close(a, b, what):
    assert len(a) == len(b), what
    for x, y in zip(a, b):
        assert abs(x - y) <= TOL * max(abs(y), 1e-300), f"{what}: {x!r} vs {y!r}"


# name -> (factory taking (scheduler module, optimizer), optimizer kind)
CASES = {
    "StepLR": (lambda m, o: m.StepLR(o, step_size=7, gamma=0.5), "sgd"),
    "MultiStepLR": (lambda m, o: m.MultiStepLR(o, milestones=[10, 30, 30, 60], gamma=0.3), "sgd"),
    "ExponentialLR": (lambda m, o: m.ExponentialLR(o, gamma=0.97), "sgd"),
    "LambdaLR": (lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e), "sgd"),
    "LambdaLR_per_group": (lambda m, o: m.LambdaLR(o, [lambda e: 1 / (1 + e), lambda e: e % 7 + 1]), "sgd"),
    "MultiplicativeLR": (lambda m, o: m.MultiplicativeLR(o, lambda e: 0.99 if e % 2 else 0.98), "sgd"),
    "LinearLR_warmup": (lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=20), "sgd"),
    "LinearLR_decay": (lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=60), "sgd"),
    "ConstantLR": (lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=10), "sgd"),
    "PolynomialLR": (lambda m, o: m.PolynomialLR(o, total_iters=50, power=2.0), "sgd"),
    "CosineAnnealingLR": (lambda m, o: m.CosineAnnealingLR(o, T_max=100), "adamw"),
    "CosineAnnealingLR_past_Tmax": (lambda m, o: m.CosineAnnealingLR(o, T_max=30, eta_min=1e-4), "sgd"),
    "CosineAnnealingWarmRestarts": (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2,
                                                                               eta_min=1e-5), "sgd"),
    "CosineAnnealingWarmRestarts_Tmult1": (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=7), "adamw"),
    "OneCycleLR_cos_sgd": (lambda m, o: m.OneCycleLR(o, max_lr=[0.2, 0.1], total_steps=100), "sgd"),
    "OneCycleLR_linear_adamw": (lambda m, o: m.OneCycleLR(o, max_lr=0.3, epochs=10, steps_per_epoch=10,
                                                          anneal_strategy="linear"), "adamw"),
    "OneCycleLR_three_phase": (lambda m, o: m.OneCycleLR(o, max_lr=0.2, total_steps=100, three_phase=True,
                                                         pct_start=0.25, base_momentum=0.8,
                                                         max_momentum=0.9), "sgd"),
    "OneCycleLR_no_momentum": (lambda m, o: m.OneCycleLR(o, max_lr=0.2, total_steps=120, cycle_momentum=False,
                                                         div_factor=10.0, final_div_factor=100.0), "adamw"),
    "SequentialLR_warmup_cosine": (lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.01, total_iters=10), m.CosineAnnealingLR(o, T_max=90, eta_min=1e-6)],
        milestones=[10]), "adamw"),
    "SequentialLR_three": (lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.1, total_iters=5), m.ExponentialLR(o, gamma=0.9),
            m.StepLR(o, step_size=10, gamma=0.5)], milestones=[5, 40]), "sgd"),
    "SequentialLR_warm_restarts": (lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingWarmRestarts(o, T_0=20)],
        milestones=[5]), "sgd"),
    "ChainedScheduler": (lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.5, total_iters=4),
                                                         m.ExponentialLR(o, gamma=0.95)]), "sgd"),
}


def _run(case: str, steps: int = 100):
    factory, kind = CASES[case]
    lopt, topt = _opts(kind)
    ls, ts = factory(lsched, lopt), factory(tsched, topt)
    seq_l, seq_t = [_snapshot(lopt)], [_snapshot(topt)]
    for _ in range(steps):
        lopt.step()
        topt.step()
        ls.step()
        ts.step()
        seq_l.append(_snapshot(lopt))
        seq_t.append(_snapshot(topt))
        _close(ls.get_last_lr(), ts.get_last_lr(), f"{case} get_last_lr")
    return seq_l, seq_t, (lopt, ls), (topt, ts)


@pytest.mark.parametrize("case", list(CASES))
def test_lr_sequence_matches_torch(case):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither library should warn on the documented usage
        seq_l, seq_t, (lopt, _), _ = _run(case)
    for i, (a, b) in enumerate(zip(seq_l, seq_t)):
        _close(a, b, f"{case} step {i}")
    for g in lopt.param_groups:
        assert "initial_lr" in g


def _json_round_trip(obj):
    return json.loads(json.dumps(obj))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("via", ["memory", "json", "lucid.save"])
def test_state_dict_round_trip_mid_run(case, via, tmp_path):
    """Stop after 40 steps, rebuild optimizer + scheduler, load both states, continue: same sequence as
    torch's uninterrupted run (states kept in memory, through JSON, or through a checkpoint file)."""
    factory, kind = CASES[case]
    _, seq_t, _, _ = _run(case)
    lopt, _ = _opts(kind)
    ls = factory(lsched, lopt)
    for _ in range(40):
        lopt.step()
        ls.step()
    s_state = copy.deepcopy(ls.state_dict())
    o_state = copy.deepcopy(lopt.state_dict())
    if via == "json":
        s_state, o_state = _json_round_trip(s_state), _json_round_trip(o_state)
    elif via == "lucid.save":
        if not hasattr(lucid, "save"):
            pytest.skip("lucid.save (lucid/serialization.py) is not available")
        lucid.save({"scheduler": s_state, "optimizer": o_state}, str(tmp_path / "ckpt.safetensors"))
        loaded = lucid.load(str(tmp_path / "ckpt.safetensors"))
        s_state, o_state = loaded["scheduler"], loaded["optimizer"]
    lopt2, _ = _opts(kind)
    ls2 = factory(lsched, lopt2)
    ls2.load_state_dict(s_state)
    lopt2.load_state_dict(o_state)
    _close(_snapshot(lopt2), seq_t[40], f"{case} after load")
    for i in range(41, 101):
        lopt2.step()
        ls2.step()
        _close(_snapshot(lopt2), seq_t[i], f"{case} resumed step {i}")


def test_warm_restarts_fractional_epochs():
    lopt, topt = _opts()
    ls = lsched.CosineAnnealingWarmRestarts(lopt, T_0=3, T_mult=2, eta_min=1e-4)
    ts = tsched.CosineAnnealingWarmRestarts(topt, T_0=3, T_mult=2, eta_min=1e-4)
    iters = 7
    for epoch in range(12):
        for i in range(iters):
            lopt.step()
            topt.step()
            ls.step(epoch + i / iters)
            ts.step(epoch + i / iters)
            _close(_snapshot(lopt), _snapshot(topt), f"epoch {epoch} iter {i}")
    assert ls.T_i == ts.T_i and ls.last_epoch == ts.last_epoch
    with pytest.raises(ValueError, match="non-negative epoch, but got -1"):
        ls.step(-1)


@pytest.mark.parametrize("make", [
    lambda m, o: m.StepLR(o, step_size=4, gamma=0.5),
    lambda m, o: m.MultiStepLR(o, milestones=[3, 9], gamma=0.5),
    lambda m, o: m.ExponentialLR(o, gamma=0.9),
    lambda m, o: m.LinearLR(o, start_factor=0.2, total_iters=8),
    lambda m, o: m.CosineAnnealingLR(o, T_max=12),
    lambda m, o: m.PolynomialLR(o, total_iters=10, power=3.0),
])
def test_step_with_epoch_uses_closed_form(make):
    lopt, topt = _opts()
    ls, ts = make(lsched, lopt), make(tsched, topt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (3, 7, 2, 15, 9):
            lopt.step()
            topt.step()
            ls.step(epoch)
            ts.step(epoch)
            _close(_snapshot(lopt), _snapshot(topt), f"epoch {epoch}")
    with pytest.warns(UserWarning, match="deprecated"):
        ls.step(1)


def test_reduce_lr_on_plateau_matches_torch():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.96, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85] * 4
    for kw in (dict(patience=2, factor=0.5), dict(mode="max", patience=1, threshold=0.01, threshold_mode="abs",
                                                  cooldown=2, min_lr=[1e-3, 2e-3])):
        lopt, topt = _opts()
        ls, ts = lsched.ReduceLROnPlateau(lopt, **kw), tsched.ReduceLROnPlateau(topt, **kw)
        for i, m in enumerate(metrics):
            ls.step(m)
            ts.step(m)
            _close(_snapshot(lopt), _snapshot(topt), f"{kw} step {i}")
        state = _json_round_trip(ls.state_dict())
        lopt2, _ = _opts()
        ls2 = lsched.ReduceLROnPlateau(lopt2, **kw)
        ls2.load_state_dict(state)
        lopt2.load_state_dict(lopt.state_dict())
        for m in metrics[:8]:
            ls.step(m)
            ls2.step(m)
            assert ls.get_last_lr() == ls2.get_last_lr()


def test_warns_when_scheduler_steps_before_optimizer():
    lopt, _ = _opts()
    s = lsched.StepLR(lopt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step"):
        s.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        s.get_lr()


def test_resume_with_last_epoch():
    """last_epoch >= 0 needs initial_lr in the groups (torch's rule); with it, the schedule continues."""
    lopt, _ = _opts()
    with pytest.raises(KeyError, match="initial_lr"):
        lsched.CosineAnnealingLR(lopt, T_max=10, last_epoch=4)
    for g in lopt.param_groups:
        g["initial_lr"] = g["lr"]
    s = lsched.ExponentialLR(lopt, gamma=0.5, last_epoch=4)
    assert s.last_epoch == 5 and s.get_last_lr() == [0.1, 0.05]


@pytest.mark.parametrize("make,exc,match", [
    (lambda o: lsched.StepLR(o, step_size=0), ValueError, "step_size must be a positive int, got 0"),
    (lambda o: lsched.MultiStepLR(o, milestones=[5, 2]), ValueError, r"increasing, got \[5, 2\]"),
    (lambda o: lsched.LinearLR(o, start_factor=0.0), ValueError, "start_factor must be in"),
    (lambda o: lsched.LinearLR(o, end_factor=1.5), ValueError, "end_factor must be in"),
    (lambda o: lsched.ConstantLR(o, factor=2.0), ValueError, "factor must be in"),
    (lambda o: lsched.CosineAnnealingLR(o, T_max=0), ValueError, "T_max must be positive, got 0"),
    (lambda o: lsched.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "positive integer T_0, but got 0"),
    (lambda o: lsched.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=0), ValueError, "T_mult >= 1"),
    (lambda o: lsched.OneCycleLR(o, max_lr=0.1), ValueError, "total_steps OR"),
    (lambda o: lsched.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.5), ValueError, "pct_start"),
    (lambda o: lsched.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="exp"), ValueError, "'exp'"),
    (lambda o: lsched.OneCycleLR(o, max_lr=[0.1], total_steps=10), ValueError, "one value per param group"),
    (lambda o: lsched.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas"),
    (lambda o: lsched.SequentialLR(o, [lsched.ExponentialLR(o, 0.9)], milestones=[3]), ValueError,
     "one milestone fewer"),
    (lambda o: lsched.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor should be < 1.0"),
    (lambda o: lsched.ReduceLROnPlateau(o, mode="up"), ValueError, "mode 'up' is unknown"),
    (lambda o: lsched.StepLR(object(), step_size=3), TypeError, "not a lucid.optim.Optimizer"),
])
def test_bad_arguments(make, exc, match):
    lopt, _ = _opts()
    with pytest.raises(exc, match=match):
        make(lopt)


def test_one_cycle_too_many_steps():
    lopt, _ = _opts()
    s = lsched.OneCycleLR(lopt, max_lr=0.1, total_steps=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            s.step()
        with pytest.raises(ValueError, match="Tried to step 4 times"):
            s.step()


def test_sequential_other_optimizer():
    lopt, _ = _opts()
    other, _ = _opts()
    with pytest.raises(ValueError, match="same optimizer"):
        lsched.SequentialLR(lopt, [lsched.ExponentialLR(lopt, 0.9), lsched.ExponentialLR(other, 0.9)], [3])


def test_cosine_closed_form_value():
    """Sanity beyond parity: the recursive cosine equals the closed form within float rounding."""
    lopt, _ = _opts()
    s = lsched.CosineAnnealingLR(lopt, T_max=50, eta_min=0.001)
    for t in range(1, 51):
        lopt.step()
        s.step()
        want = 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * t / 50)) / 2
        assert abs(lopt.param_groups[0]["lr"] - want) < 1e-12
