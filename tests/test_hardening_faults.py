"""Ctrl-C (SIGINT) at several moments of `diagnose gaps` and `diagnose errors`, in a real subprocess:
the previous outputs stay byte-identical and no temporary file or folder is left.

Each moment is reached deterministically: the child wraps one function of diagnose so that its
first call sends SIGINT to the child itself, then runs the command line as `diagnose` would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diagnose.cli import app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example"

CHILD = """
import importlib, os, signal, sys
target, _, when = sys.argv[1].partition("~")  # "module:attr~suffix": only a call whose 2nd argument ends so
module_name, _, attr = target.rpartition(":")
module = importlib.import_module(module_name)
owner, name = module, attr
if "." in attr:
    cls, name = attr.split(".")
    owner = getattr(module, cls)
original = getattr(owner, name)

def interrupted(*args, **kwargs):
    if not when or (len(args) > 1 and str(args[1]).endswith(when)):
        os.kill(os.getpid(), signal.SIGINT)
    return original(*args, **kwargs)

setattr(owner, name, interrupted)
from diagnose.cli import main
sys.argv = ["diagnose", *sys.argv[2:]]
main()
"""


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _interrupt(where: str, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, where, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir and a sheet + contact sheet from a completed run: what an interrupted run must keep."""
    root = tmp_path_factory.mktemp("faults")
    r = CliRunner().invoke(app, ["gaps", str(EXAMPLE / "model.pt"), str(EXAMPLE / "data"), "--workdir", str(root / "wd"),
                                 "--max-items", "120"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["errors", "--workdir", str(root / "wd"), "--out", str(root / "sheet.csv"), "--sample", "10"])
    assert r.exit_code == 0, r.output
    assert (root / "sheet.png").is_file()
    return root


GAPS_MOMENTS = {
    "while evaluating": "diagnose.io.predictions:PredictionWriter.write",
    "while hashing the predictions": "diagnose.io.digest:fingerprint_file",
    "just before the run is published": "diagnose.io.outputs:carry_over",
}
ERRORS_MOMENTS = {
    "while writing the sheet": "diagnose.io.sheet:write_sheet",
    "while drawing the contact sheet": "diagnose.plots.contact:save_contact_sheet",
    "while renaming the files into place": "os:replace~/sheet.csv",
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(GAPS_MOMENTS))
def test_interrupted_gaps_leaves_the_previous_run_whole(previous_run: Path, tmp_path: Path, moment: str) -> None:
    root = tmp_path / "r"
    shutil.copytree(previous_run, root)
    before = _snapshot(root)
    done = _interrupt(GAPS_MOMENTS[moment], "gaps", EXAMPLE / "model.pt", EXAMPLE / "data", "--workdir", root / "wd")
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "Error: interrupted"
    assert _snapshot(root) == before
    assert sorted(p.name for p in root.iterdir()) == sorted(p.name for p in previous_run.iterdir()), "a staging folder was left"
    manifest = json.loads((root / "wd" / "manifest.json").read_text())
    assert manifest["max_items"] == 120  # still the previous run's manifest, beside its own predictions


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(ERRORS_MOMENTS))
def test_interrupted_errors_leaves_the_previous_sheet_and_png(previous_run: Path, tmp_path: Path, moment: str) -> None:
    root = tmp_path / "r"
    shutil.copytree(previous_run, root)
    before = _snapshot(root)
    done = _interrupt(ERRORS_MOMENTS[moment], "errors", "--workdir", root / "wd", "--out", root / "sheet.csv",
                      "--sample", "20", "--seed", "3")
    assert done.returncode == 130, done.stderr
    after = _snapshot(root)
    assert not [k for k in after if ".tmp" in k], "a temporary file was left"
    if moment == "while renaming the files into place":
        # Ctrl-C waited for the renames: every file is the new run's, none from a mix of two runs.
        assert after["sheet.csv"] != before["sheet.csv"] and after["sheet.png"] != before["sheet.png"]
        assert after["sheet.csv.bak"] == before["sheet.csv"]  # the replaced sheet differed: kept
        assert set(after) == set(before) | {"sheet.csv.bak"}
    else:
        assert after == before
