"""Suspect mislabels by confident learning (Northcutt, Jiang & Chuang 2021, "Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 70).

Each class j gets its own threshold t_j: the mean predicted probability of j over the items labelled
j (the model's average self-confidence on that class). An item is *confidently* of class j when its
predicted probability of j is at least t_j. An item labelled i is a label issue when it is
confidently of some class and its guessed true class is not i: the one confident class, or, when
several classes pass their thresholds, the model's most probable class. Items the model predicts as
their given label are never flagged.

This is cleanlab's `find_label_issues(labels, pred_probs, filter_by="confident_learning")`, computed
from what the saved predictions hold: the probability of the given label (`p_label`) for every item,
which gives the thresholds in one streamed pass, and the top-k classes with their probabilities for
the items to flag. A class outside an item's top k has a probability at most the k-th one; when that
bound is below every remaining threshold the result is exact, otherwise the unknown classes are taken
as not confident (an item is then flagged only on what is known). With k >= the number of classes it
is always exact.

A per-class threshold adapts to how sure the model is of each class: a fixed "confidence >= 0.9 and
p_label <= 0.05" misses flips into classes the model is rarely that sure of.

`label_issue_score` ranks the flagged items: 1 minus cleanlab's normalized-margin label quality,
(max_{k != label} p_k - p_label + 1) / 2, in [0, 1]; above 0.5 the model prefers another class.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

# The same tolerances as cleanlab: a probability within 1e-6 of its threshold counts as passing it,
# and a label within 1e-6 of the top probability counts as predicted.
EPS = 1e-6
# A class no item is labelled with: a threshold no probability reaches.
NO_ITEMS = 2.0
MIN_THRESHOLD = 2e-6


@dataclass
class ThresholdAccumulator:
    """Per-class mean self-confidence, fed batch by batch: `add(labels, p_label)`, then `thresholds()`.

    Labels may be class indices or names (any hashable); NaN p_label values are skipped.
    """

    _sum: dict[Hashable, float] = field(default_factory=dict)
    _count: dict[Hashable, int] = field(default_factory=dict)

    def add(self, labels: np.ndarray, p_label: np.ndarray) -> None:
        labels = np.asarray(labels)
        p = np.asarray(p_label, dtype=np.float64)
        ok = np.isfinite(p)
        labels, p = labels[ok], p[ok]
        if not len(labels):
            return
        keys, inverse = np.unique(labels, return_inverse=True)
        sums = np.bincount(inverse, weights=p, minlength=len(keys))
        counts = np.bincount(inverse, minlength=len(keys))
        for key, s, c in zip(keys.tolist(), sums.tolist(), counts.tolist(), strict=True):
            self._sum[key] = self._sum.get(key, 0.0) + s
            self._count[key] = self._count.get(key, 0) + c

    def thresholds(self) -> dict[Hashable, float]:
        """Class -> its threshold (only classes some item is labelled with)."""
        return {k: max(MIN_THRESHOLD, self._sum[k] / self._count[k]) for k in self._sum}

    def counts(self) -> dict[Hashable, int]:
        return dict(self._count)


def class_thresholds(labels: np.ndarray, p_label: np.ndarray, n_classes: int) -> np.ndarray:
    """(C,) thresholds for integer labels 0..C-1; classes without items get NO_ITEMS (never confident)."""
    acc = ThresholdAccumulator()
    acc.add(np.asarray(labels).astype(np.int64), p_label)
    out = np.full(n_classes, NO_ITEMS)
    for k, t in acc.thresholds().items():
        if 0 <= int(k) < n_classes:  # type: ignore[call-overload]
            out[int(k)] = t  # type: ignore[call-overload]
    return out


def label_issue_score(p_label: np.ndarray, max_other: np.ndarray) -> np.ndarray:
    """(max_{k != label} p_k - p_label + 1) / 2: 1 - cleanlab's normalized-margin label quality."""
    return (np.asarray(max_other, dtype=np.float64) - np.asarray(p_label, dtype=np.float64) + 1.0) / 2.0


