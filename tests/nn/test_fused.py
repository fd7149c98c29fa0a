"""Fused InceptionNeXt ops (lucid/ops/fused.py) against torch/timm and by finite differences."""
import numpy as np
import pytest
import timm
import torch

import lucid
from lucid import nn
from lucid.ops.dropout import drop_path_scale
from lucid.ops.fused import inception_dwconv2d, scaled_residual


def _mixer_pair(channels, band, ratio, seed=0):
    tm = timm.models.inception_next.InceptionDWConv2d(channels, band_kernel_size=band, branch_ratio=ratio)
    lm = lucid.models.InceptionDWConv2d(channels, band_kernel_size=band, branch_ratio=ratio)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    lm.load_state_dict({k: lucid.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    return tm, lm


@pytest.mark.parametrize("channels,band,ratio,hw", [(16, 11, 0.125, (8, 8)), (40, 9, 0.25, (5, 7)),
                                                    (24, 11, 0.125, (1, 1)), (96, 11, 0.125, (3, 12))])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_inception_mixer_matches_timm_forward_and_backward(channels, band, ratio, hw, layout):
    tm, lm = _mixer_pair(channels, band, ratio)
    x = np.random.default_rng(1).standard_normal((3, channels) + hw).astype(np.float32)
    g = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    tm(tx).backward(torch.from_numpy(g))
    data = x if layout == "nchw" else np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    lx = lucid.Tensor(data, requires_grad=True)
    out = lm(lx)
    assert out.is_contiguous("channels_last")
    np.testing.assert_allclose(out.detach().numpy(), tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    out.backward(lucid.tensor(g))
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    tgrads = dict(tm.named_parameters())
    for name, p in lm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tgrads[name].grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


def test_inception_mixer_gradcheck_float64():
    lm = lucid.models.InceptionDWConv2d(8, band_kernel_size=5, branch_ratio=0.25).double()
    x = lucid.randn(2, 8, 4, 5, dtype=lucid.float64, requires_grad=True)
    convs = (lm.dwconv_hw, lm.dwconv_w, lm.dwconv_h)
    params = [p for c in convs for p in (c.weight, c.bias)]
    assert lucid.autograd.gradcheck(lambda x, *ps: inception_dwconv2d(x, convs, lm.split_indexes), (x, *params))


@pytest.mark.parametrize("drop", [0.0, 0.5])
def test_scaled_residual_matches_unfused_torch(drop):
    rng = np.random.default_rng(0)
    y, s = rng.standard_normal((2, 4, 6, 3, 5)).astype(np.float32)
    gamma = rng.standard_normal(6).astype(np.float32)
    g = rng.standard_normal((4, 6, 3, 5)).astype(np.float32)
    lucid.manual_seed(3)
    keep = drop_path_scale(4, drop, training=True)
    ty, tgam, ts = (torch.tensor(a, requires_grad=True) for a in (y, gamma, s))
    k = torch.ones(4) if keep is None else torch.from_numpy(keep)
    tout = ts + ty * tgam.reshape(1, -1, 1, 1) * k.reshape(-1, 1, 1, 1)
    tout.backward(torch.from_numpy(g))
    ly, lgam, ls = (lucid.Tensor(a.copy(), requires_grad=True) for a in (y, gamma, s))
    out = scaled_residual(ly, lgam, ls, keep)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.backward(lucid.tensor(g))
    for l, t in ((ly, ty), (lgam, tgam), (ls, ts)):
        np.testing.assert_allclose(l.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_scaled_residual_gradcheck_float64():
    y, s = lucid.randn(3, 4, 2, 2, dtype=lucid.float64, requires_grad=True), lucid.randn(
        3, 4, 2, 2, dtype=lucid.float64, requires_grad=True)
    gamma = lucid.randn(4, dtype=lucid.float64, requires_grad=True)
    keep = np.array([2.0, 0.0, 2.0])
    assert lucid.autograd.gradcheck(lambda y, g, s: scaled_residual(y, g, s, keep), (y, gamma, s))
    assert lucid.autograd.gradcheck(lambda y, g, s: scaled_residual(y, g, s, None), (y, gamma, s))


def test_drop_path_scale_draws_what_drop_path_draws():
    lucid.manual_seed(7)
    x = lucid.ones(6, 2, 1, 1)
    a = nn.functional.drop_path(x, 0.4, training=True).numpy()[:, 0, 0, 0]
    lucid.manual_seed(7)
    b = drop_path_scale(6, 0.4, training=True)
    np.testing.assert_array_equal(a, b)
    assert drop_path_scale(6, 0.4, training=False) is None and drop_path_scale(6, 0.0, training=True) is None


def test_mixer_calls_its_convs_when_they_are_hooked():
    tm, lm = _mixer_pair(16, 11, 0.125)
    seen = []
    lm.dwconv_w.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    x = np.random.default_rng(1).standard_normal((2, 16, 6, 6)).astype(np.float32)
    with lucid.no_grad():
        out = lm(lucid.tensor(x))
    assert seen == [(2, 2, 6, 6)]
    np.testing.assert_allclose(out.numpy(), tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
