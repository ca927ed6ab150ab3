"""The figure helper of `diagnose curves` (a forked process that imports matplotlib and draws): the
same figure and the same errors as drawing in-process, nothing left behind when the command ends
early or is interrupted, and a fallback to in-process drawing when the helper is gone."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from diagnose.plots import helper as H

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "fixtures" / "runs"

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or (os.cpu_count() or 1) < 2, reason="the helper runs on Linux with two or more cores"
)


def _env(helper: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DIAGNOSE_NO_HELPER"}
    return env if helper else env | {"DIAGNOSE_NO_HELPER": "1"}


def _curves(*args: object, helper: bool, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "diagnose", "curves", *map(str, args)], capture_output=True, text=True,
                          env=_env(helper), timeout=120, **kw)  # type: ignore[call-overload,no-any-return]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_arrays_travel_through_a_memory_file() -> None:
    a, b = socket.socketpair()
    arrays = {
        "odd bools": np.ones(7, dtype=bool),  # 7 bytes: the next array must still start aligned
        "float": np.linspace(0, 1, 300_001),
        "read-only": np.frombuffer(np.arange(7, dtype=np.int64).tobytes(), dtype=np.int64),
        "empty": np.empty(0),
        "strided": np.arange(20.0)[::3],
        "text": "no arrays at all",
    }
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(H.receive(b)))
    reader.start()
    H.send(a, arrays)
    reader.join(30)
    out = got[0]
    assert isinstance(out, dict) and out.keys() == arrays.keys()
    for key in ("float", "read-only", "empty", "strided"):
        np.testing.assert_array_equal(out[key], arrays[key])
        assert out[key].dtype == arrays[key].dtype
    assert out["text"] == arrays["text"]
    assert all(out[key].flags.aligned for key in ("float", "read-only", "empty", "strided"))
    out["float"][0] = 5.0  # a private map: writable, and the sender's array is untouched
    assert arrays["float"][0] == 0.0
    a.close()
    with pytest.raises(EOFError):
        H.receive(b)  # the other side went away
    b.close()


@pytest.mark.slow
def test_the_helper_draws_the_figure_drawing_in_process_draws(tmp_path: Path) -> None:
    from PIL import Image

    outs = {}
    for helper in (True, False):
        fig = tmp_path / f"{helper}.png"
        done = _curves(RUNS / "overfitting.trainer_state.json", RUNS / "healthy.keras.csv", "--json", "-o", fig, helper=helper)
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc.pop("plot") == str(fig)
        outs[helper] = (doc, np.asarray(Image.open(fig)))
    assert outs[True][0] == outs[False][0]
    assert outs[True][1].shape == outs[False][1].shape and (outs[True][1] == outs[False][1]).all()


@pytest.mark.slow
def test_an_error_in_the_helper_is_the_same_one_line(tmp_path: Path) -> None:
    (tmp_path / "a file").write_text("")
    target = tmp_path / "a file" / "fig.png"  # a file where a folder should be: found while saving
    got = [_curves(RUNS / "healthy.keras.csv", "-o", target, helper=h) for h in (True, False)]
    assert got[0].returncode == got[1].returncode == 2
    assert got[0].stderr == got[1].stderr
    assert got[0].stderr.startswith("Error: --out ") and len(got[0].stderr.splitlines()) == 1


def test_a_helper_given_no_job_is_stopped(tmp_path: Path) -> None:
    helper = H.FigureHelper.start(lambda: None)
    assert helper is not None
    helper.close()
    assert _gone(helper.pid)
    # ... and one started before the command line was parsed, when parsing fails: the command ends
    # at once and leaves no process behind (its whole session is gone)
    done = subprocess.Popen([sys.executable, "-m", "diagnose", "curves", str(RUNS / "healthy.keras.csv"), "--no-such-option"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(True), start_new_session=True)
    _, err = done.communicate(timeout=60)
    assert done.returncode == 2 and "--no-such-option" in err
    with pytest.raises(ProcessLookupError):
        os.killpg(done.pid, 0)


def _crash() -> None:
    raise RuntimeError("the helper could not import")


def _double(x: np.ndarray) -> np.ndarray:
    return 2 * x


def _refuse(record: str) -> None:
    from diagnose.exceptions import ArgumentError

    with open(record, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    raise ArgumentError("max_items", "expected a positive number", 0)  # its arguments are not its message


def test_an_error_that_does_not_pickle_comes_back_once(tmp_path: Path) -> None:
    from diagnose.exceptions import DiagnoseError

    record = tmp_path / "calls"
    helper = H.FigureHelper.start(lambda: None)
    assert helper is not None
    with pytest.raises(DiagnoseError) as got:
        helper.run(_refuse, str(record))
    assert "expected a positive number" in got.value.message and got.value.exit_code == 2
    assert record.read_text().split() == [str(helper.pid)]  # ran in the helper, and only there
    assert _gone(helper.pid)


def test_a_dead_helper_means_drawing_here() -> None:
    helper = H.FigureHelper.start(_crash)
    assert helper is not None
    x = np.arange(10.0)
    np.testing.assert_array_equal(helper.run(_double, x), 2 * x)
    assert _gone(helper.pid)
    helper = H.FigureHelper.start(lambda: None)
    assert helper is not None
    np.testing.assert_array_equal(helper.run(_double, x), 2 * x)  # and in the helper, the same
    assert _gone(helper.pid)


CHILD = """
import os, signal, sys
import matplotlib.figure
original = matplotlib.figure.Figure.savefig

def interrupted(self, *args, **kwargs):
    # Ctrl-C in a terminal: SIGINT to the whole foreground group, here while the helper writes
    os.killpg(os.getpgid(0), signal.SIGINT)
    import time; time.sleep(1)
    return original(self, *args, **kwargs)

matplotlib.figure.Figure.savefig = interrupted
from diagnose.cli import main
sys.argv = ["diagnose", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_ctrl_c_while_the_helper_draws_keeps_the_old_figure(tmp_path: Path) -> None:
    fig = tmp_path / "fig.png"
    first = _curves(RUNS / "healthy.keras.csv", "-o", fig, helper=True)
    assert first.returncode == 0, first.stderr
    before = fig.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "curves", str(RUNS / "overfitting.trainer_state.json"), "-o", str(fig)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(True), start_new_session=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "Error: interrupted"
    assert fig.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]  # no temporary file left
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the helper outlived the command")
