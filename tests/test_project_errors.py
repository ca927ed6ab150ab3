"""`diagnose errors` and `report` run from a person's image project folder (fixtures/make_project.py)
through the console script: sheet ids a person can open from there, suspects against the planted
label flips, the confusion image, the report page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import diagnose
from fixtures.make_project import copy_project

SCRIPT = Path(sys.executable).with_name("diagnose")
# The console script imports the diagnose under test, not whichever checkout the environment's install
# points at; that folder holds no mynet, so the project's module is still found only as `python -m` would.
UNDER_TEST = str(Path(diagnose.__file__).resolve().parents[1])
# Each test runs the console script on a project whose two models are trained for the session.
pytestmark = pytest.mark.slow


def run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DIAGNOSE_DEBUG", "BROWSER")} | {"PYTHONPATH": UNDER_TEST}
    proc = subprocess.run([str(SCRIPT), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def project(shapes_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("errors-project") / "shapes"
    copy_project(shapes_project, dest)
    run("gaps", "weights.pt", "data", cwd=dest)  # arch, mean and std from [tool.diagnose]
    return dest


def _sheet(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False)


def test_sheet_ids_open_from_the_project_folder_and_suspects_find_the_flips(project: Path) -> None:
    doc = json.loads(run("errors", "--sample", 100, "--json", cwd=project).stdout)
    sheet = _sheet(project / "error_analysis.csv")
    assert len(sheet) == doc["sample"] > 0
    # Each id is a path from where the command ran: the person opens it as it is.
    assert all(i.startswith("data/") for i in sheet["id"])
    assert all((project / i).is_file() for i in sheet["id"])
    planted = json.loads((project / "planted.json").read_text())
    flips = {f"data/{f}" for f in planted["flipped"] if f.startswith("dev/")}
    in_sheet = sheet[sheet["id"].isin(flips)]
    assert len(in_sheet) >= 3
    old_rule = (in_sheet["confidence"] >= 0.9) & (in_sheet["p_label"] <= 0.05)
    found = in_sheet["suspect_mislabel"] == "yes"
    # Measured: all 4 flips among the sampled errors flagged, against 3 by the fixed 0.9 / 0.05 rule.
    assert found.sum() >= old_rule.sum() and found.mean() >= 0.75
    # Suspects come first, the most likely first.
    flagged = sheet["suspect_mislabel"] == "yes"
    assert flagged[: int(flagged.sum())].all()
    assert doc["confusion_png"] == "error_analysis_confusion.png"
    assert (project / "error_analysis_confusion.png").is_file()
    assert doc["confusion_splits"] == ["train_dev", "dev"] and doc["grown_confusions"]


@pytest.mark.slow
def test_suspects_on_the_shifted_dev_are_mostly_the_flips(project: Path) -> None:
    """dev holds rotated and darker items (data mismatch) and a few flipped labels. With thresholds of
    dev itself, 33 of 50 sampled rows were suspects, 4 of them flips. Measured now: thresholds of
    train_dev alone, 22 suspects; with --neighbours, 6 suspects, 3 of the 4 sampled flips."""
    planted = json.loads((project / "planted.json").read_text())
    flips = {f"data/{f}" for f in planted["flipped"]}
    doc = json.loads(run("errors", "--sample", 50, "--json", "--no-images", "--out", "plain.csv", cwd=project).stdout)
    assert doc["suspect_thresholds_split"] == "train_dev" and doc["suspect_neighbours"] is None
    assert doc["suspect_rule"] == "confident_learning"
    assert any(n.startswith("dev errs more than train_dev") and "--neighbours" in n for n in doc["notes"])
    doc = json.loads(run("errors", "--sample", 50, "--json", "--no-images", "--neighbours", "--out", "nb.csv",
                         cwd=project).stdout)
    assert doc["suspect_thresholds_split"] == "train_dev" and doc["suspect_neighbours"] == 8
    assert doc["suspect_rule"] == "confident_learning+neighbours"
    sheet = _sheet(project / "nb.csv")
    flagged = sheet["suspect_mislabel"] == "yes"
    in_sheet = sheet["id"].isin(flips)
    assert doc["suspect_mislabel"] == int(flagged.sum()) <= 8
    assert (flagged & in_sheet).sum() >= 3 and in_sheet.sum() <= 5
    # MODEL DATA runs the model anyway: neighbours by default.
    doc = json.loads(run("errors", "weights.pt", "data", "--sample", 50, "--json", "--no-images", "--out", "md.csv",
                         cwd=project).stdout)
    assert doc["suspect_neighbours"] == 8 and doc["suspect_thresholds_split"] == "train_dev"


def test_sheet_ids_are_absolute_when_the_data_is_outside_the_current_folder(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.csv"
    run("errors", "--workdir", project / ".diagnose", "--out", out, "--sample", 10, "--no-images", cwd=tmp_path)
    ids = _sheet(out)["id"].tolist()
    assert ids and all(Path(i).is_absolute() and Path(i).is_file() for i in ids)
    assert all(Path(i).is_relative_to(project / "data") for i in ids)


def test_report_from_the_project_folder(project: Path) -> None:
    run("errors", "--sample", 40, "--out", "sheet.csv", cwd=project)
    out = run("report", "--sheet", "sheet.csv", "--log", "run.csv", "--out", "report.html", cwd=project).stdout
    assert "Do first: data mismatch dominates" in out
    page = (project / "report.html").read_text(encoding="utf-8")
    assert "Where the errors come from" in page and "`" not in page.split("</style>", 1)[1]
