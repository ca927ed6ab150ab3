"""The workflow run from a person's project folder, through the real console script (not CliRunner,
not the tests' sys.path): the project's own mynet.py must be found as `python -m` would find it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import diagnose
from fixtures.make_project import copy_project

SCRIPT = Path(sys.executable).with_name("diagnose")
# The console script imports the diagnose under test, not whichever checkout the environment's install
# points at; that folder holds no mynet, so the project's module is still found only as `python -m` would.
UNDER_TEST = str(Path(diagnose.__file__).resolve().parents[1])


def run(*args: object, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DIAGNOSE_DEBUG")} | {"PYTHONPATH": UNDER_TEST}
    proc = subprocess.run([str(SCRIPT), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def project(shapes_project: Path, tmp_path: Path) -> Path:
    """A private copy (tests write .diagnose/ into it)."""
    dest = tmp_path / "shapes"
    copy_project(shapes_project, dest)
    return dest


def test_console_script_exists() -> None:
    assert SCRIPT.is_file(), f"expected the installed console script at {SCRIPT}"


@pytest.mark.slow
def test_arch_module_spec_found_from_the_project_folder(project: Path) -> None:
    out = run("gaps", "weights.pt", "data", "--arch", "mynet:MyNet", "--json", "--max-items", "40", cwd=project)
    doc = json.loads(out.stdout)
    assert set(doc["splits"]) == {"train", "train_dev", "dev", "test"}


@pytest.mark.slow
def test_trusted_pickle_found_from_the_project_folder(project: Path) -> None:
    out = run("gaps", "full.pt", "data", "--trust-pickle", "--json", "--max-items", "40", cwd=project)
    assert json.loads(out.stdout)["splits"]["train"]["n"] == 40


@pytest.mark.slow
def test_missing_module_is_one_line_naming_it_and_where(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # From another folder the project's pyproject.toml came with the data: its arch is allowed by name.
    for args in (["--arch", "mynet:MyNet", project / "weights.pt"], ["--trust-pickle", project / "full.pt"]):
        proc = run("gaps", *args, project / "data", "--trust-settings", cwd=elsewhere, check=False)
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("Error: ") and "module mynet" in lines[0]
        assert str(elsewhere) in lines[0] and "--app-dir" in lines[0]
        assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_app_dir_points_at_the_project_from_elsewhere(project: Path, tmp_path: Path) -> None:
    out = run("gaps", project / "full.pt", project / "data", "--trust-pickle", "--app-dir", project, "--trust-settings",
              "--workdir", tmp_path / "w", "--json", "--max-items", "20", cwd=tmp_path)
    assert json.loads(out.stdout)["splits"]["dev"]["n"] == 20
    proc = run("gaps", project / "full.pt", project / "data", "--trust-pickle", "--app-dir", tmp_path / "nope",
               "--trust-settings", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("Error: --app-dir")


@pytest.mark.slow
def test_the_workflow_from_the_project_folder(project: Path) -> None:
    """As a person runs it: no options retyped (pyproject.toml holds arch, mean, std), then the model
    trained after the advice, then compare; then the trap, with the settings' mean/std left out."""
    first = json.loads(run("gaps", "weights.pt", "data", "--log", "run.csv", "--json", cwd=project).stdout)
    assert first["warnings"] == []
    assert first["settings"]["arch"] == {"value": "mynet:MyNet", "source": "pyproject.toml (tool.diagnose)"}
    assert first["settings"]["human_error"]["source"] == "data/diagnose.toml"
    assert first["verdict"]["problem"] == "data_mismatch"
    run("gaps", "weights_v2.pt", "data", "--workdir", ".diagnose-v2", "--json", cwd=project)
    cmp = json.loads(run("compare", ".diagnose", ".diagnose-v2", "--json", cwd=project).stdout)
    assert cmp["paired"] is True and cmp["splits"]["dev"]["test"] == "mcnemar_exact"
    assert cmp["splits"]["dev"]["change"] < 0 and cmp["splits"]["dev"]["ci"][1] < 0
    text = run("compare", ".diagnose", ".diagnose-v2", cwd=project).stdout
    assert "Method: paired" in text and "better" in text
    lines = (project / "pyproject.toml").read_text().splitlines()
    (project / "pyproject.toml").write_text("\n".join(x for x in lines if not x.startswith(("mean", "std"))) + "\n")
    trapped = run("gaps", "weights.pt", "data", "--log", "run.csv", "--workdir", ".trap", "--json", cwd=project,
                  check=False)
    assert trapped.returncode == 4, trapped.stderr  # inputs in doubt: the verdict is withheld
    trap = json.loads(trapped.stdout)
    assert len(trap["warnings"]) == 2 and "mean" not in trap["settings"]
    assert trap["splits"]["dev"]["error"] > first["splits"]["dev"]["error"] + 0.2
    shown = run("gaps", "weights.pt", "data", "--workdir", ".trap2", cwd=project, check=False).stdout
    assert shown.lstrip().startswith("settings: arch mynet:MyNet from pyproject.toml")
    assert "Warning: the train split does not look like what the model was trained on" in shown