def confident_issues(
    labels: np.ndarray,
    p_label: np.ndarray,
    top_classes: np.ndarray,
    top_probs: np.ndarray,
    thresholds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Flag label issues. (flags (N,) bool, label_issue_score (N,) float).

    labels: (N,) int class indices; p_label: (N,) probability of the given label; top_classes,
    top_probs: (N, k) the k most probable classes (descending) and their probabilities; thresholds:
    (C,) from `class_thresholds`. A negative top class (padding) is ignored. NaN p_label: not flagged.
    """
    labels = np.asarray(labels).astype(np.int64)
    p_label = np.asarray(p_label, dtype=np.float64)
    cls = np.asarray(top_classes).astype(np.int64)
    prob = np.asarray(top_probs, dtype=np.float64)
    thr = np.asarray(thresholds, dtype=np.float64)
    n, k = cls.shape if cls.ndim == 2 else (len(labels), 0)
    c = len(thr)
    if n == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    valid = (cls >= 0) & (cls < c) & np.isfinite(prob)
    t_top = np.where(valid, thr[np.clip(cls, 0, c - 1)], np.inf)
    confident_top = valid & (prob >= t_top - EPS)
    is_label = valid & (cls == labels[:, None])
    others = (confident_top & ~is_label).sum(axis=1)
    # cleanlab guesses the true class as the one confident class, or the top class when several
    # pass, and then drops items whose top class is the label (within 1e-6). For an item whose top
    # class is another one, that leaves: flagged exactly when some class other than the label is
    # confident (alone, the guess is that class; with others, the guess is the top class, not the label).
    top_other = np.where(valid & ~is_label, prob, -np.inf).max(axis=1) if k else np.full(n, -np.inf)
    top1_is_label = p_label + EPS >= top_other
    flagged = (others >= 1) & ~top1_is_label & np.isfinite(p_label)
    max_other = np.where(np.isfinite(top_other), top_other, 0.0)
    return flagged, label_issue_score(p_label, max_other)


def confident_issues_full(labels: np.ndarray, pred_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same from a full (N, C) probability matrix (thresholds from these items)."""
    probs = np.asarray(pred_probs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    n, c = probs.shape
    p_label = probs[np.arange(n), labels]
    order = np.argsort(-probs, axis=1, kind="stable")
    top_p = np.take_along_axis(probs, order, axis=1)
    return confident_issues(labels, p_label, order, top_p, class_thresholds(labels, p_label, c))


def flag_sample(
    labels: np.ndarray,
    preds: np.ndarray,
    p_label: np.ndarray,
    confidence: np.ndarray,
    thresholds: dict[Hashable, float],
    top_classes: np.ndarray | None = None,
    top_probs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flags and scores for a sample of rows, with thresholds streamed over the whole split.

    labels, preds: class indices or names (one kind); top_classes / top_probs: (N, k) when the
    predictions carry them (class indices). Without them (or with names) the top class is `pred`
    with probability `confidence`: k = 1.
    """
    labels, preds = np.asarray(labels), np.asarray(preds)
    n = len(labels)
    integer = labels.dtype.kind in "iu" and preds.dtype.kind in "iu"
    if integer:
        lab, prd = labels.astype(np.int64), preds.astype(np.int64)
        keys = [int(k) for k in thresholds if isinstance(k, (int, np.integer))]
        c = max([*keys, int(lab.max(initial=-1)), int(prd.max(initial=-1))]) + 1
        if top_classes is not None and np.asarray(top_classes).size:
            c = max(c, int(np.asarray(top_classes).max()) + 1)
        thr = np.full(max(c, 1), NO_ITEMS)
        for k in keys:
            if k >= 0:
                thr[k] = thresholds[k]
    else:
        names = sorted({*map(str, thresholds), *map(str, labels.tolist()), *map(str, preds.tolist())})
        code = {name: i for i, name in enumerate(names)}
        lab = np.array([code[str(v)] for v in labels.tolist()], dtype=np.int64)
        prd = np.array([code[str(v)] for v in preds.tolist()], dtype=np.int64)
        thr = np.full(max(len(names), 1), NO_ITEMS)
        for key, t in thresholds.items():
            thr[code[str(key)]] = t
        top_classes = top_probs = None  # top-k columns are class indices: not comparable with names
    if top_classes is None or top_probs is None:
        top_classes = prd.reshape(n, 1)
        top_probs = np.asarray(confidence, dtype=np.float64).reshape(n, 1)
    return confident_issues(lab, p_label, top_classes, top_probs, thr)
