"""Two distributions, two human levels: the two-column table and 'the target data is harder'."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from diagnose.core.gaps import GapReport, compute_gaps, summarize_errors, with_target
from diagnose.render.gaps import render_markdown


def _splits(**rates: tuple[int, int]) -> dict:
    return {name: summarize_errors(name, k, n) for name, (k, n) in rates.items()}


def test_the_worked_example() -> None:
    # human 4% / 6%; train 7%, train_target 6%; train_dev 10%, dev 6% (1,000 items each)
    r = compute_gaps(_splits(train=(70, 1000), train_target=(60, 1000), train_dev=(100, 1000), dev=(60, 1000)),
                     human_error=0.04, human_error_target=0.06)
    t = r.two_column
    assert t is not None
    assert r.gaps["avoidable_bias"].value == pytest.approx(0.03)
    assert r.gaps["variance"].value == pytest.approx(0.03)
    assert t.difficulty == pytest.approx(0.02)
    assert t.target_bias.value == pytest.approx(0.0) and not t.target_bias.significant
    assert t.target_variance.value == pytest.approx(0.0) and not t.target_variance.significant
    assert t.mismatch_beyond.value == pytest.approx(-0.06)
    assert r.verdict.problem == "avoidable_bias"
    md = render_markdown(r)
    assert "| human-level | 4.0% | 6.0% |" in md
    assert "| error on items trained on | 7.0% (train) | 6.0% (train_target) |" in md
    assert "| error on items not trained on | 10.0% (train_dev) | 6.0% (dev) |" in md


def test_harder_target_is_not_called_data_mismatch() -> None:
    # dev is 4 pts above train_dev, and people do 4 pts worse on the target too.
    splits = _splits(train=(40, 1000), train_dev=(50, 1000), dev=(90, 1000))
    plain = compute_gaps(splits, human_error=0.04)
    assert plain.verdict.problem == "data_mismatch"
    harder = compute_gaps(splits, human_error=0.04, human_error_target=0.08)
    assert harder.verdict.problem is None
    assert harder.verdict.detail is not None and "target data is harder" in harder.verdict.detail
    assert "Verdict: the target data is harder, not mismatched." in render_markdown(harder)
    # a rise beyond what the difficulty explains stays data mismatch
    mismatched = compute_gaps(_splits(train=(40, 1000), train_dev=(50, 1000), dev=(200, 1000)),
                              human_error=0.04, human_error_target=0.08)
    assert mismatched.verdict.problem == "data_mismatch" and mismatched.verdict.detail is None
    assert mismatched.two_column.mismatch_beyond.value == pytest.approx(0.11)


def test_json_round_trip_and_with_target() -> None:
    r = compute_gaps(_splits(train=(70, 1000), train_target=(60, 1000), train_dev=(100, 1000), dev=(60, 1000)),
                     human_error=0.04, human_error_target=0.06)
    doc = json.loads(json.dumps(r.to_json()))
    assert doc["two_column"]["trained_on"]["target"]["split"] == "train_target"
    back = GapReport.from_json(doc)
    assert back.two_column == r.two_column
    plain = compute_gaps(_splits(train=(70, 1000), train_dev=(100, 1000), dev=(60, 1000)), human_error=0.04)
    assert plain.two_column is None and plain.to_json()["two_column"] is None
    assert with_target(plain, 0.06).two_column.human_target == 0.06


def test_gaps_reads_a_train_target_split_and_the_target_human_level(cli, example_data: Path, example_model: Path,
                                                                    tmp_path: Path) -> None:
    import torch

    data = tmp_path / "data"
    shutil.copytree(example_data, data)
    dev = torch.load(data / "dev.pt", weights_only=True)
    torch.save({"x": dev["x"][:100], "y": dev["y"][:100]}, data / "train-target.pt")  # an alias
    (data / "diagnose.toml").write_text("human_error = 0.01\nhuman_error_target = 0.03\n")
    r = cli("gaps", example_model, data, "--workdir", tmp_path / "wd", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["splits"]["train_target"]["n"] == 100
    assert doc["two_column"]["human"] == {"general": 0.01, "target": 0.03}
    assert doc["settings"]["human_error_target"]["source"].endswith("diagnose.toml")
    assert (tmp_path / "wd" / "predictions" / "train_target.parquet").is_file()
    # the saved report (what `diagnose report` rebuilds) holds the table too
    manifest = json.loads((tmp_path / "wd" / "manifest.json").read_text())
    assert manifest["report"]["two_column"]["human"]["target"] == 0.03
    text = cli("gaps", example_model, data, "--workdir", tmp_path / "wd2", "--human-error-target", "0.02")
    assert text.exit_code == 0 and "Two distributions" in text.stdout and "2.0%" in text.stdout
