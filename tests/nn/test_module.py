"""Module, Parameter and containers: registration, traversal, modes, hooks, state dicts and repr vs PyTorch."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

import lucid
from lucid import nn


def build(lib):
    """The same nested model in lucid or torch (``lib`` is ``lucid`` or ``torch``)."""
    N = lib.nn

    class Block(N.Module):
        def __init__(self, dim):
            super().__init__()
            self.norm_scale = N.Parameter(lib.ones(dim))
            self.fc1 = N.Linear(dim, 2 * dim)
            self.act = N.Identity()
            self.fc2 = N.Linear(2 * dim, dim, bias=False)
            self.register_buffer("running", lib.zeros(dim))
            self.register_buffer("count", lib.tensor(0, dtype=lib.int64))
            self.register_buffer("cache", lib.ones(3), persistent=False)
            self.register_parameter("unused", None)

        def forward(self, x):
            return x + self.fc2(self.act(self.fc1(x))) * self.norm_scale

    class Net(N.Module):
        def __init__(self):
            super().__init__()
            self.stem = N.Sequential(N.Linear(4, 6), N.Identity())
            self.stages = N.ModuleList([Block(6), N.Sequential(Block(6), Block(6))])
            self.heads = N.ModuleDict({"cls": N.Linear(6, 3), "aux": N.Flatten()})
            self.tied = self.stem[0]  # the same module registered twice

        def forward(self, x):
            x = self.stem(x)
            x = self.stages[0](x)
            x = self.stages[1](x)
            return self.heads["cls"](x)

    return Net()


@pytest.fixture
def pair():
    return build(lucid), build(torch)


def test_state_dict_keys_equal_torch(pair):
    lm, tm = pair
    assert list(lm.state_dict()) == list(tm.state_dict())
    assert "stages.0.cache" not in lm.state_dict()  # non-persistent buffer
    assert "stages.0.count" in lm.state_dict()
    assert "tied.weight" in lm.state_dict()  # duplicates appear under every name, as in torch


def test_named_members_equal_torch(pair):
    lm, tm = pair
    assert [n for n, _ in lm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in lm.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert [n for n, _ in lm.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [n for n, _ in lm.named_children()] == [n for n, _ in tm.named_children()]
    for prefix in ("model", "a.b"):
        assert ([n for n, _ in lm.named_parameters(prefix=prefix)]
                == [n for n, _ in tm.named_parameters(prefix=prefix)])
        assert ([n for n, _ in lm.named_buffers(prefix=prefix)]
                == [n for n, _ in tm.named_buffers(prefix=prefix)])
        assert ([n for n, _ in lm.named_modules(prefix=prefix)]
                == [n for n, _ in tm.named_modules(prefix=prefix)])
    # duplicates kept on request
    assert ([n for n, _ in lm.named_parameters(remove_duplicate=False)]
            == [n for n, _ in tm.named_parameters(remove_duplicate=False)])
    assert ([n for n, _ in lm.named_modules(remove_duplicate=False)]
            == [n for n, _ in tm.named_modules(remove_duplicate=False)])
    assert ([n for n, _ in lm.named_parameters(recurse=False)]
            == [n for n, _ in tm.named_parameters(recurse=False)])
    assert ([n for n, _ in lm.stages[0].named_parameters(recurse=False)]
            == [n for n, _ in tm.stages[0].named_parameters(recurse=False)])
    assert len(list(lm.parameters())) == len(list(tm.parameters()))
    assert sum(p.numel() for p in lm.parameters()) == sum(p.numel() for p in tm.parameters())
    assert len(list(lm.modules())) == len(list(tm.modules()))
    assert len(list(lm.children())) == len(list(tm.children()))


def test_registration_order_and_reassignment():
    m = nn.Module()
    m.b = nn.Parameter(lucid.zeros(1))
    m.a = nn.Linear(1, 1)
    m.register_buffer("c", lucid.zeros(1))
    m.z = nn.Parameter(lucid.zeros(1))
    assert list(m._parameters) == ["b", "z"] and list(m._modules) == ["a"] and list(m._buffers) == ["c"]
    assert list(m.state_dict()) == ["b", "z", "c", "a.weight", "a.bias"]
    m.b = nn.Parameter(lucid.ones(2))  # reassigning keeps the slot's position
    assert list(m._parameters) == ["b", "z"]
    m.c = lucid.ones(1)  # a plain Tensor assigned to a buffer name replaces the buffer
    assert m._buffers["c"].item() == 1.0
    m.b = None
    assert m.b is None and "b" not in m.state_dict()
    with pytest.raises(TypeError, match="parameter 'z'"):
        m.z = lucid.ones(1)  # a plain tensor can't replace a parameter
    m.a = nn.Identity()
    assert list(m.state_dict()) == ["z", "c"]
    del m.a
    assert "a" not in m._modules and not hasattr(m, "a")
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nope'"):
        _ = m.nope


def test_register_name_conflicts_match_torch():
    for lib in (lucid, torch):
        m = lib.nn.Linear(2, 2)
        with pytest.raises(KeyError, match="already exists"):
            m.register_buffer("weight", lib.zeros(2))
        with pytest.raises(KeyError, match="already exists"):
            m.register_parameter("forward", lib.nn.Parameter(lib.zeros(2)))
        with pytest.raises(KeyError):
            m.register_buffer("a.b", lib.zeros(1))
        with pytest.raises(KeyError):
            m.register_buffer("", lib.zeros(1))
        with pytest.raises(TypeError):
            m.register_buffer("x", [1.0])
        m.register_buffer("x", lib.zeros(1))
        m.register_buffer("x", lib.ones(1))  # re-registering the same buffer is fine
        m.register_parameter("bias", None)
        assert m.bias is None


def test_setattr_before_init_is_clear():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(lucid.zeros(1))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_train_eval_recursion_and_override():
    calls = []

    class Frozen(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(1, 1)

        def train(self, mode=True):  # an override that keeps itself in eval mode
            calls.append(mode)
            super().train(False)
            return self

    m = nn.Sequential(nn.Linear(1, 1), nn.Sequential(Frozen(), nn.Identity()))
    assert all(x.training for x in m.modules() if not isinstance(x, Frozen))
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m.train()
    assert m.training and m[0].training and m[1][1].training
    assert not m[1][0].training and not m[1][0].inner.training  # the override ran
    assert calls == [False, True]
    with pytest.raises(ValueError, match="bool"):
        m.train("yes")


def test_zero_grad():
    m = nn.Linear(3, 2)
    m(lucid.randn(4, 3)).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is not None and np.all(m.weight.grad.numpy() == 0)
    m(lucid.randn(4, 3)).sum().backward()
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None


def test_requires_grad_():
    m = nn.Linear(2, 2)
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    m.requires_grad_()
    assert all(p.requires_grad for p in m.parameters())


def test_to_dtype_and_back():
    m = nn.Sequential(nn.Linear(3, 2))
    m[0].register_buffer("count", lucid.tensor(4, dtype=lucid.int64))
    m(lucid.randn(1, 3)).sum().backward()
    assert m.to(lucid.float64) is m
    assert m[0].weight.dtype == lucid.float64 and m[0].bias.dtype == lucid.float64
    assert m[0].weight.grad.dtype == lucid.float64
    assert m[0].count.dtype == lucid.int64  # integer buffers are left alone, as in torch
    assert isinstance(m[0].weight, nn.Parameter)
    y = m(lucid.randn(2, 3, dtype=lucid.float64))
    assert y.dtype == lucid.float64
    m.float()
    assert m[0].weight.dtype == lucid.float32
    m.half()
    assert m[0].weight.dtype == lucid.float16
    m.to("cpu", dtype=lucid.float32)
    assert m[0].weight.dtype == lucid.float32 and m[0].weight.device == "cpu"
    with pytest.raises(TypeError, match="floating"):
        m.to(lucid.int32)
    with pytest.raises(ValueError, match="'tpu'"):
        m.to(device="tpu")


def test_apply_order_matches_torch(pair):
    lm, tm = pair
    seen_l, seen_t = [], []
    lm.apply(lambda mod: seen_l.append(type(mod).__name__))
    tm.apply(lambda mod: seen_t.append(type(mod).__name__))
    assert seen_l == seen_t
    assert seen_l[-1] == "Net"  # children first, self last

    def init_zero(mod):
        if isinstance(mod, nn.Linear):
            nn.init.zeros_(mod.weight)

    assert lm.apply(init_zero) is lm
    assert all(np.all(mod.weight.detach().numpy() == 0) for mod in lm.modules() if isinstance(mod, nn.Linear))


def test_forward_hooks_and_pre_hooks():
    m = nn.Linear(2, 2)
    log = []

    def pre(mod, args):
        log.append(("pre", mod is m, len(args)))
        return (args[0] * 0,)  # replaces the input

    def post(mod, args, out):
        log.append(("post", float(args[0].sum().item()), tuple(out.shape)))
        return out + 1  # replaces the output

    h1 = m.register_forward_pre_hook(pre)
    h2 = m.register_forward_hook(post)
    y = m(lucid.ones(3, 2))
    assert log == [("pre", True, 1), ("post", 0.0, (3, 2))]
    np.testing.assert_allclose(y.detach().numpy(), np.tile(m.bias.detach().numpy() + 1, (3, 1)), rtol=1e-6)
    # a pre-hook may return a single value instead of a tuple
    h1.remove()
    h3 = m.register_forward_pre_hook(lambda mod, args: args[0] * 2)
    m(lucid.ones(1, 2))
    assert log[-1] == ("post", 4.0, (1, 2))
    h2.remove()
    h3.remove()
    log.clear()
    y = m(lucid.ones(1, 2))
    assert log == []
    # hooks run in registration order; handles work as context managers
    order = []
    with m.register_forward_hook(lambda *a: order.append(1)), m.register_forward_hook(lambda *a: order.append(2)):
        m(lucid.ones(1, 2))
    m(lucid.ones(1, 2))
    assert order == [1, 2]


# -- load_state_dict ---------------------------------------------------------------------------------------
def test_load_state_dict_from_torch_model(pair):
    lm, tm = pair
    sd = {k: lucid.Tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()}
    arrays = {k: v.array for k, v in lm.state_dict(keep_vars=True).items()}
    res = lm.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    for k, v in lm.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), tm.state_dict()[k].numpy())
        assert lm.state_dict(keep_vars=True)[k].array is arrays[k]  # copied into the existing arrays
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(lm(lucid.Tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_load_state_dict_strict_errors_list_keys_and_shapes():
    m = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 4))
    sd = m.state_dict()
    bad = dict(sd)
    del bad["1.bias"]
    bad["extra.weight"] = lucid.zeros(1)
    bad["0.weight"] = lucid.zeros(5, 3)
    before = m[0].bias.detach().numpy().copy()
    bad["0.bias"] = lucid.ones(2)
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(bad)
    msg = str(err.value)
    assert "Sequential" in msg
    assert "1.bias" in msg and "missing" in msg
    assert "extra.weight" in msg and "unexpected" in msg
    assert "0.weight" in msg and "(5, 3)" in msg and "(2, 3)" in msg
    np.testing.assert_array_equal(m[0].bias.detach().numpy(), before)  # nothing modified on error


def test_load_state_dict_non_strict_return_value():
    m = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 4))
    tm = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 4))
    sd = {k: v for k, v in m.state_dict().items() if k != "1.weight"}
    sd["foo"] = lucid.zeros(1)
    tsd = {k: v for k, v in tm.state_dict().items() if k != "1.weight"}
    tsd["foo"] = torch.zeros(1)
    res = m.load_state_dict(sd, strict=False)
    tres = tm.load_state_dict(tsd, strict=False)
    assert res.missing_keys == tres.missing_keys == ["1.weight"]
    assert res.unexpected_keys == tres.unexpected_keys == ["foo"]
    missing, unexpected = res  # a (missing_keys, unexpected_keys) named tuple, as in torch
    assert missing == ["1.weight"]
    # a shape mismatch is an error even when not strict
    sd["0.bias"] = lucid.zeros(3)
    with pytest.raises(RuntimeError, match=r"0\.bias.*\(3,\).*\(2,\)"):
        m.load_state_dict(sd, strict=False)


def test_load_state_dict_casts_and_accepts_numpy():
    m = nn.Linear(2, 1)
    m.register_buffer("count", lucid.tensor(0, dtype=lucid.int64))
    m.load_state_dict({"weight": np.array([[1.0, 2.0]]), "bias": lucid.tensor([0.5], dtype=lucid.float64),
                       "count": lucid.tensor(9, dtype=lucid.int64)})
    assert m.weight.dtype == lucid.float32 and m.weight.detach().numpy().tolist() == [[1.0, 2.0]]
    assert m.bias.dtype == lucid.float32 and m.count.item() == 9


@pytest.mark.parametrize("key,value,match", [
    # torch casts all of these silently (int64 weights -> a model that trains on from zeros/truncated values)
    ("weight", lucid.tensor([[1, 2]], dtype=lucid.int64), r"weight: checkpoint dtype int64 vs model dtype float32"),
    ("weight", np.array([[0, 1]], dtype=np.int32), r"weight: checkpoint dtype int32 vs model dtype float32"),
    ("bias", lucid.tensor([True]), r"bias: checkpoint dtype bool vs model dtype float32"),
    ("bias", np.array([3], dtype=np.uint8), r"bias: checkpoint dtype uint8"),
    ("count", lucid.tensor(2.7), r"count: checkpoint dtype float32 vs model dtype int64.*floating"),
    ("flag", lucid.tensor(1, dtype=lucid.int64), r"flag: checkpoint dtype int64 vs model dtype bool"),
    ("small", lucid.tensor([300], dtype=lucid.int64), r"small: checkpoint values \[300, 300\] do not fit"),
])
def test_load_state_dict_refuses_lossy_dtype_changes(key, value, match):
    m = nn.Linear(2, 1)
    m.register_buffer("count", lucid.tensor(0, dtype=lucid.int64))
    m.register_buffer("flag", lucid.tensor(False))
    m.register_buffer("small", lucid.tensor([0], dtype=lucid.int8))
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    before = {k: v.numpy().copy() for k, v in sd.items()}
    sd[key] = value
    with pytest.raises(RuntimeError, match=match):
        m.load_state_dict(sd)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.detach().numpy(), before[k])  # nothing was modified
    # widening and fitting values stay accepted: float16/float64 weights, an int32 counter into int64
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    sd["weight"] = lucid.tensor([[0.5, 1.5]], dtype=lucid.float16)
    sd["count"] = lucid.tensor(7, dtype=lucid.int32)
    sd["small"] = lucid.tensor([-5], dtype=lucid.int64)
    m.load_state_dict(sd)
    assert m.weight.detach().numpy().tolist() == [[0.5, 1.5]] and m.count.item() == 7 and m.small.item() == -5


def test_state_dict_values_are_detached_views():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad and not isinstance(sd["weight"], nn.Parameter)
    assert sd["weight"].array is m.weight.array
    assert isinstance(m.state_dict(keep_vars=True)["weight"], nn.Parameter)
    assert isinstance(sd, OrderedDict)


# -- containers and repr -------------------------------------------------------------------------------------
def test_repr_matches_torch():
    def make(lib):
        N = lib.nn
        return N.Sequential(N.Linear(4, 3), N.Identity(), N.Sequential(N.Linear(3, 3, bias=False), N.Flatten()),
                            N.ModuleDict({"a": N.Linear(1, 1)}))

    assert repr(make(lucid)) == repr(make(torch))
    assert repr(nn.Linear(7, 5)) == repr(torch.nn.Linear(7, 5))
    assert repr(nn.Sequential()) == repr(torch.nn.Sequential())
    assert repr(nn.Module()) == repr(torch.nn.Module())


def test_containers_indexing():
    layers = [nn.Linear(1, 1) for _ in range(3)]
    s = nn.Sequential(*layers)
    assert s[0] is layers[0] and s[-1] is layers[2] and len(s) == 3
    assert list(s) == layers
    assert isinstance(s[1:], nn.Sequential) and len(s[1:]) == 2
    with pytest.raises(IndexError, match="out of range"):
        s[3]
    od = nn.Sequential(OrderedDict([("first", nn.Identity()), ("second", nn.Linear(1, 2))]))
    assert [n for n, _ in od.named_children()] == ["first", "second"]
    ml = nn.ModuleList(layers[:1])
    ml.append(layers[1]).extend([layers[2]])
    assert len(ml) == 3 and [n for n, _ in ml.named_children()] == ["0", "1", "2"]
    ml[1] = nn.Identity()
    assert isinstance(ml[1], nn.Identity) and len(ml) == 3
    md = nn.ModuleDict({"x": nn.Identity()})
    md["y"] = nn.Linear(1, 1)
    assert list(md) == ["x", "y"] and "y" in md and len(md) == 2
    del md["x"]
    assert list(md.keys()) == ["y"]


def test_parameter_basics():
    p = nn.Parameter(lucid.zeros(2, 3))
    assert p.requires_grad and p.is_leaf and isinstance(p, lucid.Tensor)
    q = nn.Parameter(lucid.zeros(2), requires_grad=False)
    assert not q.requires_grad
    assert repr(p).startswith("Parameter containing:")
