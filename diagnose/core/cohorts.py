"""Error cohorts: groups of items whose error rate is significantly above the rest of the split.

A *condition* is one column compared with a value: `camera = C` for a column of few values, or a
quantile range of a numeric column (`exposure >= 0.91`, the top tenth). A *slice* is one condition
or two conditions on different columns together. Every slice with at least `min_support` items is
tried. The items are split at random into two halves: on the first, each slice's error count is
tested against the rest with a one-sided Fisher exact test (the hypergeometric tail), and the
p-values are adjusted for the number of slices tried (Benjamini & Hochberg 1995, false discovery
rate 5%). The slices that pass are tested again on the second half, adjusted for how many went on
(found on one half, confirmed on the other), and only those that pass again are cohorts. A cohort's
error, Wilson interval and lift over the rest are measured on the second half, which took no part
in choosing it; n is its size in the whole split.

Slice search after SliceFinder (Chung et al. 2019, "Slice Finder: Automated Data Slicing for Model
Validation", ICDE), which also tests slices with a correction for the number tried; supports are
counted with one matrix product, so 100,000 items and 20 columns take seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from diagnose.core.stats import wilson_interval

# Columns with at most this many distinct values are read as categories (one condition per value).
MAX_CATEGORIES = 20
# Quantile cuts of a numeric column: the bottom and top tenth and quarter, and the two middle quarters.
TAILS = (0.1, 0.25)
FDR = 0.05
MIN_SUPPORT_SHARE = 0.01
MIN_SUPPORT_ITEMS = 30


@dataclass(frozen=True)
class Condition:
    """column op value: op is "=", "<=", ">=" or "in" (value then (low, high): low <= x < high)."""

    column: str
    op: str
    value: object

    def describe(self) -> str:
        if self.op == "in":
            lo, hi = _pair(self.value)
            return f"{_fmt(lo)} <= {self.column} < {_fmt(hi)}"
        return f"{self.column} {self.op} {_fmt(self.value)}"

    def to_json(self) -> dict[str, object]:
        if self.op == "in":
            lo, hi = _pair(self.value)
            return {"column": self.column, "op": ">=,<", "value": [_plain(lo), _plain(hi)]}
        return {"column": self.column, "op": self.op, "value": _plain(self.value)}


@dataclass(frozen=True)
class Cohort:
    conditions: tuple[Condition, ...]
    n: int  # items of the whole split in the slice
    n_confirm: int  # of them in the confirming half
    error: float  # error rate in the slice, confirming half
    ci: tuple[float, float]  # 95% Wilson interval of `error`
    rest_error: float  # error rate of the rest, confirming half
    lift: float  # error / rest_error
    p_adjusted: float  # Benjamini-Hochberg adjusted p-value on the confirming half

    @property
    def description(self) -> str:
        return " and ".join(c.describe() for c in self.conditions)

    def to_json(self) -> dict[str, object]:
        return {"description": self.description, "conditions": [c.to_json() for c in self.conditions], "n": self.n,
                "n_confirm": self.n_confirm, "error": self.error, "ci": [self.ci[0], self.ci[1]],
                "rest_error": self.rest_error, "lift": self.lift, "p_adjusted": self.p_adjusted}


@dataclass(frozen=True)
class CohortSearch:
    split: str
    items: int
    errors: int
    min_support: int
    slices_tried: int
    found_first_half: int
    cohorts: tuple[Cohort, ...]
    columns: tuple[str, ...]
    seed: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        return {"split": self.split, "items": self.items, "errors": self.errors,
                "error": self.errors / self.items if self.items else 0.0, "min_support": self.min_support,
                "slices_tried": self.slices_tried, "found_first_half": self.found_first_half,
                "columns": list(self.columns), "seed": self.seed, "fdr": FDR,
                "cohorts": [c.to_json() for c in self.cohorts], "notes": list(self.notes)}


def _pair(v: object) -> tuple[object, object]:
    assert isinstance(v, tuple) and len(v) == 2
    return v[0], v[1]


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _plain(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    return v


def conditions_of(name: str, values: np.ndarray) -> list[tuple[Condition, np.ndarray]]:
    """The conditions on one column and their (N,) masks. Missing values (None, NaN) meet none."""
    values = np.asarray(values)
    out: list[tuple[Condition, np.ndarray]] = []
    numeric = values.dtype.kind in "iuf"
    present = ~_missing(values)
    if not present.any():
        return out
    distinct = np.unique(values[present].astype(str) if not numeric else values[present])
    if values.dtype.kind == "b" or len(distinct) <= MAX_CATEGORIES or not numeric:
        if len(distinct) > MAX_CATEGORIES:
            return out  # a free-text or id column: no category holds enough items to test
        for v in distinct:
            mask = present & ((values == v) if numeric or values.dtype.kind == "b" else (values.astype(str) == v))
            out.append((Condition(name, "=", _plain(v)), mask))
        return out
    x = values.astype(np.float64)
    qs = np.quantile(x[present], [TAILS[0], TAILS[1], 0.5, 1 - TAILS[1], 1 - TAILS[0]])
    lo10, lo25, mid, hi25, hi10 = (float(q) for q in qs)
    with np.errstate(invalid="ignore"):
        out.append((Condition(name, "<=", lo10), present & (x <= lo10)))
        out.append((Condition(name, "<=", lo25), present & (x <= lo25)))
        out.append((Condition(name, "in", (lo25, mid)), present & (x > lo25) & (x < mid)))
        out.append((Condition(name, "in", (mid, hi25)), present & (x >= mid) & (x < hi25)))
        out.append((Condition(name, ">=", hi25), present & (x >= hi25)))
        out.append((Condition(name, ">=", hi10), present & (x >= hi10)))
    # Drop duplicates (a column of few distinct values gives equal quantiles).
    seen: set[bytes] = set()
    unique = []
    for cond, mask in out:
        key = np.packbits(mask).tobytes()
        if key not in seen and mask.any():
            seen.add(key)
            unique.append((cond, mask))
    return unique


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in values.tolist()], dtype=bool)
    return np.zeros(len(values), dtype=bool)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Adjusted p-values (step-up, monotone, capped at 1)."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def fisher_greater(k: np.ndarray, n: np.ndarray, errors: int | np.ndarray, items: int | np.ndarray) -> np.ndarray:
    """One-sided Fisher exact p-value that a slice of n items holding k errors errs more than the
    rest, the whole holding `errors` of `items` (one number, or one per slice): P(X >= k),
    X ~ Hypergeometric(items, errors, n), summed exactly over the tail from a table of log-factorials."""
    k = np.asarray(k, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    big_k = np.broadcast_to(np.asarray(errors, dtype=np.int64), k.shape)
    big_n = np.broadcast_to(np.asarray(items, dtype=np.int64), k.shape)
    top_items = int(big_n.max()) if len(big_n) else 0
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, top_items + 1, dtype=np.float64)))])
    out = np.ones(len(k))
    for i, (ki, ni, ei, ti) in enumerate(zip(k.tolist(), n.tolist(), big_k.tolist(), big_n.tolist(), strict=True)):
        floor = max(0, ni - (ti - ei))
        low, high = max(ki, floor), min(ni, ei)
        if low > high:
            out[i] = 0.0
            continue
        if low <= floor:
            continue  # the whole support: P = 1
        x = np.arange(low, high + 1)
        logp = (log_fact[ei] - log_fact[x] - log_fact[ei - x] + log_fact[ti - ei] - log_fact[ni - x]
                - log_fact[ti - ei - ni + x] - (log_fact[ti] - log_fact[ni] - log_fact[ti - ni]))
        peak = logp.max()
        out[i] = min(1.0, float(np.exp(peak) * np.exp(logp - peak).sum()))
    return out


def _p_values(slices: list[tuple[int, ...]], chosen: np.ndarray, n: np.ndarray, k: np.ndarray, items: int,
              errors: int) -> np.ndarray:
    """p-values of the `chosen` slices on one half: a slice against the rest of the half; a pair, in
    addition, against the rest of each of its two conditions (the larger p-value counts: the pair must
    err more than the rest, and more than either condition without the other)."""
    p = fisher_greater(k[chosen], n[chosen], errors, items)
    pair_at = [pos for pos, s in enumerate(chosen.tolist()) if len(slices[s]) == 2]
    if pair_at:
        idx = chosen[pair_at]
        a = np.array([slices[s][0] for s in idx.tolist()])
        b = np.array([slices[s][1] for s in idx.tolist()])
        in_a = fisher_greater(k[idx], n[idx], k[a], n[a])
        in_b = fisher_greater(k[idx], n[idx], k[b], n[b])
        p[pair_at] = np.maximum(p[pair_at], np.maximum(in_a, in_b))
    return p


def find_cohorts(
    wrong: np.ndarray,
    columns: dict[str, np.ndarray],
    *,
    split: str = "dev",
    seed: int = 0,
    min_support: int | None = None,
    pairs: bool = True,
) -> CohortSearch:
    """Cohorts of a split. wrong: (N,) bool, the item is misclassified; columns: name -> (N,) values."""
    wrong = np.asarray(wrong, dtype=bool)
    n_items = len(wrong)
    support = min_support if min_support is not None else max(MIN_SUPPORT_ITEMS, math.ceil(MIN_SUPPORT_SHARE * n_items))
    conds: list[Condition] = []
    masks: list[np.ndarray] = []
    for name, values in columns.items():
        for cond, mask in conditions_of(name, values):
            if support <= mask.sum() < n_items:
                conds.append(cond)
                masks.append(mask)
    # The halves come from their own stream of the seed: data drawn with default_rng(seed) itself
    # (as tests and examples do) would otherwise share its first uniforms with the split into halves.
    rng = np.random.default_rng([seed, 0x636F68])
    first = rng.random(n_items) < 0.5
    halves = (first, ~first)
    notes: list[str] = []
    empty = CohortSearch(split, n_items, int(wrong.sum()), support, 0, 0, (), tuple(columns), seed, ())
    if not conds or wrong.all() or not wrong.any():
        return empty
    matrix = np.stack(masks, axis=1).astype(np.float32)  # (N, m)
    # Slices: each condition alone, and each pair on two different columns.
    m = len(conds)
    singles: list[tuple[int, ...]] = [(i,) for i in range(m)]
    doubles: list[tuple[int, ...]] = []
    if pairs and m > 1:
        both = matrix.T @ matrix  # (m, m) items meeting both
        col = np.array([c.column for c in conds])
        ii, jj = np.triu_indices(m, k=1)
        keep = (col[ii] != col[jj]) & (both[ii, jj] >= support) & (both[ii, jj] < np.minimum(np.diag(both)[ii], np.diag(both)[jj]))
        doubles = [(int(a), int(b)) for a, b in zip(ii[keep], jj[keep], strict=True)]
    slices: list[tuple[int, ...]] = singles + doubles
    counts = []
    for half in halves:
        h = matrix[half]
        e = wrong[half].astype(np.float32)
        n_pair = h.T @ h
        k_pair = h.T @ (h * e[:, None])
        n_s = np.array([n_pair[s[0], s[-1]] for s in slices])
        k_s = np.array([k_pair[s[0], s[-1]] for s in slices])
        counts.append((np.rint(n_s).astype(np.int64), np.rint(k_s).astype(np.int64), int(half.sum()), int(wrong[half].sum())))
    n1, k1, items1, errors1 = counts[0]
    ok1 = np.flatnonzero((n1 > 0) & (n1 < items1))
    p1 = np.ones(len(slices))
    p1[ok1] = _p_values(slices, ok1, n1, k1, items1, errors1)
    adj1 = benjamini_hochberg(p1)
    found = np.flatnonzero(adj1 <= FDR)
    n2, k2, items2, errors2 = counts[1]
    confirmed: list[Cohort] = []
    found = found[(n2[found] > 0) & (n2[found] < items2)]
    if len(found):
        adj2 = benjamini_hochberg(_p_values(slices, found, n2, k2, items2, errors2))
        whole = matrix.T @ matrix
        for pos, s in enumerate(found.tolist()):
            if adj2[pos] > FDR:
                continue
            k, n = int(k2[s]), int(n2[s])
            rest = (errors2 - k) / (items2 - n)
            err = k / n
            confirmed.append(Cohort(
                conditions=tuple(conds[i] for i in slices[s]), n=int(round(whole[slices[s][0], slices[s][-1]])),
                n_confirm=n, error=err, ci=wilson_interval(k, n), rest_error=rest,
                lift=err / rest if rest > 0 else math.inf, p_adjusted=float(adj2[pos]),
            ))
    confirmed.sort(key=lambda c: (c.p_adjusted, -c.lift, c.description))
    return CohortSearch(split, n_items, int(wrong.sum()), support, len(slices), int(len(found)), tuple(confirmed),
                        tuple(columns), seed, tuple(notes))
