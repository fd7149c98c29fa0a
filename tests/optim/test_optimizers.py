"""SGD / Adam / AdamW against torch.optim: 50 steps on the same tanh MLP from the same weights, each framework
with its own forward and backward, parameters compared after every step; plus state dicts and bad input."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import lucid
from lucid import optim
from lucid.kernels import adamw as adamw_kernel
from lucid.nn import Parameter

from ._common import TRAJ_TOL, LucidMLP, TorchMLP, data, groups, init_arrays, record, rel_err

FUSED = [False] + ([True] if adamw_kernel.numba_available() else [])

ALL = ["w1", "b1", "w2", "b2", "unused"]
TWO_GROUPS_LR = [(["w1", "b1"], {"lr": 0.05}), (["w2", "b2", "unused"], {"lr": 0.2})]

SGD_CASES = {
    "plain": (dict(lr=0.1), None),
    "momentum": (dict(lr=0.05, momentum=0.9), None),
    "momentum_dampening_wd": (dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01), None),
    "nesterov_wd": (dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), None),
    "maximize_momentum": (dict(lr=0.05, momentum=0.8, maximize=True), None),
    "groups": (dict(lr=0.1), [(["w1", "b1"], {"lr": 0.05}),
                              (["w2", "b2", "unused"], {"lr": 0.2, "momentum": 0.5})]),
}
ADAM_CASES = {
    "default": (dict(lr=1e-2), None),
    "l2_amsgrad": (dict(lr=1e-2, weight_decay=0.1, amsgrad=True), None),
    "maximize": (dict(lr=1e-2, maximize=True), None),
    "low_beta1": (dict(lr=1e-2, betas=(0.3, 0.9)), None),  # lerp weight 0.7 >= 0.5: torch's other branch
    "beta1_zero_big_eps": (dict(lr=1e-2, betas=(0.0, 0.99), eps=1e-3), None),
    "groups": (dict(lr=1e-2), [(["w1", "b1"], {"lr": 3e-3, "betas": (0.8, 0.99)}),
                               (["w2", "b2", "unused"], {"weight_decay": 0.05})]),
}
ADAMW_CASES = {
    "default": (dict(lr=1e-2), None),
    "wd_amsgrad": (dict(lr=1e-2, weight_decay=0.05, amsgrad=True), None),
    "maximize_wd": (dict(lr=1e-2, weight_decay=0.1, maximize=True), None),
    "decay_groups": (dict(lr=1e-2), [(["b1", "b2", "unused"], {"weight_decay": 0.0}),
                                     (["w1", "w2"], {"weight_decay": 0.1, "lr": 5e-3})]),
    "amsgrad_groups_lr": (dict(lr=1e-2, amsgrad=True, weight_decay=0.02), TWO_GROUPS_LR),
}


def _cases():
    for name, (kw, spec) in SGD_CASES.items():
        yield pytest.param("SGD", kw, spec, None, id=f"SGD-{name}")
    for cls, cases in (("Adam", ADAM_CASES), ("AdamW", ADAMW_CASES)):
        for name, (kw, spec) in cases.items():
            for fused in FUSED:
                yield pytest.param(cls, kw, spec, fused, id=f"{cls}-{name}-{'numba' if fused else 'numpy'}")


def _make(cls: str, params, kw: dict, fused, lib):
    kw = dict(kw)
    if lib is optim and fused is not None:
        kw["fused"] = fused
    return getattr(lib, cls)(params, **kw)


def _objective(model, kw, step):
    """The loss, negated for maximize=True: ascending -MSE is a descent that stays bounded (ascending the
    MSE itself diverges, and a chaotic run amplifies float32 gradient roundings past any tolerance)."""
    loss = model.loss(*data(step))
    return -loss if kw.get("maximize") else loss


def _run_torch(cls, kw, spec, steps):
    tm = TorchMLP(init_arrays())
    topt = _make(cls, groups(tm.params, spec), kw, None, torch.optim)
    out = []
    for step in range(steps):
        topt.zero_grad()
        _objective(tm, kw, step).backward()
        topt.step()
        out.append({k: v.detach().numpy().copy() for k, v in tm.params.items()})
    return out


@pytest.mark.parametrize("cls,kw,spec,fused", list(_cases()))
def test_trajectory_matches_torch(cls, kw, spec, fused, request):
    steps = 50
    lm = LucidMLP(init_arrays())
    before = {k: p.array for k, p in lm.params.items()}
    opt = _make(cls, groups(lm.params, spec), kw, fused, optim)
    reference = _run_torch(cls, kw, spec, steps)
    worst = 0.0
    for step in range(steps):
        opt.zero_grad()
        _objective(lm, kw, step).backward()
        opt.step()
        for k, p in lm.params.items():
            err = rel_err(p.array, reference[step][k])
            worst = max(worst, err)
            assert err <= TRAJ_TOL, f"{cls} {kw} step {step} param {k}: rel err {err:.2e}"
    record(request.node.callspec.id, worst)
    for k, p in lm.params.items():
        assert p.array is before[k], "the optimizer must update the parameter arrays in place"
        assert p.array.dtype == np.float32
    assert lm.params["unused"] not in opt.state or not opt.state[lm.params["unused"]]
    np.testing.assert_array_equal(lm.params["unused"].array, init_arrays()["unused"])
    for st in opt.state.values():
        for key, v in st.items():
            assert isinstance(v, lucid.Tensor)
            assert v.dtype == np.float32, f"state {key} has dtype {v.dtype}"


@pytest.mark.skipif(not adamw_kernel.numba_available(), reason="numba not available")
@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
def test_transposed_parameter_layout(cls):
    """A Fortran-ordered parameter (transposed view of a contiguous buffer) takes the fused path through its
    memory order; results equal the NumPy path and torch."""
    kw = dict(lr=1e-2, weight_decay=0.05, amsgrad=True)
    runs = {}
    for fused in (False, True):
        lm = LucidMLP(init_arrays(), layouts={"w1": "t", "w2": "t"})
        assert not lm.params["w1"].array.flags.c_contiguous
        opt = _make(cls, list(lm.params.values()), kw, fused, optim)
        for step in range(10):
            opt.zero_grad()
            lm.loss(*data(step)).backward()
            opt.step()
        assert opt.state[lm.params["w1"]]["exp_avg"].array.flags.f_contiguous  # state keeps the layout
        runs[fused] = {k: p.array.copy() for k, p in lm.params.items()}
    ref = _run_torch(cls, kw, None, 10)[-1]
    for k in runs[True]:
        np.testing.assert_array_equal(runs[True][k], runs[False][k])
        assert rel_err(runs[True][k], ref[k]) <= TRAJ_TOL


def test_strided_parameter_falls_back_to_numpy():
    """A parameter that is a strided view (no flat order) cannot use the kernel; the update still happens,
    in place, and equals torch's."""
    base = np.arange(24, dtype=np.float32).reshape(4, 6) / 10
    p = Parameter(base[:, ::2])  # non-dense view
    g = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    p.grad = lucid.Tensor(g.copy())
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.1)
    tp = torch.nn.Parameter(torch.tensor(base[:, ::2].copy()))
    tp.grad = torch.tensor(g.copy())
    topt = torch.optim.AdamW([tp], lr=0.1, weight_decay=0.1)
    for _ in range(3):
        opt.step()
        topt.step()
    assert rel_err(base[:, ::2], tp.detach().numpy()) <= TRAJ_TOL  # written through the view


