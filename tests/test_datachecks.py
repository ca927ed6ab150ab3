"""diagnose.core.datachecks and core.checks against independent computations (scipy, plain loops, hand numbers)."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest
import scipy.stats

from diagnose.core import datachecks as dc
from diagnose.core.checks import Check, gate, most_severe, worst_status
from diagnose.core.stats import detectable_difference
from fixtures.make_defects import digits, plant_duplicates, shift_split, skew_classes, split_arrays


@pytest.fixture(scope="module")
def healthy() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    x, y = digits()
    return split_arrays(x, y)


@pytest.fixture(scope="module")
def healthy_images() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    x, y = digits(images=True)
    return split_arrays(x, y)


def _summaries(splits, batch=100):
    out = {}
    for name, (x, _) in splits.items():
        s = dc.InputSummary()
        for start in range(0, len(x), batch):
            s.update(x[start : start + batch])
        out[name] = s
    return out


def _hashes(splits, batch=128):
    out = {}
    for name, (x, _) in splits.items():
        h = dc.ItemHashes()
        for start in range(0, len(x), batch):
            h.update(x[start : start + batch])
        out[name] = h
    return out


def _labels(splits):
    return {name: y for name, (_, y) in splits.items()}


# --- statistics --------------------------------------------------------------------------------------


@pytest.mark.parametrize("df", [1, 2, 3, 5, 9, 30, 99])
@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.84, 10.0, 42.0, 150.0, 400.0])
def test_chi2_sf_matches_scipy(x: float, df: int) -> None:
    expected = scipy.stats.chi2.sf(x, df)
    got = dc.chi2_sf(x, df)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_chi2_sf_edges() -> None:
    assert dc.chi2_sf(0.0, 3) == 1.0
    assert dc.chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)
    with pytest.raises(ValueError):
        dc.chi2_sf(1.0, 0)


def test_chi2_test_matches_scipy_contingency() -> None:
    a = np.array([30, 25, 0, 45, 12])
    b = np.array([10, 40, 0, 20, 30])
    stat, df, p = dc.chi2_test(a, b)
    ref = scipy.stats.chi2_contingency(np.vstack([a, b])[:, [0, 1, 3, 4]], correction=False)
    assert stat == pytest.approx(ref.statistic, rel=1e-12)
    assert df == ref.dof == 3
    assert p == pytest.approx(ref.pvalue, rel=1e-9)


def test_total_variation_by_hand() -> None:
    # p = (0.5, 0.5, 0), q = (0.25, 0.25, 0.5): TV = 0.5 * (0.25 + 0.25 + 0.5) = 0.5
    assert dc.total_variation(np.array([2, 2, 0]), np.array([1, 1, 2])) == pytest.approx(0.5)
    assert dc.total_variation(np.array([3, 1]), np.array([3, 1])) == 0.0


def test_input_summary_matches_numpy_over_batches() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal([[[1.0]], [[-2.0]], [[5.0]]], [[[0.5]], [[2.0]], [[3.0]]], size=(101, 3, 4, 5)).astype(np.float32)
    s = dc.InputSummary()
    for start in range(0, 101, 17):
        s.update(x[start : start + 17])
    per_channel = x.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(s.mean, per_channel.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(s.std, per_channel.std(axis=1), rtol=1e-9)
    item = x.reshape(101, 3, -1).astype(np.float64).mean(axis=2)
    np.testing.assert_allclose(s.item_mean, item.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(s.item_sd, item.std(axis=0, ddof=1), rtol=1e-8)
    assert s.n == 101 and s.count == 101 * 20 and s.vmin == pytest.approx(float(x.min()))


def test_gate_and_worst() -> None:
    checks = [Check("a", "pass", ""), Check("b", "warn", ""), Check("c", "skip", "")]
    assert worst_status(checks) == "warn"
    assert [c.id for c in gate(checks, "warn")] == ["b"]
    assert gate(checks, "fail") == []
    assert gate(checks, None) == []
    assert [c.id for c in gate([*checks, Check("d", "fail", "")], "fail")] == ["d"]
    assert worst_status([Check("s", "skip", "")]) == "skip"
    assert most_severe(["pass", "fail", "warn"]) == "fail"
    assert most_severe(["pass", "warn"]) == "warn"
    assert most_severe([]) == "pass"
    with pytest.raises(ValueError):
        Check("x", "bad", "")  # type: ignore[arg-type]


# --- split sizes and class balance -------------------------------------------------------------------


def test_split_sizes_ties_to_detectable_difference() -> None:
    c = dc.check_split_sizes({"train": 3000, "dev": 300, "test": 60})
    # 1.96 * sqrt(2 * 0.1 * 0.9 / 300) = 4.80 points
    assert c.details["splits"]["dev"]["detectable_gap"] == pytest.approx(1.959964 * math.sqrt(2 * 0.09 / 300), rel=1e-6)
    assert "dev has 300 items: gaps under about 5 points are not distinguishable" in c.evidence
    # 60 items: 10.7 points > 10 -> warn
    assert c.details["splits"]["test"]["detectable_gap"] == pytest.approx(detectable_difference(60, 0.1))
    assert c.status == "warn" and "test" in c.advice
    assert dc.check_split_sizes({"train": 3000, "dev": 300, "test": 300}).status == "pass"


def test_class_balance_skewed_train_fails_with_counts(healthy) -> None:
    skewed = skew_classes(healthy)
    c = dc.check_class_balance(_labels(skewed))
    counts = collections.Counter(skewed["train"][1].tolist())
    ratio = max(counts.values()) / min(counts.values())
    assert ratio >= dc.IMBALANCE_FAIL
    assert c.status == "fail"
    assert c.details["splits"]["train"]["imbalance_ratio"] == pytest.approx(ratio)
    assert c.details["splits"]["train"]["counts"]["0"] == counts[0]
    assert f"train {ratio:.1f}:1 (largest '0' {counts[0]}" in c.evidence
    for remedy in ("up-sample", "weight the loss", "two stages"):
        assert remedy in c.advice


def test_class_balance_healthy_passes(healthy) -> None:
    c = dc.check_class_balance(_labels(healthy), [str(i) for i in range(10)])
    assert c.status == "pass", c.evidence
    assert c.advice == ""


def test_class_balance_missing_train_class_fails(healthy) -> None:
    x, y = healthy["train"]
    keep = y != 7
    c = dc.check_class_balance({**_labels(healthy), "train": y[keep]}, [str(i) for i in range(10)])
    assert c.status == "fail" and c.details["splits"]["train"]["missing"] == ["7"]


def test_regression_labels_skip() -> None:
    labels = {"train": np.linspace(0, 1, 50), "dev": np.linspace(0, 1, 20)}
    assert dc.check_class_balance(labels).status == "skip"
    assert dc.check_label_shift(labels).status == "skip"


# --- shift ---------------------------------------------------------------------------------------------


def test_label_shift_fires_on_shifted_dev(healthy) -> None:
    shifted = shift_split(healthy)
    c = dc.check_label_shift(_labels(shifted))
    row = c.details["pairs"]["dev/test"]
    ca = np.bincount(shifted["dev"][1], minlength=10)
    cb = np.bincount(shifted["test"][1], minlength=10)
    assert row["tv"] == pytest.approx(0.5 * np.abs(ca / ca.sum() - cb / cb.sum()).sum())
    assert row["p"] == pytest.approx(scipy.stats.chi2_contingency(np.vstack([ca, cb])[:, (ca + cb) > 0], correction=False).pvalue, rel=1e-6)
    assert row["shifted"] and row["role"] == "same"
    assert c.status == "fail"
    assert "dev vs test: TV" in c.evidence


def test_label_shift_quiet_on_random_splits(healthy) -> None:
    c = dc.check_label_shift(_labels(healthy))
    assert c.status == "pass", c.evidence
    assert not any(r["shifted"] for r in c.details["pairs"].values())


def test_input_shift_fires_on_shifted_dev(healthy) -> None:
    shifted = shift_split(healthy, keep_classes=10)  # inputs only
    c = dc.check_input_shift(_summaries(shifted))
    row = c.details["pairs"]["dev/test"]
    assert c.status == "fail" and row["shifted"]
    # independent: per-feature z test (Bonferroni over 64 features x 6 pairs) and Cohen's d
    a, b = shifted["dev"][0].astype(np.float64), shifted["test"][0].astype(np.float64)
    diff = b.mean(axis=0) - a.mean(axis=0)
    se = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    pooled = np.sqrt((a.var(axis=0, ddof=1) + b.var(axis=0, ddof=1)) / 2)
    varying = pooled > 0
    z_crit = scipy.stats.norm.isf(dc.ALPHA / (2 * 64 * 6))
    d = np.abs(diff[varying]) / pooled[varying]
    expected = set(np.flatnonzero(varying)[(np.abs(diff[varying]) / se[varying] > z_crit) & (d >= dc.COHEN_D_MIN)].tolist())
    expected |= set(np.flatnonzero(~varying & (diff != 0)).tolist())  # constant pixels moved by the offset
    assert set(row["shifted_channels"]) == expected
    assert c.details["z_crit"] == pytest.approx(z_crit, rel=1e-9)
    assert "train vs train_dev" not in c.evidence
    # label shift untouched by an input-only shift
    assert dc.check_label_shift(_labels(shifted)).status == "pass"


def test_input_shift_quiet_on_random_splits(healthy, healthy_images) -> None:
    for splits in (healthy, healthy_images):
        c = dc.check_input_shift(_summaries(splits))
        assert c.status == "pass", c.evidence


def _widened(splits, name: str, factor: float, column: int | None = None):
    """A copy of the splits with `name`'s inputs spread `factor` times wider about their mean (one
    column, or all), the mean kept: what a split left unnormalized or stored in other units looks like."""
    out = {k: (x.astype(np.float64).copy(), y) for k, (x, y) in splits.items()}
    x = out[name][0]
    if column is None:
        out[name] = ((x - x.mean(axis=0)) * factor + x.mean(axis=0), out[name][1])
    else:
        x[:, column] = (x[:, column] - x[:, column].mean()) * factor + x[:, column].mean()
    return out


def test_input_shift_sees_a_split_ten_times_wider_with_the_same_mean(healthy) -> None:
    wide = _widened(healthy, "dev", 10.0)
    c = dc.check_input_shift(_summaries(wide))
    row = c.details["pairs"]["dev/test"]
    assert c.status == "fail" and row["scaled"] and not row["shifted"]
    assert c.evidence.startswith("Input scales differ: ")
    # independent: the population standard deviation of each feature's values, per split
    a, b = wide["dev"][0], wide["test"][0]
    j = row["max_sd_ratio_channel"]
    assert row["max_sd_ratio"] == pytest.approx(b[:, j].std() / a[:, j].std(), rel=1e-6)
    assert row["sd_a"] == pytest.approx(a[:, j].std(), rel=1e-6)
    # one column in other units (x100) is named alone
    one = dc.check_input_shift(_summaries(_widened(healthy, "test", 100.0, column=20)))
    assert one.details["pairs"]["dev/test"]["scaled_channels"] == [20]
    # random splits of the same data: quiet (sparse pixels vary 2-3x in spread between them)
    assert not any(r["scaled"] for r in dc.check_input_shift(_summaries(healthy)).details["pairs"].values())
    assert dc.check_input_shift(_summaries(_widened(healthy, "dev", 1.5))).status == "pass"


def test_shift_between_train_and_dev_is_by_design_with_train_dev(healthy) -> None:
    shifted = shift_split(shift_split(healthy, "dev", keep_classes=10), "test", keep_classes=10)
    c = dc.check_input_shift(_summaries(shifted))
    assert c.status == "pass"
    assert c.details["pairs"]["train/dev"]["shifted"] and c.details["pairs"]["train/dev"]["role"] == "by_design"
    no_td = {k: v for k, v in shifted.items() if k != "train_dev"}
    assert dc.check_input_shift(_summaries(no_td)).status == "warn"


def test_nan_inputs_fail_input_shift(healthy) -> None:
    # NaN counted as 0 in the means left the check at pass: the one check reading every value must say so.
    splits = {k: (x.astype(np.float32).copy(), y) for k, (x, y) in healthy.items()}
    splits["dev"][0][3, 5] = np.nan
    splits["dev"][0][9, :2] = np.inf
    c = dc.check_input_shift(_summaries(splits))
    assert c.status == "fail" and c.details["nonfinite"] == {"dev": 3}
    assert c.evidence.startswith("NaN or infinite input values: dev 3 (the means count them as 0). ")
    single = dc.check_input_shift(_summaries({"train": splits["dev"]}))
    assert single.status == "fail" and single.evidence.endswith("Only one split: nothing to compare.")


# --- leakage -------------------------------------------------------------------------------------------


def test_leakage_finds_planted_duplicates_with_ids(healthy) -> None:
    leaky, src, dst = plant_duplicates(healthy, k=15)
    ids = {name: [f"{name}-{i:04d}" for i in range(len(y))] for name, (_, y) in leaky.items()}
    c = dc.check_leakage(_hashes(leaky), ids, _labels(leaky))
    row = c.details["across"]["train/test"]
    # independent count: byte strings of test items present among train items
    train_bytes = {x.tobytes() for x in leaky["train"][0]}
    expected = sum(x.tobytes() in train_bytes for x in leaky["test"][0])
    assert row["exact"] == expected == 15
    assert row["share_of_b"] == pytest.approx(15 / 300)
    assert c.status == "fail"
    planted = {(f"train:train-{s:04d}", f"test:test-{d:04d}") for s, d in zip(src, dst, strict=True)}
    assert {tuple(e) for e in row["examples"]} <= planted
    # The examples are the first duplicated test items in split order, the same on every run.
    first = sorted(dst)[: len(row["examples"])]
    assert [e[1] for e in row["examples"]] == [f"test:test-{d:04d}" for d in first]
    assert "15 test items (5.0%) also in train" in c.evidence
    assert all(c.details["across"][k]["exact"] == 0 for k in c.details["across"] if k != "train/test")


def test_leakage_single_duplicate_warns_and_within_split(healthy) -> None:
    leaky, _, _ = plant_duplicates(healthy, k=1)
    c = dc.check_leakage(_hashes(leaky))
    assert c.status == "warn" and c.details["across"]["train/test"]["exact"] == 1
    x, y = healthy["dev"]
    x2 = np.concatenate([x, x[:5]])
    y2 = np.concatenate([y, (y[:5] + 1) % 10])  # the copies carry other labels
    c2 = dc.check_leakage(_hashes({"dev": (x2, y2)}), None, {"dev": y2})
    w = c2.details["within"]["dev"]
    assert w["duplicates"] == 5 and w["conflicting_labels"] == 5 and c2.status == "warn"


def test_leakage_near_duplicates_in_images(healthy_images) -> None:
    splits = dict(healthy_images)
    xt, yt = splits["train"]
    xd, yd = splits["dev"][0].copy(), splits["dev"][1].copy()
    xd[:9] = xt[:9] * 1.2 + 0.3  # the same pictures, brighter and with more contrast: not byte-equal
    splits["dev"] = (xd, yd)
    c = dc.check_leakage(_hashes(splits))
    row = c.details["across"]["train/dev"]
    assert row["exact"] == 0 and row["near"] == 9
    assert c.status == "warn"  # 9 / 300 = 3% >= 1%
    assert "nearly identical" in c.evidence


def test_near_duplicate_search_skipped_above_the_pair_limit(healthy_images, monkeypatch) -> None:
    hashes = _hashes(healthy_images)
    pieces = {name: [t.copy() for t in h.thumbs] for name, h in hashes.items()}
    # Pairs with train (997 items) hold 199,400 or more item pairs: over the limit; the rest (<= 90,000) searched.
    monkeypatch.setattr(dc, "NEAR_MAX_PAIRS", 150_000)
    c = dc.check_leakage(hashes)
    skipped = [k for k, row in c.details["across"].items() if row["near"] is None]
    assert skipped == ["train/train_dev", "train/dev", "train/test"]
    assert all(row["near"] == 0 for k, row in c.details["across"].items() if k not in skipped)
    assert f"Near-duplicate search skipped for {', '.join(skipped)} (over 150,000 item pairs)." in c.evidence
    # Every split's thumbnails, joined once, are its batches' thumbnails in order.
    for name, h in hashes.items():
        np.testing.assert_array_equal(h.thumbnails(), np.concatenate(pieces[name]))
        assert len(h.thumbnails()) == len(h.digests) == len(healthy_images[name][1])


def test_leakage_of_volumes_checks_exact_duplicates_only() -> None:
    rng = np.random.default_rng(5)
    train = rng.random((40, 1, 3, 8, 8)).astype(np.float32)  # (B, C, D, H, W)
    dev = rng.random((20, 1, 3, 8, 8)).astype(np.float32)
    dev[:2] = train[:2]
    hashes = _hashes({"train": (train, None), "dev": (dev, None)}, batch=16)
    assert hashes["train"].thumbnails() is None
    c = dc.check_leakage(hashes)
    assert c.details["across"]["train/dev"]["exact"] == 2 and "near" not in c.details["across"]["train/dev"]
    assert c.status == "fail"


def test_leakage_quiet_on_healthy(healthy, healthy_images) -> None:
    for splits in (healthy, healthy_images):
        c = dc.check_leakage(_hashes(splits))
        assert c.status == "pass", c.evidence


def test_pair_verdicts(healthy) -> None:
    leaky, _, _ = plant_duplicates(shift_split(healthy), k=15)
    labels, names = _labels(leaky), list(leaky)
    checks = [dc.check_label_shift(labels), dc.check_input_shift(_summaries(leaky)), dc.check_leakage(_hashes(leaky))]
    verdicts = {v["pair"]: v for v in dc.pair_verdicts(names, checks)}
    assert len(verdicts) == 6
    assert verdicts["train vs test"]["status"] == "fail" and "measured partly on training items" in verdicts["train vs test"]["verdict"]
    assert verdicts["dev vs test"]["status"] == "fail" and "re-split" in verdicts["dev vs test"]["verdict"]
    assert verdicts["train vs train_dev"]["status"] == "pass"


# --- input_stats ---------------------------------------------------------------------------------------


def test_input_stats_flags_raw_pixels_and_nan(healthy_images) -> None:
    x = healthy_images["train"][0]
    s = dc.InputSummary()
    s.update(x)
    assert dc.check_input_stats(s).status == "pass"
    raw = dc.InputSummary()
    raw.update(np.round((x * 6.017 + 4.884) * 16))  # 0..255-like pixel values
    c = dc.check_input_stats(raw)
    assert c.status == "warn" and "std outside 0.1..10" in c.evidence and c.details["off_scale"] == [0]
    off = dc.InputSummary()
    off.update(x + 3.0)  # standardised pixels moved 3 std off zero
    c_off = dc.check_input_stats(off)
    assert c_off.status == "warn" and "not zero-centred" in c_off.evidence and c_off.details["not_centred"] == [0]
    assert c.details["mean"][0] == pytest.approx(float(np.round((x * 6.017 + 4.884) * 16).astype(np.float64).mean()), rel=1e-9)
    bad = dc.InputSummary()
    xn = x.copy()
    xn[0, 0, 0, 0] = np.nan
    bad.update(xn)
    assert dc.check_input_stats(bad).status == "fail"


# --- rendering -----------------------------------------------------------------------------------------


def test_render_table_and_markdown_literal() -> None:
    from rich.console import Console

    from diagnose.render.checks import render_markdown, render_table

    checks = [Check("leakage", "fail", "15 test items (5.0%) also in train.", "Remove the repeated items."),
              Check("split_sizes", "pass", "dev has 300 items.")]
    verdicts = [{"pair": "train vs test", "status": "fail", "verdict": "15 shared items"}]
    console = Console(record=True, width=80, color_system=None, force_terminal=False)
    render_table(console, "diagnose data: d", checks, verdicts)
    assert console.export_text() == (
        "diagnose data: d                                              \n"
        "┏━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓\n"
        "┃ status ┃ check       ┃ evidence                            ┃\n"
        "┡━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩\n"
        "│ fail   │ leakage     │ 15 test items (5.0%) also in train. │\n"
        "│ pass   │ split_sizes │ dev has 300 items.                  │\n"
        "└────────┴─────────────┴─────────────────────────────────────┘\n"
        "leakage (fail): Remove the repeated items.\n"
        "Split pairs:\n"
        "  fail  train vs test: 15 shared items\n"
        "FAIL: 1 pass, 1 fail\n"
    )
    assert render_markdown("t", checks, verdicts) == (
        "### t\n\n| status | check | evidence |\n|---|---|---|\n"
        "| fail | `leakage` | 15 test items (5.0%) also in train. |\n| pass | `split_sizes` | dev has 300 items. |\n"
        "\n- **leakage** (fail): Remove the repeated items.\n"
        "\n| pair | status | verdict |\n|---|---|---|\n| train vs test | fail | 15 shared items |\n"
        "\n**FAIL: 1 pass, 1 fail**\n"
    )
