"""Random draws on the GPU: the sized samplers (host-drawn, the same numbers on every device), and the masks
drawn on the device from the generator's device stream (dropout, drop-path, bernoulli of a GPU tensor):
reproducible from ``manual_seed`` / ``set_rng_state``, statistically right, and never uploaded from the host."""
from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.ops.dropout import drop_path_scale

from ._twin import close


@pytest.mark.parametrize("sampler", [
    lambda **kw: lucid.rand(3, 4, **kw),
    lambda **kw: lucid.randn((2, 5), **kw),
    lambda **kw: lucid.randint(0, 7, (4, 3), **kw),
    lambda **kw: lucid.random.normal(1.0, 2.0, (6,), **kw),
    lambda **kw: lucid.random.uniform(-1.0, 3.0, 5, **kw),
    lambda **kw: lucid.randperm(9, **kw),
    lambda **kw: lucid.random.bernoulli(0.3, (4, 4), **kw),
], ids=["rand", "randn", "randint", "normal", "uniform", "randperm", "bernoulli_float"])
def test_sized_samplers_give_the_same_numbers_on_both_devices(gpu, sampler):
    lucid.manual_seed(11)
    c = sampler()
    lucid.manual_seed(11)
    g = sampler(device="gpu")
    assert g.device == "gpu" and g.dtype == c.dtype
    close(g, c, "sampler")


def test_init_functions_write_gpu_parameters(gpu):
    for init in (nn.init.kaiming_normal_, nn.init.xavier_uniform_, nn.init.trunc_normal_, nn.init.zeros_):
        lucid.manual_seed(2)
        c = init(lucid.empty(4, 3))
        lucid.manual_seed(2)
        g = lucid.empty(4, 3, device="gpu")
        assert init(g) is g and g.device == "gpu"
        close(g, c, init.__name__)


def _uploads(gpu) -> list:
    return list(gpu.log.uploads) if gpu.log is not None else []


def test_dropout_mask_is_drawn_on_the_device(gpu):
    x = lucid.ones(400, 50, device="gpu", requires_grad=True)
    lucid.manual_seed(5)
    before = _uploads(gpu)
    y = F.dropout(x, 0.3)
    assert _uploads(gpu) == before, "dropout uploaded a host mask"
    assert y.device == "gpu"
    v = y.detach().cpu().numpy()
    assert set(np.unique(v)) <= {0.0, np.float32(1 / 0.7)}
    kept = (v != 0).mean()
    assert abs(kept - 0.7) < 4 * np.sqrt(0.7 * 0.3 / v.size)
    y.backward(lucid.ones(400, 50, device="gpu"))
    np.testing.assert_array_equal(x.grad.cpu().numpy(), v)  # the gradient goes through the same mask
    lucid.manual_seed(5)
    close(F.dropout(x.detach(), 0.3), y, "the same seed, the same mask")
    assert not np.array_equal(F.dropout(x.detach(), 0.3).cpu().numpy(), v), "the stream moved on"


def test_device_stream_restarts_with_the_host_state(gpu):
    x = lucid.ones(64, 8, device="gpu")
    lucid.manual_seed(1)
    state = lucid.get_rng_state()
    a = F.dropout(x, 0.5).cpu().numpy()
    F.dropout(x, 0.5)
    lucid.set_rng_state(state)
    np.testing.assert_array_equal(F.dropout(x, 0.5).cpu().numpy(), a)
    g = lucid.random.Generator(3)
    u1 = lucid.random.device_random((5,), "gpu", generator=g)
    g.manual_seed(3)
    close(lucid.random.device_random((5,), "gpu", generator=g), u1, "a Generator's own device stream")


def test_drop_path_on_the_device(gpu):
    x = lucid.ones(2000, 3, 2, 2, device="gpu")
    lucid.manual_seed(9)
    before = _uploads(gpu)
    y = F.drop_path(x, 0.25, training=True)
    assert _uploads(gpu) == before, "drop_path uploaded a host mask"
    per_sample = y.cpu().numpy().reshape(2000, -1)
    assert np.all((per_sample == 0).all(1) | np.isclose(per_sample, 1 / 0.75).all(1))
    assert abs((per_sample[:, 0] != 0).mean() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 2000)
    lucid.manual_seed(9)
    scale = drop_path_scale(2000, 0.25, True, device="gpu")
    assert type(scale) is gpu.xp.ndarray
    np.testing.assert_array_equal(gpu.xp.asnumpy(scale), per_sample[:, 0])
    m = nn.DropPath(0.25).to("gpu")
    assert m(x).device == "gpu"


def test_bernoulli_of_a_gpu_tensor_draws_there(gpu):
    p = lucid.full((300, 30), 0.2, device="gpu")
    before = _uploads(gpu)
    lucid.manual_seed(4)
    b = lucid.random.bernoulli(p)
    assert _uploads(gpu) == before and b.device == "gpu"
    v = b.cpu().numpy()
    assert set(np.unique(v)) <= {0.0, 1.0} and abs(v.mean() - 0.2) < 4 * np.sqrt(0.16 / v.size)
    lucid.manual_seed(4)
    close(lucid.random.bernoulli(p), b, "reproducible")