def test_float64_parameters_keep_float64():
    p = Parameter(np.linspace(-1, 1, 6).reshape(2, 3))
    p.grad = lucid.Tensor(np.full((2, 3), 0.5))
    for cls in (optim.SGD, optim.Adam, optim.AdamW):
        opt = cls([p], lr=0.1) if cls is not optim.SGD else cls([p], lr=0.1, momentum=0.9)
        opt.step()
        opt.step()
        assert p.array.dtype == np.float64
        for key, v in opt.state[p].items():
            if key != "step":
                assert v.dtype == np.float64


def test_version_counter_and_step_tensor():
    p = Parameter(np.ones(3, np.float32))
    p.grad = lucid.Tensor(np.ones(3, np.float32))
    opt = optim.Adam([p])
    v0 = p._version
    opt.step()
    opt.step()
    assert p._version == v0 + 2
    step = opt.state[p]["step"]
    assert isinstance(step, lucid.Tensor) and step.shape == () and step.dtype == np.float32
    assert step.item() == 2.0


def test_backward_after_step_is_reported():
    """As in torch: a graph recorded before step() saw the old weights; backward through it must fail."""
    p = Parameter(np.ones((2, 2), np.float32))
    x = lucid.Tensor(np.ones((3, 2), np.float32))
    loss = lucid.tanh(x @ p).sum()
    p.grad = lucid.Tensor(np.ones((2, 2), np.float32))
    optim.SGD([p], lr=0.1).step()
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_zero_grad_and_closure():
    lm = LucidMLP(init_arrays())
    opt = optim.SGD(list(lm.params.values()), lr=0.1)

    def closure():
        opt.zero_grad()
        loss = lm.loss(*data(0))
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, lucid.Tensor) and loss.grad_fn is not None
    grad_w1 = lm.params["w1"].grad.array
    opt.zero_grad(set_to_none=False)
    assert lm.params["w1"].grad.array is grad_w1 and not grad_w1.any()
    assert lm.params["unused"].grad is None
    opt.zero_grad()
    assert all(p.grad is None for p in lm.params.values())
    assert opt.step() is None  # no grads: nothing happens


