"""Every path diagnose opens goes through one door: only regular files are read or replaced.

Inputs found inside DATA (a split, an image, classes.txt, a predictions file, a manifest), model
files, and outputs (--out): a FIFO, a symlink loop, a dangling link or a name longer than the file
system allows is one line naming the path, never a hang or an unexpected OSError. A FIFO case runs
the command in a subprocess with a timeout, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diagnose.exceptions import DataError
from diagnose.io.paths import open_regular

ROOT = Path(__file__).resolve().parents[1]
LONG = "n" * 300  # past NAME_MAX (255) on every common file system


def _run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "diagnose", *map(str, args)], capture_output=True, text=True,
                          timeout=60, env=env, cwd=cwd)


def _images(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "dev"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


def test_open_regular_reads_a_file_and_refuses_the_rest(tmp_path: Path) -> None:
    good = tmp_path / "good.bin"
    good.write_bytes(b"abc")
    with open_regular(good, "a file", "fix") as fh:
        assert fh.read() == b"abc"
    os.mkfifo(tmp_path / "pipe")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    (tmp_path / "folder").mkdir()
    cases = {
        "pipe": "a named pipe (FIFO)", "loop": "a symlink loop", "dangling": f"a dangling symlink to {tmp_path / 'gone'}",
        "folder": "a folder", LONG: "a name longer than the file system allows", "missing": "nothing at that path",
    }
    for name, what in cases.items():
        with pytest.raises(DataError) as exc, open_regular(tmp_path / name, "a split", "fix it", DataError):
            pass
        assert exc.value.message == f"{tmp_path / name}: expected a split, got {what}; fix it"


# --- FIFOs: each in a subprocess with a timeout -----------------------------------------------------


@pytest.mark.slow
def test_fifos_inside_data_and_as_outputs_are_refused_without_blocking(tmp_path: Path, example_model: Path,
                                                                      example_data: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(example_data, data)
    (data / "dev.pt").unlink()
    os.mkfifo(data / "dev.pt")
    images = _images(tmp_path / "images")
    os.mkfifo(images / "dev" / "a" / "x.png")
    classes = tmp_path / "classes"
    shutil.copytree(example_data, classes)
    (classes / "classes.txt").unlink()
    os.mkfifo(classes / "classes.txt")
    for name in ("out.csv", "lr.png", "curves.png", "report.html"):
        os.mkfifo(tmp_path / name)
    log = ROOT / "fixtures" / "runs" / "gap.history.tsv"

    refused = "expected a regular file or a new file path, got a named pipe (FIFO); pass another path"
    cases = [
        (["data", data], 1, f"{data / 'dev.pt'}: expected a readable split file, got a named pipe (FIFO); remove it or replace it with a file"),
        (["gaps", example_model, data, "--workdir", tmp_path / "w1"], 1, f"{data / 'dev.pt'}: expected a readable split file, got a named pipe (FIFO)"),
        (["data", images], 1, f"{images / 'dev' / 'a' / 'x.png'}: expected a readable image, got a named pipe (FIFO); remove or replace the file"),
        (["data", classes], 1, f"{classes / 'classes.txt'}: expected a text file of class names, got a named pipe (FIFO)"),
        (["errors", example_model, example_data, "--out", tmp_path / "out.csv", "--workdir", tmp_path / "w2", "--no-images"],
         2, f"--out {tmp_path / 'out.csv'}: {refused}"),
        (["lr-find", example_model, example_data, "--out", tmp_path / "lr.png", "--steps", 5, "--repeats", 1], 2,
         f"--out {tmp_path / 'lr.png'}: {refused}"),
        (["curves", log, "--out", tmp_path / "curves.png"], 2, f"--out {tmp_path / 'curves.png'}: {refused}"),
        (["report", "--log", log, "--out", tmp_path / "report.html"], 2, f"--out {tmp_path / 'report.html'}: {refused}"),
    ]
    for args, code, piece in cases:
        proc = _run(*args, cwd=tmp_path)
        line = proc.stderr.strip()
        assert (proc.returncode, "\n" in line) == (code, False), (args, proc.stderr)
        assert line.startswith("Error: " + piece), (args, line)
    # the FIFOs given as outputs are still FIFOs: nothing replaced them
    assert all(os.path.exists(tmp_path / n) and not os.path.isfile(tmp_path / n) for n in ("out.csv", "lr.png", "curves.png"))


@pytest.mark.slow
def test_a_fifo_among_saved_predictions_is_refused(tmp_path: Path, example_model: Path, example_data: Path) -> None:
    wd = tmp_path / "wd"
    assert _run("gaps", example_model, example_data, "--workdir", wd, "--max-items", 20, cwd=tmp_path).returncode == 0
    dev = wd / "predictions" / "dev.parquet"
    dev.unlink()
    os.mkfifo(dev)
    for args in (["gaps", "--predictions", wd], ["compare", wd, wd]):
        proc = _run(*args, cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip() == (f"Error: {dev}: expected a Parquet predictions file, got a named pipe (FIFO); "
                                       "remove it or rerun diagnose gaps")


# --- loops, dangling links, long names: in process ------------------------------------------------


def test_loops_dangling_links_and_long_names_inside_data(cli, tmp_path: Path, example_model: Path, example_data: Path) -> None:
    loop = tmp_path / "loop"
    shutil.copytree(example_data, loop)
    (loop / "dev.pt").unlink()
    os.symlink(loop / "dev.pt", loop / "dev.pt")
    dangling = tmp_path / "dangling"
    shutil.copytree(example_data, dangling)
    (dangling / "dev.pt").unlink()
    os.symlink(tmp_path / "gone.pt", dangling / "dev.pt")
    images = _images(tmp_path / "images")
    os.symlink(images / "dev" / "a" / "z.png", images / "dev" / "a" / "z.png")
    cases = [
        (["gaps", example_model, loop, "--workdir", tmp_path / "w1"], 1, f"{loop / 'dev.pt'}: expected a readable split file, got a symlink loop"),
        (["gaps", example_model, dangling, "--workdir", tmp_path / "w2"], 1,
         f"{dangling / 'dev.pt'}: expected a readable split file, got a dangling symlink to {tmp_path / 'gone.pt'}"),
        (["data", images], 1, f"{images / 'dev' / 'a' / 'z.png'}: expected a readable image, got a symlink loop"),
        (["gaps", tmp_path / f"{LONG}.pt", example_data, "--workdir", tmp_path / "w3"], 1,
         f"{tmp_path / f'{LONG}.pt'}: expected a model file, got a name longer than the file system allows"),
        (["gaps", example_model, tmp_path / LONG, "--workdir", tmp_path / "w4"], 1,
         f"{tmp_path / LONG}: expected a data folder with train/train_dev/dev/test splits, got a name longer than the file system allows"),
    ]
    for args, code, piece in cases:
        result = cli(*args)
        line = result.stderr.strip()
        assert (result.exit_code, "\n" in line) == (code, False), (args, result.output)
        assert line.startswith("Error: " + piece), (args, line)


def test_outputs_that_are_loops_dangling_links_or_long_names(cli, tmp_path: Path, example_model: Path,
                                                             example_data: Path) -> None:
    os.symlink(tmp_path / "loop.csv", tmp_path / "loop.csv")
    os.symlink(tmp_path / "gone" / "x.csv", tmp_path / "dangling.csv")
    cases = {
        "loop.csv": "a symlink loop", "dangling.csv": f"a dangling symlink to {tmp_path / 'gone' / 'x.csv'}",
        f"{LONG}.csv": "a name longer than the file system allows",
    }
    for name, what in cases.items():
        result = cli("errors", example_model, example_data, "--out", tmp_path / name, "--workdir", tmp_path / "wd", "--no-images")
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (f"Error: --out {tmp_path / name}: expected a regular file or a new file path, "
                                         f"got {what}; pass another path")
    assert os.path.islink(tmp_path / "dangling.csv")  # the link is left as it was
