"""Losses against torch: cross_entropy over every combination of target kind, input rank, class weights,
ignore_index, label smoothing and reduction (including an all-ignored batch), nll_loss, mse_loss,
binary_cross_entropy_with_logits, the loss modules, and gradcheck in float64."""
import itertools
import warnings

import numpy as np
import pytest
import torch

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.autograd import gradcheck

C = 5


def rel_err(a, b) -> float:
    a = np.asarray(a.detach().numpy() if hasattr(a, "detach") else a, dtype=np.float64)
    b = np.asarray(b.detach().numpy() if hasattr(b, "detach") else b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    assert np.array_equal(np.isnan(a), np.isnan(b)), (a, b)
    a, b = a[~np.isnan(b)], b[~np.isnan(b)]
    if a.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def logits(shape, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(np.float32)


def class_targets(shape, seed, ignore_index, n_ignored=2):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, C, shape)
    flat = t.reshape(-1)
    if flat.size:
        flat[rng.choice(flat.size, min(n_ignored, flat.size), replace=False)] = ignore_index
    return t


def prob_targets(shape, seed):
    p = np.random.default_rng(seed).random(shape).astype(np.float32)
    return p / p.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)


INPUT_SHAPES = {"unbatched": (C,), "2d": (6, C), "3d": (3, C, 4), "4d": (2, C, 3, 2)}


def _target_shape(shape):
    return () if len(shape) == 1 else shape[:1] + shape[2:]


def run_both(x, target, **kw):
    """Loss values and input gradients from lucid and torch for the same arguments."""
    weight = kw.pop("weight", None)
    lx = lucid.Tensor(x, requires_grad=True)
    tx = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    lt, tt = lucid.Tensor(target), torch.tensor(target)
    lw = None if weight is None else lucid.Tensor(weight)
    tw = None if weight is None else torch.tensor(weight)
    ll = F.cross_entropy(lx, lt, weight=lw, **kw)
    tl = torch.nn.functional.cross_entropy(tx, tt, weight=tw, **kw)
    g = np.random.default_rng(9).standard_normal(tuple(tl.shape)).astype(np.float32)
    ll.backward(lucid.Tensor(g))
    tl.backward(torch.tensor(g))
    return ll, tl, lx.grad, tx.grad


@pytest.mark.parametrize("rank", sorted(INPUT_SHAPES))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 3])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_class_indices(rank, weighted, ignore_index, smoothing, reduction):
    shape = INPUT_SHAPES[rank]
    x = logits(shape, 1)
    t = class_targets(_target_shape(shape), 2, ignore_index, n_ignored=0 if rank == "unbatched" else 2)
    w = np.linspace(0.5, 2.0, C).astype(np.float32) if weighted else None
    ll, tl, lg, tg = run_both(x, t, weight=w, ignore_index=ignore_index, reduction=reduction,
                              label_smoothing=smoothing)
    assert ll.shape == tuple(tl.shape) and ll.dtype == lucid.float32
    assert rel_err(ll, tl) < 1e-5
    assert rel_err(lg, tg) < 1e-4


@pytest.mark.parametrize("rank", sorted(INPUT_SHAPES))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_probability_targets(rank, weighted, smoothing, reduction):
    shape = INPUT_SHAPES[rank]
    x = logits(shape, 3)
    p = prob_targets(shape, 4)
    w = np.linspace(0.5, 2.0, C).astype(np.float32) if weighted else None
    lx, tx = lucid.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lp, tp = lucid.Tensor(p, requires_grad=True), torch.tensor(p, requires_grad=True)  # soft targets get grads
    ll = F.cross_entropy(lx, lp, weight=None if w is None else lucid.Tensor(w), reduction=reduction,
                         label_smoothing=smoothing)
    tl = torch.nn.functional.cross_entropy(tx, tp, weight=None if w is None else torch.tensor(w),
                                           reduction=reduction, label_smoothing=smoothing)
    assert rel_err(ll, tl) < 1e-5
    g = np.random.default_rng(5).standard_normal(tuple(tl.shape)).astype(np.float32)
    ll.backward(lucid.Tensor(g))
    tl.backward(torch.tensor(g))
    assert rel_err(lx.grad, tx.grad) < 1e-4
    assert rel_err(lp.grad, tp.grad) < 1e-4


