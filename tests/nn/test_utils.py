"""lucid.nn.utils: gradient clipping and parameter/vector conversion against torch.nn.utils."""
import math

import numpy as np
import pytest
import torch

import lucid
from lucid import nn
from lucid.nn import utils

RNG = np.random.default_rng(7)
SHAPES = [(3, 4), (5,), (2, 3, 2, 2), (1,), (0, 3)]


def _pair(shapes=SHAPES, with_grad=(True,) * len(SHAPES), scale=1.0, channels_last=False):
    """Matching lucid and torch parameter lists with the same gradients (None where with_grad is False)."""
    lp, tp = [], []
    for shape, has in zip(shapes, with_grad):
        p = RNG.standard_normal(shape).astype(np.float32)
        a = nn.Parameter(lucid.Tensor(p))
        b = torch.nn.Parameter(torch.tensor(p))
        if has:
            g = (RNG.standard_normal(shape) * scale).astype(np.float32)
            if channels_last and len(shape) == 4:  # grad stored NHWC under an NCHW shape
                garr = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
            else:
                garr = g.copy()
            a.grad = lucid.Tensor(garr)
            b.grad = torch.tensor(g)
        lp.append(a)
        tp.append(b)
    return lp, tp


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)) if a.size else 0.0


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf"), "inf", 0.5])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_parity(norm_type, max_norm):
    lp, tp = _pair(channels_last=True)
    ours = utils.clip_grad_norm_(lp, max_norm, norm_type=norm_type)
    # torch refuses the inf norm of an empty gradient (no identity for max); lucid counts it as 0
    tp_args = [t for t in tp if t.numel()] if math.isinf(float(norm_type)) else tp
    theirs = torch.nn.utils.clip_grad_norm_(tp_args, max_norm, norm_type=float(norm_type))
    assert isinstance(ours, lucid.Tensor) and ours.shape == () and ours.dtype == lucid.float32
    assert _rel(ours.numpy(), theirs.numpy()) <= 1e-5
    for a, b in zip(lp, tp):
        assert a.grad.shape == tuple(b.grad.shape)
        assert _rel(a.grad.numpy(), b.grad.numpy()) <= 1e-5
    if max_norm > 1e5:  # no clipping: the gradients are untouched
        for a, b in zip(lp, tp):
            np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_clip_grad_norm_result_norm_is_max_norm():
    lp, _ = _pair(scale=10.0)
    total = utils.clip_grad_norm_(lp, 1.0)
    assert total.item() > 1.0
    after = math.sqrt(sum(float((p.grad.numpy().astype(np.float64) ** 2).sum()) for p in lp))
    assert after == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_skips_params_without_grad():
    flags = (True, False, True, False, True)
    lp, tp = _pair(with_grad=flags, scale=5.0)
    ours = utils.clip_grad_norm_(iter(lp), 0.1)  # a generator works, as with model.parameters()
    theirs = torch.nn.utils.clip_grad_norm_(tp, 0.1)
    assert _rel(ours.numpy(), theirs.numpy()) <= 1e-5
    for a, b, has in zip(lp, tp, flags):
        if has:
            assert _rel(a.grad.numpy(), b.grad.numpy()) <= 1e-5
        else:
            assert a.grad is None


def test_clip_grad_norm_no_grads_and_single_tensor():
    p = nn.Parameter(lucid.ones(3))
    assert utils.clip_grad_norm_([p], 1.0).item() == 0.0
    assert utils.clip_grad_norm_([], 1.0).item() == 0.0
    p.grad = lucid.Tensor(np.array([3.0, 4.0, 0.0], np.float32))
    total = utils.clip_grad_norm_(p, 1.0)  # a lone tensor is accepted
    assert total.item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8, 0.0], rtol=1e-5)


def test_clip_grad_norm_nonfinite():
    lp, tp = _pair(shapes=[(3,), (2,)], with_grad=(True, True))
    lp[0].grad.array[1] = np.inf
    tp[0].grad[1] = float("inf")
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(lp, 1.0, error_if_nonfinite=True)
    ours = utils.clip_grad_norm_(lp, 1.0)
    theirs = torch.nn.utils.clip_grad_norm_(tp, 1.0)
    assert math.isinf(ours.item()) and math.isinf(theirs.item())
    for a, b in zip(lp, tp):
        np.testing.assert_array_equal(np.isnan(a.grad.numpy()), np.isnan(b.grad.numpy()))


