"""trainer.metrics against scikit-learn, torch and hand-computed cases."""
import json

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")
torch = pytest.importorskip("torch")

from trainer import metrics as M  # noqa: E402


def _random_case(seed, n=200, c=7, offset=1.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, c, n)
    x = rng.standard_normal((n, c)).astype(dtype)
    x[np.arange(n), t] += offset  # some signal so accuracies are not all tiny
    return x, t


def _softmax64(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# ---------------------------------------------------------------------------------------------- top-k
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_topk_matches_sklearn(seed):
    x, t = _random_case(seed, n=300, c=9)
    got = M.topk_accuracy(x, t, ks=(1, 2, 5))
    assert set(got) == {1, 2, 5}
    assert got[1] == pytest.approx(100 * sklearn_metrics.accuracy_score(t, x.argmax(1)), abs=1e-12)
    for k in (2, 5):
        ref = sklearn_metrics.top_k_accuracy_score(t, x, k=k, labels=np.arange(9))
        assert got[k] == pytest.approx(100 * ref, abs=1e-12)


def test_topk_hand_made_with_ties():
    # Rows: scores over 4 classes; ties are broken towards the lower class index (argsort(-x, stable)).
    x = np.array([
        [0.1, 0.9, 0.5, 0.2],   # order 1,2,3,0 ; target 2 -> rank 1
        [0.5, 0.5, 0.5, 0.5],   # all tied: order 0,1,2,3 ; target 3 -> rank 3
        [0.3, 0.7, 0.7, 0.0],   # 1 before 2 ; target 2 -> rank 1
        [0.3, 0.7, 0.7, 0.0],   # target 1 -> rank 0
        [2.0, -1.0, 0.0, 1.0],  # order 0,3,2,1 ; target 1 -> rank 3
    ], dtype=np.float32)
    t = np.array([2, 3, 2, 1, 1])
    ranks = np.argsort(np.argsort(-x, axis=1, kind="stable"), axis=1)[np.arange(5), t]
    np.testing.assert_array_equal(ranks, [1, 3, 1, 0, 3])  # the documented rule, spelled out
    got = M.topk_accuracy(x, t, ks=(1, 2, 3, 4))
    assert got == {1: 20.0, 2: 60.0, 3: 60.0, 4: 100.0}
    # top-1 agrees with argmax (first maximum), as the confusion matrix uses it
    assert got[1] == 100 * np.mean(x.argmax(1) == t)


def test_topk_fewer_classes_than_k_is_100():
    x, t = _random_case(3, n=50, c=3)
    got = M.topk_accuracy(x, t, ks=(1, 3, 5))
    assert got[3] == 100.0 and got[5] == 100.0 and got[1] < 100.0
    one = M.topk_accuracy(np.zeros((4, 1), np.float32), np.zeros(4, np.int64), ks=(1, 5))
    assert one == {1: 100.0, 5: 100.0}


def test_topk_soft_targets_use_argmax_and_int_k():
    x, t = _random_case(4, n=64, c=6)
    soft = np.full((64, 6), 0.02)
    soft[np.arange(64), t] = 0.9
    assert M.topk_accuracy(x, soft, ks=(1, 3)) == M.topk_accuracy(x, t, ks=(1, 3))
    assert M.topk_accuracy(x, t, ks=2) == M.topk_accuracy(x, t, ks=(2,))


def test_topk_non_contiguous_and_float64_labels():
    x, t = _random_case(5, n=40, c=8, dtype=np.float64)
    xt = np.asfortranarray(x)
    strided = np.repeat(x, 2, axis=1)[:, ::2]
    ref = M.topk_accuracy(x, t)
    assert M.topk_accuracy(xt, t) == ref
    assert M.topk_accuracy(strided, t.astype(np.float64)) == ref


@pytest.mark.parametrize("bad, msg", [
    (dict(t=np.array([0, 1, 7])), r"class index 7, expected values in \[0, 3\)"),
    (dict(t=np.array([0, -1, 2])), r"class index -1"),
    (dict(t=np.array([0, 1])), r"shape \(3,\)"),
    (dict(x=np.zeros(3)), r"shape \(N, C\)"),
    (dict(ks=(0,)), r"positive integers"),
    (dict(t=np.array([0.5, 1, 2])), r"integer class indices"),
])
def test_topk_errors(bad, msg):
    x = bad.get("x", np.zeros((3, 3), np.float32))
    t = bad.get("t", np.array([0, 1, 2]))
    with pytest.raises((ValueError, TypeError), match=msg):
        M.topk_accuracy(x, t, ks=bad.get("ks", (1,)))


def test_empty_inputs_raise_clearly():
    with pytest.raises(ValueError, match="at least one sample"):
        M.topk_accuracy(np.zeros((0, 4)), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="at least one sample"):
        M.cross_entropy_loss(np.zeros((0, 4)), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="at least one sample"):
        M.expected_calibration_error(np.zeros((0, 4)), np.zeros(0, np.int64))
    np.testing.assert_array_equal(M.confusion_matrix(np.zeros(0, np.int64), np.zeros(0, np.int64), 3),
                                  np.zeros((3, 3)))


# ------------------------------------------------------------------------------------ confusion / report
def _skewed_preds(seed, n=300, c=8):
    """Predictions that never use classes 0 and 5, and targets that never contain classes 3 and 5."""
    rng = np.random.default_rng(seed)
    t = rng.choice([0, 1, 2, 4, 6, 7], n)
    p = np.where(rng.random(n) < 0.5, t, rng.choice([1, 2, 3, 4, 6, 7], n))
    p = np.where(p == 0, 1, p)
    return p, t


@pytest.mark.parametrize("seed", [0, 1])
def test_confusion_matches_sklearn(seed):
    p, t = _skewed_preds(seed)
    cm = M.confusion_matrix(p, t, 8)
    assert cm.dtype == np.int64 and cm.shape == (8, 8)
    np.testing.assert_array_equal(cm, sklearn_metrics.confusion_matrix(t, p, labels=np.arange(8)))
    assert cm[:, 0].sum() == 0 and cm[3].sum() == 0 and cm[5].sum() == 0 and cm[:, 5].sum() == 0


def test_confusion_from_scores_and_soft_targets():
    x, t = _random_case(6, n=100, c=5)
    soft = np.eye(5)[t] * 0.8 + 0.04
    np.testing.assert_array_equal(M.confusion_matrix(x, soft, 5), M.confusion_matrix(x.argmax(1), t, 5))
    with pytest.raises(ValueError, match=r"class index 5"):
        M.confusion_matrix(np.array([5]), np.array([0]), 5)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        M.confusion_matrix(x, t, 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_report_matches_sklearn(seed):
    p, t = _skewed_preds(seed)
    rep = M.per_class_report(M.confusion_matrix(p, t, 8))
    labels = np.arange(8)
    prec, rec, f1, sup = sklearn_metrics.precision_recall_fscore_support(
        t, p, labels=labels, zero_division=0)
    classes = rep["classes"]
    assert list(classes) == [str(i) for i in range(8)]
    np.testing.assert_allclose([classes[str(i)]["precision"] for i in labels], prec, atol=1e-12)
    np.testing.assert_allclose([classes[str(i)]["recall"] for i in labels], rec, atol=1e-12)
    np.testing.assert_allclose([classes[str(i)]["f1"] for i in labels], f1, atol=1e-12)
    assert [classes[str(i)]["support"] for i in labels] == sup.tolist()
    for avg in ("macro", "weighted"):
        ref = sklearn_metrics.precision_recall_fscore_support(t, p, labels=labels, average=avg, zero_division=0)
        np.testing.assert_allclose([rep[avg]["precision"], rep[avg]["recall"], rep[avg]["f1"]], ref[:3],
                                   atol=1e-12)
        assert rep[avg]["support"] == len(t)
    # never predicted -> precision 0; never present -> recall 0; neither -> all 0
    assert classes["0"]["precision"] == 0.0 and classes["3"]["recall"] == 0.0
    assert classes["5"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_per_class_report_names_and_errors():
    cm = np.array([[3, 1], [0, 0]])
    rep = M.per_class_report(cm, ["cat", "dog"])
    assert list(rep["classes"]) == ["cat", "dog"]
    assert rep["classes"]["cat"] == {"precision": 1.0, "recall": 0.75, "f1": pytest.approx(6 / 7), "support": 4}
    assert M.per_class_report(np.zeros((2, 2)))["weighted"]["f1"] == 0.0
    with pytest.raises(ValueError, match="3 names but the confusion matrix has 2"):
        M.per_class_report(cm, ["a", "b", "c"])
    with pytest.raises(ValueError, match="duplicates"):
        M.per_class_report(cm, ["a", "a"])
    with pytest.raises(ValueError, match=r"square"):
        M.per_class_report(np.zeros((2, 3)))


# ----------------------------------------------------------------------------------------------- ECE
def test_ece_hand_computed():
    # 3 bins: (0, 1/3], (1/3, 2/3], (2/3, 1].
    probs = np.array([
        [0.9, 0.1],    # conf 0.9, pred 0, target 0: correct   -> bin 2
        [0.8, 0.2],    # conf 0.8, pred 0, target 1: wrong     -> bin 2
        [0.4, 0.6],    # conf 0.6, pred 1, target 1: correct   -> bin 1
        [0.55, 0.45],  # conf 0.55, pred 0, target 1: wrong    -> bin 1
    ])
    t = np.array([0, 1, 1, 1])
    # bin 2: acc 0.5, conf 0.85, weight 2/4 ; bin 1: acc 0.5, conf 0.575, weight 2/4
    expected = 0.5 * abs(0.5 - 0.85) + 0.5 * abs(0.5 - 0.575)
    assert M.expected_calibration_error(probs, t, n_bins=3) == pytest.approx(expected, abs=1e-12)
    # a perfectly confident, always right model is calibrated
    assert M.expected_calibration_error(np.eye(3), np.arange(3)) == 0.0


def test_ece_bin_edges_are_right_closed():
    # confidence exactly 0.5 belongs to bin (0, 0.5] with 2 bins, so it is averaged with the 0.4 sample.
    probs = np.array([[0.5, 0.5], [0.4, 0.35]])  # (second row need not sum to 1 for the metric)
    t = np.array([0, 1])
    # one bin: acc 0.5, conf 0.45 -> 0.05 ; if 0.5 went to the upper bin it would be 0.5*0.5 + 0.5*0.4 = 0.45
    assert M.expected_calibration_error(probs, t, n_bins=2) == pytest.approx(0.05, abs=1e-12)


def _ece_reference(probs, t, n_bins):
    """The usual loop over bins (Guo et al. 2017 / the common temperature-scaling code)."""
    conf, pred = probs.max(1), probs.argmax(1)
    acc = (pred == t).astype(np.float64)
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(acc[m].mean() - conf[m].mean())
    return ece


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_matches_loop_reference(n_bins):
    x, t = _random_case(7, n=500, c=10, offset=1.5)
    p = _softmax64(x)
    assert M.expected_calibration_error(p, t, n_bins) == pytest.approx(_ece_reference(p, t, n_bins), abs=1e-12)
    p32 = p.astype(np.float32)
    assert M.expected_calibration_error(p32, t, n_bins) == pytest.approx(_ece_reference(p32, t, n_bins), abs=1e-6)


def test_ece_rejects_logits():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*softmax"):
        M.expected_calibration_error(np.array([[2.0, -1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="n_bins"):
        M.expected_calibration_error(np.array([[1.0, 0.0]]), np.array([0]), n_bins=0)


# ------------------------------------------------------------------------------------------ cross-entropy
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_matches_torch(dtype):
    x, t = _random_case(8, n=64, c=11, dtype=dtype)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(t)).item()
    got = M.cross_entropy_loss(x, t)
    assert isinstance(got, float)
    assert got == pytest.approx(ref, rel=1e-12)


def test_cross_entropy_soft_targets_and_stability():
    x, t = _random_case(9, n=32, c=5, dtype=np.float64)
    rng = np.random.default_rng(9)
    soft = rng.random((32, 5))
    soft[:, 0] = 0.0
    soft /= soft.sum(1, keepdims=True)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(x), torch.from_numpy(soft)).item()
    assert M.cross_entropy_loss(x, soft) == pytest.approx(ref, rel=1e-12)
    # huge logits: a naive exp overflows, log-sum-exp does not
    big = (x * 1e4).astype(np.float32)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(big.astype(np.float64)), torch.from_numpy(t)).item()
    assert M.cross_entropy_loss(big, t) == pytest.approx(ref, rel=1e-9)
    # a -inf logit with zero target mass is fine (0 * log 0 = 0)
    x2 = np.array([[0.0, -np.inf, 1.0]])
    assert np.isfinite(M.cross_entropy_loss(x2, np.array([[0.5, 0.0, 0.5]])))


# ------------------------------------------------------------------------------------------ accumulator
def test_accumulator_batches_equal_one_shot():
    x, t = _random_case(10, n=257, c=12, offset=1.2)
    names = [f"class {i}" for i in range(12)]
    acc = M.MetricAccumulator(12, ks=(1, 5), class_names=names)
    for lo, hi in [(0, 100), (100, 100), (100, 101), (101, 257)]:  # includes an empty and a size-1 batch
        acc.update(x[lo:hi], t[lo:hi])
    out = acc.compute()
    json.dumps(out, allow_nan=False)  # metrics.json-ready
    assert out["num_samples"] == 257
    topk = M.topk_accuracy(x, t, (1, 5))
    assert out["top1"] == topk[1] and out["top5"] == topk[5]
    assert out["loss"] == pytest.approx(M.cross_entropy_loss(x, t), rel=1e-12)
    assert out["ece"] == pytest.approx(M.expected_calibration_error(_softmax64(x), t), abs=1e-12)
    cm = M.confusion_matrix(x, t, 12)
    assert out["confusion"] == cm.tolist()
    assert out["per_class"] == M.per_class_report(cm, names)
    assert list(out["per_class"]["classes"]) == names
    assert np.trace(cm) / 257 * 100 == pytest.approx(out["top1"])
    # one-shot over everything in a single update gives the identical dict
    one = M.MetricAccumulator(12, ks=(1, 5), class_names=names)
    one.update(x, t)
    single = one.compute()
    for key in ("top1", "top5", "num_samples", "confusion", "per_class"):
        assert single[key] == out[key]
    assert single["loss"] == pytest.approx(out["loss"], rel=1e-12)
    assert single["ece"] == pytest.approx(out["ece"], abs=1e-12)


def test_accumulator_soft_targets_noncontiguous_and_lists():
    x, t = _random_case(11, n=40, c=6)
    soft = np.eye(6)[t] * 0.9 + 0.1 / 6
    acc = M.MetricAccumulator(6, ks=(1, 3))
    acc.update(np.asfortranarray(x[:20]), soft[:20])
    acc.update(x[20:].tolist(), soft[20:])
    out = acc.compute()
    assert set(out) == {"loss", "top1", "top3", "num_samples", "ece", "confusion", "per_class"}
    assert out["top3"] == M.topk_accuracy(x, t, (3,))[3]
    assert out["loss"] == pytest.approx(M.cross_entropy_loss(x, soft), rel=1e-9)
    np.testing.assert_array_equal(acc.targets, t)


def test_accumulator_accepts_tensor_like():
    import lucid

    x, t = _random_case(12, n=10, c=4)
    a, b = M.MetricAccumulator(4), M.MetricAccumulator(4)
    a.update(lucid.Tensor(x, requires_grad=x.dtype.kind == "f"), lucid.Tensor(t))
    b.update(x, t)
    assert a.compute() == b.compute()


def test_hardest_misclassified():
    x, t = _random_case(13, n=120, c=5, offset=0.5)
    acc = M.MetricAccumulator(5)
    acc.update(x[:50], t[:50])
    acc.update(x[50:], t[50:])
    losses = -np.log(_softmax64(x)[np.arange(120), t])
    np.testing.assert_allclose(acc.losses, losses, rtol=1e-12)
    np.testing.assert_allclose(acc.confidences, _softmax64(x).max(1), rtol=1e-12)
    wrong = np.flatnonzero(x.argmax(1) != t)
    idx = acc.hardest_misclassified(7)
    assert len(idx) == 7 and set(idx) <= set(wrong)
    assert np.all(np.diff(losses[idx]) <= 0)
    assert losses[idx[-1]] >= np.sort(losses[wrong])[::-1][6]
    everything = acc.hardest_misclassified(10_000)
    assert sorted(everything.tolist()) == wrong.tolist()
    assert len(acc.hardest_misclassified(0)) == 0


def test_accumulator_errors_and_reset():
    acc = M.MetricAccumulator(3)
    with pytest.raises(ValueError, match="no samples"):
        acc.compute()
    with pytest.raises(ValueError, match="4 classes but the accumulator was built for num_classes=3"):
        acc.update(np.zeros((2, 4)), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="class_names has 2 names"):
        M.MetricAccumulator(3, class_names=["a", "b"])
    acc.update(np.eye(3), np.arange(3))
    assert acc.compute()["top1"] == 100.0
    acc.reset()
    assert acc.num_samples == 0 and len(acc.hardest_misclassified(3)) == 0
