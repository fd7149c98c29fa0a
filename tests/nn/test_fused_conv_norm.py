"""FusedConvNorm (lucid/nn/fused.py, folding math in lucid/nn/folding.py): ``lucid.nn.fuse(..., inference=True)``
makes Sequential(conv, bn) and Sequential(bn, conv) run as one conv in inference, with the numbers of the two
modules (checked against torch), and as the modules otherwise."""
import numpy as np
import pytest
import torch

import lucid
from lucid import nn


def _pair(bn_first: bool, conv_bias: bool, affine: bool, padding: int = 0, seed: int = 0):
    c_in, c_out = 4, 6
    g = torch.Generator().manual_seed(seed)
    tconv = torch.nn.Conv2d(c_in, c_out, 2, stride=2, padding=padding, bias=conv_bias)
    tbn = torch.nn.BatchNorm2d(c_in if bn_first else c_out, affine=affine)
    with torch.no_grad():
        for t in list(tconv.parameters()) + list(tbn.parameters()):
            t.copy_(torch.randn(t.shape, generator=g))
        tbn.running_mean.copy_(torch.randn(tbn.num_features, generator=g))
        tbn.running_var.copy_(torch.rand(tbn.num_features, generator=g) + 0.5)
    tseq = torch.nn.Sequential(tbn, tconv) if bn_first else torch.nn.Sequential(tconv, tbn)
    lconv = nn.Conv2d(c_in, c_out, 2, stride=2, padding=padding, bias=conv_bias)
    lbn = nn.BatchNorm2d(c_in if bn_first else c_out, affine=affine)
    lseq = nn.Sequential(lbn, lconv) if bn_first else nn.Sequential(lconv, lbn)
    keys = list(lseq.state_dict())
    lseq = nn.fuse(lseq, inference=True)
    assert isinstance(lseq, nn.fused.FusedConvNorm) and list(lseq.state_dict()) == keys
    lseq.load_state_dict({k: lucid.tensor(v.numpy()) for k, v in tseq.state_dict().items()})
    return tseq.eval(), lseq.eval()


def _x(seed=1):
    return np.random.default_rng(seed).standard_normal((3, 4, 6, 8)).astype(np.float32)


@pytest.mark.parametrize("bn_first", [True, False])
@pytest.mark.parametrize("conv_bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_inference_is_one_conv_with_the_modules_numbers(bn_first, conv_bias, affine):
    tseq, lseq = _pair(bn_first, conv_bias, affine)
    x = _x()
    with lucid.no_grad(), lucid.profiler.profile() as prof:
        got = lseq(lucid.tensor(x)).numpy()
    assert set(prof.totals()) == {"Conv2dFunction"}
    with torch.no_grad():
        np.testing.assert_allclose(got, tseq(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)


def test_padded_conv_after_batchnorm_does_not_fold():
    """Padding zeros would have been BatchNorm's shift before the conv: no exact fold, the modules run."""
    tseq, lseq = _pair(bn_first=True, conv_bias=True, affine=True, padding=1)
    x = _x()
    with lucid.no_grad(), lucid.profiler.profile() as prof:
        got = lseq(lucid.tensor(x)).numpy()
    assert "BatchNorm" in prof.totals()
    with torch.no_grad():
        np.testing.assert_allclose(got, tseq(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)


def test_gradients_wanted_run_the_modules_and_match_torch():
    tseq, lseq = _pair(bn_first=False, conv_bias=True, affine=True)
    x = _x()
    g = np.random.default_rng(2).standard_normal((3, 6, 3, 4)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    tseq(tx).backward(torch.from_numpy(g))
    lx = lucid.Tensor(x, requires_grad=True)
    with lucid.profiler.profile() as prof:
        lseq(lx).backward(lucid.tensor(g))
    assert "BatchNorm" in prof.totals()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    tparams = dict(tseq.named_parameters())
    for name, p in lseq.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


def test_folded_weights_are_cached_until_a_source_or_mode_changes():
    tseq, lseq = _pair(bn_first=True, conv_bias=True, affine=True)
    x = _x()
    with lucid.no_grad():
        lseq(lucid.tensor(x))
        cached = lseq._folded.cached
        # the folded weight is stored in the patchify conv's (Cout, kh, kw, Cin) order: no copy per call
        assert cached[0].array.transpose(0, 2, 3, 1).flags.c_contiguous
        lseq(lucid.tensor(x))
        assert lseq._folded.cached is cached
        lseq[0].running_var.mul_(2.0)
        got = lseq(lucid.tensor(x)).numpy()
    assert lseq._folded.cached is not cached
    with torch.no_grad():
        tseq[0].running_var.mul_(2.0)
        np.testing.assert_allclose(got, tseq(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)
    lseq.train()
    assert lseq._folded.cached is None  # no folded copy is held while training
    seen = []
    lseq.eval()[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with lucid.no_grad():
        lseq(lucid.tensor(x))
    assert seen == [(3, 4, 6, 8)]  # a hooked part runs as a module


def test_training_fusion_leaves_conv_norm_sequentials_alone():
    """BatchNorm folding is an inference rule: fuse(model) without inference keeps the Sequential."""
    seq = nn.Sequential(nn.Conv2d(3, 4, 2, stride=2), nn.BatchNorm2d(4))
    assert type(nn.fuse(seq)) is nn.Sequential
    other = nn.Sequential(nn.Conv2d(3, 4, 2, stride=2), nn.BatchNorm2d(4), nn.ReLU())
    assert type(nn.fuse(other, inference=True)) is nn.Sequential  # not exactly (conv, bn): no rule applies
