"""Did it help? Two runs of a classifier on the same splits: per split, per class and per gap.

For each split the old and new error, the change (new - old) and its 95% interval:

- **paired** when both runs scored the same items (matched by id, else by index): the exact
  McNemar test on the items that changed (b: old wrong and new right, c: old right and new wrong;
  two-sided p = min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)])), and Newcombe's interval for a
  difference of paired proportions (method 10, Statistics in Medicine 1998, 17:2635). Pairing
  removes the items both runs get right or wrong from the noise, so it sees smaller changes.
- **unpaired** otherwise (other items, other samples): Newcombe's hybrid score interval for two
  independent proportions (method 10 of his 1998 paper on unpaired differences) and the pooled
  two-proportion z-test.

Pure numpy and the standard library: no torch, no pandas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from diagnose.core.gaps import ALL_SPLITS, GAPS, Gap, compute_gaps, summarize_errors
from diagnose.core.stats import newcombe_interval
from diagnose.core.tally import paired_difference_interval

PAIRED_TEST = "mcnemar_exact"
UNPAIRED_TEST = "newcombe_unpaired"


@dataclass(frozen=True)
class SplitItems:
    """One split of one run. labels, preds: (N,) int class indices. ids: (N,) item ids (str);
    index: (N,) item positions in the split (int). They say which item each row is, to pair the
    runs: by id when both runs have ids, else by index; None when unknown."""

    labels: np.ndarray
    preds: np.ndarray
    ids: np.ndarray | None = None
    index: np.ndarray | None = None


@dataclass(frozen=True)
class Side:
    n: int
    errors: int

    @property
    def error(self) -> float:
        return self.errors / self.n if self.n else math.nan

    def to_json(self) -> dict[str, object]:
        return {"n": self.n, "errors": self.errors, "error": self.error}


@dataclass(frozen=True)
class Change:
    """old -> new on one split (or one class of it). fixed / broken: items the new run gets right /
    wrong that the old one got wrong / right (paired only)."""

    old: Side
    new: Side
    ci: tuple[float, float]
    p_value: float
    test: str
    fixed: int | None = None
    broken: int | None = None

    @property
    def change(self) -> float:
        return self.new.error - self.old.error

    @property
    def paired(self) -> bool:
        return self.test == PAIRED_TEST

    @property
    def significant(self) -> bool:
        return self.ci[0] > 0 or self.ci[1] < 0

    def to_json(self) -> dict[str, object]:
        return {"old": self.old.to_json(), "new": self.new.to_json(), "change": self.change,
                "ci": [self.ci[0], self.ci[1]], "p_value": self.p_value, "test": self.test}


@dataclass(frozen=True)
class ClassChange:
    index: int
    name: str
    change: Change

    def to_json(self) -> dict[str, object]:
        return {"class": self.name, "index": self.index, **self.change.to_json()}


@dataclass(frozen=True)
class GapChange:
    """One gap in each run (None where a run lacks one of its levels)."""

    name: str
    old: Gap | None
    new: Gap | None

    @property
    def change(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return self.new.value - self.old.value

    def to_json(self) -> dict[str, object]:
        return {"old": self.old.to_json() if self.old else None, "new": self.new.to_json() if self.new else None,
                "change": self.change}


@dataclass(frozen=True)
class Comparison:
    paired: bool  # every compared split was paired
    splits: dict[str, Change]
    gaps: dict[str, GapChange]
    verdict: tuple[str | None, str | None]  # (old problem, new problem)
    per_class: dict[str, list[ClassChange]]
    human_error: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        return {
            "paired": self.paired,
            "splits": {name: c.to_json() for name, c in self.splits.items()},
            "gaps": {name: g.to_json() for name, g in self.gaps.items()},
            "verdict": {"old": self.verdict[0], "new": self.verdict[1]},
            "human_error": self.human_error,
            "per_class": {split: [r.to_json() for r in rows] for split, rows in self.per_class.items()},
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- tests


def binom_cdf_half(k: int, n: int) -> float:
    """P[X <= k] for X ~ Binomial(n, 1/2), summed in log space (exact to ~1e-12 for any n)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]
    top = max(log_terms)
    total = sum(math.exp(t - top) for t in log_terms)
    return min(1.0, math.exp(top + math.log(total) - n * math.log(2.0)))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c (1.0 when both are 0)."""
    return min(1.0, 2.0 * binom_cdf_half(min(b, c), b + c))


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled z-test that two independent proportions are equal."""
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k2 / n2 - k1 / n1) / se
    return math.erfc(abs(z) / math.sqrt(2.0))


def paired_change(old_wrong: np.ndarray, new_wrong: np.ndarray) -> Change:
    """old_wrong, new_wrong: (N,) bool, item i the same item in both."""
    old_wrong = np.asarray(old_wrong, dtype=bool)
    new_wrong = np.asarray(new_wrong, dtype=bool)
    n = int(old_wrong.size)
    both = int(np.count_nonzero(old_wrong & new_wrong))
    fixed = int(np.count_nonzero(old_wrong & ~new_wrong))
    broken = int(np.count_nonzero(~old_wrong & new_wrong))
    neither = n - both - fixed - broken
    # p_a - p_b with a = the new run, b = the old one: the change in error.
    ci = paired_difference_interval(both, broken, fixed, neither) if n else (-1.0, 1.0)
    return Change(old=Side(n, both + fixed), new=Side(n, both + broken), ci=ci,
                  p_value=mcnemar_exact(fixed, broken), test=PAIRED_TEST, fixed=fixed, broken=broken)


