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

On a split unlike training (covariate shift), thresholds taken from that split fall for every class
the model misreads there, so shifted items pass them and look like label noise. The thresholds then
come from a split drawn like training (train_dev, else train), and, when the model's features are
at hand, `neighbour_issues` asks what the items like this one are labelled: a shift changes how
items look, not their labels, so a shifted item still shares its label with the shifted items near
it, while a flipped label is one that none of its nearest items carries (the k-nearest-neighbour
label check of Bahri, Jiang & Gupta 2020, "Deep k-NN for Noisy Labels", ICML).
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


# The nearest items a row is compared with, and how many of them may share its label for it to be a
# suspect (none). Set on the shifted digits case of bench/label_suspects.py (its first four draws),
# then measured on its other draws, on the bundled image project and on splits without shift.
NEIGHBOURS = 8


def nearest_neighbours(query: np.ndarray, query_index: np.ndarray, pool: np.ndarray, k: int = NEIGHBOURS,
                       *, block: int = 65536) -> np.ndarray:
    """(m, k) positions in `pool` of each query row's k most cosine-similar pool rows, nearest first.

    query: (m, d) features of the rows to judge; query_index: (m,) their own positions in the pool
    (excluded from their neighbours; -1 when a row is not in the pool); pool: (N, d) features of every
    item of the split. The pool is scanned in blocks of `block` rows, so memory is m x block, not m x N.
    Fewer than k pool rows: the missing places are -1.
    """
    q = _unit(np.asarray(query, dtype=np.float32))
    query_index = np.asarray(query_index, dtype=np.int64)
    m, n = len(q), len(pool)
    best_s = np.full((m, k), -np.inf, dtype=np.float32)
    best_i = np.full((m, k), -1, dtype=np.int64)
    rows = np.arange(m)[:, None]
    for start in range(0, n, block):
        part = _unit(np.asarray(pool[start : start + block], dtype=np.float32))
        sim = q @ part.T
        own = query_index - start
        mine = (own >= 0) & (own < len(part))
        sim[np.flatnonzero(mine), own[mine]] = -np.inf
        cand_s = np.concatenate([best_s, sim], axis=1)
        cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + len(part)), sim.shape)], axis=1)
        # Stable order: among equal similarities the lower position wins, whatever the block size.
        top = np.lexsort((cand_i, -cand_s), axis=1)[:, :k] if cand_s.shape[1] > k else np.lexsort((cand_i, -cand_s), axis=1)
        best_s, best_i = cand_s[rows, top], cand_i[rows, top]
    best_i[~np.isfinite(best_s)] = -1
    return best_i


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.reshape(len(x), -1)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def neighbour_issues(
    labels: np.ndarray,
    preds: np.ndarray,
    neighbour_labels: np.ndarray,
    confident_other: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Flag label issues by the labels of each row's nearest items. (flags (m,) bool, share (m,) float).

    labels, preds: (m,) class indices of the rows; neighbour_labels: (m, k) labels of each row's k
    nearest items of the same split (-1: no neighbour); confident_other: (m,) bool, the model puts at
    least the in-distribution threshold on some class other than the label (`confident_issues` with
    thresholds from train_dev or train). A row is flagged when it is misclassified, none of its
    neighbours carries its label, and another class has support: the model is confident in it by
    in-distribution standards, or at least half the neighbours carry that one class. share: the
    fraction of the neighbours that carry the row's label.
    """
    labels = np.asarray(labels).astype(np.int64)
    preds = np.asarray(preds).astype(np.int64)
    nb = np.asarray(neighbour_labels).astype(np.int64)
    m = len(labels)
    if m == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    present = nb >= 0
    count = np.maximum(present.sum(axis=1), 1)
    share = ((nb == labels[:, None]) & present).sum(axis=1) / count
    other = np.where(present & (nb != labels[:, None]), nb, -1)
    majority = np.zeros(m)
    for i in range(m):
        values = other[i][other[i] >= 0]
        if len(values):
            majority[i] = np.bincount(values).max() / count[i]
    flags = (labels != preds) & present.any(axis=1) & (share == 0) & (np.asarray(confident_other, dtype=bool) | (majority >= 0.5))
    return flags, share
