"""`diagnose report --open`: the page goes to the default browser, found the standard way (BROWSER)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_open_hands_the_page_to_the_browser(cli, tmp_path: Path, example_model: Path, example_data: Path) -> None:
    wd = tmp_path / "wd"
    assert cli("gaps", example_model, example_data, "--workdir", wd, "--human-error", 0.01).exit_code == 0
    # A "browser" that records what it was asked to open: Python's webbrowser runs $BROWSER with the URL.
    record = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{record}"\n')
    browser.chmod(0o755)
    env = {**os.environ, "BROWSER": f"{browser} %s"}
    out = tmp_path / "my report.html"
    plain = subprocess.run(
        [sys.executable, "-m", "diagnose", "report", "--workdir", str(wd), "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert plain.returncode == 0, plain.stderr
    assert not record.exists()  # no --open: no browser
    run = subprocess.run(
        [sys.executable, "-m", "diagnose", "report", "--workdir", str(wd), "--out", str(out), "--open"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert record.read_text() == out.resolve().as_uri()  # file:///.../my%20report.html
    assert "%20" in record.read_text() and out.is_file()