def unpaired_change(old: Side, new: Side) -> Change:
    if old.n == 0 or new.n == 0:
        return Change(old=old, new=new, ci=(-1.0, 1.0), p_value=1.0, test=UNPAIRED_TEST)
    ci = newcombe_interval(old.errors, old.n, new.errors, new.n)
    return Change(old=old, new=new, ci=ci, p_value=two_proportion_p(old.errors, old.n, new.errors, new.n),
                  test=UNPAIRED_TEST)


# --------------------------------------------------------------------------- pairing


def _align(old: SplitItems, new: SplitItems) -> tuple[np.ndarray, np.ndarray] | str:
    """(positions in old, positions in new) of the same items in the same order, or why not."""
    if old.ids is not None and new.ids is not None:
        kind, ko, kn = "id", np.asarray(old.ids), np.asarray(new.ids)
    elif old.index is not None and new.index is not None:
        kind, ko, kn = "index", np.asarray(old.index), np.asarray(new.index)
    else:
        return "no item ids or indices common to both runs"
    if len(np.unique(ko)) != len(ko) or len(np.unique(kn)) != len(kn):
        return f"an item {kind} repeated within a run"
    if len(ko) != len(kn):
        common = len(np.intersect1d(ko, kn))
        return f"other items ({len(ko):,} and {len(kn):,} items, {common:,} in common)"
    oo, on = np.argsort(ko, kind="stable"), np.argsort(kn, kind="stable")
    if not np.array_equal(ko[oo], kn[on]):
        common = len(np.intersect1d(ko, kn))
        return f"other items ({common:,} of {len(ko):,} in common)"
    return oo, on


def _class_name(index: int, classes: Sequence[str] | None) -> str:
    return classes[index] if classes is not None and index < len(classes) else str(index)


def compare_runs(
    old: Mapping[str, SplitItems],
    new: Mapping[str, SplitItems],
    *,
    human_error: float | None = None,
    classes: Sequence[str] | None = None,
) -> Comparison:
    """Compare two runs split by split (the splits both have), class by class and gap by gap."""
    notes: list[str] = []
    splits: dict[str, Change] = {}
    per_class: dict[str, list[ClassChange]] = {}
    for split in ALL_SPLITS:
        if split not in old or split not in new:
            if split in old or split in new:
                notes.append(f"{split}: only in the {'old' if split in old else 'new'} run; not compared")
            continue
        a, b = old[split], new[split]
        aligned = _align(a, b)
        if isinstance(aligned, tuple):
            oo, on = aligned
            labels_old, labels_new = np.asarray(a.labels)[oo], np.asarray(b.labels)[on]
            relabeled = int(np.count_nonzero(labels_old != labels_new))
            if relabeled:
                notes.append(f"{split}: {relabeled:,} items have other labels in the new run; "
                             "each run is scored against its own labels")
            wrong_old = labels_old != np.asarray(a.preds)[oo]
            wrong_new = labels_new != np.asarray(b.preds)[on]
            splits[split] = paired_change(wrong_old, wrong_new)
            rows = []
            for c in np.unique(labels_new):
                mask = labels_new == c
                rows.append(ClassChange(int(c), _class_name(int(c), classes), paired_change(wrong_old[mask], wrong_new[mask])))
        else:
            notes.append(f"{split}: unpaired ({aligned})")
            la, lb = np.asarray(a.labels), np.asarray(b.labels)
            wa, wb = la != np.asarray(a.preds), lb != np.asarray(b.preds)
            splits[split] = unpaired_change(Side(len(la), int(wa.sum())), Side(len(lb), int(wb.sum())))
            rows = []
            for c in np.union1d(np.unique(la), np.unique(lb)):
                ma, mb = la == c, lb == c
                rows.append(ClassChange(int(c), _class_name(int(c), classes), unpaired_change(
                    Side(int(ma.sum()), int(wa[ma].sum())), Side(int(mb.sum()), int(wb[mb].sum())))))
        per_class[split] = rows
    if not splits:
        raise ValueError(f"no split in both runs (old: {', '.join(old) or 'none'}; new: {', '.join(new) or 'none'})")

    def report(side: str) -> tuple[dict[str, Gap | None], str | None]:
        summaries = {s: summarize_errors(s, getattr(c, side).errors, getattr(c, side).n)
                     for s, c in splits.items() if getattr(c, side).n}
        r = compute_gaps(summaries, human_error=human_error)
        return r.gaps, r.verdict.problem

    old_gaps, old_problem = report("old")
    new_gaps, new_problem = report("new")
    gaps = {g: GapChange(g, old_gaps.get(g), new_gaps.get(g)) for g in GAPS}
    return Comparison(
        paired=all(c.paired for c in splits.values()),
        splits=splits,
        gaps=gaps,
        verdict=(old_problem, new_problem),
        per_class=per_class,
        human_error=human_error,
        notes=tuple(notes),
    )
