"""Gap arithmetic, verdicts, tallies and per-class shares against hand computation and sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from diagnose.core.gaps import (
    ADVICE,
    MISSING_LEVELS_ADVICE,
    NO_GAP_ADVICE,
    SplitCounts,
    class_breakdown,
    compute_gaps,
    summarize_errors,
    summarize_values,
)

Z = 1.959963984540054


def _wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def _splits(**counts: tuple[int, int]):
    return {name: summarize_errors(name, k, n) for name, (k, n) in counts.items()}


def test_gaps_by_hand() -> None:
    # Near the illustration: human 1%, train 8%, train-dev 10%, dev 11.5%, test 12%.
    report = compute_gaps(
        _splits(train=(800, 10000), train_dev=(200, 2000), dev=(230, 2000), test=(240, 2000)), human_error=0.01
    )
    g = report.gaps
    assert g["avoidable_bias"].value == pytest.approx(0.07)
    assert g["variance"].value == pytest.approx(0.02)
    assert g["data_mismatch"].value == pytest.approx(0.015)
    assert g["dev_overfit"].value == pytest.approx(0.005)
    # avoidable bias: human error is given, so its interval is train's Wilson interval shifted.
    lo, hi = _wilson(800, 10000)
    assert g["avoidable_bias"].ci == pytest.approx((lo - 0.01, hi - 0.01))
    # variance: Newcombe's hybrid score interval, computed here from the two Wilson intervals.
    l1, u1 = _wilson(800, 10000)
    l2, u2 = _wilson(200, 2000)
    d = 0.10 - 0.08
    assert g["variance"].ci == pytest.approx(
        (d - math.sqrt((0.10 - l2) ** 2 + (u1 - 0.08) ** 2), d + math.sqrt((u2 - 0.10) ** 2 + (0.08 - l1) ** 2))
    )
    assert [g[k].significant for k in ("avoidable_bias", "variance", "data_mismatch", "dev_overfit")] == [
        True, True, False, False,
    ]
    # Two places the rounded result is checked by hand: variance 95% CI about 0.6 .. 3.5 points.
    assert (round(g["variance"].ci[0], 3), round(g["variance"].ci[1], 3)) == (0.006, 0.035)
    assert report.verdict.problem == "avoidable_bias"
    assert report.verdict.advice == ADVICE["avoidable_bias"]
    assert report.notes == ()


def test_verdict_ignores_large_but_insignificant_gaps() -> None:
    # dev - train_dev = 10 points on 20 items each: not significant. variance 3 points on big splits: is.
    report = compute_gaps(_splits(train=(500, 10000), train_dev=(800, 10000), dev=(3, 20)), human_error=0.05)
    assert report.gaps["data_mismatch"].value == pytest.approx(0.07)
    assert not report.gaps["data_mismatch"].significant
    assert report.gaps["variance"].significant
    assert report.verdict.problem == "variance"


def test_no_significant_gap() -> None:
    report = compute_gaps(_splits(train=(10, 100), dev=(12, 100)), human_error=0.1)
    assert report.verdict.problem is None
    assert report.verdict.advice == NO_GAP_ADVICE


def test_missing_levels_leave_gaps_unknown_with_notes() -> None:
    report = compute_gaps(_splits(train=(50, 1000), dev=(90, 1000)))
    assert report.gaps["avoidable_bias"] is None
    assert report.gaps["variance"] is None and report.gaps["data_mismatch"] is None and report.gaps["dev_overfit"] is None
    assert report.notes == (
        "no train_dev split: variance, data_mismatch unknown",
        "no test split: dev_overfit unknown",
        "avoidable bias unknown: pass --human-error (or human_error in DATA/diagnose.toml); it is at most the train error, 5.0%",
        "without a train_dev split, dev - train = +4.0 pts mixes variance and data mismatch; hold out part of train as train_dev to tell them apart",
    )
    assert report.verdict.problem is None and report.verdict.advice == MISSING_LEVELS_ADVICE
    js = report.to_json()
    assert js["gaps"] == {"avoidable_bias": None, "variance": None, "data_mismatch": None, "dev_overfit": None}
    assert js["splits"]["train"] == {"n": 1000, "errors": 50, "error": 0.05, "ci": list(_wilson(50, 1000))}


def test_regression_gaps_are_differences_of_means() -> None:
    a = summarize_values("train", 0.5, 1.0, 400)
    b = summarize_values("train_dev", 0.8, 1.2, 100)
    report = compute_gaps({"train": a, "train_dev": b}, metric="mse")
    half = Z * math.sqrt(1.0 / 400 + 1.44 / 100)
    assert report.gaps["variance"].value == pytest.approx(0.3)
    assert report.gaps["variance"].ci == pytest.approx((0.3 - half, 0.3 + half))
    assert a.ci == pytest.approx((0.5 - Z * 1.0 / 20, 0.5 + Z * 1.0 / 20))


def test_tally_against_sklearn() -> None:
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 5000)
    p = np.where(rng.random(5000) < 0.8, y, rng.integers(0, 7, 5000))
    t = SplitCounts(metric="error")
    for start in range(0, 5000, 333):  # uneven batches
        t.add_classes(y[start : start + 333], p[start : start + 333], 7)
    assert (t.confusion == confusion_matrix(y, p, labels=range(7))).all()
    assert t.n == 5000 and t.errors == int((y != p).sum())
    s = t.summary("dev")
    assert s.error == (y != p).mean() and s.errors == t.errors


def test_tally_grows_when_a_later_batch_has_a_new_class() -> None:
    t = SplitCounts(metric="error")
    t.add_classes(np.array([0, 1]), np.array([0, 0]), 2)
    t.add_classes(np.array([3]), np.array([2]), 4)
    assert t.confusion.tolist() == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]


def test_tally_regression_mean_and_sd() -> None:
    rng = np.random.default_rng(1)
    v = rng.exponential(2.0, 1001)
    t = SplitCounts(metric="mae")
    t.add_losses(v[:500])
    t.add_losses(v[500:])
    s = t.summary("test")
    assert s.error == pytest.approx(v.mean())
    assert s.sd == pytest.approx(v.std(ddof=1))


def test_class_breakdown_by_hand() -> None:
    # train: class 0 has 1 error of 10, class 1 has 2 of 10; train_dev: class 0 1 of 5, class 1 3 of 5.
    train = np.array([[9, 1], [2, 8]])
    train_dev = np.array([[4, 1], [3, 2]])
    rows = class_breakdown({"train": train, "train_dev": train_dev}, ["cat", "dog"])
    assert [r.name for r in rows] == ["cat", "dog"]
    assert rows[0].error == {"train": 0.1, "train_dev": 0.2}
    assert rows[1].n == {"train": 10, "train_dev": 5}
    # shares: cat 1/10 - 1/20 = 0.05, dog 3/10 - 2/20 = 0.2; total = 0.4 - 0.15 = 0.25.
    assert rows[0].contribution["variance"] == pytest.approx(0.05)
    assert rows[1].contribution["variance"] == pytest.approx(0.2)
    assert rows[0].contribution["data_mismatch"] is None


def test_tally_merge_of_shards_equals_one_pass() -> None:
    rng = np.random.default_rng(4)
    y, p = rng.integers(0, 5, 900), rng.integers(0, 5, 900)
    whole = SplitCounts(metric="error")
    whole.add_classes(y, p, 5)
    shards = [SplitCounts(metric="error") for _ in range(3)]
    for rank, t in enumerate(shards):  # a strided split, as a distributed sampler gives each rank
        t.add_classes(y[rank::3], p[rank::3], 5)
    merged = shards[0].merge(shards[1]).merge(shards[2])
    assert merged.n == whole.n and merged.errors == whole.errors
    assert (merged.confusion == whole.confusion).all()


def test_report_survives_a_json_round_trip_with_infinite_bounds() -> None:
    # A one-item regression split has the interval (0, inf); JSON stores inf as null.
    import json

    from diagnose.core.gaps import GapReport, compute_gaps, summarize_errors, summarize_values
    from diagnose.render import to_json_text

    reg = compute_gaps({"train": summarize_values("train", 0.5, 0.0, 1), "dev": summarize_values("dev", 0.7, 0.2, 50)},
                       human_error=0.1, metric="mse")
    back = GapReport.from_json(json.loads(to_json_text(reg.to_json())))
    assert back.splits["train"].ci[0] == 0.0 and math.isnan(back.splits["train"].ci[1])
    assert back.splits["dev"] == reg.splits["dev"]
    assert back.verdict == reg.verdict and back.notes == reg.notes

    cls = compute_gaps({s: summarize_errors(s, e, n) for s, (e, n) in
                        {"train": (46, 1000), "train_dev": (30, 300), "dev": (40, 250), "test": (45, 250)}.items()},
                       human_error=0.01)
    assert GapReport.from_json(json.loads(to_json_text(cls.to_json()))) == cls
