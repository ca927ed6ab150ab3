"""`diagnose data` through the CLI: the bundled example in every data format, planted defects, --fail-on, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from diagnose.cli import app
from fixtures.make_defects import (
    digits,
    plant_duplicates,
    shift_split,
    skew_classes,
    split_arrays,
    write_data,
)

DATA_IDS = ["split_sizes", "class_balance", "label_shift", "input_shift", "leakage"]


def run(*args: str):
    return CliRunner().invoke(app, ["data", *args])


def doc_of(result) -> dict:
    assert result.exit_code == 0, result.stderr or result.stdout
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def splits():
    x, y = digits(images=True)
    return split_arrays(x, y)


def test_example_runs_clean(example_data) -> None:
    doc = doc_of(run(str(example_data), "--json"))
    assert [c["id"] for c in doc["checks"]] == DATA_IDS
    assert {c["id"]: c["status"] for c in doc["checks"]} == dict.fromkeys(DATA_IDS, "pass")
    by = {c["id"]: c for c in doc["checks"]}
    # split sizes read from the files, and the detectable gap of the 250-item dev (about 5 points)
    for name in ("train", "train_dev", "dev", "test"):
        n = len(torch.load(example_data / f"{name}.pt", weights_only=True)["y"])
        assert by["split_sizes"]["details"]["splits"][name]["n"] == n
    assert "dev has 250 items: gaps under about 5 points are not distinguishable" in by["split_sizes"]["evidence"]
    # class counts against a plain count of the labels
    y = torch.load(example_data / "train.pt", weights_only=True)["y"].numpy()
    counts = by["class_balance"]["details"]["splits"]["train"]["counts"]
    assert [counts[str(k)] for k in range(10)] == np.bincount(y, minlength=10).tolist()
    # the example's dev/test are blurred on purpose: reported as a by-design train -> dev difference
    assert by["input_shift"]["details"]["pairs"]["train/dev"]["shifted"]
    assert [v["status"] for v in doc["verdicts"]] == ["pass"] * 6
    assert doc["verdicts"][2]["pair"] == "train vs test"


@pytest.mark.parametrize("fmt", ["npz", "csv", "parquet", "images"])
def test_example_every_data_format_agrees(example_formats, example_data, fmt) -> None:
    ref = doc_of(run(str(example_data), "--json"))
    doc = doc_of(run(str(example_formats.data[fmt]), "--json"))
    assert {c["id"]: c["status"] for c in doc["checks"]} == dict.fromkeys(DATA_IDS, "pass")
    a = {c["id"]: c["details"] for c in ref["checks"]}
    b = {c["id"]: c["details"] for c in doc["checks"]}
    assert a["class_balance"]["splits"]["dev"]["counts"] == b["class_balance"]["splits"]["dev"]["counts"]
    assert a["label_shift"]["pairs"]["dev/test"]["p"] == pytest.approx(b["label_shift"]["pairs"]["dev/test"]["p"])


def test_example_table_and_markdown(example_data) -> None:
    r = run(str(example_data))
    assert r.exit_code == 0, r.stderr
    assert "Split pairs:" in r.stdout and r.stdout.rstrip().endswith("PASS: 5 pass")
    md = run(str(example_data), "--markdown")
    assert md.exit_code == 0
    assert "| pass | `leakage` | No item appears twice, within a split or across splits. |" in md.stdout
    assert "| train vs train_dev | pass | same distribution as far as these checks see; no shared items |" in md.stdout


def test_planted_duplicates_fail_with_ids(splits, tmp_path) -> None:
    leaky, src, dst = plant_duplicates(splits, k=15)
    data = write_data(tmp_path / "leaky", leaky)
    doc = doc_of(run(str(data), "--json"))
    leak = next(c for c in doc["checks"] if c["id"] == "leakage")
    assert leak["status"] == "fail"
    row = leak["details"]["across"]["train/test"]
    assert row["exact"] == 15
    planted = {(f"train:train-{s:04d}", f"test:test-{d:04d}") for s, d in zip(src, dst, strict=True)}
    assert {tuple(e) for e in row["examples"]} <= planted and len(row["examples"]) == 10
    verdict = next(v for v in doc["verdicts"] if v["pair"] == "train vs test")
    assert verdict == {"pair": "train vs test", "status": "fail",
                       "verdict": "15 shared items: test error is measured partly on training items"}
    r = run(str(data), "--fail-on", "fail")
    assert r.exit_code == 3
    assert r.stderr == (
        f"Error: {data}: expected no check at fail or worse (--fail-on fail), got 1: leakage (fail); "
        "fix them or relax --fail-on\n"
    )


def test_skewed_classes_and_shifted_dev(splits, tmp_path) -> None:
    data = write_data(tmp_path / "skewed", skew_classes(splits))
    doc = doc_of(run(str(data), "--json"))
    cb = next(c for c in doc["checks"] if c["id"] == "class_balance")
    assert cb["status"] == "fail" and cb["details"]["splits"]["train"]["imbalance_ratio"] >= 10
    assert "up-sample" in cb["advice"] and "weight the loss" in cb["advice"] and "two stages" in cb["advice"]
    data = write_data(tmp_path / "shifted", shift_split(splits))
    doc = doc_of(run(str(data), "--json"))
    statuses = {c["id"]: c["status"] for c in doc["checks"]}
    assert statuses["label_shift"] == "fail" and statuses["input_shift"] == "fail"
    verdict = next(v for v in doc["verdicts"] if v["pair"] == "dev vs test")
    assert verdict["status"] == "fail" and verdict["verdict"].endswith("dev and test should come from one distribution; re-split them")
    r = run(str(data), "--fail-on", "warn")
    assert r.exit_code == 3 and "label_shift (fail), input_shift (fail)" in r.stderr


def test_fail_on_quiet_on_example(example_data) -> None:
    r = run(str(example_data), "--fail-on", "warn")
    assert r.exit_code == 0 and r.stderr == ""


def test_errors(tmp_path) -> None:
    r = run(str(tmp_path / "nope"))
    assert r.exit_code == 1
    assert r.stderr == (
        f"Error: {tmp_path / 'nope'}: expected a data folder with train/train_dev/dev/test splits, got nothing at that path; "
        "check the path\n"
    )
    r = run(str(tmp_path), "--json", "--markdown")
    assert r.exit_code == 2
    assert r.stderr == "Error: --json and --markdown: expected at most one output format, got both; pick one\n"


def test_shared_option_parsers_and_gate() -> None:
    # gaps, sanity, data (and report) parse --image-size / --mean / --fail-on with the same public helpers.
    from diagnose.core.checks import Check, gate_checks
    from diagnose.exceptions import GateFailed, UsageError
    from diagnose.options import parse_floats, parse_image_size

    assert parse_image_size("224") == (224, 224) and parse_image_size("32x48") == (32, 48) and parse_image_size(None) is None
    with pytest.raises(UsageError, match=r"--image-size: expected H,W or one size like 224, got '0,5'"):
        parse_image_size("0,5")
    assert parse_floats("0.5, 0.25,", "--std") == [0.5, 0.25] and parse_floats(None, "--std") is None
    with pytest.raises(UsageError, match=r"--mean: expected comma-separated numbers like 0.485,0.456,0.406, got 'a,b'"):
        parse_floats("a,b", "--mean")
    checks = [Check("leakage", "warn", "2 shared items", "drop them"), Check("split_sizes", "pass", "", "")]
    gate_checks(checks, None, "data")
    gate_checks(checks, "fail", "data")
    with pytest.raises(GateFailed) as err:
        gate_checks(checks, "warn", "data")
    assert err.value.message == (
        "data: expected no check at warn or worse (--fail-on warn), got 1: leakage (warn); fix them or relax --fail-on"
    )