def test_step_with_empty_parameter():
    p = Parameter(np.zeros((0, 3), np.float32))
    p.grad = lucid.Tensor(np.zeros((0, 3), np.float32))
    for fused in FUSED:
        opt = optim.AdamW([p], fused=fused)
        opt.step()
        assert opt.state[p]["exp_avg"].shape == (0, 3)


# -- state dicts -------------------------------------------------------------------------------------------
def _lucid_opt(name, params):
    if name == "sgd":
        return optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
    if name == "adam":
        return optim.Adam(params, lr=1e-2, amsgrad=True, weight_decay=0.01)
    return optim.AdamW([{"params": params[:2], "weight_decay": 0.0}, {"params": params[2:], "lr": 5e-3}],
                       lr=1e-2, weight_decay=0.05)


def _train(lm, opt, steps):
    for step in steps:
        opt.zero_grad()
        lm.loss(*data(step)).backward()
        opt.step()


def _copy_state_dict(sd):
    """A deep copy with arrays copied (state_dict shares the optimizer's own arrays, as torch's)."""
    out = {"param_groups": copy.deepcopy(sd["param_groups"]), "state": {}}
    for k, st in sd["state"].items():
        out["state"][k] = {key: lucid.Tensor(v.array.copy()) if isinstance(v, lucid.Tensor) else v
                           for key, v in st.items()}
    return out


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("via_file", [False, True])
def test_state_dict_round_trip_continues_identically(name, via_file, tmp_path):
    names = ALL
    straight = LucidMLP(init_arrays())
    opt = _lucid_opt(name, [straight.params[n] for n in names])
    _train(straight, opt, range(40))

    first = LucidMLP(init_arrays())
    opt1 = _lucid_opt(name, [first.params[n] for n in names])
    _train(first, opt1, range(20))
    sd = _copy_state_dict(opt1.state_dict())
    weights = {k: p.array.copy() for k, p in first.params.items()}
    if via_file:
        if not hasattr(lucid, "save"):
            pytest.skip("lucid.save (lucid/serialization.py) is not available")
        path = tmp_path / "opt.safetensors"
        lucid.save({"optimizer": sd}, str(path))
        sd = lucid.load(str(path))["optimizer"]

    resumed = LucidMLP(weights)
    opt2 = _lucid_opt(name, [resumed.params[n] for n in names])
    opt2.load_state_dict(sd)
    _train(resumed, opt2, range(20, 40))
    for k in straight.params:
        np.testing.assert_array_equal(resumed.params[k].array, straight.params[k].array, err_msg=k)
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


