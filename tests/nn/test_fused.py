"""Fused ops (lucid/ops/fused.py) and the fused modules lucid.nn.fuse swaps into InceptionNeXt (lucid/nn/fused.py),
against torch/timm and by finite differences."""
import numpy as np
import pytest
import timm
import torch

import lucid
from lucid import nn
from lucid.ops.dropout import drop_path_scale
from lucid.ops.fused import depthwise_branches, scaled_residual


def _mixer_pair(channels, band, ratio, seed=0):
    tm = timm.models.inception_next.InceptionDWConv2d(channels, band_kernel_size=band, branch_ratio=ratio)
    lm = nn.fuse(lucid.models.InceptionDWConv2d(channels, band_kernel_size=band, branch_ratio=ratio))
    assert isinstance(lm, nn.fused.FusedDepthwiseBranches)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    lm.load_state_dict({k: lucid.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    return tm, lm


# maps of <= 16 pixels take the fused kernels (lucid/kernels/mixer.py), larger ones the per-branch way
@pytest.mark.parametrize("channels,band,ratio,hw", [(16, 11, 0.125, (8, 8)), (40, 9, 0.25, (5, 7)),
                                                    (24, 11, 0.125, (1, 1)), (96, 11, 0.125, (3, 12)),
                                                    (40, 9, 0.25, (4, 4)), (24, 11, 0.125, (2, 7)),
                                                    (16, 5, 0.25, (3, 5))])
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


@pytest.mark.parametrize("hw", [(4, 5), (3, 4)])  # per-branch way, fused kernels
def test_inception_mixer_gradcheck_float64(hw):
    lm = lucid.models.InceptionDWConv2d(8, band_kernel_size=5, branch_ratio=0.25).double()
    x = lucid.randn(2, 8, *hw, dtype=lucid.float64, requires_grad=True)
    convs = (lm.dwconv_hw, lm.dwconv_w, lm.dwconv_h)
    params = [p for c in convs for p in (c.weight, c.bias)]
    assert lucid.autograd.gradcheck(lambda x, *ps: depthwise_branches(x, ps[0::2], ps[1::2], lm.split_indexes[0]),
                                    (x, *params))


@pytest.mark.parametrize("hw", [(4, 4), (2, 3), (1, 1), (6, 6)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mixer_kernels_match_the_numpy_reference(hw, dtype, monkeypatch):
    """The numba ways (fused for <= 16 pixels, per branch above) against the NumPy reference, all gradients."""
    from lucid.kernels import mixer

    rng = np.random.default_rng(0)
    br = mixer.Branches(c_id=5, gc=4, c0=(5, 9, 13), kernel=((3, 3), (1, 7), (7, 1)), pad=((1, 1), (0, 3), (3, 0)))
    x = rng.standard_normal((3, *hw, 17)).astype(dtype)
    gy = rng.standard_normal(x.shape).astype(dtype)
    weights = [rng.standard_normal((4, kh, kw)).astype(dtype) for kh, kw in br.kernel]
    biases = [rng.standard_normal(4).astype(dtype) for _ in br.kernel]
    assert mixer.fused_pays(x, br) == (hw[0] * hw[1] <= mixer.FUSED_MAX_PIXELS)
    got_y = mixer.forward(x, weights, biases, br)
    got = mixer.backward(gy, x, weights, br)
    monkeypatch.setenv("LUCID_NO_NUMBA", "1")
    assert not mixer.fused_pays(x, br)
    want_y = mixer.forward(x, weights, biases, br)
    want = mixer.backward(gy, x, weights, br)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got_y, want_y, rtol=tol, atol=tol)
    np.testing.assert_allclose(got[0], want[0], rtol=tol, atol=tol)
    for a, b in zip(got[1] + got[2], want[1] + want[2]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=10 * tol)
    assert mixer.backward(gy, x, weights, br, need_input=False)[0] is None


def test_mixer_with_dilated_branches_runs_the_convs_as_modules():
    """The fused op covers stride-1, dilation-1 branches only; a fused dilated mixer falls back and stays correct."""
    tm = timm.models.inception_next.InceptionDWConv2d(16, band_kernel_size=5, branch_ratio=0.25, dilation=2)
    lm = nn.fuse(lucid.models.InceptionDWConv2d(16, band_kernel_size=5, branch_ratio=0.25, dilation=2))
    lm.load_state_dict({k: lucid.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    assert not nn.fused.fusable_depthwise_branch(lm.dwconv_hw, 4)
    x = np.random.default_rng(0).standard_normal((2, 16, 9, 9)).astype(np.float32)
    with lucid.profiler.profile() as prof:
        out = lm(lucid.tensor(x))
    assert "DepthwiseBranches" not in prof.totals()
    np.testing.assert_allclose(out.detach().numpy(), tm(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


def test_depthwise_branches_rejects_what_it_does_not_compute():
    x = lucid.randn(2, 10, 4, 4)
    ok = dict(weights=[lucid.randn(2, 1, 3, 3)] * 3, biases=[lucid.randn(2)] * 3)
    assert depthwise_branches(x, identity_channels=4, **ok).shape == (2, 10, 4, 4)
    with pytest.raises(ValueError, match="odd kh, kw"):
        depthwise_branches(x, [lucid.randn(2, 1, 2, 2)] * 3, ok["biases"], 4)  # even kernel: no "same" padding
    with pytest.raises(ValueError, match="got 10 channels"):
        depthwise_branches(x, identity_channels=2, **ok)
    with pytest.raises(ValueError, match="biases"):
        depthwise_branches(x, ok["weights"], [None] * 3, 4)


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
    """A hook added after the fused op ran (its plan cached) still sees its conv called; removing it brings the
    fused op back."""
    tm, lm = _mixer_pair(16, 11, 0.125)
    x = np.random.default_rng(1).standard_normal((2, 16, 6, 6)).astype(np.float32)
    expected = tm(torch.from_numpy(x)).detach().numpy()
    with lucid.no_grad():
        lm(lucid.tensor(x))
    seen = []
    handle = lm.dwconv_w.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with lucid.no_grad(), lucid.profiler.profile() as prof:
        out = lm(lucid.tensor(x))
    assert seen == [(2, 2, 6, 6)] and "DepthwiseBranches" not in prof.totals()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    handle.remove()
    with lucid.no_grad(), lucid.profiler.profile() as prof:
        out = lm(lucid.tensor(x))
    assert seen == [(2, 2, 6, 6)] and set(prof.totals()) == {"DepthwiseBranches"}
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_mixer_follows_a_branch_changed_after_it_ran():
    """Changing a branch conv's geometry after the fused op ran (its plan cached) takes effect: a dilated
    branch runs as a module, as in timm with the same change."""
    tm, lm = _mixer_pair(16, 5, 0.25)
    x = np.random.default_rng(1).standard_normal((2, 16, 7, 7)).astype(np.float32)
    with lucid.no_grad():
        lm(lucid.tensor(x))
    for m in (tm, lm):
        m.dwconv_hw.dilation, m.dwconv_hw.padding = (2, 2), (2, 2)
    with lucid.no_grad(), lucid.profiler.profile() as prof:
        out = lm(lucid.tensor(x))
    assert "DepthwiseBranches" not in prof.totals()
    np.testing.assert_allclose(out.numpy(), tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("layout,shape", [("channels_last", (4, 6, 3, 5)), ("nchw", (2, 6, 4, 4)),
                                          ("channels_last", (1, 6, 1, 1))])
def test_conv_mlp_gelu_matches_torch(approximate, layout, shape):
    from lucid.ops.fused import conv_mlp_gelu

    rng = np.random.default_rng(0)
    c, d, c2 = shape[1], 10, 7
    x = rng.standard_normal(shape).astype(np.float32)
    params = [rng.standard_normal(s).astype(np.float32) * 0.5 for s in ((d, c, 1, 1), (d,), (c2, d, 1, 1), (c2,))]
    g = rng.standard_normal((shape[0], c2) + shape[2:]).astype(np.float32)
    tx, *tps = (torch.tensor(a, requires_grad=True) for a in (x, *params))
    F = torch.nn.functional
    tout = F.conv2d(F.gelu(F.conv2d(tx, tps[0], tps[1]), approximate=approximate), tps[2], tps[3])
    tout.backward(torch.from_numpy(g))
    data = x if layout == "nchw" else np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    lx, *lps = (lucid.Tensor(a, requires_grad=True) for a in (data, *params))
    out = conv_mlp_gelu(lx, *lps, approximate=approximate)
    assert out.is_contiguous("channels_last")
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-5)
    out.backward(lucid.tensor(g))
    for l, t in zip((lx, *lps), (tx, *tps)):
        np.testing.assert_allclose(l.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_conv_mlp_gelu_gradcheck_float64(approximate):
    from lucid.ops.fused import conv_mlp_gelu

    args = [lucid.randn(*s, dtype=lucid.float64, requires_grad=True)
            for s in ((2, 3, 2, 3), (5, 3, 1, 1), (5,), (4, 5, 1, 1), (4,))]
    assert lucid.autograd.gradcheck(lambda *a: conv_mlp_gelu(*a, approximate=approximate), tuple(args))
    residual = lucid.randn(2, 4, 2, 3, dtype=lucid.float64, requires_grad=True)
    assert lucid.autograd.gradcheck(lambda *a: conv_mlp_gelu(*a[:5], approximate=approximate, residual=a[5]),
                                    tuple(args) + (residual,))


def test_conv_mlp_gelu_rejects_mismatched_shapes():
    from lucid.ops.fused import conv_mlp_gelu

    x = lucid.randn(1, 3, 2, 2)
    with pytest.raises(ValueError, match="w1 .5, 4, 1, 1."):
        conv_mlp_gelu(x, lucid.randn(5, 4, 1, 1), lucid.randn(5), lucid.randn(3, 5, 1, 1), lucid.randn(3))


def _block_pair(seed=0):
    tb = timm.models.inception_next.MetaNeXtBlock(
        16, token_mixer=lambda d, **kw: timm.models.inception_next.InceptionDWConv2d(d, band_kernel_size=5,
                                                                            branch_ratio=0.25, **kw),
        ls_init_value=0.5)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in tb.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        tb.norm.running_mean.copy_(torch.randn(16, generator=g))
        tb.norm.running_var.copy_(torch.rand(16, generator=g) + 0.5)
    lb = lucid.models.inception_next.MetaNeXtBlock(
        16, token_mixer=lambda d, **kw: lucid.models.InceptionDWConv2d(d, band_kernel_size=5, branch_ratio=0.25,
                                                                       **kw),
        ls_init_value=0.5)
    lb = nn.fuse(lb, inference=True)
    assert isinstance(lb, nn.fused.FusedMetaFormerBlock)
    lb.load_state_dict({k: lucid.tensor(v.numpy()) for k, v in tb.state_dict().items()})
    return tb, lb


def test_eval_block_with_gradients_runs_unfolded_and_matches_timm():
    """Eval mode with gradients wanted for the parameters runs BatchNorm as an op (no folded copy: gradients
    must reach its parameters); outputs and all gradients match timm. Without gradients it folds."""
    tb, lb = _block_pair()
    tb.eval(), lb.eval()
    x = np.random.default_rng(0).standard_normal((2, 16, 6, 7)).astype(np.float32)  # 84 pixels, 64 hidden
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    tb(tx).backward(torch.from_numpy(g))
    lx = lucid.Tensor(x, requires_grad=True)
    with lucid.profiler.profile() as prof:
        out = lb(lx)
    assert "BatchNorm" in prof.totals() and "ConvMlpGelu" in prof.totals()
    np.testing.assert_allclose(out.detach().numpy(), tb(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    with lucid.no_grad(), lucid.profiler.profile() as prof:
        np.testing.assert_allclose(lb(lucid.tensor(x)).numpy(), out.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert "BatchNorm" not in prof.totals()
    out.backward(lucid.tensor(g))
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    tgrads = dict(tb.named_parameters())
    for name, p in lb.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tgrads[name].grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


def _timm_out(tb, x):
    with torch.no_grad():
        return tb(torch.from_numpy(x)).numpy()


def test_inference_block_is_two_ops_with_cached_folded_weights():
    """Eval without parameter gradients: mixer + one fused MLP (BatchNorm folded into fc1, gamma into fc2, the
    shortcut added inside), at any size; the folded weights are reused until a source tensor changes."""
    tb, lb = _block_pair()
    tb.eval(), lb.eval()
    x = np.random.default_rng(0).standard_normal((2, 16, 3, 3)).astype(np.float32)  # 64 hidden > 4 x 18 px
    with lucid.profiler.profile() as prof, lucid.no_grad():
        out = lb(lucid.tensor(x)).numpy()
    assert set(prof.totals()) == {"DepthwiseBranches", "ConvMlpGelu"}
    np.testing.assert_allclose(out, _timm_out(tb, x), rtol=1e-5, atol=1e-5)
    cached = lb._folded.cached
    lb.eval()  # e.g. called before every batch: keeps the cache
    with lucid.no_grad():
        lb(lucid.tensor(x))
    assert lb._folded.cached is cached  # nothing changed: no refolding
    # in-place changes through lucid (version bumps) and new arrays both invalidate the cache
    changes = [
        (lambda: lb.norm.running_mean.add_(0.5), lambda: tb.norm.running_mean.add_(0.5)),
        (lambda: lb.gamma.mul_(2.0), lambda: tb.gamma.mul_(2.0)),
        (lambda: setattr(lb.mlp.fc2.bias, "data", lb.mlp.fc2.bias.array + 1),
         lambda: tb.mlp.fc2.bias.add_(1)),
    ]
    for change_lucid, change_timm in changes:
        with lucid.no_grad():
            change_lucid()
        with torch.no_grad():
            change_timm()
        with lucid.no_grad():
            got = lb(lucid.tensor(x)).numpy()
        assert lb._folded.cached is not cached
        cached = lb._folded.cached
        np.testing.assert_allclose(got, _timm_out(tb, x), rtol=1e-5, atol=1e-5)
    # a training step changes the running statistics in place (their versions move): eval sees the new ones
    lb.train(), tb.train()
    assert lb._folded.cached is None  # no folded copy is held while training
    xt = np.random.default_rng(2).standard_normal((4, 16, 3, 3)).astype(np.float32) * 3 + 1
    lb(lucid.tensor(xt)), tb(torch.from_numpy(xt))
    lb.eval(), tb.eval()
    with lucid.no_grad():
        np.testing.assert_allclose(lb(lucid.tensor(x)).numpy(), _timm_out(tb, x), rtol=1e-5, atol=1e-5)


def test_inference_block_input_gradient_with_frozen_parameters():
    """Frozen parameters, input gradient wanted (e.g. a saliency map): the fused inference path's backward
    (through the MLP and the shortcut added inside it) gives timm's input gradient."""
    tb, lb = _block_pair()
    tb.eval(), lb.eval()
    for p in lb.parameters():
        p.requires_grad_(False)
    x = np.random.default_rng(0).standard_normal((2, 16, 5, 4)).astype(np.float32)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    tb(tx).backward(torch.from_numpy(g))
    lx = lucid.Tensor(x, requires_grad=True)
    with lucid.profiler.profile() as prof:
        lb(lx).backward(lucid.tensor(g))
    assert "ScaledResidual" not in prof.totals()  # the shortcut went through the fused MLP
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_batch_norm_training_bumps_running_statistics_versions():
    bn = lucid.nn.BatchNorm2d(3)
    versions = (bn.running_mean._version, bn.running_var._version)
    bn(lucid.randn(4, 3, 2, 2))
    assert (bn.running_mean._version, bn.running_var._version) == (versions[0] + 1, versions[1] + 1)
    bn.eval()
    bn(lucid.randn(4, 3, 2, 2))
    assert (bn.running_mean._version, bn.running_var._version) == (versions[0] + 1, versions[1] + 1)


def test_mlp_runs_its_modules_when_hooked_or_dropping():
    """A hook on a part, or dropout in training, makes the MLP run its modules one by one (timm's order)."""
    _, lb = _block_pair()
    mlp = lb.mlp
    assert mlp.fusable()
    lb.eval()
    with lucid.no_grad():
        lb(lucid.randn(2, 16, 3, 3))  # the inference block's folded weights are now cached
    seen = []
    handle = mlp.act.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    assert not mlp.fusable()
    with lucid.profiler.profile() as prof:
        lb(lucid.randn(2, 16, 3, 3))
    assert seen == [(2, 64, 3, 3)] and "GELU" in prof.totals() and "BatchNorm" in prof.totals()
    handle.remove()
    with lucid.no_grad(), lucid.profiler.profile() as prof:
        lb(lucid.randn(2, 16, 3, 3))
    assert set(prof.totals()) == {"DepthwiseBranches", "ConvMlpGelu"}
    mlp.drop.p = 0.5
    mlp.train()
    assert not mlp.fusable()
    mlp.eval()
    assert mlp.fusable()


def test_conv_mlp_gelu_gradient_to_the_residual_alone():
    """Only the residual wants a gradient: it is the output gradient itself (the MLP saved nothing)."""
    from lucid.ops.fused import conv_mlp_gelu

    rng = np.random.default_rng(0)
    params = [lucid.tensor(rng.standard_normal(s).astype(np.float32)) for s in ((8, 3, 1, 1), (8,), (3, 8, 1, 1), (3,))]
    residual = lucid.Tensor(rng.standard_normal((2, 3, 4, 5)).astype(np.float32), requires_grad=True)
    g = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    out = conv_mlp_gelu(lucid.tensor(rng.standard_normal((2, 3, 4, 5)).astype(np.float32)), *params,
                        residual=residual)
    out.backward(lucid.tensor(g))
    np.testing.assert_array_equal(residual.grad.numpy(), g)
