"""lucid.nn.init: sample statistics, bounds, fan computation (vs torch) and determinism."""
import math

import numpy as np
import pytest
import torch

import lucid
from lucid import nn
from lucid.nn import init

N = 200_000  # samples for the statistics checks: std error of a mean is ~0.2% of std


def _param(*shape, dtype=lucid.float32):
    return nn.Parameter(lucid.zeros(*shape, dtype=dtype))


def _stats(t):
    a = t.detach().numpy().astype(np.float64)
    return a.mean(), a.std(), a.min(), a.max()


@pytest.mark.parametrize("shape", [(7, 3), (16, 8, 3, 3), (32, 1, 1, 11), (5, 4, 2), (10, 10, 1, 1, 1)])
def test_fan_in_fan_out_match_torch(shape):
    ours = init._calculate_fan_in_and_fan_out(lucid.zeros(*shape))
    theirs = torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))
    assert ours == theirs


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match=r"fewer than 2 dimensions.*\(5,\)"):
        init._calculate_fan_in_and_fan_out(lucid.zeros(5))


@pytest.mark.parametrize("nl, param", [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                                       ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                                       ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_calculate_gain_matches_torch(nl, param):
    assert init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param), rel=1e-12)


def test_calculate_gain_unknown():
    with pytest.raises(ValueError, match="'swish'"):
        init.calculate_gain("swish")


def test_uniform_normal_constant():
    t = _param(N)
    assert init.uniform_(t, -3.0, 5.0) is t
    m, s, lo, hi = _stats(t)
    assert -3.0 <= lo and hi < 5.0
    assert m == pytest.approx(1.0, abs=0.03) and s == pytest.approx(8 / math.sqrt(12), rel=0.01)
    init.normal_(t, mean=2.0, std=0.5)
    m, s, _, _ = _stats(t)
    assert m == pytest.approx(2.0, abs=0.005) and s == pytest.approx(0.5, rel=0.01)
    init.constant_(t, 0.25)
    assert np.all(t.detach().numpy() == 0.25)
    init.ones_(t)
    assert np.all(t.detach().numpy() == 1)
    init.zeros_(t)
    assert np.all(t.detach().numpy() == 0)
    assert t.dtype == lucid.float32


def test_inits_are_in_place_and_keep_identity():
    """The array object is kept (optimizers hold it), requires_grad is kept, no graph is recorded."""
    t = _param(4, 5)
    arr = t.array
    v0 = t._version
    for fn in (init.uniform_, init.normal_, init.trunc_normal_, init.xavier_uniform_, init.xavier_normal_,
               init.kaiming_uniform_, init.kaiming_normal_, init.zeros_, init.ones_):
        assert fn(t) is t
        assert t.array is arr and t.requires_grad and t.grad_fn is None
    assert t._version > v0


def test_channels_last_layout_preserved():
    nhwc = np.zeros((4, 3, 3, 2), np.float32)
    t = nn.Parameter(lucid.Tensor(nhwc.transpose(0, 3, 1, 2)))  # (4, 2, 3, 3) view of an NHWC buffer
    init.kaiming_normal_(t)
    assert t.array.base is nhwc or t.array.base is nhwc.base or np.shares_memory(t.array, nhwc)
    assert np.abs(nhwc).sum() > 0


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -2.0, 2.0),
                                             (1.0, 2.0, 0.0, 1.5), (0.0, 1.0, 2.5, 3.0), (0.0, 1.0, -0.1, 0.1),
                                             (0.0, 1.0, 5.0, 6.0), (0.0, 0.5, -4.0, -3.0)])
def test_trunc_normal_bounds_and_moments(mean, std, a, b):
    t = _param(N)
    init.trunc_normal_(t, mean=mean, std=std, a=a, b=b)
    x = t.detach().numpy().astype(np.float64)
    assert x.min() >= a and x.max() <= b
    # exact moments of the truncated normal
    from scipy.stats import truncnorm
    dist = truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    assert x.mean() == pytest.approx(dist.mean(), abs=0.02 * dist.std() + 1e-7)
    assert x.std() == pytest.approx(dist.std(), rel=0.02)