def test_clip_grad_norm_bad_args():
    with pytest.raises(ValueError, match="norm_type"):
        utils.clip_grad_norm_([nn.Parameter(lucid.ones(2))], 1.0, norm_type="l2")
    with pytest.raises(TypeError, match="element 1"):
        utils.clip_grad_norm_([nn.Parameter(lucid.ones(2)), np.ones(2)], 1.0)


def test_clip_grad_norm_float64_grads():
    lp, tp = _pair(shapes=[(4, 3)], with_grad=(True,), scale=3.0)
    lp[0].array = lp[0].array.astype(np.float64)
    lp[0].grad = lucid.Tensor(lp[0].grad.array.astype(np.float64))
    tp[0].data = tp[0].data.double()
    tp[0].grad = tp[0].grad.double()
    ours = utils.clip_grad_norm_(lp, 0.3)
    theirs = torch.nn.utils.clip_grad_norm_(tp, 0.3)
    assert ours.dtype == lucid.float64
    assert _rel(ours.numpy(), theirs.numpy()) <= 1e-12
    assert _rel(lp[0].grad.numpy(), tp[0].grad.numpy()) <= 1e-12


def test_clip_grad_value():
    lp, tp = _pair(scale=2.0)
    assert utils.clip_grad_value_(lp, 0.7) is None
    torch.nn.utils.clip_grad_value_(tp, 0.7)
    for a, b in zip(lp, tp):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_parameters_to_vector_and_back():
    lp, tp = _pair()
    nhwc = RNG.standard_normal((2, 3, 3, 4)).astype(np.float32)
    lp.append(nn.Parameter(lucid.Tensor(nhwc.transpose(0, 3, 1, 2))))  # channels-last parameter
    tp.append(torch.nn.Parameter(torch.tensor(nhwc).permute(0, 3, 1, 2).contiguous()))
    v = utils.parameters_to_vector(lp)
    vt = torch.nn.utils.parameters_to_vector(tp)
    assert v.shape == (sum(p.numel() for p in lp),)
    np.testing.assert_array_equal(v.detach().numpy(), vt.detach().numpy())
    # differentiable, as in torch
    for p in lp:
        p.grad = None
    (v * lucid.arange(v.shape[0], dtype=lucid.float32)).sum().backward()
    offset = 0
    for p in lp:
        n = p.numel()
        if n == 0:  # lucid.cat drops empty 1-D pieces from the graph, so an empty param may get no grad
            assert p.grad is None or p.grad.shape == p.shape
            continue
        np.testing.assert_array_equal(p.grad.numpy().reshape(-1), np.arange(offset, offset + n, dtype=np.float32))
        offset += n
    # back: copies into the existing arrays, in logical order, and keeps layouts
    arrays = [p.array for p in lp]
    new = lucid.Tensor(RNG.standard_normal(v.shape[0]).astype(np.float32))
    utils.vector_to_parameters(new, lp)
    torch.nn.utils.vector_to_parameters(torch.tensor(new.numpy()), tp)
    for p, t, arr in zip(lp, tp, arrays):
        assert p.array is arr
        np.testing.assert_array_equal(p.detach().numpy(), t.detach().numpy())
    assert not lp[-1].array.flags.c_contiguous  # layout kept
    new.array[:] = 0  # not a view into the vector (where lucid differs from torch)
    assert np.abs(lp[0].detach().numpy()).sum() > 0


def test_vector_to_parameters_errors():
    ps = [nn.Parameter(lucid.zeros(2, 2)), nn.Parameter(lucid.zeros(3))]
    with pytest.raises(ValueError, match="6 elements.*7"):
        utils.vector_to_parameters(lucid.zeros(6), ps)
    with pytest.raises(TypeError, match="Tensor"):
        utils.vector_to_parameters(np.zeros(7), ps)
    with pytest.raises(ValueError, match="1-D"):
        utils.vector_to_parameters(lucid.zeros(7, 1), ps)


def test_get_total_norm_matches_torch():
    arrays = [RNG.standard_normal(s).astype(np.float32) for s in [(3, 3), (7,)]]
    for p in (2.0, 1.0, float("inf")):
        ours = utils.get_total_norm([lucid.Tensor(a) for a in arrays], p)
        theirs = torch.nn.utils.get_total_norm([torch.tensor(a) for a in arrays], p)
        assert _rel(ours.numpy(), theirs.numpy()) <= 1e-6
