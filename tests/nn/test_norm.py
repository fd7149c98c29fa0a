"""BatchNorm1d/2d, LayerNorm, GroupNorm and their functional forms against torch (train and eval, running
statistics, affine on/off, NCHW and channels-last inputs), gradcheck in float64, numba vs NumPy paths."""
import numpy as np
import pytest
import torch

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.autograd import gradcheck


def rel_err(a, b, floor: float = 1e-30) -> float:
    """max |a - b| / max |b| (``floor`` bounds the divisor where the reference is ~0: rounding noise)."""
    a = np.asarray(a.detach().numpy() if hasattr(a, "detach") else a, dtype=np.float64)
    b = np.asarray(b.detach().numpy() if hasattr(b, "detach") else b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(np.abs(b).max(), floor))


def make_input(shape, channels_last=False, seed=0, scale=1.0, shift=0.0):
    """A float32 array of ``shape``; 4-D ones optionally stored NHWC under the NCHW shape."""
    rng = np.random.default_rng(seed)
    if channels_last:
        n, c, h, w = shape
        a = rng.standard_normal((n, h, w, c)).astype(np.float32).transpose(0, 3, 1, 2)
    else:
        a = rng.standard_normal(shape).astype(np.float32)
    return a * np.float32(scale) + np.float32(shift)


def pair(a, requires_grad=True):
    """The same values as a lucid and a torch tensor (both leaves)."""
    return lucid.Tensor(a.copy() if a.flags.c_contiguous else a, requires_grad=requires_grad), \
        torch.tensor(np.ascontiguousarray(a), requires_grad=requires_grad)


def copy_params(lmod, tmod):
    for name, p in tmod.named_parameters():
        getattr(lmod, name).array[...] = p.detach().numpy()


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    """Run a test with the numba kernels and with the pure-NumPy reference path."""
    monkeypatch.setenv("LUCID_NO_NUMBA", "0" if request.param == "numba" else "1")
    return request.param


# ---------------------------------------------------------------------------------------------------------
# BatchNorm
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm2d_train_steps_then_eval(backend, channels_last, momentum, affine):
    C = 6
    lbn = nn.BatchNorm2d(C, momentum=momentum, affine=affine)
    tbn = torch.nn.BatchNorm2d(C, momentum=momentum, affine=affine)
    if affine:
        with torch.no_grad():
            tbn.weight.uniform_(0.5, 1.5)
            tbn.bias.normal_()
        copy_params(lbn, tbn)
    for step in range(3):
        a = make_input((4, C, 5, 3), channels_last, seed=step, scale=2.0, shift=step - 1.0)
        lx, tx = pair(a)
        ly, ty = lbn(lx), tbn(tx)
        assert ly.shape == (4, C, 5, 3)
        assert ly.is_contiguous("channels_last")  # output stored NHWC
        assert rel_err(ly, ty) < 1e-5
        g = make_input((4, C, 5, 3), seed=100 + step)
        ly.backward(lucid.Tensor(g))
        ty.backward(torch.from_numpy(g))
        assert rel_err(lx.grad, tx.grad) < 1e-4
        if affine:
            assert rel_err(lbn.weight.grad, tbn.weight.grad) < 1e-4
            assert rel_err(lbn.bias.grad, tbn.bias.grad) < 1e-4
            lbn.zero_grad()
            tbn.zero_grad()
        assert rel_err(lbn.running_mean, tbn.running_mean) < 1e-5
        assert rel_err(lbn.running_var, tbn.running_var) < 1e-5
        assert int(lbn.num_batches_tracked.item()) == int(tbn.num_batches_tracked) == step + 1
    assert lbn.num_batches_tracked.dtype == lucid.int64

    lbn.eval()
    tbn.eval()
    a = make_input((3, C, 4, 4), channels_last, seed=7)
    lx, tx = pair(a)
    ly, ty = lbn(lx), tbn(tx)
    assert rel_err(ly, ty) < 1e-5
    g = make_input((3, C, 4, 4), seed=8)
    ly.backward(lucid.Tensor(g))
    ty.backward(torch.from_numpy(g))
    assert rel_err(lx.grad, tx.grad) < 1e-4
    if affine:
        assert rel_err(lbn.weight.grad, tbn.weight.grad) < 1e-4
        assert rel_err(lbn.bias.grad, tbn.bias.grad) < 1e-4
    before = lbn.running_mean.numpy().copy()
    lbn(lx)
    np.testing.assert_array_equal(lbn.running_mean.numpy(), before)  # eval never updates


