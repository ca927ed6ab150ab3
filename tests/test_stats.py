"""Intervals against values computed by hand and by an independent formula."""

from __future__ import annotations

import math

import pytest

from diagnose.core.stats import (
    detectable_difference,
    mean_difference_interval,
    newcombe_interval,
    wilson_interval,
)


def test_wilson_matches_hand_computation() -> None:
    # 46 errors of 1000: p = 0.046, z = 1.96.
    z = 1.959963984540054
    n, p = 1000, 0.046
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = wilson_interval(46, 1000)
    assert lo == pytest.approx(centre - half, abs=1e-12)
    assert hi == pytest.approx(centre + half, abs=1e-12)
    assert (round(lo, 4), round(hi, 4)) == (0.0347, 0.0608)


def test_wilson_edges() -> None:
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_newcombe_against_published_example() -> None:
    # Newcombe (1998), Table II, example (a): 56/70 vs 48/80; the difference 0.2 has the
    # hybrid-score interval 0.0524 to 0.3339 (method 10).
    lo, hi = newcombe_interval(48, 80, 56, 70)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)


def test_mean_difference_interval() -> None:
    lo, hi = mean_difference_interval(1.0, 2.0, 100, 1.5, 1.0, 400)
    half = 1.959963984540054 * math.sqrt(4 / 100 + 1 / 400)
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half))


def test_detectable_difference_300_items() -> None:
    # "dev has 300 items: gaps under about 5 points are not distinguishable" at a 10% error rate.
    assert detectable_difference(300, 0.10) == pytest.approx(0.048, abs=0.001)