@pytest.mark.parametrize("cls,kw", [("SGD", dict(lr=0.05, momentum=0.9)),
                                    ("Adam", dict(lr=1e-2, amsgrad=True)),
                                    ("AdamW", dict(lr=1e-2, weight_decay=0.05))])
def test_state_dict_layout_matches_torch_and_loads_torch_state(cls, kw):
    """Same keys/indices/values as torch's state_dict; a torch state loaded into lucid continues torch's run."""
    tm = TorchMLP(init_arrays())
    tparams = [tm.params[n] for n in ALL]
    topt = getattr(torch.optim, cls)(tparams, **kw)
    lm = LucidMLP(init_arrays())
    opt = getattr(optim, cls)([lm.params[n] for n in ALL], **kw)
    for step in range(5):
        for o, m in ((topt, tm), (opt, lm)):
            o.zero_grad()
            m.loss(*data(step)).backward()
            o.step()
    tsd, lsd = topt.state_dict(), opt.state_dict()
    assert tsd["state"].keys() == lsd["state"].keys() == {0, 1, 2, 3}  # index 4 ("unused") has no state
    for i in tsd["state"]:
        assert tsd["state"][i].keys() == lsd["state"][i].keys()
        for key, tv in tsd["state"][i].items():
            assert rel_err(lsd["state"][i][key].array, tv.numpy()) <= TRAJ_TOL
    tg, lg = tsd["param_groups"][0], lsd["param_groups"][0]
    assert lg["params"] == tg["params"] == [0, 1, 2, 3, 4]
    assert set(lg) - {"fused"} <= set(tg)
    for key in set(lg) & set(tg):
        assert lg[key] == tg[key], key

    # torch's state (as numpy) into a fresh lucid optimizer over torch's current weights
    weights = {k: v.detach().numpy().copy() for k, v in tm.params.items()}
    converted = {"param_groups": copy.deepcopy(tsd["param_groups"]),
                 "state": {i: {k: (v.numpy().copy() if k != "step" else float(v)) for k, v in st.items()}
                           for i, st in tsd["state"].items()}}
    lm2 = LucidMLP(weights)
    opt2 = getattr(optim, cls)([lm2.params[n] for n in ALL], **kw)
    opt2.load_state_dict(converted)
    for step in range(5, 15):
        for o, m in ((topt, tm), (opt2, lm2)):
            o.zero_grad()
            m.loss(*data(step)).backward()
            o.step()
        for k in tm.params:
            assert rel_err(lm2.params[k].array, tm.params[k].detach().numpy()) <= TRAJ_TOL


def test_load_state_dict_errors():
    lm = LucidMLP(init_arrays())
    opt = optim.Adam([lm.params["w1"], lm.params["b1"]])
    lm.params["w1"].grad = lucid.Tensor(np.ones((5, 8), np.float32))
    opt.step()
    sd = opt.state_dict()
    other = optim.Adam([lm.params["w1"]])
    with pytest.raises(ValueError, match="group 0 has 2 parameters"):
        other.load_state_dict(sd)
    two = optim.Adam([{"params": [lm.params["w1"]]}, {"params": [lm.params["b1"]]}])
    with pytest.raises(ValueError, match="2 parameter group"):
        opt.load_state_dict(two.state_dict())
    swapped = optim.Adam([lm.params["b1"], lm.params["w1"]])
    with pytest.raises(ValueError, match=r"shape \(5, 8\) vs parameter shape \(8,\)"):
        swapped.load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


