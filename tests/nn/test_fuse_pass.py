"""lucid.nn.fuse: the pass that swaps recognised modules for fused ones holding the same parameters."""
import numpy as np
import pytest

import lucid
from lucid import nn
from lucid.models import create_model
from lucid.models.inception_next import MetaNeXtBlock


def _atto(**kw):
    lucid.manual_seed(0)
    return create_model("inception_next_atto", num_classes=7, **kw)


def test_state_dict_keys_values_and_parameter_objects_are_unchanged():
    model = _atto()
    before = model.state_dict(keep_vars=True)
    params = list(model.parameters())
    fused = nn.fuse(model, inference=True)
    assert fused is model  # the root is not a fused type: the tree changed in place
    after = fused.state_dict(keep_vars=True)
    assert list(after) == list(before)
    assert all(after[k] is before[k] for k in before)  # the very same Parameter and buffer objects
    assert list(fused.parameters()) == params  # an optimizer built before fusing still steps them
    assert nn.fusion_summary(fused) == {"FusedConvMlp": 12, "FusedConvNorm": 4, "FusedDepthwiseBranches": 12,
                                        "FusedMetaFormerBlock": 12}


def test_training_fusion_keeps_the_sequentials_and_inference_upgrades_later():
    model = nn.fuse(_atto())
    assert "FusedConvNorm" not in nn.fusion_summary(model)
    assert not model.stages[0].blocks[0].inference
    nn.fuse(model)  # again: nothing changes
    assert nn.fusion_summary(model)["FusedMetaFormerBlock"] == 12
    nn.fuse(model, inference=True)
    assert nn.fusion_summary(model)["FusedConvNorm"] == 4 and model.stages[0].blocks[0].inference


@pytest.mark.parametrize("drop_path_rate", [0.0, 0.3])
def test_fused_and_plain_train_steps_agree(drop_path_rate):
    """Same weights, same seed: the fused model draws the same drop-path numbers and gives the same loss and
    gradients as the plain one (forward and backward of every pattern, in training)."""
    plain = _atto(drop_path_rate=drop_path_rate, ls_init_value=0.5)
    fused = nn.fuse(_atto(drop_path_rate=drop_path_rate, ls_init_value=0.5), inference=True)
    x = lucid.tensor(np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32))
    y = lucid.tensor(np.array([0, 1, 2, 3]))
    results = []
    for model in (plain, fused):
        lucid.manual_seed(11)
        loss = nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
        loss.backward()
        results.append((loss.item(), {k: p.grad.numpy() for k, p in model.named_parameters()}))
    (lp, gp), (lf, gf) = results
    assert abs(lp - lf) <= 1e-5 * max(1.0, abs(lp))
    scale = max(np.abs(g).max() for g in gp.values())
    for k in gp:
        np.testing.assert_allclose(gf[k], gp[k], rtol=1e-3, atol=1e-4 * scale, err_msg=k)


def test_fused_eval_matches_plain_eval_and_training_again_drops_folds():
    plain, fused = _atto(), nn.fuse(_atto(), inference=True)
    x = lucid.randn(3, 3, 32, 32)
    for m in (plain, fused):  # a few training steps' worth of BatchNorm statistics
        m.train()
        with lucid.no_grad():
            m(x * 2 + 1)
        m.eval()
    with lucid.no_grad():
        np.testing.assert_allclose(fused(x).numpy(), plain(x).numpy(), rtol=1e-4, atol=1e-5)
    block = fused.stages[1].blocks[0]
    assert block._folded.cached is not None
    fused.train()
    assert block._folded.cached is None


def test_hooks_registered_before_fusing_still_fire_and_remove():
    model = _atto()
    seen = []
    handle = model.stages[0].blocks[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    nn.fuse(model).eval()
    model(lucid.randn(1, 3, 32, 32))
    assert seen == [(1, 40, 8, 8)]
    handle.remove()
    model(lucid.randn(1, 3, 32, 32))
    assert len(seen) == 1


def test_only_exact_types_fuse():
    """A subclass may compute something else: the pass leaves it alone (and runs it as written)."""

    class MyBlock(MetaNeXtBlock):
        def forward(self, x):
            return super().forward(x) * 0.0

    block = MyBlock(16, token_mixer=nn.Identity)
    fused = nn.fuse(nn.Sequential(block), inference=True)
    assert fused[0] is block and nn.fusion_summary(fused) == {"FusedConvMlp": 1}
    assert float(fused(lucid.ones(1, 16, 2, 2)).abs().sum()) == 0.0


def test_register_fusion_and_fuse_reject_bad_arguments():
    with pytest.raises(TypeError, match="Module subclass"):
        nn.register_fusion(int, lambda m, inference: None)
    with pytest.raises(TypeError, match="expected a lucid.nn.Module"):
        nn.fuse("model")


def test_a_new_module_family_registers_its_own_rule():
    class Double(nn.Module):
        def forward(self, x):
            return x * 2

    class FastDouble(nn.fused.Fused):
        def forward(self, x):
            return x + x

    nn.register_fusion(Double, lambda m, inference: FastDouble())
    model = nn.fuse(nn.Sequential(Double(), nn.ReLU()))
    assert type(model[0]) is FastDouble and nn.fusion_summary(model) == {"FastDouble": 1}
    np.testing.assert_array_equal(model(lucid.ones(2)).numpy(), [2.0, 2.0])