@pytest.mark.parametrize("weighted,smoothing", list(itertools.product([False, True], [0.0, 0.1])))
def test_cross_entropy_all_ignored_batch_gives_nan_mean(weighted, smoothing):
    x = logits((4, C), 6)
    t = np.full(4, -100)
    w = np.linspace(0.5, 2.0, C).astype(np.float32) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks from the 0/0
        ll, tl, lg, tg = run_both(x, t, weight=w, label_smoothing=smoothing)
    assert np.isnan(ll.item()) and np.isnan(tl.item())
    assert rel_err(lg, tg) == 0.0  # torch's gradient (nan or 0) reproduced element for element
    for reduction in ("sum", "none"):
        ll, tl, lg, tg = run_both(x, t, weight=w, label_smoothing=smoothing, reduction=reduction)
        assert rel_err(ll, tl) == 0.0 and rel_err(lg, tg) == 0.0
    # valid targets whose class weights are all 0: torch gives nan in those rows, 0 in ignored ones
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ll, tl, lg, tg = run_both(x, np.array([0, 1, -100, 0]), weight=np.array([0, 0, 1, 1, 1], np.float32),
                                  label_smoothing=smoothing)
    assert np.isnan(ll.item()) and np.isnan(tl.item())
    assert rel_err(lg, tg) < 1e-4


def test_nll_loss_all_ignored_batch():
    x = logits((3, C), 30)
    lx, tx = lucid.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ll = F.nll_loss(lx, lucid.tensor([-100, -100, -100]))
    tl = torch.nn.functional.nll_loss(tx, torch.tensor([-100, -100, -100]))
    assert np.isnan(ll.item()) and np.isnan(tl.item())
    ll.backward()
    tl.backward()
    assert rel_err(lx.grad, tx.grad) == 0.0


def test_cross_entropy_non_contiguous_int32_and_extreme_logits():
    x = logits((C, 7), 7).T * np.float32(40)  # non-contiguous, logits up to ~400: needs the max shift
    t = np.random.default_rng(8).integers(0, C, 7).astype(np.int32)
    ll, tl, lg, tg = run_both(x, t.astype(np.int64), label_smoothing=0.1)
    ll2 = F.cross_entropy(lucid.Tensor(x), lucid.Tensor(t), label_smoothing=0.1)
    assert np.isfinite(ll.item())
    assert rel_err(ll, tl) < 1e-5 and rel_err(ll2, tl) < 1e-5
    assert rel_err(lg, tg) < 1e-4


@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.uint8])
def test_class_index_targets_of_any_integer_width(dtype):
    """torch takes int64 and uint8 targets only (int32: "expected target dtype to be Long or Byte"); lucid
    documents that it also takes int32/int8, with the same values as int64 targets give in torch."""
    x = logits((5, C), 11)
    t = np.random.default_rng(12).integers(0, C, 5)
    if dtype != np.uint8:
        with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
            torch.nn.functional.cross_entropy(torch.from_numpy(x), torch.from_numpy(t.astype(dtype)))
    tx = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tx, torch.from_numpy(t))  # int64
    tl.backward()
    tg = tx.grad
    for fn in (F.cross_entropy, lambda a, b: F.nll_loss(F.log_softmax(a, 1), b)):
        lx = lucid.tensor(x, requires_grad=True)
        loss = fn(lx, lucid.tensor(t.astype(dtype)))
        loss.backward()
        assert rel_err(loss, tl) < 1e-6 and rel_err(lx.grad, tg) < 1e-5
    with pytest.raises(TypeError, match="must be integers, got dtype bool"):
        F.cross_entropy(lucid.tensor(x), lucid.tensor(t > 2))
    with pytest.raises(RuntimeError):
        torch.nn.functional.cross_entropy(torch.from_numpy(x), torch.from_numpy(t > 2))


def test_cross_entropy_empty_batch():
    x = np.zeros((0, C), np.float32)
    t = np.zeros(0, np.int64)
    for reduction in ("none", "sum", "mean"):
        ll, tl, lg, tg = run_both(x, t, reduction=reduction)
        assert rel_err(ll, tl) == 0.0 and lg.shape == (0, C)