def test_load_state_dict_accepts_string_indices():
    """After a JSON round trip the state indices are strings and betas a list."""
    p = Parameter(np.ones(3, np.float32))
    p.grad = lucid.Tensor(np.ones(3, np.float32))
    opt = optim.Adam([p], lr=0.1)
    opt.step()
    sd = _copy_state_dict(opt.state_dict())
    sd["state"] = {str(k): v for k, v in sd["state"].items()}
    sd["param_groups"][0]["betas"] = list(sd["param_groups"][0]["betas"])
    q = Parameter(p.array.copy())
    q.grad = lucid.Tensor(np.ones(3, np.float32))
    opt2 = optim.Adam([q], lr=0.1)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999)
    opt.step()
    opt2.step()
    np.testing.assert_array_equal(p.array, q.array)


# -- bad input ---------------------------------------------------------------------------------------------
def _p():
    return Parameter(np.ones(2, np.float32))


@pytest.mark.parametrize("make,match", [
    (lambda: optim.SGD([_p()], lr=-0.1), r"learning rate.*-0\.1"),
    (lambda: optim.SGD([_p()], lr=0.1, momentum=-0.5), r"momentum.*-0\.5"),
    (lambda: optim.SGD([_p()], lr=0.1, weight_decay=-1e-4), r"weight_decay.*-0\.0001"),
    (lambda: optim.SGD([_p()], lr=0.1, nesterov=True), r"Nesterov.*momentum=0"),
    (lambda: optim.SGD([_p()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), r"dampening=0\.1"),
    (lambda: optim.Adam([_p()], lr=-1e-3), r"learning rate.*-0\.001"),
    (lambda: optim.Adam([_p()], eps=-1e-8), r"eps.*-1e-08"),
    (lambda: optim.Adam([_p()], betas=(1.0, 0.999)), r"index 0: 1\.0"),
    (lambda: optim.AdamW([_p()], betas=(0.9, -0.1)), r"index 1: -0\.1"),
    (lambda: optim.AdamW([_p()], betas=(0.9, 1.5)), r"index 1: 1\.5"),
    (lambda: optim.AdamW([_p()], betas=0.9), r"betas: 0\.9"),
    (lambda: optim.AdamW([_p()], weight_decay=-0.05), r"weight_decay.*-0\.05"),
    (lambda: optim.AdamW([{"params": [_p()], "weight_decy": 0.1}]), r"unknown param group key.*weight_decy"),
    (lambda: optim.SGD([{"params": [_p()], "lr": -2.0}], lr=0.1), r"learning rate.*-2\.0"),
    (lambda: optim.Adam([{"params": [_p()], "betas": (0.9, 1.0)}]), r"index 1: 1\.0"),
    (lambda: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda: optim.SGD([{"lr": 0.1}], lr=0.1), "'params' entry"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_params():
    p = _p()
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD({p}, lr=0.1)
    with pytest.raises(TypeError, match=r"params\[0\] is a ndarray"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})
    with pytest.raises(ValueError, match="unknown param group key"):
        opt.add_param_group({"params": [_p()], "betas": (0.9, 0.99)})


def test_add_param_group_and_named_params():
    a, b = _p(), _p()
    opt = optim.AdamW([("a", a)], lr=1e-3)
    assert opt.param_groups[0]["param_names"] == ["a"]
    opt.add_param_group({"params": [("b", b)], "lr": 1e-2})
    assert opt.param_groups[1]["lr"] == 1e-2 and opt.param_groups[1]["weight_decay"] == 1e-2
    with pytest.raises(ValueError, match="with/without names"):
        opt.add_param_group({"params": [_p()]})


def test_fused_true_without_numba(monkeypatch):
    monkeypatch.setattr(adamw_kernel, "numba_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs numba"):
        optim.AdamW([_p()], fused=True)
