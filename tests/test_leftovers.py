"""What a killed run (kill -9: no cleanup runs) leaves beside its outputs is removed by the next run;
what a running process is writing is never touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from diagnose.io.atomic import atomic_write_text
from diagnose.io.outputs import WorkdirRun

KILLED_WRITING = """
import os, signal, sys
from diagnose.io.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a figure")
    os.kill(os.getpid(), signal.SIGKILL)
"""

KILLED_STAGING = """
import os, signal, sys
from pathlib import Path
from diagnose.io.outputs import WorkdirRun
with WorkdirRun(Path(sys.argv[1])) as run:
    (run.staged / "predictions").mkdir()
    (run.staged / "predictions" / "dev.parquet").write_bytes(b"PAR1 partial")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed(script: str, arg: Path) -> None:
    res = subprocess.run([sys.executable, "-c", script, str(arg)], capture_output=True, timeout=120)
    assert res.returncode == -9, res.stderr


def test_a_killed_write_leaves_a_temporary_that_the_next_write_removes(tmp_path: Path) -> None:
    target = tmp_path / "fig.png"
    target.write_bytes(b"the old figure")
    _killed(KILLED_WRITING, target)
    left = [p.name for p in tmp_path.iterdir() if p.name != "fig.png"]
    assert len(left) == 1 and left[0].startswith(".fig.png.") and left[0].endswith(".tmp.png")
    assert target.read_bytes() == b"the old figure"  # the old output is intact
    atomic_write_text(target, "the new figure")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]
    assert target.read_text() == "the new figure"


def test_a_running_writers_temporary_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "sheet.csv"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = tmp_path / f".sheet.csv.{sleeper.pid}.abcdefgh.tmp.csv"
        theirs.write_text("being written")
        atomic_write_text(target, "mine")
        assert theirs.read_text() == "being written"
    finally:
        sleeper.kill()
        sleeper.wait()
    atomic_write_text(target, "mine again")  # its writer is gone now: removed
    assert not theirs.exists()


def test_a_killed_gaps_run_leaves_a_staging_folder_that_the_next_run_removes(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    workdir.mkdir()
    (workdir / "manifest.json").write_text("{}")  # the previous run
    _killed(KILLED_STAGING, workdir)
    staged = [p for p in tmp_path.iterdir() if p.name.startswith(".wd.new-")]
    assert len(staged) == 1 and (staged[0] / "predictions" / "dev.parquet").is_file()
    assert (workdir / "manifest.json").read_text() == "{}"
    with WorkdirRun(workdir) as run:
        assert not staged[0].exists()
        (run.staged / "manifest.json").write_text('{"metric": "error"}')
        run.publish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wd"]
    assert (workdir / "manifest.json").read_text() == '{"metric": "error"}'
