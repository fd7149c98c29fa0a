"""Evaluation metrics on NumPy arrays: top-k accuracy, loss, confusion matrix, per-class report, calibration.

Everything here is vectorised NumPy on host arrays (no torch, no per-sample Python loops) and returns plain
Python numbers, lists and dicts so a result can go straight into ``metrics.json``.

Conventions shared by all functions:

- ``logits`` / ``probs`` are ``(N, C)`` scores for ``N`` samples over ``C`` classes.
- ``targets`` are either hard labels ``(N,)`` (integers in ``[0, C)``) or soft labels ``(N, C)``
  (probabilities, e.g. from mixup or label smoothing). For everything that needs one true class per sample
  (accuracy, confusion matrix, calibration) a soft target counts as its ``argmax``; the loss uses the full
  distribution.
- Accuracies are **percent** (0-100), as timm and the trainer's logs report them. ECE is a fraction (0-1).
- Arrays may also be CuPy arrays or lucid Tensors: they are copied to host NumPy first.

Tie rule for top-k (documented because hand-written cases hit it): the classes of a sample are ordered by
descending score, and among equal scores the **lower class index comes first** -- exactly the order of
``np.argsort(-logits, axis=1, kind="stable")``. A sample is top-k correct when its target is among the first
``k`` of that order. In particular top-1 agrees with ``np.argmax`` (which returns the first maximum), so the
top-1 accuracy always equals the trace of the confusion matrix built from ``argmax`` predictions.
(scikit-learn's ``top_k_accuracy_score`` breaks ties the other way, towards the higher index; with real-valued
scores ties are rare.) With ``k >= C`` every class is in the top k, so top-k is 100 % (see DESIGN.md).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "topk_accuracy",
    "confusion_matrix",
    "per_class_report",
    "expected_calibration_error",
    "cross_entropy_loss",
    "MetricAccumulator",
]


# ----------------------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------------------
def _to_numpy(x, name: str) -> np.ndarray:
    """Host NumPy array for ``x``: a NumPy array as is, a CuPy array copied to host, a lucid Tensor's values."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__cuda_array_interface__") and hasattr(x, "get"):  # cupy.ndarray
        return x.get()
    if callable(getattr(x, "detach", None)) and callable(getattr(x, "numpy", None)):  # lucid.Tensor (torch too)
        return x.detach().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{name}: expected an array (numpy, cupy, lucid.Tensor or nested lists), "
                        f"got {type(x).__name__}") from exc


def _check_scores(scores, name: str) -> np.ndarray:
    s = _to_numpy(scores, name)
    if s.ndim != 2:
        raise ValueError(f"{name} must have shape (N, C), got shape {s.shape}")
    if s.shape[1] == 0:
        raise ValueError(f"{name} must have at least one class (C >= 1), got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.number) or np.issubdtype(s.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real numbers, got dtype {s.dtype}")
    return s


def _hard_labels(targets, n: int, num_classes: int, name: str = "targets") -> np.ndarray:
    """Targets as int64 labels (N,): soft (N, C) targets become their argmax; range is checked."""
    t = _to_numpy(targets, name)
    if t.ndim == 2:
        if t.shape != (n, num_classes):
            raise ValueError(f"soft {name} must have shape ({n}, {num_classes}) like the scores, "
                             f"got shape {t.shape}")
        return t.argmax(axis=1).astype(np.int64, copy=False) if n else np.zeros(0, np.int64)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) (class indices) or ({n}, {num_classes}) "
                         f"(probabilities), got shape {t.shape}")
    if n and not np.issubdtype(t.dtype, np.integer):
        if not (np.issubdtype(t.dtype, np.floating) and np.all(t == np.round(t))):
            raise TypeError(f"{name} must be integer class indices, got dtype {t.dtype} with "
                            f"non-integer values")
    t = t.astype(np.int64, copy=False)
    if n:
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} contains class index {bad}, expected values in [0, {num_classes})")
    return t