def test_batchnorm_without_running_stats_uses_batch_stats_in_eval():
    lbn = nn.BatchNorm2d(3, track_running_stats=False)
    tbn = torch.nn.BatchNorm2d(3, track_running_stats=False)
    assert lbn.running_mean is None and lbn.num_batches_tracked is None
    assert list(lbn.state_dict()) == list(tbn.state_dict()) == ["weight", "bias"]
    for mode in ("train", "eval"):
        getattr(lbn, mode)()
        getattr(tbn, mode)()
        a = make_input((2, 3, 4, 4), seed=3)
        lx, tx = pair(a)
        ly, ty = lbn(lx), tbn(tx)
        assert rel_err(ly, ty) < 1e-5
        g = make_input((2, 3, 4, 4), seed=4)
        ly.backward(lucid.Tensor(g))
        ty.backward(torch.from_numpy(g))
        assert rel_err(lx.grad, tx.grad) < 1e-4


def test_batchnorm_state_dict_keys_match_torch():
    assert list(nn.BatchNorm2d(4).state_dict()) == list(torch.nn.BatchNorm2d(4).state_dict())
    assert list(nn.BatchNorm1d(4, affine=False).state_dict()) == list(
        torch.nn.BatchNorm1d(4, affine=False).state_dict())
    assert repr(nn.BatchNorm2d(4, momentum=None)) == repr(torch.nn.BatchNorm2d(4, momentum=None))
    assert repr(nn.BatchNorm2d(4, bias=False)) == repr(torch.nn.BatchNorm2d(4, bias=False))
    assert list(nn.BatchNorm2d(4, bias=False).state_dict()) == list(torch.nn.BatchNorm2d(4, bias=False).state_dict())
    assert list(nn.GroupNorm(2, 4, bias=False).state_dict()) == list(torch.nn.GroupNorm(2, 4, bias=False).state_dict())


@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 7)])
def test_batchnorm1d(backend, shape):
    lbn, tbn = nn.BatchNorm1d(5), torch.nn.BatchNorm1d(5)
    with torch.no_grad():
        tbn.weight.uniform_(0.5, 1.5)
        tbn.bias.normal_()
    copy_params(lbn, tbn)
    for step in range(2):
        lx, tx = pair(make_input(shape, seed=step, shift=3.0))
        ly, ty = lbn(lx), tbn(tx)
        assert rel_err(ly, ty) < 1e-5
        g = make_input(shape, seed=50 + step)
        ly.backward(lucid.Tensor(g))
        ty.backward(torch.from_numpy(g))
        assert rel_err(lx.grad, tx.grad) < 1e-4
        assert rel_err(lbn.weight.grad, tbn.weight.grad) < 1e-4
        lbn.zero_grad()
        tbn.zero_grad()
    assert rel_err(lbn.running_var, tbn.running_var) < 1e-5
    lbn.eval()
    tbn.eval()
    lx, tx = pair(make_input(shape, seed=9))
    assert rel_err(lbn(lx), tbn(tx)) < 1e-5


def test_batchnorm_large_mean_small_variance_is_accurate(backend):
    # mean 1e3, std 1e-2: folding the mean into a float32 shift (y = x * scale + shift) would lose ~4e-3 and
    # torch's float32 kernel is off by ~3e-2 here; centred sums and the split mean keep float64 accuracy
    a = make_input((16, 4, 8, 8), channels_last=True, seed=1, scale=1e-2, shift=1e3)
    g = make_input((16, 4, 8, 8), seed=2)
    tx = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.batch_norm(tx, None, None, training=True)
    ref.backward(torch.tensor(g, dtype=torch.float64))
    x = lucid.Tensor(a, requires_grad=True)
    out = F.batch_norm(x, None, None, training=True)
    out.backward(lucid.Tensor(g))
    assert rel_err(out, ref) < 1e-5
    assert rel_err(x.grad, tx.grad) < 1e-5


