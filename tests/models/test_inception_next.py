"""InceptionNeXt against timm: keys, parameter counts, logits and gradients with the same weights."""
import numpy as np
import pytest
import timm
import torch

import lucid
from lucid import nn
from lucid.models import InceptionNeXt, create_model, list_models, summary

PARAM_COUNTS = {"inception_next_atto": 4_156_520, "inception_next_tiny": 28_055_680,
                "inception_next_small": 49_374_016, "inception_next_base": 86_672_136}


def _randomize(tmodel: torch.nn.Module, seed: int = 0) -> None:
    """Give every weight, BN statistic and layer-scale gamma a non-trivial value, so residual branches matter
    (with the default gamma of 1e-6 every block would be nearly the identity and parity would prove little)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            if name.endswith("gamma"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g) + (1.0 if "norm" in name and "weight" in name else 0))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
        for name, b in tmodel.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))


def _pair(name: str, seed: int = 0, **kwargs):
    tmodel = timm.create_model(name, **kwargs)
    _randomize(tmodel, seed)
    lmodel = create_model(name, **{k.replace("in_chans", "in_channels"): v for k, v in kwargs.items()})
    lmodel.load_state_dict({k: lucid.Tensor(v.detach().numpy().copy()) for k, v in tmodel.state_dict().items()})
    return tmodel, lmodel


def _input(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("name", sorted(PARAM_COUNTS))
def test_parameter_count_and_keys_match_timm(name):
    lmodel = create_model(name)
    assert sum(p.numel() for p in lmodel.parameters()) == PARAM_COUNTS[name]
    tkeys = list(timm.create_model(name).state_dict().keys())
    assert list(lmodel.state_dict().keys()) == tkeys


@pytest.mark.parametrize("name,size,batch", [("inception_next_atto", 224, 2), ("inception_next_atto", 32, 4),
                                             ("inception_next_tiny", 224, 1), ("inception_next_tiny", 32, 4)])
def test_eval_logits_match_timm(name, size, batch):
    """The plain model and the same model after ``nn.fuse(model, inference=True)`` (mixer, MLP and BatchNorm
    folding) both give timm's logits."""
    tmodel, lmodel = _pair(name)
    tmodel.eval()
    lmodel.eval()
    x = _input((batch, 3, size, size))
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    tol = 1e-4 * max(1.0, np.abs(expected).max())
    with lucid.no_grad():
        got = lmodel(lucid.tensor(x)).numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= tol
        fused = nn.fuse(lmodel, inference=True)
        assert nn.fusion_summary(fused)["FusedConvNorm"] == 4
        assert np.abs(fused(lucid.tensor(x)).numpy() - expected).max() <= tol


def test_custom_config_matches_timm():
    kwargs = dict(depths=(1, 2, 1, 1), dims=(16, 32, 48, 64), num_classes=7, in_chans=1)
    tmodel = timm.models.inception_next.MetaNeXt(**kwargs)
    _randomize(tmodel, 3)
    lmodel = InceptionNeXt(num_classes=7, depths=[1, 2, 1, 1], dims=[16, 32, 48, 64], in_channels=1,
                           token_mixers=lucid.models.InceptionDWConv2d)
    lmodel.load_state_dict({k: lucid.Tensor(v.detach().numpy().copy()) for k, v in tmodel.state_dict().items()})
    tmodel.eval()
    lmodel.eval()
    x = _input((3, 1, 64, 64))
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    with lucid.no_grad():
        got = lmodel(lucid.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name,size,fused", [("inception_next_atto", 32, False), ("inception_next_atto", 32, True),
                                             ("inception_next_tiny", 64, True)])
def test_train_mode_logits_and_gradients_match_timm(name, size, fused):
    tmodel, lmodel = _pair(name, seed=5, num_classes=10)
    if fused:
        lmodel = nn.fuse(lmodel, inference=True)
        assert nn.fusion_summary(lmodel)["FusedMetaFormerBlock"] == sum(len(s.blocks) for s in lmodel.stages)
    # gradients are compared with timm in float64: at these sizes timm's own float32 gradients are off by up
    # to 1.3e-3 (relative) on the stage-3 depthwise biases, where sums over 1x1 maps cancel; lucid's are not
    t64 = timm.create_model(name, num_classes=10).double()
    t64.load_state_dict(tmodel.state_dict())
    for m in (tmodel, t64, lmodel):
        m.train()
    x = _input((4, 3, size, size), seed=2)
    target = np.array([1, 3, 5, 7])
    tout = tmodel(torch.from_numpy(x))
    out64 = t64(torch.from_numpy(x).double())
    torch.nn.functional.cross_entropy(out64, torch.from_numpy(target), label_smoothing=0.1).backward()
    lout = lmodel(lucid.tensor(x))
    lloss = nn.functional.cross_entropy(lout, lucid.tensor(target), label_smoothing=0.1)
    lloss.backward()
    np.testing.assert_allclose(lout.detach().numpy(), tout.detach().numpy(), rtol=1e-3, atol=1e-4)
    ref = {k: p.grad.numpy() for k, p in t64.named_parameters()}
    # a conv bias followed by train-mode BatchNorm has a true gradient of ~0 (the mean is subtracted), so
    # relative errors are taken against max(this gradient's scale, 1e-3 x the largest gradient in the model)
    floor = 1e-3 * max(np.abs(g).max() for g in ref.values())
    for k, p in lmodel.named_parameters():
        err = np.abs(p.grad.numpy() - ref[k]).max() / max(np.abs(ref[k]).max(), floor)
        assert err <= 1e-3, f"{k}: relative gradient error {err:.2e}"
    # the BatchNorm running statistics moved the same way
    tstate = tmodel.state_dict()
    for k, v in lmodel.state_dict().items():
        if "running" in k:
            np.testing.assert_allclose(v.numpy(), tstate[k].numpy(), rtol=1e-4, atol=1e-5)