def test_trunc_normal_default_std_002_is_untruncated_normal():
    t = _param(N)
    init.trunc_normal_(t, std=0.02)
    m, s, _, _ = _stats(t)
    assert abs(m) < 0.001 and s == pytest.approx(0.02, rel=0.01)


def test_trunc_normal_float64():
    t = _param(1000, dtype=lucid.float64)
    init.trunc_normal_(t, a=-1.0, b=1.0)
    assert t.dtype == lucid.float64 and np.abs(t.detach().numpy()).max() <= 1.0


def test_xavier_stats():
    t = _param(400, 600)
    fan_in, fan_out = 600, 400
    init.xavier_uniform_(t, gain=2.0)
    bound = 2.0 * math.sqrt(6.0 / (fan_in + fan_out))
    m, s, lo, hi = _stats(t)
    assert -bound <= lo and hi <= bound and hi > 0.99 * bound
    assert s == pytest.approx(bound / math.sqrt(3), rel=0.01)
    init.xavier_normal_(t)
    m, s, _, _ = _stats(t)
    assert abs(m) < 0.01 * s and s == pytest.approx(math.sqrt(2.0 / (fan_in + fan_out)), rel=0.01)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nl, a", [("relu", 0), ("leaky_relu", math.sqrt(5)), ("leaky_relu", 0), ("tanh", 0)])
def test_kaiming_stats(mode, nl, a):
    shape = (64, 32, 3, 3)  # fan_in 288, fan_out 576
    t = _param(*shape)
    fan = 32 * 9 if mode == "fan_in" else 64 * 9
    std = torch.nn.init.calculate_gain(nl, a) / math.sqrt(fan)
    init.kaiming_normal_(t, a=a, mode=mode, nonlinearity=nl)
    m, s, _, _ = _stats(t)
    assert abs(m) < 0.02 * std and s == pytest.approx(std, rel=0.02)
    init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nl)
    m, s, lo, hi = _stats(t)
    bound = math.sqrt(3) * std
    assert -bound <= lo and hi <= bound and s == pytest.approx(std, rel=0.02)


def test_kaiming_bad_mode_and_empty():
    with pytest.raises(ValueError, match="'fan_avg'"):
        init.kaiming_uniform_(_param(3, 3), mode="fan_avg")
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(_param(0, 3))


def test_random_inits_reject_int_tensors():
    with pytest.raises(TypeError, match="int64"):
        init.normal_(lucid.zeros(3, dtype=lucid.int64))
    # constant fills work on any dtype
    t = lucid.zeros(3, dtype=lucid.int64)
    init.constant_(t, 4)
    assert t.tolist() == [4, 4, 4]


def test_determinism_under_manual_seed_and_generator():
    def draw():
        outs = []
        for fn in (init.uniform_, init.normal_, init.trunc_normal_, init.kaiming_uniform_, init.xavier_normal_):
            t = _param(8, 6)
            fn(t)
            outs.append(t.detach().numpy().copy())
        return outs

    lucid.manual_seed(123)
    first = draw()
    lucid.manual_seed(123)
    second = draw()
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    lucid.manual_seed(124)
    assert not np.array_equal(draw()[0], first[0])
    # an explicit generator is independent of the default one
    g1, g2 = lucid.random.Generator(5), lucid.random.Generator(5)
    a, b = _param(10), _param(10)
    init.normal_(a, generator=g1)
    lucid.randn(3)  # consume from the default generator in between
    init.normal_(b, generator=g2)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_float16_target():
    t = _param(1000, dtype=lucid.float16)
    init.uniform_(t, -1, 1)
    assert t.dtype == lucid.float16 and np.abs(t.detach().numpy()).max() <= 1
