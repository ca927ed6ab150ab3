"""SheetTally arithmetic: marks, counts, Wilson intervals, ceilings, the paired leader test, note words."""

from __future__ import annotations

import math

import numpy as np
import pytest

from diagnose.core.tally import count_note_words, is_mark, paired_difference_interval, tally_marks


@pytest.mark.parametrize("cell", ["x", "X", "1", "yes", "\u2713", "true", "TRUE", " x ", "blurry", "2", "0.5"])
def test_marks(cell: str) -> None:
    assert is_mark(cell)


@pytest.mark.parametrize("cell", ["", " ", "0", "no", "No", "false", "FALSE", "-", "0.0", "0,0", "FALSCH", None])
def test_not_marks(cell: str | None) -> None:
    assert not is_mark(cell)


def _wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_counts_shares_intervals_and_ceilings_match_a_plain_loop() -> None:
    rng = np.random.default_rng(0)
    names = ["blurry", "confusable", "mislabeled", "other"]
    probs = [0.2, 0.1, 0.31, 0.05]
    cells = [["x" if rng.random() < p else rng.choice(["", "0", "no"]) for p in probs] for _ in range(100)]
    t = tally_marks(names, cells, error=0.12)
    counts = dict.fromkeys(names, 0)
    unmarked = 0
    for row in cells:
        hit = False
        for name, cell in zip(names, row, strict=True):
            if cell == "x":
                counts[name] += 1
                hit = True
        unmarked += not hit
    assert t.rows == 100 and t.unmarked == unmarked
    assert [c.name for c in t.categories] == sorted(names, key=lambda n: -counts[n])
    for c in t.categories:
        assert c.count == counts[c.name]
        assert c.share == pytest.approx(counts[c.name] / 100)
        lo, hi = _wilson_by_hand(counts[c.name], 100)
        assert c.ci == (pytest.approx(lo), pytest.approx(hi))
        assert c.ceiling == pytest.approx(counts[c.name] / 100 * 0.12)
    assert t.first == "mislabeled"


def test_wilson_literal_for_the_issue_example() -> None:
    t = tally_marks(["mislabeled"], [["x"]] * 31 + [[""]] * 69, error=0.12)
    (c,) = t.categories
    assert c.ci == (pytest.approx(0.2278, abs=1e-4), pytest.approx(0.4063, abs=1e-4))
    assert c.ceiling == pytest.approx(0.0372)


def test_skip_unmarked_leaves_them_out_of_the_denominator() -> None:
    cells = [["x", ""]] * 30 + [["", "x"]] * 20 + [["", ""]] * 50
    t = tally_marks(["a", "b"], cells, skip_unmarked=True)
    assert t.rows == 50 and t.unmarked == 50
    assert t.categories[0].share == pytest.approx(0.6)
    assert t.categories[0].ceiling is None


def test_paired_interval_approaches_the_wald_interval_for_large_samples() -> None:
    # both, only_a, only_b, neither for n = 20,000: the score interval and the paired Wald interval agree.
    a, b, c, d = 3000, 2600, 2200, 12200
    n = a + b + c + d
    diff = (b - c) / n
    se = math.sqrt((b + c) / n - ((b - c) / n) ** 2) / math.sqrt(n)
    lo, hi = paired_difference_interval(a, b, c, d)
    assert lo == pytest.approx(diff - 1.96 * se, abs=5e-4)
    assert hi == pytest.approx(diff + 1.96 * se, abs=5e-4)


def test_paired_interval_covers_95_percent() -> None:
    # Correlated marks (an item blurry is often also confusable): coverage of the true difference.
    rng = np.random.default_rng(1)
    p = np.array([0.15, 0.20, 0.10, 0.55])  # both, only_a, only_b, neither -> true difference 0.10
    hits = 0
    trials = 2000
    for counts in rng.multinomial(100, p, size=trials):
        lo, hi = paired_difference_interval(*counts.tolist())
        hits += lo <= 0.10 <= hi
    assert 0.93 <= hits / trials <= 0.975


def test_leaders_not_distinguishable_at_a_small_sample() -> None:
    cells = [["x", "x"]] * 5 + [["x", ""]] * 26 + [["", "x"]] * 20 + [["", ""]] * 49
    t = tally_marks(["mislabeled", "blurry"], cells)
    assert t.first == "mislabeled"
    assert t.leader_test is not None and not t.leader_test.distinguishable
    assert t.tied_with_first == ("blurry",)
    assert t.leader_test.difference == pytest.approx(0.06)
    assert t.leader_test.rows_needed is not None and t.leader_test.rows_needed > 100


def test_leader_distinguishable_when_far_ahead() -> None:
    cells = [["x", ""]] * 40 + [["", "x"]] * 5 + [["", ""]] * 55
    t = tally_marks(["mislabeled", "blurry"], cells)
    assert t.leader_test is not None and t.leader_test.distinguishable
    assert t.tied_with_first == ()


def test_no_marks_names_no_first() -> None:
    t = tally_marks(["a", "b"], [["", ""]] * 10)
    assert t.first is None and t.unmarked == 10


def test_note_words_count_rows_not_repeats() -> None:
    notes = ["dark dark image", "very dark", "rotated digit", "Rotated!", "the digit is cut", ""]
    assert count_note_words(notes) == (("dark", 2), ("digit", 2), ("rotated", 2))