def test_summary_counts_macs_like_fvcore():
    model = create_model("inception_next_tiny")
    s224 = summary(model, (1, 3, 224, 224))
    assert round(s224.total_macs / 1e9, 2) == 4.19
    assert s224.total_params == PARAM_COUNTS["inception_next_tiny"]
    stem = next(r for r in s224.rows if r.name == "stem")
    assert stem.input_shape == (1, 3, 224, 224) and stem.output_shape == (1, 96, 56, 56)
    # the 87.4 M figure is for CIFAR-100's 100-class head (with 1000 classes the head adds 2.07 M more)
    s32 = summary(create_model("inception_next_tiny", num_classes=100), (1, 3, 32, 32))
    assert round(s32.total_macs / 1e6, 1) == 87.4
    assert "stages.2" in str(s32)


def test_forward_features_and_head_like_timm():
    model = create_model("inception_next_atto", num_classes=5).eval()
    x = lucid.tensor(_input((2, 3, 64, 64)))
    with lucid.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 320, 2, 2)
        assert model.forward_head(feats, pre_logits=True).shape == (2, 960)
        np.testing.assert_allclose(model.forward_head(feats).numpy(), model(x).numpy(), rtol=1e-6)


def test_drop_path_varies_per_sample_and_preserves_expectation():
    lucid.manual_seed(0)
    model = create_model("inception_next_atto", num_classes=3, drop_path_rate=0.5, ls_init_value=1.0)
    x = lucid.tensor(np.repeat(_input((1, 3, 32, 32)), 8, axis=0))
    model.eval()
    with lucid.no_grad():
        a, b = model(x).numpy(), model(x).numpy()
    np.testing.assert_array_equal(a, b)  # eval is deterministic
    np.testing.assert_allclose(a, a[:1].repeat(8, 0), rtol=1e-5, atol=1e-6)
    model.train()
    for m in model.modules():  # freeze BN statistics' effect: compare drop-path only
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    with lucid.no_grad():
        out = model(x).numpy()
    assert np.abs(out - out[:1]).max() > 1e-4  # identical samples, different paths dropped
    rates = [m.drop_prob for m in model.modules() if isinstance(m, nn.DropPath)]
    assert len(rates) == 11 and rates[0] > 0 and abs(rates[-1] - 0.5) < 1e-6
    assert all(b >= a for a, b in zip(rates, rates[1:]))  # rising linearly


def test_seed_default_token_mixer_is_identity_and_variants_use_inception_mixer():
    base = InceptionNeXt(depths=[1, 1, 1, 1], dims=[8, 16, 24, 32])
    assert isinstance(base.stages[0].blocks[0].token_mixer, nn.Identity)
    tiny = create_model("inception_next_tiny")
    mixer = tiny.stages[0].blocks[0].token_mixer
    assert mixer.dwconv_w.kernel_size == (1, 11) and mixer.split_indexes == (60, 12, 12, 12)
    atto = create_model("inception_next_atto")
    mixer = atto.stages[0].blocks[0].token_mixer
    assert mixer.dwconv_h.kernel_size == (9, 1) and mixer.split_indexes == (10, 10, 10, 10)


def test_registry_lists_and_explains_unknown_names():
    assert list_models("inception_next_*") == sorted(PARAM_COUNTS)
    with pytest.raises(ValueError, match="inception_next_tiny") as info:
        create_model("inception_next_tiyn")
    assert "Did you mean" in str(info.value)


def test_seed_document_example_runs():
    model_tiny = InceptionNeXt(num_classes=1000, depths=[3, 3, 9, 3], dims=[96, 192, 384, 768])
    input_tensor = lucid.random.randn(1, 3, 224, 224)
    with lucid.no_grad():
        output = model_tiny.eval()(input_tensor)
    assert output.shape == (1, 1000)


def test_pretrained_path_round_trip(tmp_path):
    model = create_model("inception_next_atto", num_classes=4)
    path = tmp_path / "w.safetensors"
    lucid.save(model.state_dict(), str(path))
    again = create_model("inception_next_atto", num_classes=4, pretrained_path=str(path))
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(RuntimeError, match="head.fc2.weight"):
        create_model("inception_next_atto", num_classes=5, pretrained_path=str(path))
