"""AveragedModel (weight EMA) against timm.utils.ModelEmaV3, and param_groups_weight_decay against timm's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.optim import param_groups_weight_decay as timm_param_groups
from timm.utils import ModelEmaV3

import lucid
from lucid import nn
from lucid.optim import param_groups_weight_decay
from lucid.optim.swa_utils import AveragedModel

from ._common import rel_err

# (dotted name, shape, kind): "p" parameter, "f" frozen parameter, "b" float buffer, "i" int64 buffer
TREE = [
    ("stem.0.weight", (8, 3, 2, 2), "p"), ("stem.0.bias", (8,), "p"), ("stem.1.weight", (8,), "p"),
    ("stem.1.bias", (8,), "p"), ("stem.1.running_mean", (8,), "b"), ("stem.1.running_var", (8,), "b"),
    ("stem.1.num_batches_tracked", (), "i"),
    ("stages.0.blocks.0.token_mixer.dwconv_w.weight", (2, 1, 1, 11), "p"),
    ("stages.0.blocks.0.mlp.fc1.weight", (32, 8, 1, 1), "p"), ("stages.0.blocks.0.mlp.fc1.bias", (32,), "p"),
    ("stages.0.blocks.0.gamma", (8,), "p"), ("stages.0.pos_embed", (1, 8, 2, 2), "p"),
    ("stages.0.frozen_proj", (8, 8), "f"), ("head.fc.weight", (10, 8), "p"), ("head.fc.bias", (10,), "p"),
    ("head.scale", (), "p"),
]


def _build(lib_nn, make_param, make_buffer):
    root = lib_nn.Module()
    for name, shape, kind in TREE:
        *path, leaf = name.split(".")
        mod = root
        for part in path:
            if part not in mod._modules:
                mod.add_module(part, lib_nn.Module()) if hasattr(mod, "add_module") else setattr(
                    mod, part, lib_nn.Module())
            mod = mod._modules[part]
        value = np.random.default_rng(len(name)).standard_normal(shape).astype(np.float32)
        if kind in "pf":
            setattr(mod, leaf, make_param(value, kind == "p"))
        else:
            mod.register_buffer(leaf, make_buffer(value if kind == "b" else np.array(0, np.int64)))
    return root


def lucid_tree():
    return _build(nn, lambda v, rg: nn.Parameter(v, requires_grad=rg), lambda v: lucid.Tensor(v))


def torch_tree():
    return _build(torch.nn, lambda v, rg: torch.nn.Parameter(torch.tensor(v), requires_grad=rg),
                  lambda v: torch.tensor(v))


def _perturb(lm, tm, step):
    """Same 'training' change to both models: new parameter values, new running stats, one more batch."""
    rng = np.random.default_rng(step)
    tsd = tm.state_dict()
    for k, v in lm.state_dict(keep_vars=True).items():
        if v.dtype.kind == "f":
            new = (v.array + rng.standard_normal(v.shape).astype(np.float32) * 0.1).astype(np.float32)
            v.array[...] = new
            tsd[k].copy_(torch.tensor(new))
        else:
            v.array[...] += 1
            tsd[k].add_(1)


EMA_CASES = {
    "plain": (dict(decay=0.9), dict(decay=0.9)),
    "warmup": (dict(decay=0.999, use_warmup=True, min_decay=0.1),
               dict(decay=0.999, use_warmup=True, min_decay=0.1)),
    "warmup_gamma_power_after": (dict(decay=0.99, use_warmup=True, warmup_gamma=2.0, warmup_power=0.75,
                                      update_after_step=3),
                                 dict(decay=0.99, use_warmup=True, warmup_gamma=2.0, warmup_power=0.75,
                                      update_after_step=3)),
    "buffers_copied": (dict(decay=0.8, use_buffers=False), dict(decay=0.8, exclude_buffers=True)),
    "decay_zero": (dict(decay=0.0), dict(decay=0.0)),  # lerp weight 1: torch's second formula
    "decay_low": (dict(decay=0.3), dict(decay=0.3)),  # lerp weight 0.7 >= 0.5
}


@pytest.mark.parametrize("case", list(EMA_CASES))
@pytest.mark.parametrize("explicit_step", [False, True])
def test_ema_matches_timm_model_ema_v3(case, explicit_step):
    lkw, tkw = EMA_CASES[case]
    lm, tm = lucid_tree(), torch_tree()
    ema = AveragedModel(lm, **lkw)
    tema = ModelEmaV3(tm, **tkw)
    assert not ema.module.training
    for step in range(1, 16):
        _perturb(lm, tm, step)
        if explicit_step:
            ema.update_parameters(lm, step=step)
        else:
            ema.update_parameters(lm)  # own counter: the same steps as timm's num_updates
        tema.update(tm, step=step)
        assert ema.get_decay(step) == tema.get_decay(step)
        tsd = tema.module.state_dict()
        for k, v in ema.module.state_dict().items():
            if v.dtype.kind == "f":
                assert rel_err(v.array, tsd[k].numpy()) <= 1e-6, f"{case} step {step} {k}"
            else:
                assert int(v.array) == int(tsd[k]), k
    assert int(ema.n_averaged.array) == 15
    # the model itself was not touched by the update and shares nothing with the copy
    assert all(a.array is not b.array for a, b in zip(ema.module.parameters(), lm.parameters()))


def test_ema_ratio_warmup_and_decay_values():
    lm = lucid_tree()
    ema = AveragedModel(lm, decay=0.9, use_warmup=True, warmup_mode="ratio")
    assert ema.get_decay(1) == 0.0
    assert ema.get_decay(2) == pytest.approx(2 / 11)
    assert ema.get_decay(1000) == 0.9
    assert ema.get_decay() == 0.9
    ema_plain = AveragedModel(lm, decay=0.5)
    assert ema_plain.get_decay(1) == 0.0 and ema_plain.get_decay(2) == 0.5


def test_ema_first_update_copies_and_forward_uses_average():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    model = nn.Module()
    model.w = nn.Parameter(w.copy())
    model.forward = lambda x: x @ model.w  # instance attribute, copied by deepcopy as the model is
    ema = AveragedModel(model, decay=0.5)
    model.w.array[...] = 10.0
    ema.update_parameters(model)  # step 1: decay 0, exact copy
    np.testing.assert_array_equal(ema.module.w.array, np.full((2, 3), 10.0, np.float32))
    model.w.array[...] = 20.0
    ema.update_parameters(model)
    np.testing.assert_array_equal(ema.module.w.array, np.full((2, 3), 15.0, np.float32))
    assert ema.module.w.array.dtype == np.float32


def test_ema_state_dict_round_trip_and_set():
    lm = lucid_tree()
    ema = AveragedModel(lm, decay=0.7)
    for step in range(1, 4):
        for p in lm.parameters():
            p.array += np.float32(step)
        ema.update_parameters(lm)
    sd = {k: lucid.Tensor(v.array.copy()) for k, v in ema.state_dict().items()}
    assert "n_averaged" in sd and "module.stem.0.weight" in sd
    ema2 = AveragedModel(lucid_tree(), decay=0.7)
    ema2.load_state_dict(sd)
    assert int(ema2.n_averaged.array) == 3
    for p in lm.parameters():
        p.array += np.float32(1)
    ema.update_parameters(lm)
    ema2.update_parameters(lm)
    for (k, a), (_, b) in zip(ema.state_dict().items(), ema2.state_dict().items()):
        np.testing.assert_array_equal(a.array, b.array, err_msg=k)
    ema2.set(lm)
    for (k, a), (_, b) in zip(ema2.module.state_dict().items(), lm.state_dict().items()):
        np.testing.assert_array_equal(a.array, b.array, err_msg=k)


def test_ema_errors():
    lm = lucid_tree()
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\], got 1.5"):
        AveragedModel(lm, decay=1.5)
    with pytest.raises(ValueError, match="warmup_mode must be 'power' or 'ratio', got 'exp'"):
        AveragedModel(lm, warmup_mode="exp")
    with pytest.raises(TypeError, match="lucid.nn.Module"):
        AveragedModel(object())
    ema = AveragedModel(lm)
    other = nn.Module()
    other.w = nn.Parameter(np.ones(2, np.float32))
    with pytest.raises(ValueError, match="missing in the model"):
        ema.update_parameters(other)


# -- param_groups_weight_decay ------------------------------------------------------------------------------
def _names(model, params):
    ids = {id(p): n for n, p in model.named_parameters()}
    return [ids[id(p)] for p in params]


@pytest.mark.parametrize("wd,no_wd_list", [(0.05, ()), (0.05, ("stages.0.pos_embed",)), (0.1, ("*.pos_embed",
                                                                                                 "head.*")),
                                           (0.0, ()), (None, ())])
def test_param_groups_weight_decay_matches_timm(wd, no_wd_list):
    lm, tm = lucid_tree(), torch_tree()
    mine = param_groups_weight_decay(lm, wd, no_wd_list)
    theirs = timm_param_groups(tm, wd, no_weight_decay_list=no_wd_list)
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        assert set(a) == set(b) == {"params", "weight_decay"}
        assert a["weight_decay"] == b["weight_decay"]
        assert _names(lm, a["params"]) == _names(tm, b["params"])
    if wd:
        no_decay = _names(lm, mine[0]["params"])
        assert "stages.0.blocks.0.gamma" in no_decay and "head.scale" in no_decay
        assert "stages.0.frozen_proj" not in _names(lm, [p for g in mine for p in g["params"]])


def test_param_groups_feed_an_optimizer():
    lm = lucid_tree()
    opt = lucid.optim.AdamW(param_groups_weight_decay(lm, 0.05), lr=1e-3)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.05]
    assert not param_groups_weight_decay(lm, 0.05, weight_decay_exclude_1d=False)[0]["params"] == []