def test_batchnorm_functional_errors_and_edge_cases():
    x = lucid.randn(1, 3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(x, None, None, training=True)
    with pytest.raises(RuntimeError, match="running_mean must be defined"):
        F.batch_norm(lucid.randn(2, 3), None, None, training=False)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        F.batch_norm(lucid.randn(2, 3), lucid.zeros(4), lucid.ones(4), training=True)
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(lucid.randn(2, 3))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(lucid.randn(2, 3, 4, 4))
    # empty batch: empty output, running statistics untouched (as torch)
    rm, rv = lucid.zeros(3), lucid.ones(3)
    y = F.batch_norm(lucid.randn(0, 3, 4, 4), rm, rv, training=True)
    assert y.shape == (0, 3, 4, 4)
    np.testing.assert_array_equal(rm.numpy(), 0)
    np.testing.assert_array_equal(rv.numpy(), 1)


def test_batchnorm_float32_stays_float32():
    bn = nn.BatchNorm2d(3)
    x = lucid.randn(2, 3, 4, 4, requires_grad=True)
    y = bn(x)
    y.sum().backward()
    assert y.dtype == lucid.float32 and x.grad.dtype == lucid.float32 and bn.weight.grad.dtype == lucid.float32
    assert bn.running_mean.dtype == lucid.float32 and bn.running_var.dtype == lucid.float32


def test_batchnorm_numba_and_numpy_paths_agree(monkeypatch):
    a = make_input((8, 16, 6, 6), channels_last=True, seed=4, scale=3.0, shift=2.0)
    g = make_input((8, 16, 6, 6), seed=5)
    w = lucid.Tensor(np.linspace(0.5, 1.5, 16, dtype=np.float32), requires_grad=True)
    b = lucid.Tensor(np.linspace(-1, 1, 16, dtype=np.float32), requires_grad=True)
    results = []
    for flag in ("0", "1"):
        monkeypatch.setenv("LUCID_NO_NUMBA", flag)
        x = lucid.Tensor(a, requires_grad=True)
        rm, rv = lucid.zeros(16), lucid.ones(16)
        w.grad = b.grad = None
        y = F.batch_norm(x, rm, rv, w, b, training=True)
        y.backward(lucid.Tensor(g))
        results.append([y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy(), rm.numpy(), rv.numpy()])
    for r0, r1 in zip(*results):
        assert rel_err(r0, r1) < 1e-5


def test_batchnorm_gradcheck_float64():
    rng = np.random.default_rng(0)
    x = lucid.Tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=True)
    w = lucid.Tensor(rng.uniform(0.5, 1.5, 2), requires_grad=True)
    b = lucid.Tensor(rng.standard_normal(2), requires_grad=True)
    gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, w, b))
    rm = lucid.Tensor(rng.standard_normal(2))
    rv = lucid.Tensor(rng.uniform(0.5, 2, 2))
    gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), (x, w, b))
    x2 = lucid.Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    gradcheck(lambda x: F.batch_norm(x, None, None, training=True), (x2,))


# ---------------------------------------------------------------------------------------------------------
# LayerNorm
@pytest.mark.parametrize("shape,nshape", [((4, 7), (7,)), ((2, 3, 5), (5,)), ((2, 3, 4, 5), (4, 5)),
                                          ((3, 1), (1,)), ((2, 3, 4), (2, 3, 4))])
@pytest.mark.parametrize("affine", ["full", "no_bias", "none"])
def test_layernorm_matches_torch(backend, shape, nshape, affine):
    lln = nn.LayerNorm(nshape, elementwise_affine=affine != "none", bias=affine == "full")
    tln = torch.nn.LayerNorm(nshape, elementwise_affine=affine != "none", bias=affine == "full")
    if affine != "none":
        with torch.no_grad():
            tln.weight.uniform_(0.5, 1.5)
            if tln.bias is not None:
                tln.bias.normal_()
        copy_params(lln, tln)
    lx, tx = pair(make_input(shape, seed=2, scale=3.0, shift=1.0))
    ly, ty = lln(lx), tln(tx)
    assert rel_err(ly, ty) < 1e-5
    g = make_input(shape, seed=3)
    ly.backward(lucid.Tensor(g))
    ty.backward(torch.from_numpy(g))
    # over one element the exact input gradient is 0; torch's is rounding noise amplified by 1/sqrt(eps)
    # (up to 1.2e-4 depending on the weight drawn), so there lucid is compared with the exact zeros
    floor = 1.0 if nshape == (1,) else 1e-30
    reference = np.zeros(shape, dtype=np.float32) if nshape == (1,) else tx.grad
    assert rel_err(lx.grad, reference, floor) < 1e-4
    for name, p in tln.named_parameters():
        assert rel_err(getattr(lln, name).grad, p.grad, floor) < 1e-4
    assert list(lln.state_dict()) == list(tln.state_dict())


