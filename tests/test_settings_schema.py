"""One schema for every settings file: DATA/diagnose.toml and [tool.diagnose] in a pyproject.toml.

Unknown keys, values of the wrong type or out of range, files nested too deep, too large, or not a
regular file: each is one line naming the file, with exit code 2 wherever the file is read. A
pyproject.toml that is not about diagnose stops nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diagnose.exceptions import SettingsError
from diagnose.io.settings import MAX_DEPTH, load_settings, read_data_settings

ROOT = Path(__file__).resolve().parents[1]


def _tables(root: Path) -> Path:
    """A DATA folder of two small CSV splits."""
    data = root / "data"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("dev", 20)):
        frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
        frame["label"] = rng.integers(0, 2, n)
        frame.to_csv(data / f"{split}.csv", index=False)
    return data


BAD_FILES = [
    # (content of DATA/diagnose.toml, a piece of the one line)
    ("humanerror = 0.02\n", "got 'humanerror'; did you mean human_error?"),
    ("image_size = 200000\n", "expected image_size as one size like 224 or [height, width], each from 1 to 8192"),
    ("image_size = [224, 0]\n", "expected image_size as"),
    ("x = " + "[" * 2000 + "]" * 2000 + "\n", f"nested at most {MAX_DEPTH} deep, got deeper than Python can parse"),
    ("human_error = 0.01\n[a.b.c.d.e.f.g.h.i]\nx = 1\n", f"nested at most {MAX_DEPTH} deep, got deeper"),
    ("arch_kwargs = " + "{a = " * 600 + "1" + "}" * 600 + "\n", f"nested at most {MAX_DEPTH} deep"),
    ('arch_kwargs = \'' + "[" * 5000 + "\'\n", "expected arch_kwargs as a table or a JSON object"),
    ('arch = "a\\u0000b.py:Net"\n', "expected arch as a string of at most 1024 printable characters"),
    ('label_column = "\\u001b]0;title\\u0007"\n', "expected label_column as a string of at most 1024 printable"),
    ('classes = ["ok", "\\u001b[31mred"]\n', "expected classes as a list of class names"),
    ("classes = [" + ", ".join(f'"c{i}"' for i in range(70000)) + "]\n", "expected classes as a list of class names"),
    ('mean = "0.5"\n', "expected mean as a number or a list of numbers"),
    ("std = [0.2, -0.1]\n", "expected std as numbers > 0"),
    ("human_error = nan\n", "expected human_error as a number >= 0"),
    ("human_error = \n", "expected TOML"),
    (b"classes = ['caf\xe9']\n", "expected UTF-8 TOML text"),
    ("# " + "x" * (1 << 20) + "\n", "expected a settings file of at most 1024 KiB"),
]


@pytest.mark.parametrize(("content", "piece"), BAD_FILES, ids=range(len(BAD_FILES)))
def test_a_bad_data_settings_file_is_one_line_and_exit_code_2(cli, tmp_path: Path, content: str | bytes, piece: str) -> None:
    data = _tables(tmp_path)
    path = data / "diagnose.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SettingsError) as exc:
        read_data_settings(data)
    assert piece in exc.value.message and "\n" not in exc.value.message and exc.value.exit_code == 2
    result = cli("data", data)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("Error: ") and "diagnose.toml" in line and piece in line and "\n" not in line


@pytest.mark.slow
def test_the_same_bad_file_ends_the_same_way_through_every_reader(cli, tmp_path: Path, example_data: Path,
                                                                   example_model: Path) -> None:
    import shutil

    import diagnose

    data = tmp_path / "digits"
    shutil.copytree(example_data, data)
    (data / "diagnose.toml").write_text("human_error = 0.01\nhumanerror = 0.02\n")
    lines = set()
    for args in (["data", data], ["gaps", example_model, data, "--workdir", tmp_path / "wd"],
                 ["sanity", example_model, data, "--steps", 5], ["lr-find", example_model, data, "--no-plot"]):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        lines.add(result.stderr.strip().rpartition(": expected")[2])
    assert len(lines) == 1  # one message, whoever read the file
    for call in (lambda: diagnose.gaps(example_model, data, workdir=tmp_path / "api"),
                 lambda: diagnose.check_data(data)):
        with pytest.raises(SettingsError, match="did you mean human_error"):
            call()


def test_an_image_size_past_the_bound_is_refused_on_the_command_line(cli, tmp_path: Path) -> None:
    data = _tables(tmp_path)
    result = cli("data", data, "--image-size", "200000")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("Error: --image-size: expected H,W or one size like 224, got '200000'")
    assert result.stderr.strip().endswith("(each side from 1 to 8192)")


@pytest.mark.parametrize("text", ['tool = "diagnose"\n', "[project\nname = 1\n", "\xff\xfe broken", "[tool.other]\nx = 1\n"])
def test_a_pyproject_above_that_is_not_about_diagnose_stops_nothing(cli, tmp_path: Path, text: str) -> None:
    data = _tables(tmp_path)
    (tmp_path / "pyproject.toml").write_bytes(text.encode("latin-1"))
    assert load_settings(data, {}, cwd=tmp_path).get("label_column") == "label"
    result = cli("data", data)
    assert result.exit_code == 0, result.output


def test_a_pyproject_about_diagnose_is_read_strictly(tmp_path: Path) -> None:
    data = _tables(tmp_path)
    for text, piece in (("[tool.diagnose\n", "expected TOML"), ('[tool]\ndiagnose = "x"\n', "expected a table of settings"),
                        ("[tool.diagnose]\nimage_size = 99999\n", "each from 1 to 8192")):
        (tmp_path / "pyproject.toml").write_text(text)
        with pytest.raises(SettingsError, match=piece):
            load_settings(data, {}, cwd=tmp_path)


def test_a_settings_file_that_is_not_a_regular_file_is_one_line(tmp_path: Path) -> None:
    data = _tables(tmp_path)
    toml = data / "diagnose.toml"
    os.symlink(toml, toml)  # a loop
    with pytest.raises(SettingsError, match="diagnose.toml: expected a TOML settings file, got a symlink loop"):
        load_settings(data, {}, cwd=tmp_path)
    toml.unlink()
    os.symlink(tmp_path / "gone.toml", toml)
    with pytest.raises(SettingsError, match="got a dangling symlink"):
        read_data_settings(data)


@pytest.mark.slow
def test_a_fifo_named_diagnose_toml_does_not_hang(tmp_path: Path) -> None:
    data = _tables(tmp_path)
    os.mkfifo(data / "diagnose.toml")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "diagnose", "data", str(data)], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"Error: {data / 'diagnose.toml'}: expected a TOML settings file, got a named pipe (FIFO); remove it or replace it with a file"


def test_good_values_come_back_normalized(tmp_path: Path) -> None:
    data = _tables(tmp_path)
    (data / "diagnose.toml").write_text('image_size = 8192\nclasses = ["a", 2]\nmean = 0.5\nhuman_error = 0\n'
                                        'arch_kwargs = \'{"widths": [[1, 2], [3]]}\'\n')
    got = read_data_settings(data)
    assert got == {"image_size": (8192, 8192), "classes": ["a", "2"], "mean": [0.5], "human_error": 0.0,
                   "arch_kwargs": {"widths": [[1, 2], [3]]}}
