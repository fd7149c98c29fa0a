"""Dropout and DropPath: mask statistics under a fixed seed, expectation preserved, gradients through the
mask, identity in eval and at p == 0, layouts kept, reproducibility, and timm's DropPath semantics."""
import numpy as np
import pytest
import torch

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.autograd import gradcheck


def test_dropout_mask_statistics_and_scaling():
    lucid.manual_seed(0)
    p = 0.3
    x = lucid.ones(200, 500, requires_grad=True)
    y = F.dropout(x, p, training=True)
    out = y.detach().numpy()
    kept = out != 0
    # every kept element is scaled by exactly 1 / (1 - p); the kept fraction is 1 - p within 4 sigma
    np.testing.assert_allclose(out[kept], np.float32(1.0) / np.float32(1 - p), rtol=1e-6)
    n = out.size
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)
    assert abs(out.mean() - 1.0) < 4 * np.sqrt(p / (1 - p) / n)  # expectation preserved
    # the gradient flows through the same mask
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    y.backward(lucid.Tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), g * out, rtol=1e-6)
    assert y.dtype == lucid.float32 and x.grad.dtype == lucid.float32


def test_dropout_identity_cases_and_extremes():
    x = lucid.randn(4, 5, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True) is x
    y = F.dropout(x, 1.0, training=True)  # torch: all zeros, zero gradient
    np.testing.assert_array_equal(y.detach().numpy(), 0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(-0.1)
    empty = lucid.randn(0, 3)
    assert F.dropout(empty, 0.5).shape == (0, 3)


def test_dropout_is_reproducible_and_layout_independent():
    a = np.random.default_rng(2).standard_normal((2, 4, 3, 3)).astype(np.float32)
    cl = np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # same values, NHWC memory
    lucid.manual_seed(5)
    y1 = F.dropout(lucid.Tensor(a), 0.4).numpy()
    lucid.manual_seed(5)
    y2 = lucid.Tensor(cl)
    y2 = F.dropout(y2, 0.4)
    np.testing.assert_array_equal(y1, y2.numpy())  # the same mask whatever the memory layout
    assert y2.is_contiguous("channels_last")  # and the output keeps the input's layout
    y3 = F.dropout(lucid.Tensor(a), 0.4).numpy()
    assert not np.array_equal(y1, y3)  # the generator advanced


def test_dropout_module_train_eval():
    lucid.manual_seed(3)
    m = nn.Dropout(0.25)
    assert repr(m) == repr(torch.nn.Dropout(0.25))
    x = lucid.ones(1000)
    assert (m(x).numpy() == 0).any()
    m.eval()
    assert m(x) is x


def test_dropout_gradcheck_float64():
    x = lucid.Tensor(np.random.default_rng(4).standard_normal((3, 4)), requires_grad=True)

    def fn(x):
        lucid.manual_seed(11)  # the same mask on every evaluation
        return F.dropout(x, 0.3)

    assert fn(x).dtype == lucid.float64
    gradcheck(fn, (x,))


# ---------------------------------------------------------------------------------------------------------
def test_drop_path_one_draw_per_sample():
    lucid.manual_seed(0)
    p = 0.25
    x = lucid.ones(4000, 3, 2, 2, requires_grad=True)
    y = F.drop_path(x, p, training=True)
    out = y.detach().numpy()
    per_sample = out.reshape(4000, -1)
    # each sample is either all zero or all 1 / (1 - p)
    assert np.all((per_sample == 0).all(1) | np.isclose(per_sample, 1 / (1 - p)).all(1))
    kept = (per_sample != 0).all(1)
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / 4000)
    assert abs(out.mean() - 1.0) < 4 * np.sqrt(p / (1 - p) / 4000)
    y.backward(lucid.Tensor(np.full(out.shape, 2.0, np.float32)))
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * out, rtol=1e-6)


def test_drop_path_scale_by_keep_false_and_identity():
    lucid.manual_seed(1)
    x = lucid.ones(500, 3)
    out = F.drop_path(x, 0.5, training=True, scale_by_keep=False).numpy()
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert F.drop_path(x, 0.5, training=False) is x
    assert F.drop_path(x, 0.0, training=True) is x
    np.testing.assert_array_equal(F.drop_path(x, 1.0, training=True).numpy(), 0)


def test_drop_path_keeps_channels_last_layout():
    a = np.random.default_rng(3).standard_normal((4, 5, 5, 8)).astype(np.float32).transpose(0, 3, 1, 2)
    y = F.drop_path(lucid.Tensor(a), 0.5, training=True)
    assert y.is_contiguous("channels_last")


def test_drop_path_module_matches_timm():
    timm_layers = pytest.importorskip("timm.layers")
    for p in (0.0, 0.1, 0.123456):
        assert repr(nn.DropPath(p)) == repr(timm_layers.DropPath(p))
    m = nn.DropPath(0.3)
    m.eval()
    x = lucid.randn(4, 3)
    assert m(x) is x
    m.train()
    assert nn.DropPath(0.0)(x) is x
    assert list(m.state_dict()) == []


def test_drop_path_gradcheck_float64():
    x = lucid.Tensor(np.random.default_rng(5).standard_normal((6, 2, 3)), requires_grad=True)

    def fn(x):
        lucid.manual_seed(7)
        return F.drop_path(x, 0.4, training=True)

    gradcheck(fn, (x,))