def test_cross_entropy_errors():
    x = lucid.randn(4, C)
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.cross_entropy(x, lucid.tensor([0, 1, 7, 2]))
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, lucid.tensor([0, -1, 1, 2]))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.cross_entropy(x, lucid.tensor([0, 1, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, lucid.tensor([0, 1, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\)"):
        F.cross_entropy(x, lucid.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="probability targets must have the input's shape"):
        F.cross_entropy(x, lucid.rand(4, C + 1))
    with pytest.raises(RuntimeError, match="weight tensor should be defined"):
        F.cross_entropy(x, lucid.tensor([0, 1, 1, 2]), weight=lucid.ones(C + 1))


def test_cross_entropy_gradcheck_float64():
    rng = np.random.default_rng(10)
    x = lucid.Tensor(rng.standard_normal((3, C, 2)), requires_grad=True)
    t = lucid.tensor([[0, 4], [-100, 2], [1, 1]])
    w = lucid.Tensor(rng.uniform(0.5, 2, C))
    for reduction in ("mean", "none"):
        gradcheck(lambda x: F.cross_entropy(x, t, weight=w, label_smoothing=0.2, reduction=reduction), (x,))
    p = lucid.Tensor(rng.random((3, C, 2)), requires_grad=True)
    gradcheck(lambda x, p: F.cross_entropy(x, p, weight=w, label_smoothing=0.1), (x, p))


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rank", sorted(INPUT_SHAPES))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_nll_loss_matches_torch(rank, weighted, reduction):
    shape = INPUT_SHAPES[rank]
    x = logits(shape, 11)
    t = class_targets(_target_shape(shape), 12, -100, n_ignored=0 if rank == "unbatched" else 1)
    w = np.linspace(0.5, 2.0, C).astype(np.float32) if weighted else None
    lx, tx = lucid.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ll = F.nll_loss(lx, lucid.Tensor(t), weight=None if w is None else lucid.Tensor(w), reduction=reduction)
    tl = torch.nn.functional.nll_loss(tx, torch.tensor(t), weight=None if w is None else torch.tensor(w),
                                      reduction=reduction)
    assert rel_err(ll, tl) < 1e-5
    g = np.random.default_rng(13).standard_normal(tuple(tl.shape)).astype(np.float32)
    ll.backward(lucid.Tensor(g))
    tl.backward(torch.tensor(g))
    assert rel_err(lx.grad, tx.grad) < 1e-4


def test_nll_of_log_softmax_equals_cross_entropy_and_gradcheck():
    rng = np.random.default_rng(14)
    x = lucid.Tensor(rng.standard_normal((4, C)), requires_grad=True)
    t = lucid.tensor([1, 0, -100, 4])
    a = F.nll_loss(F.log_softmax(x, 1), t)
    b = F.cross_entropy(x, t)
    assert abs(a.item() - b.item()) < 1e-12
    w = lucid.Tensor(rng.uniform(0.5, 2, C))
    gradcheck(lambda x: F.nll_loss(x, t, weight=w), (x,))


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (3, 1)), ((2, 1, 4), (3, 1)), ((0, 3), (0, 3))])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_mse_loss_matches_torch(shapes, reduction):
    sa, sb = shapes
    a, b = logits(sa, 15), logits(sb, 16)
    la, lb = lucid.Tensor(a, requires_grad=True), lucid.Tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about broadcasting
        tl = torch.nn.functional.mse_loss(ta, tb, reduction=reduction)
    ll = F.mse_loss(la, lb, reduction=reduction)
    assert rel_err(ll, tl) < 1e-5
    if tl.numel() and not (reduction == "mean" and a.size == 0):
        g = np.random.default_rng(17).standard_normal(tuple(tl.shape)).astype(np.float32)
        ll.backward(lucid.Tensor(g))
        tl.backward(torch.tensor(g))
        assert rel_err(la.grad, ta.grad) < 1e-4
        assert rel_err(lb.grad, tb.grad) < 1e-4


def test_mse_loss_gradcheck_float64():
    rng = np.random.default_rng(18)
    a = lucid.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = lucid.Tensor(rng.standard_normal((1, 4)), requires_grad=True)
    gradcheck(lambda a, b: F.mse_loss(a, b), (a, b))
    gradcheck(lambda a, b: F.mse_loss(a, b, reduction="none"), (a, b))


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("weight", [None, "full", "broadcast"])
@pytest.mark.parametrize("pos_weight", [None, "per_class"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_bce_with_logits_matches_torch(weight, pos_weight, reduction):
    shape = (4, 3)
    x = logits(shape, 19) * np.float32(10)  # logits up to ~+-100: stability matters
    t = np.random.default_rng(20).random(shape).astype(np.float32)
    w = {None: None, "full": np.random.default_rng(21).random(shape).astype(np.float32),
         "broadcast": np.array([0.5, 1.0, 2.0], np.float32)}[weight]
    pw = None if pos_weight is None else np.array([3.0, 0.5, 1.0], np.float32)
    lx, tx = lucid.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lt, tt = lucid.Tensor(t, requires_grad=True), torch.tensor(t, requires_grad=True)
    ll = F.binary_cross_entropy_with_logits(lx, lt, weight=None if w is None else lucid.Tensor(w),
                                            reduction=reduction, pos_weight=None if pw is None else lucid.Tensor(pw))
    tl = torch.nn.functional.binary_cross_entropy_with_logits(
        tx, tt, weight=None if w is None else torch.tensor(w), reduction=reduction,
        pos_weight=None if pw is None else torch.tensor(pw))
    assert np.isfinite(ll.detach().numpy()).all()
    assert rel_err(ll, tl) < 1e-5
    g = np.random.default_rng(22).standard_normal(tuple(tl.shape)).astype(np.float32)
    ll.backward(lucid.Tensor(g))
    tl.backward(torch.tensor(g))
    assert rel_err(lx.grad, tx.grad) < 1e-4
    assert rel_err(lt.grad, tt.grad) < 1e-4


def test_bce_with_logits_errors_and_gradcheck():
    with pytest.raises(ValueError, match="must be the same as input size"):
        F.binary_cross_entropy_with_logits(lucid.randn(3, 2), lucid.rand(3, 1))
    rng = np.random.default_rng(23)
    x = lucid.Tensor(rng.standard_normal((3, 2)) * 3, requires_grad=True)
    t = lucid.Tensor(rng.random((3, 2)), requires_grad=True)
    pw = lucid.Tensor(np.array([2.0, 0.5]))
    w = lucid.Tensor(rng.random((3, 2)))
    gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw), (x, t))
    gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"), (x, t))


# ---------------------------------------------------------------------------------------------------------
def test_loss_modules_match_torch():
    w = np.linspace(0.5, 2.0, C).astype(np.float32)
    x = logits((6, C), 24)
    t = class_targets((6,), 25, 1, n_ignored=1)
    cases = [
        (nn.CrossEntropyLoss(weight=lucid.Tensor(w), ignore_index=1, label_smoothing=0.1),
         torch.nn.CrossEntropyLoss(weight=torch.tensor(w), ignore_index=1, label_smoothing=0.1), x, t),
        (nn.CrossEntropyLoss(reduction="sum"), torch.nn.CrossEntropyLoss(reduction="sum"), x,
         np.where(t == 1, 0, t)),
        (nn.NLLLoss(ignore_index=1), torch.nn.NLLLoss(ignore_index=1), x, t),
        (nn.MSELoss(), torch.nn.MSELoss(), x, logits((6, C), 26)),
        (nn.BCEWithLogitsLoss(pos_weight=lucid.Tensor(w)), torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w)),
         x, np.random.default_rng(27).random((6, C)).astype(np.float32)),
    ]
    for lmod, tmod, a, b in cases:
        assert list(lmod.state_dict()) == list(tmod.state_dict())
        lx, tx = lucid.Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        ll, tl = lmod(lx, lucid.Tensor(b)), tmod(tx, torch.tensor(b))
        assert rel_err(ll, tl) < 1e-5, type(lmod).__name__
        ll.backward()
        tl.backward()
        assert rel_err(lx.grad, tx.grad) < 1e-4, type(lmod).__name__
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="median")