def test_layernorm_channels_last_view_and_non_contiguous_input(backend):
    # ConvNeXt-style: LayerNorm over C of an NHWC view of an NCHW-shaped channels-last tensor
    a = make_input((2, 6, 3, 4), channels_last=True, seed=5)
    lx = lucid.Tensor(a, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    ly = F.layer_norm(lx.permute(0, 2, 3, 1), (6,))
    ty = torch.nn.functional.layer_norm(tx.permute(0, 2, 3, 1), (6,))
    assert rel_err(ly, ty) < 1e-5
    g = make_input((2, 3, 4, 6), seed=6)
    ly.backward(lucid.Tensor(g))
    ty.backward(torch.from_numpy(g))
    assert rel_err(lx.grad, tx.grad) < 1e-4
    b = make_input((5, 4), seed=6).T  # non-contiguous (4, 5)
    assert rel_err(F.layer_norm(lucid.Tensor(b), (5,)), torch.nn.functional.layer_norm(torch.tensor(b), (5,))) < 1e-5


def test_layernorm_numba_and_numpy_paths_agree(monkeypatch):
    a = make_input((64, 7, 96), seed=8, scale=3.0, shift=5.0)
    g = make_input((64, 7, 96), seed=9)
    w = lucid.Tensor(np.linspace(0.5, 1.5, 96, dtype=np.float32), requires_grad=True)
    b = lucid.Tensor(np.linspace(-1, 1, 96, dtype=np.float32), requires_grad=True)
    results = []
    for flag in ("0", "1"):
        monkeypatch.setenv("LUCID_NO_NUMBA", flag)
        x = lucid.Tensor(a, requires_grad=True)
        w.grad = b.grad = None
        y = F.layer_norm(x, (96,), w, b)
        y.backward(lucid.Tensor(g))
        results.append([y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()])
    for r0, r1 in zip(*results):
        assert rel_err(r0, r1) < 1e-5


def test_layernorm_errors_and_empty():
    with pytest.raises(RuntimeError, match=r"expected input with shape \[\*, 4\]"):
        F.layer_norm(lucid.randn(2, 3), (4,))
    y = F.layer_norm(lucid.randn(0, 4, requires_grad=True), (4,))
    assert y.shape == (0, 4)
    assert repr(nn.LayerNorm(4)) == repr(torch.nn.LayerNorm(4))


def test_layernorm_gradcheck_float64():
    rng = np.random.default_rng(1)
    x = lucid.Tensor(rng.standard_normal((3, 2, 4)), requires_grad=True)
    w = lucid.Tensor(rng.uniform(0.5, 1.5, (2, 4)), requires_grad=True)
    b = lucid.Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    gradcheck(lambda x, w, b: F.layer_norm(x, (2, 4), w, b), (x, w, b))
    gradcheck(lambda x: F.layer_norm(x, 4), (x,))


# ---------------------------------------------------------------------------------------------------------
# GroupNorm
@pytest.mark.parametrize("shape,groups,channels_last", [
    ((2, 6, 4, 3), 3, False), ((2, 6, 4, 3), 3, True), ((2, 6, 4, 3), 1, True), ((2, 6, 4, 3), 6, False),
    ((2, 6, 4, 3), 6, True), ((3, 4, 5), 2, False), ((4, 12), 3, False)])
@pytest.mark.parametrize("affine", [True, False])
def test_groupnorm_matches_torch(shape, groups, channels_last, affine):
    C = shape[1]
    lgn, tgn = nn.GroupNorm(groups, C, affine=affine), torch.nn.GroupNorm(groups, C, affine=affine)
    if affine:
        with torch.no_grad():
            tgn.weight.uniform_(0.5, 1.5)
            tgn.bias.normal_()
        copy_params(lgn, tgn)
    lx, tx = pair(make_input(shape, channels_last, seed=4, scale=2.0, shift=-1.0))
    ly, ty = lgn(lx), tgn(tx)
    assert rel_err(ly, ty) < 1e-5
    g = make_input(shape, seed=5)
    ly.backward(lucid.Tensor(g))
    ty.backward(torch.from_numpy(g))
    assert rel_err(lx.grad, tx.grad) < 1e-4
    if affine:
        assert rel_err(lgn.weight.grad, tgn.weight.grad) < 1e-4
        assert rel_err(lgn.bias.grad, tgn.bias.grad) < 1e-4
    assert repr(lgn) == repr(tgn)


def test_groupnorm_errors_and_gradcheck():
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(4, 6)
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(lucid.randn(2, 6), 4)
    rng = np.random.default_rng(2)
    x = lucid.Tensor(rng.standard_normal((2, 4, 3, 2)), requires_grad=True)
    w = lucid.Tensor(rng.uniform(0.5, 1.5, 4), requires_grad=True)
    b = lucid.Tensor(rng.standard_normal(4), requires_grad=True)
    gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b), (x, w, b))
