"""A seeded uniform sample of misclassified items, drawn in one pass over a stream of predictions.

Every misclassified item gets a pseudo-random key, a SplitMix64 hash of (seed, index); the sample is
the `size` items with the smallest keys (a bottom-k reservoir). That is a uniform sample without
replacement, it needs memory for `size` rows only, and because the key depends on the item and not
on when it arrives, the same seed gives the same sample whatever the order, batch size or sharding
of the predictions. The (true, predicted) pair counts are kept in the same pass.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
# Up to this many classes the confused pairs are counted in a dense (C, C) matrix (4096: 128 MB at
# most); above it, in a dict of the pairs actually seen.
DENSE_CLASSES = 4096


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Steele, Lea, Flood 2014; Stafford's mix13), elementwise on uint64."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def sample_keys(index: np.ndarray, seed: int) -> np.ndarray:
    """Keys (uint64) for items at these positions: the index-th output of SplitMix64 seeded with `seed`."""
    state = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    idx = np.asarray(index).astype(np.uint64) + np.uint64(1)
    return _mix(state + idx * _GAMMA)


@dataclass(frozen=True)
class ErrorSample:
    """The result of one pass.

    rows: the sampled misclassified rows (all columns given), sorted by index, at most `size` of them.
    pairs: every (label, pred) pair of the misclassified items with its count, most frequent first.
    """

    rows: pd.DataFrame
    items: int  # rows seen
    errors: int  # misclassified rows seen
    size: int  # the sample size asked for
    seed: int
    pairs: tuple[tuple[Any, Any, int], ...]

    @property
    def all_errors(self) -> bool:
        """True when there were no more misclassified items than the sample size: the sample is all of them."""
        return self.errors <= self.size


class ErrorSampler:
    """Feed batches of predictions with `add`; `result()` gives the ErrorSample.

    Each batch is a DataFrame with at least `index`, `label` and `pred` columns. Memory: the sample
    (`size` rows) plus one distinct entry per confused (label, pred) pair.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        if size < 1:
            raise ValueError(f"expected a sample size >= 1, got {size}")
        self.size = size
        self.seed = seed
        self.items = 0
        self.errors = 0
        self._pairs: Counter[tuple[Any, Any]] = Counter()
        self._rows: pd.DataFrame | None = None
        self._keys = np.empty(0, dtype=np.uint64)
        self._dense = np.zeros((0, 0), dtype=np.int64)

    def add(self, batch: pd.DataFrame, *, misclassified_only: bool = False) -> None:
        """Take one batch. misclassified_only: the caller already dropped rows with label == pred."""
        self.items += 0 if misclassified_only else len(batch)
        if not misclassified_only:
            batch = batch[batch["label"].to_numpy() != batch["pred"].to_numpy()]
        if batch.empty:
            return
        admit = self.offer(batch["index"].to_numpy(), batch["label"].to_numpy(), batch["pred"].to_numpy())
        if admit.any():
            self.admit(batch[admit])

    def offer(self, index: np.ndarray, label: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Count misclassified rows (label != pred already) and their pairs; return the (B,) bool mask
        of rows that may enter the sample, so a caller streaming Arrow batches converts only those."""
        self.errors += len(index)
        self._count_pairs(np.asarray(label), np.asarray(pred))
        if len(self._keys) < self.size:
            return np.ones(len(index), dtype=bool)
        # Once the reservoir is full only keys below its largest can enter: most batches add nothing.
        return sample_keys(index, self.seed) <= self._keys.max()

    def admit(self, rows: pd.DataFrame) -> None:
        """Merge candidate rows (with an `index` column) into the sample, keeping the smallest keys."""
        import pandas as pd

        keys = sample_keys(rows["index"].to_numpy(), self.seed)
        merged = rows if self._rows is None else pd.concat([self._rows, rows], ignore_index=True)
        keys = np.concatenate([self._keys, keys])
        if len(keys) > self.size:
            # Ties of 64-bit keys are broken by index so the result never depends on arrival order.
            order = np.lexsort((merged["index"].to_numpy(), keys))[: self.size]
            merged, keys = merged.iloc[order], keys[order]
        self._rows, self._keys = merged.reset_index(drop=True), keys

    def _count_pairs(self, label: np.ndarray, pred: np.ndarray) -> None:
        ints = label.dtype.kind in "iu" and pred.dtype.kind in "iu"
        if not (ints and len(label) and min(label.min(), pred.min()) >= 0):
            self._pairs.update(zip(label.tolist(), pred.tolist(), strict=True))
            return
        top = int(max(label.max(), pred.max())) + 1
        if top <= DENSE_CLASSES:
            # A dense (C, C) count matrix, grown to the largest class seen: one bincount per batch,
            # and memory bounded by the classes, not the rows (1,000 classes: 8 MB).
            size = len(self._dense)
            if top > size:
                grown = np.zeros((top, top), dtype=np.int64)
                grown[:size, :size] = self._dense
                self._dense = grown
                size = top
            codes, counts = np.unique(label.astype(np.int64) * size + pred.astype(np.int64), return_counts=True)
            self._dense.reshape(-1)[codes] += counts
        else:
            codes = (label.astype(np.int64) << 32) | pred.astype(np.int64)
            uniq, counts = np.unique(codes, return_counts=True)
            for a, b, c in zip((uniq >> 32).tolist(), (uniq & 0xFFFFFFFF).tolist(), counts.tolist(), strict=True):
                self._pairs[(a, b)] += c

    def count_items(self, n: int) -> None:
        """Count rows whose misclassified part was given to `add(..., misclassified_only=True)`."""
        self.items += n

    def result(self, columns: list[str] | None = None, *, top_pairs: int | None = None) -> ErrorSample:
        """The sample (sorted by index) and the `top_pairs` most frequent confused pairs (None: all)."""
        import pandas as pd

        rows = self._rows if self._rows is not None else pd.DataFrame(columns=columns or ["index", "label", "pred"])
        rows = rows.sort_values("index", kind="stable").reset_index(drop=True)
        a, b = np.nonzero(self._dense)
        c = self._dense[a, b]
        if top_pairs is not None and len(c) > top_pairs and not self._pairs:
            # Only pairs at least as frequent as the top_pairs-th can be among the top (ties kept).
            # Not when batches with classes past DENSE_CLASSES went to the dict as well: a pair's
            # count may then be split between the two, and only its sum ranks it.
            kth = np.partition(c, len(c) - top_pairs)[len(c) - top_pairs]
            keep = c >= kth
            a, b, c = a[keep], b[keep], c[keep]
        counts = Counter(self._pairs)
        for x, y, n in zip(a.tolist(), b.tolist(), c.tolist(), strict=True):
            counts[(x, y)] += n
        pairs = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0][0]), str(kv[0][1])))
        return ErrorSample(
            rows=rows,
            items=self.items,
            errors=self.errors,
            size=self.size,
            seed=self.seed,
            pairs=tuple((x, y, n) for (x, y), n in pairs[:top_pairs]),
        )


def sample_errors(predictions: pd.DataFrame, size: int, seed: int = 0) -> ErrorSample:
    """The whole-table form: `predictions` has index, label, pred (and any other columns to keep)."""
    sampler = ErrorSampler(size, seed)
    sampler.add(predictions)
    return sampler.result(list(predictions.columns))


# --------------------------------------------------------------------------- the errors command's result

SUSPECT_RULE = "confident_learning"


@dataclass(frozen=True)
class ErrorsSummary:
    split: str
    items: int
    errors: int
    error_ci: tuple[float, float]
    sample: int  # rows in the sheet
    asked: int  # --sample
    seed: int
    sheet: str
    contact_sheet: str | None
    categories: tuple[str, ...]
    pairs: tuple[tuple[str, str, int], ...]  # ten most-confused (true, predicted, count)
    suspect: int | None  # rows flagged suspect_mislabel (None: no confidence / p_label columns)
    source: str  # where the predictions came from
    backup: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    thresholds: dict[str, float] | None = None  # class name -> its confident-learning threshold
    confusion_png: str | None = None
    grown: tuple[tuple[str, str, float, float, int], ...] = ()  # (true, pred, before, after, count), largest first
    confusion_splits: tuple[str, ...] = ()  # the splits the confusion image shows
    thresholds_split: str | None = None  # the split the thresholds were computed on
    neighbours: int | None = None  # nearest items whose labels were compared (None: not compared)

    @property
    def error(self) -> float:
        return self.errors / self.items if self.items else 0.0

    def to_json(self) -> dict[str, object]:
        """The document of `diagnose errors --json`."""
        s = self
        return {
            "split": s.split,
            "items": s.items,
            "errors": s.errors,
            "error": s.error,
            "error_ci": [s.error_ci[0], s.error_ci[1]],
            "sample": s.sample,
            "sample_asked": s.asked,
            "all_errors": s.sample == s.errors,
            "seed": s.seed,
            "sheet": s.sheet if s.errors else None,
            "contact_sheet": s.contact_sheet,
            "confusion_png": s.confusion_png,
            "confusion_splits": list(s.confusion_splits),
            "grown_confusions": [
                {"label": t, "pred": p, "before": x, "after": y, "growth": y - x, "count": n} for t, p, x, y, n in s.grown
            ],
            "backup": s.backup,
            "categories": list(s.categories),
            "pairs": [{"label": a, "pred": b, "count": c} for a, b, c in s.pairs],
            "suspect_mislabel": s.suspect,
            "suspect_rule": SUSPECT_RULE if s.neighbours is None else f"{SUSPECT_RULE}+neighbours",
            "suspect_thresholds": s.thresholds,
            "suspect_thresholds_split": s.thresholds_split,
            "suspect_neighbours": s.neighbours,
            "source": s.source,
            "notes": list(s.notes),
        }