def _check_ks(ks) -> tuple[int, ...]:
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    ks = tuple(ks)
    for k in ks:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"ks must be positive integers, got {k!r} in {ks!r}")
    return tuple(int(k) for k in ks)


def _target_rank(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Position (0-based) of each sample's target in the stable descending order of its scores.

    rank = #classes scoring strictly higher + #classes scoring equal with a lower index; this is the index of
    the target in ``np.argsort(-scores, kind="stable")`` without sorting (O(N*C) compares, no sort).
    A NaN target score ranks last (no comparison with NaN is true, so nothing counts as "higher").
    """
    n, c = scores.shape
    tgt = np.take_along_axis(scores, labels[:, None], axis=1)  # (N, 1)
    higher = (scores > tgt).sum(axis=1)
    tie_before = ((scores == tgt) & (np.arange(c)[None, :] < labels[:, None])).sum(axis=1)
    rank = higher + tie_before
    return np.where(np.isnan(tgt[:, 0]), c - 1, rank) if np.issubdtype(scores.dtype, np.floating) else rank


# ----------------------------------------------------------------------------------------------------------
# one-shot metrics
# ----------------------------------------------------------------------------------------------------------
def topk_accuracy(logits, targets, ks: Iterable[int] = (1, 5)) -> dict[int, float]:
    """Top-k accuracy in percent for each ``k`` in ``ks``.

    Args:
        logits: ``(N, C)`` scores (logits or probabilities: only their order matters).
        targets: ``(N,)`` class indices or ``(N, C)`` soft targets (their argmax is the true class).
        ks: the ``k`` values, e.g. ``(1, 5)``.

    Returns:
        ``{k: percent}``, e.g. ``{1: 76.2, 5: 93.1}``. With ``k >= C`` the value is 100.0. Ties between scores
        are broken towards the lower class index (see the module docstring).

    Raises:
        ValueError: on empty input (accuracy of no samples is undefined), bad shapes or labels out of range.
    """
    ks = _check_ks(ks)
    s = _check_scores(logits, "logits")
    n, c = s.shape
    if n == 0:
        raise ValueError("topk_accuracy needs at least one sample, got logits of shape (0, C)")
    labels = _hard_labels(targets, n, c)
    rank = _target_rank(s, labels)
    return {k: 100.0 * float(np.count_nonzero(rank < k)) / n for k in ks}


def confusion_matrix(preds, targets, num_classes: int) -> np.ndarray:
    """Confusion counts: ``cm[i, j]`` = number of samples of true class ``i`` predicted as class ``j``.

    Args:
        preds: ``(N,)`` predicted class indices, or ``(N, C)`` scores (their argmax is the prediction).
        targets: ``(N,)`` true class indices, or ``(N, C)`` soft targets (argmax).
        num_classes: ``C``; every index must lie in ``[0, C)``.

    Returns:
        ``(C, C)`` int64 array; rows are true classes, columns predicted classes (scikit-learn's layout,
        note the argument order here is ``(preds, targets)``). Empty input gives all zeros.
    """
    num_classes = int(num_classes)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    p = _to_numpy(preds, "preds")
    if p.ndim == 2:
        if p.shape[1] != num_classes:
            raise ValueError(f"preds given as scores must have shape (N, {num_classes}), got {p.shape}")
        p = p.argmax(axis=1) if p.shape[0] else np.zeros(0, np.int64)
    n = p.shape[0] if p.ndim == 1 else -1
    if p.ndim != 1:
        raise ValueError(f"preds must have shape (N,) or (N, {num_classes}), got shape {p.shape}")
    p = _hard_labels(p, n, num_classes, name="preds")
    t = _hard_labels(targets, n, num_classes, name="targets")
    # One bincount over the flat index true*C + pred: no Python loop and no (N, C) one-hot temporary.
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's ``zero_division=0``), float64."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(num.shape, den.shape), dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def per_class_report(confusion, class_names: Sequence[str] | None = None) -> dict:
    """Precision, recall, F1 and support per class, with macro and support-weighted averages.

    Args:
        confusion: ``(C, C)`` counts, rows = true class, columns = predicted class.
        class_names: optional ``C`` names used as keys; default keys are ``"0"``, ``"1"``, ...

    Returns:
        ``{"classes": {name: {"precision", "recall", "f1", "support"}}, "macro": {...}, "weighted": {...}}``
        with floats in ``[0, 1]`` and integer supports (``macro``/``weighted`` support = total samples).
        A zero denominator gives 0, like scikit-learn's ``zero_division=0``: a class never predicted has
        precision 0, a class never present has recall 0, and F1 = 2·TP / (2·TP + FP + FN) (0 when all three
        are 0). The macro average runs over all ``C`` classes, present or not (scikit-learn with
        ``labels=range(C)``); the weighted average weights by support.
    """
    cm = _to_numpy(confusion, "confusion")
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"confusion must be a square (C, C) matrix with C >= 1, got shape {cm.shape}")
    cm = cm.astype(np.int64, copy=False)
    c = cm.shape[0]
    if class_names is None:
        names = [str(i) for i in range(c)]
    else:
        names = [str(n) for n in class_names]
        if len(names) != c:
            raise ValueError(f"class_names has {len(names)} names but the confusion matrix has {c} classes")
        if len(set(names)) != c:
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"class_names must be unique (they are dict keys), duplicates: {dup}")
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, support + predicted)  # 2TP / (2TP + FP + FN)
    total = int(support.sum())

    def avg(weights: np.ndarray | None) -> dict:
        if weights is None:
            vals = [float(m.mean()) for m in (precision, recall, f1)]
        else:
            vals = [float(_safe_div((m * weights).sum(), weights.sum())) for m in (precision, recall, f1)]
        return {"precision": vals[0], "recall": vals[1], "f1": vals[2], "support": total}

    classes = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(names, precision.tolist(), recall.tolist(), f1.tolist(), support.tolist())
    }
    return {"classes": classes, "macro": avg(None), "weighted": avg(support.astype(np.float64))}


def _ece_from(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    """ECE from per-sample max-probabilities and 0/1 correctness (float64), equal-width bins on (0, 1]."""
    n = confidence.shape[0]
    # Bin b holds confidences in (b/n_bins, (b+1)/n_bins] (Guo et al. 2017; 0 itself goes to bin 0).
    # searchsorted over the inner edges with side="left" gives exactly that bin, with the same float edges
    # as np.linspace(0, 1, n_bins + 1) that the reference implementations compare against.
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    # sum_b (n_b / N) * |acc_b - conf_b|  ==  sum_b |sum_correct_b - sum_conf_b| / N
    return float(np.abs(acc_sum - conf_sum).sum() / n)


def expected_calibration_error(probs, targets, n_bins: int = 15) -> float:
    """Expected calibration error of the top-1 prediction, with ``n_bins`` equal-width confidence bins.

    ECE = sum over bins b of ``(n_b / N) * |accuracy_b - mean_confidence_b|`` where a sample's confidence is
    its maximum probability and it is accurate when ``argmax(probs) == target``; bin ``b`` covers
    ``(b / n_bins, (b + 1) / n_bins]``.

    Args:
        probs: ``(N, C)`` probabilities (softmax outputs, values in [0, 1]); not logits.
        targets: ``(N,)`` class indices or ``(N, C)`` soft targets (argmax).
        n_bins: number of bins (15 is the usual choice).

    Returns:
        ECE as a fraction in [0, 1].
    """
    n_bins = int(n_bins)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p = _check_scores(probs, "probs")
    n, c = p.shape
    if n == 0:
        raise ValueError("expected_calibration_error needs at least one sample, got probs of shape (0, C)")
    lo, hi = float(p.min()), float(p.max())
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        raise ValueError(f"probs must be probabilities in [0, 1] (apply softmax to logits first), "
                         f"got values in [{lo}, {hi}]")
    labels = _hard_labels(targets, n, c)
    pred = p.argmax(axis=1)
    conf = p.max(axis=1).astype(np.float64)
    return _ece_from(conf, (pred == labels).astype(np.float64), n_bins)


def _log_softmax_stats(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 ``(x, lse, sumexp)``: logits as float64, log-sum-exp per row, and sum(exp(x - max)) per row."""
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # all -inf row: keep exp() finite, the loss then comes out inf
    s = np.exp(x - m).sum(axis=1)
    with np.errstate(divide="ignore"):
        lse = m[:, 0] + np.log(s)
    return x, lse, s


def _per_sample_ce(x: np.ndarray, lse: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cross-entropy per sample (float64) from float64 logits ``x`` and their log-sum-exp."""
    n, c = x.shape
    if targets.ndim == 2:
        t = targets.astype(np.float64)
        logp = x - lse[:, None]
        # 0 * log(0) counts as 0 (a class with zero target mass and -inf logit must not give NaN).
        prod = np.zeros_like(logp)
        np.multiply(t, logp, out=prod, where=t != 0)
        return -prod.sum(axis=1)
    return lse - np.take_along_axis(x, targets[:, None], axis=1)[:, 0]


def cross_entropy_loss(logits, targets) -> float:
    """Mean cross-entropy of ``softmax(logits)`` against ``targets``, computed in float64 for reports.

    Same value as ``torch.nn.functional.cross_entropy(logits, targets)`` (mean reduction; soft ``(N, C)``
    targets as class probabilities). Uses a max-shifted log-sum-exp, so large logits do not overflow.
    """
    s = _check_scores(logits, "logits")
    n, c = s.shape
    if n == 0:
        raise ValueError("cross_entropy_loss needs at least one sample, got logits of shape (0, C)")
    t = _to_numpy(targets, "targets")
    if t.ndim == 2:
        _hard_labels(t, n, c)  # shape check only
    else:
        t = _hard_labels(t, n, c)
    x, lse, _ = _log_softmax_stats(s)
    return float(_per_sample_ce(x, lse, t).mean())


# ----------------------------------------------------------------------------------------------------------
# streaming accumulator
# ----------------------------------------------------------------------------------------------------------
class MetricAccumulator:
    """Collects evaluation metrics batch by batch; ``compute()`` gives the same numbers as one-shot metrics.

    Per batch it keeps, for every sample, the loss, the max softmax probability, the predicted and the true
    label and the target's rank (a few numbers per sample, ~40 bytes: 50,000 ImageNet images take 2 MB),
    plus the running confusion matrix. That is enough for every metric here and for picking the hardest
    misclassified samples afterwards.

    Example::

        acc = MetricAccumulator(num_classes=100, class_names=names)
        for images, labels in loader:
            acc.update(model(images).array, labels)
        metrics = acc.compute()          # JSON-ready dict
        worst = acc.hardest_misclassified(16)   # sample indices, in update order

    Args:
        num_classes: ``C``.
        ks: top-k values reported as ``top{k}`` keys.
        class_names: optional ``C`` names; ``per_class`` is keyed by them (else by ``"0"``, ``"1"``, ...).
        n_bins: bins for the expected calibration error.
    """

    def __init__(self, num_classes: int, ks: Iterable[int] = (1, 5), class_names: Sequence[str] | None = None,
                 n_bins: int = 15):
        self.num_classes = int(num_classes)
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.ks = _check_ks(ks)
        if class_names is not None:
            class_names = [str(n) for n in class_names]
            if len(class_names) != self.num_classes:
                raise ValueError(f"class_names has {len(class_names)} names, expected num_classes="
                                 f"{self.num_classes}")
        self.class_names = class_names
        self.n_bins = int(n_bins)
        if self.n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        self.reset()

    def reset(self) -> None:
        """Forget all samples seen so far."""
        self._confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self._loss: list[np.ndarray] = []
        self._conf: list[np.ndarray] = []
        self._pred: list[np.ndarray] = []
        self._true: list[np.ndarray] = []
        self._rank: list[np.ndarray] = []
        self._cache: dict[str, np.ndarray] = {}

    def update(self, logits, targets) -> None:
        """Add one batch: ``logits (B, C)`` and ``targets (B,)`` labels or ``(B, C)`` soft targets."""
        s = _check_scores(logits, "logits")
        b, c = s.shape
        if c != self.num_classes:
            raise ValueError(f"logits have {c} classes but the accumulator was built for "
                             f"num_classes={self.num_classes} (logits shape {s.shape})")
        if b == 0:
            return
        t = _to_numpy(targets, "targets")
        labels = _hard_labels(t, b, c)
        x, lse, sumexp = _log_softmax_stats(s)
        self._loss.append(_per_sample_ce(x, lse, t if t.ndim == 2 else labels))
        # max softmax probability = exp(max - lse) = 1 / sum(exp(x - max)): no (B, C) probability array.
        self._conf.append(1.0 / sumexp)
        pred = s.argmax(axis=1).astype(np.int64, copy=False)
        self._pred.append(pred)
        self._true.append(labels)
        self._rank.append(_target_rank(s, labels).astype(np.int64, copy=False))
        self._confusion += np.bincount(labels * c + pred, minlength=c * c).reshape(c, c)
        self._cache.clear()

    # per-sample arrays, concatenated lazily (and cached until the next update)
    def _cat(self, key: str, dtype) -> np.ndarray:
        if key not in self._cache:
            parts = getattr(self, "_" + key)
            self._cache[key] = np.concatenate(parts) if parts else np.zeros(0, dtype)
        return self._cache[key]

    @property
    def num_samples(self) -> int:
        return int(self._confusion.sum())

    @property
    def losses(self) -> np.ndarray:
        """Per-sample cross-entropy (float64), in update order."""
        return self._cat("loss", np.float64)

    @property
    def confidences(self) -> np.ndarray:
        """Per-sample max softmax probability (float64), in update order."""
        return self._cat("conf", np.float64)

    @property
    def predictions(self) -> np.ndarray:
        """Per-sample predicted class (argmax, int64), in update order."""
        return self._cat("pred", np.int64)

    @property
    def targets(self) -> np.ndarray:
        """Per-sample true class (int64; argmax of soft targets), in update order."""
        return self._cat("true", np.int64)

    @property
    def confusion(self) -> np.ndarray:
        """Running ``(C, C)`` int64 confusion matrix (rows true, columns predicted); a copy."""
        return self._confusion.copy()

    def compute(self) -> dict:
        """All metrics as a JSON-ready dict.

        Keys: ``loss`` (mean cross-entropy), ``top{k}`` for each k (percent), ``num_samples``, ``ece``
        (fraction), ``confusion`` (list of lists of ints, rows true), ``per_class`` (see
        :func:`per_class_report`).
        """
        n = self.num_samples
        if n == 0:
            raise ValueError("MetricAccumulator.compute(): no samples were added (call update() first)")
        rank = self._cat("rank", np.int64)
        out: dict = {"loss": float(self.losses.mean())}
        for k in self.ks:
            out[f"top{k}"] = 100.0 * float(np.count_nonzero(rank < k)) / n
        correct = (self.predictions == self.targets).astype(np.float64)
        out["num_samples"] = n
        out["ece"] = _ece_from(self.confidences, correct, self.n_bins)
        out["confusion"] = self._confusion.tolist()
        out["per_class"] = per_class_report(self._confusion, self.class_names)
        return out

    def hardest_misclassified(self, k: int) -> np.ndarray:
        """Indices (in update order) of up to ``k`` wrongly predicted samples, highest loss first.

        Equal losses keep update order (stable sort), so the result is deterministic.
        """
        k = int(k)
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        wrong = np.flatnonzero(self.predictions != self.targets)
        order = np.argsort(-self.losses[wrong], kind="stable")
        return wrong[order[:k]]
