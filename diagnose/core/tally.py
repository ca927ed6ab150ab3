"""Count an error-analysis sheet: marks per category, their 95% intervals and error ceilings.

A person marks each sampled misclassified item with the categories it falls in (the tally sheet of the
seeds: Blurry, a confusable class, Mislabel, note; "pick the errors with more items to fix"). This
module turns the marked cells into counts, shares with Wilson intervals, ceilings (share x the split
error: the most that fixing a category can take off the error) and says which category to work on
first, and whether the leader is distinguishable from the runner-up at this sample size.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from diagnose.core.stats import Z95, wilson_interval

# A cell counts as a mark unless it is empty or one of these (compared trimmed and lower-cased). The
# localized words are what Excel writes for FALSE in German, French, Spanish/Italian/Portuguese and
# Dutch when it saves booleans into a CSV.
NOT_A_MARK: frozenset[str] = frozenset(
    {"", "0", "no", "false", "-", "\u2013", "\u2014", "falsch", "faux", "falso", "onwaar"}
)

# Words too common to hint at a missing category.
_STOP = """a an and are as at be but by for from has have in is it its of on or so than that the
    then this to too was were with not no very also maybe just like looks look seems"""
STOPWORDS: frozenset[str] = frozenset(_STOP.split())
_WORD = re.compile(r"[^\W\d_][\w'-]*[^\W_]|[^\W\d_]", re.UNICODE)


def is_mark(cell: str | None) -> bool:
    """True when a person marked this cell: any non-empty text except 0 (any numeric zero), no,
    false, '-'. So x, 1, yes, true and a check mark all count."""
    if cell is None:
        return False
    text = cell.strip().lower()
    if text in NOT_A_MARK:
        return False
    try:
        return float(text.replace(",", ".")) != 0.0
    except ValueError:
        return True


@dataclass(frozen=True)
class CategoryCount:
    """One category. share: count / rows; ci: 95% Wilson interval of share; ceiling: share x error."""

    name: str
    count: int
    share: float
    ci: tuple[float, float]
    ceiling: float | None
    ceiling_ci: tuple[float, float] | None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "count": self.count,
            "share": self.share,
            "ci": [self.ci[0], self.ci[1]],
            "ceiling": self.ceiling,
        }


@dataclass(frozen=True)
class LeaderTest:
    """The leader against the runner-up on the same rows: difference of shares and its 95% interval."""

    leader: str
    runner_up: str
    difference: float
    ci: tuple[float, float]
    rows_needed: int | None  # rows at which the observed difference would become distinguishable

    @property
    def distinguishable(self) -> bool:
        return self.ci[0] > 0

    def to_json(self) -> dict[str, object]:
        return {
            "leader": self.leader,
            "runner_up": self.runner_up,
            "difference": self.difference,
            "ci": [self.ci[0], self.ci[1]],
            "distinguishable": self.distinguishable,
            "rows_needed": self.rows_needed,
        }


@dataclass(frozen=True)
class SheetTally:
    rows: int  # rows counted (the denominator of every share)
    unmarked: int  # rows with no mark in any category
    categories: tuple[CategoryCount, ...]  # sorted by count, then sheet order
    error: float | None  # the split's error rate the sample was drawn from
    leader_test: LeaderTest | None
    tied_with_first: tuple[str, ...]  # categories not distinguishable from the first one
    note_words: tuple[tuple[str, int], ...]  # (word, rows whose note has it), most frequent first
    skipped_unmarked: bool = False
    context: TallyContext | None = None  # where the sheet and the error rate came from, when known

    @property
    def first(self) -> str | None:
        if not self.categories or self.categories[0].count == 0:
            return None
        return self.categories[0].name


def paired_difference_interval(
    both: int, only_a: int, only_b: int, neither: int, z: float = Z95
) -> tuple[float, float]:
    """95% interval for p_a - p_b when both shares are counted on the same rows (paired data).

    Newcombe's method 10 (Statistics in Medicine 1998, 17:2635): the two Wilson intervals combined
    with the phi correlation of the 2x2 table. Categories marked on the same rows are not
    independent samples, so the unpaired (independent) interval would be wrong: an item can be in
    both, and the shares move together.
    """
    n = both + only_a + only_b + neither
    if n == 0:
        return (-1.0, 1.0)
    ka, kb = both + only_a, both + only_b
    pa, pb = ka / n, kb / n
    la, ua = wilson_interval(ka, n, z)
    lb, ub = wilson_interval(kb, n, z)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = 0.0 if margins == 0 else (both * neither - only_a * only_b) / math.sqrt(margins)
    d = pa - pb
    delta = math.sqrt(max(0.0, (pa - la) ** 2 - 2 * phi * (pa - la) * (ub - pb) + (ub - pb) ** 2))
    eps = math.sqrt(max(0.0, (ua - pa) ** 2 - 2 * phi * (ua - pa) * (pb - lb) + (pb - lb) ** 2))
    return (max(-1.0, d - delta), min(1.0, d + eps))


def _leader_test(names: Sequence[str], marks: Sequence[Sequence[bool]], i: int, j: int) -> LeaderTest:
    both = only_a = only_b = neither = 0
    for row in marks:
        a, b = row[i], row[j]
        both += a and b
        only_a += a and not b
        only_b += b and not a
        neither += not a and not b
    n = len(marks)
    ci = paired_difference_interval(both, only_a, only_b, neither)
    d = (only_a - only_b) / n if n else 0.0
    rows_needed = None
    if ci[0] <= 0 < d:
        # Half-widths shrink like 1/sqrt(n): the rows at which the lower end would pass zero if the
        # shares held. A rough guide for --sample, not a promise.
        rows_needed = math.ceil(n * ((d - ci[0]) / d) ** 2)
    return LeaderTest(names[i], names[j], d, ci, rows_needed)


def count_note_words(notes: Sequence[str], *, top: int = 10, min_rows: int = 2) -> tuple[tuple[str, int], ...]:
    """Words found in at least `min_rows` notes, by the number of notes they appear in."""
    counter: Counter[str] = Counter()
    for note in notes:
        words = {w.lower() for w in _WORD.findall(note or "")}
        counter.update(w for w in words if len(w) >= 3 and w not in STOPWORDS)
    ranked = sorted(((w, c) for w, c in counter.items() if c >= min_rows), key=lambda wc: (-wc[1], wc[0]))
    return tuple(ranked[:top])


def tally_marks(
    names: Sequence[str],
    cells: Sequence[Sequence[str | None]],
    *,
    notes: Sequence[str] | None = None,
    error: float | None = None,
    skip_unmarked: bool = False,
) -> SheetTally:
    """SheetTally a sheet.

    names: category names, in sheet order. cells: one row per sheet row, one cell per category.
    error: the split's error rate in [0, 1] (None when unknown: no ceilings).
    skip_unmarked: leave rows with no mark out of the denominator (for a sheet labeled part-way).
    """
    if error is not None and not 0.0 <= error <= 1.0:
        raise ValueError(f"expected an error rate in [0, 1], got {error}")
    all_marks = [[is_mark(c) for c in row] for row in cells]
    unmarked = sum(1 for row in all_marks if not any(row))
    marks = [row for row in all_marks if any(row)] if skip_unmarked else all_marks
    n = len(marks)
    counts = [sum(row[k] for row in marks) for k in range(len(names))]
    cats = []
    for name, count in zip(names, counts, strict=True):
        share = count / n if n else 0.0
        ci = wilson_interval(count, n)
        cats.append(
            CategoryCount(
                name=name,
                count=count,
                share=share,
                ci=ci,
                ceiling=None if error is None else share * error,
                ceiling_ci=None if error is None else (ci[0] * error, ci[1] * error),
            )
        )
    order = sorted(range(len(names)), key=lambda k: -counts[k])  # stable: ties keep sheet order
    leader_test = None
    tied: list[str] = []
    if len(order) >= 2 and n and counts[order[0]] > 0:
        leader_test = _leader_test(names, marks, order[0], order[1])
        for k in order[1:]:
            if counts[k] and not _leader_test(names, marks, order[0], k).distinguishable:
                tied.append(names[k])
    return SheetTally(
        rows=n,
        unmarked=unmarked,
        categories=tuple(cats[k] for k in order),
        error=error,
        leader_test=leader_test,
        tied_with_first=tuple(tied),
        note_words=count_note_words(notes or []),
        skipped_unmarked=skip_unmarked,
    )


@dataclass(frozen=True)
class TallyContext:
    """Where a tally's sheet and error rate came from (shown beside the counts)."""

    sheet: str
    split: str | None
    error_source: str | None  # where the error rate came from ("--error", a manifest path), or None
    skipped_rows: int = 0
    split_errors: int | None = None  # misclassified items in the whole split (from the manifest)
