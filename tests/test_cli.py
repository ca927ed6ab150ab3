"""The console entry point: one `Error:` line for every failure, a traceback only with --debug."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "diagnose", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_usage_error_from_typer_is_one_line(tmp_path: Path) -> None:
    r = _run("tally", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == "Error: Missing argument 'SHEET'; see 'diagnose tally --help'\n"
    r = _run("tally", "x.csv", "--bogus", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == "Error: No such option: --bogus; see 'diagnose tally --help'\n"


def test_out_of_range_option_is_one_line(tmp_path: Path) -> None:
    r = _run("errors", "--sample", "0", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("Error: Invalid value for '--sample'")


@pytest.mark.slow
def test_expected_failure_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "sheet.csv").write_text("")
    r = _run("tally", "sheet.csv", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("Error: sheet.csv") and r.stderr.count("\n") == 1
    r = _run("tally", "sheet.csv", "--debug", cwd=tmp_path)  # --debug after the command works too
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr and "SheetError" in r.stderr


def test_no_arguments_shows_help(tmp_path: Path) -> None:
    r = _run(cwd=tmp_path)
    assert "Usage: diagnose" in r.stdout + r.stderr
    assert "Error:" not in r.stderr


def test_version(tmp_path: Path) -> None:
    from diagnose import __version__

    r = _run("--version", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, f"diagnose {__version__}\n")
