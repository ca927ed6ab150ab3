"""The chance baseline (always the most frequent train class) and the verdict withheld beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from diagnose.core.gaps import (
    CHECK_FIRST,
    GapReport,
    compute_gaps,
    judge,
    majority_baseline,
    summarize_errors,
)
from diagnose.core.stats import mcnemar_one_sided, wilson_interval
from diagnose.render.gaps import render_markdown

SPLITS = ("train", "train_dev", "dev", "test")


def _confusion(y: np.ndarray, p: np.ndarray, c: int) -> np.ndarray:
    return np.bincount(y * c + p, minlength=c * c).reshape(c, c)


@pytest.mark.parametrize("seed", range(5))
def test_baseline_errors_and_paired_test_match_a_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = 4
    labels, preds = {}, {}
    for name in SPLITS:
        n = int(rng.integers(50, 400))
        y = rng.choice(c, size=n, p=[0.4, 0.3, 0.2, 0.1])
        right = rng.random(n) < rng.uniform(0.2, 0.7)
        labels[name], preds[name] = y, np.where(right, y, rng.integers(0, c, size=n))
    base = majority_baseline({n: _confusion(labels[n], preds[n], c) for n in SPLITS}, ["a", "b", "c", "d"])
    assert base is not None
    majority = max(range(c), key=lambda k: (int(np.sum(labels["train"] == k)), -k))
    assert base.label == majority and base.name == "abcd"[majority]
    for name in SPLITS:
        wrong = sum(1 for y in labels[name] if y != majority)
        assert base.splits[name].errors == wrong
        assert base.splits[name].ci == pytest.approx(wilson_interval(wrong, len(labels[name])))
    y, p = labels["train"], preds["train"]
    only_model = int(np.sum((p == y) & (y != majority)))
    only_base = int(np.sum((p != y) & (y == majority)))
    expected = binomtest(only_model, only_model + only_base, 0.5, alternative="greater").pvalue
    assert base.p_value == pytest.approx(expected, rel=1e-9)
    assert base.better == (expected < 0.05)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 9), (9, 0), (12, 3), (3, 12), (480, 420), (25_000, 24_400)])
def test_mcnemar_one_sided_is_scipys_exact_binomial_test(b: int, c: int) -> None:
    ref = binomtest(b, b + c, 0.5, alternative="greater").pvalue if b + c else 1.0
    assert mcnemar_one_sided(b, c) == pytest.approx(ref, rel=1e-9, abs=1e-300)


def _report(train_errors: int, train_majority_right: int) -> GapReport:
    """Train: 1000 items, 600 of class 0; the model's errors placed so the paired test is known."""
    n, c = 1000, 3
    conf = np.zeros((c, c), dtype=np.int64)
    conf[0, 0] = train_majority_right
    conf[0, 1] = 600 - train_majority_right
    others_wrong = train_errors - (600 - train_majority_right)
    conf[1, 1] = 250 - others_wrong // 2
    conf[1, 2] = others_wrong // 2
    conf[2, 2] = 150 - (others_wrong - others_wrong // 2)
    conf[2, 0] = others_wrong - others_wrong // 2
    assert conf.sum() == n and n - np.trace(conf) == train_errors
    dev = conf.copy()
    splits = {"train": summarize_errors("train", train_errors, n), "dev": summarize_errors("dev", train_errors + 60, n)}
    report = compute_gaps(splits, human_error=0.01)
    from dataclasses import replace

    return replace(report, baseline=majority_baseline({"train": conf, "dev": dev}))


def test_a_model_worse_than_the_majority_class_gets_no_prescription() -> None:
    report = _report(train_errors=700, train_majority_right=100)
    assert report.verdict.problem == "avoidable_bias"  # what would be prescribed without the baseline
    judged = judge(report)
    assert judged.withheld is not None and judged.withheld.problem == "avoidable_bias"
    assert judged.verdict.problem is None and judged.verdict.advice == CHECK_FIRST
    assert len(judged.doubts) == 1 and "not significantly better on train" in judged.doubts[0]
    md = render_markdown(judged)
    assert "Train a bigger model" not in md
    assert "Verdict: withheld - check these first:" in md
    assert "| majority class |" in md and "| 40.0% (37.0–43.1) |" in md
    forced = judge(report, force=True)
    assert forced.withheld is None and forced.verdict.problem == "avoidable_bias" and forced.doubts == judged.doubts
    assert "Verdict shown with --force-verdict despite:" in render_markdown(forced)


def test_a_model_better_than_the_majority_class_keeps_its_verdict_until_the_inputs_are_in_doubt() -> None:
    report = judge(_report(train_errors=200, train_majority_right=550))
    assert report.baseline is not None and report.baseline.better
    assert report.withheld is None and report.verdict.problem == "avoidable_bias" and report.doubts == ()
    doubted = judge(report, doubts=("the inputs look raw",))
    assert doubted.withheld is not None and doubted.doubts == ("the inputs look raw",)
    again = judge(doubted, doubts=("the log disagrees",))  # a second doubt keeps the first verdict withheld
    assert again.withheld == report.verdict and again.doubts == ("the inputs look raw", "the log disagrees")


def test_the_json_round_trip_keeps_the_baseline_and_the_withheld_verdict() -> None:
    judged = judge(_report(train_errors=700, train_majority_right=100))
    doc = json.loads(json.dumps(judged.to_json()))
    assert doc["verdict_withheld"] is True and doc["withheld_verdict"]["problem"] == "avoidable_bias"
    assert doc["baseline"]["splits"]["train"]["errors"] == 400 and doc["baseline"]["model_better"] is False
    back = GapReport.from_json(doc)
    assert back.baseline == judged.baseline and back.withheld == judged.withheld and back.doubts == judged.doubts


# --------------------------------------------------------------------------- the command


def _constant_model(path: Path, classes: int, favourite: int) -> Path:
    """A real TorchScript classifier that answers `favourite` for every input."""
    lin = torch.nn.Linear(6, classes)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
        lin.bias[favourite] = 1.0
    torch.jit.save(torch.jit.script(lin), str(path))
    return path


def _imbalanced(folder: Path, seed: int) -> Path:
    folder.mkdir()
    g = torch.Generator().manual_seed(seed)
    for name in SPLITS:
        y = (torch.rand(400, generator=g) < 0.35).long()  # 65% class 0
        torch.save({"x": torch.randn(400, 6, generator=g), "y": y}, folder / f"{name}.pt")
    return folder


def test_cli_withholds_the_verdict_of_a_constant_model_with_exit_code_4(cli, tmp_path: Path) -> None:
    data = _imbalanced(tmp_path / "data", 0)
    model = _constant_model(tmp_path / "constant.pt", 2, 0)
    r = cli("gaps", model, data, "--human-error", "0.01", "--workdir", tmp_path / "wd")
    assert r.exit_code == 4, r.output
    assert "Verdict: withheld - check these first:" in r.stdout
    assert "Train a bigger model" not in r.stdout
    assert "Preprocessing:" in r.stdout and "Class mapping:" in r.stdout
    assert r.stderr.strip().startswith(f"Error: {model}: expected a model measurably better than always predicting")
    doc = json.loads(cli("gaps", model, data, "--human-error", "0.01", "--json", "--workdir", tmp_path / "wd").stdout)
    y = torch.load(data / "train.pt")["y"]
    assert doc["baseline"]["splits"]["train"]["errors"] == int((y != 0).sum()) == doc["splits"]["train"]["errors"]
    assert doc["verdict_withheld"] is True and doc["verdict"]["problem"] is None
    # The report page shows the baseline and withholds the verdict as the terminal does.
    page = cli("report", "--workdir", tmp_path / "wd", "--out", tmp_path / "report.html")
    assert page.exit_code == 0, page.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Verdict withheld:" in html and "majority class" in html and "Train a bigger model" not in html
    # A sample of "errors" of those predictions says it is no error analysis.
    sheet = cli("errors", "--workdir", tmp_path / "wd", "--split", "dev", "--out", tmp_path / "errors.csv")
    assert sheet.exit_code == 0, sheet.output
    assert "this sample is not error analysis" in " ".join(sheet.stdout.split())
    forced = cli("gaps", model, data, "--human-error", "0.01", "--force-verdict", "--workdir", tmp_path / "wd")
    assert forced.exit_code == 0, forced.output
    assert "Verdict shown with --force-verdict despite:" in forced.stdout
    assert "Train a bigger model" in forced.stdout


def test_errors_from_a_model_applies_the_same_doubts(cli, tmp_path: Path) -> None:
    """`diagnose errors MODEL DATA` evaluates the model itself: a model no better than the majority class
    on the split drawn like training gets the same warning that its sample is not error analysis."""
    data = _imbalanced(tmp_path / "data", 1)
    constant = _constant_model(tmp_path / "constant.pt", 2, 0)
    sheet = cli("errors", constant, data, "--split", "dev", "--out", tmp_path / "errors.csv")
    assert sheet.exit_code == 0, sheet.output
    said = " ".join(sheet.stdout.split())
    assert "This evaluation doubts its inputs: the model is not significantly better on train_dev than always" in said
    assert "this sample is not error analysis" in said
    # A model that learned the task (here: the label is a threshold on the first input) gets no such note.
    g = torch.Generator().manual_seed(2)
    good = tmp_path / "good"
    good.mkdir()
    for name in SPLITS:
        x = torch.randn(400, 6, generator=g)
        torch.save({"x": x, "y": (x[:, 0] > 0.4).long()}, good / f"{name}.pt")
    lin = torch.nn.Linear(6, 2)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[1, 0], lin.bias[1] = 10.0, -4.0
    torch.jit.save(torch.jit.script(lin), str(tmp_path / "good.pt"))
    fine = cli("errors", tmp_path / "good.pt", good, "--split", "dev", "--out", tmp_path / "good.csv")
    assert fine.exit_code == 0, fine.output
    assert "not error analysis" not in " ".join(fine.stdout.split())
