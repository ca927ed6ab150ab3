"""Text from the input reaches the terminal and Markdown only through one door.

Class names, file names and sheet categories may hold ESC sequences (they retitle and recolour a
terminal), CR, bidirectional overrides, or Markdown and HTML (`|`, `<script>`, backticks, links).
Every rich table and line passes `safe_text` (stdout_console), every Markdown cell and line
`markdown_escape`, and every `Error:` line is one line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from diagnose.render import markdown_escape, markdown_table, safe_text

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "a|b", "\x1b]0;pwned\x07title",
           "\x1b[31mred", "back`tick", "![x](http://t.example/p.png)", "cr\rover", "bidi\u202eevil", "tab\tand\nnewline"]


def test_safe_text_escapes_controls_and_keeps_the_rest() -> None:
    assert safe_text("\x1b]0;t\x07") == "\\x1b]0;t\\x07"
    assert safe_text("a\u202eb\x9bc") == "a\\u202eb\\x9bc"
    assert safe_text("line\nnext\tcol") == "line\nnext\tcol"
    assert safe_text("line\nnext", one_line=True) == "line\\x0anext"
    assert safe_text("café ✓ 日本") == "café ✓ 日本"


def test_markdown_escape_neutralizes_html_tables_code_and_links() -> None:
    assert markdown_escape("<script>x</script>") == "\\<script\\>x\\</script\\>"
    assert markdown_escape("a|b") == "a\\|b"
    assert markdown_escape("back`tick") == "back\\`tick"
    assert markdown_escape("`check-id`") == "`check-id`"  # a whole code span of ours stays one
    assert markdown_escape("![x](http://t)") == "!\\[x\\](http://t)"
    assert markdown_escape("[0.1, 0.2]") == "[0.1, 0.2]"  # an interval is no link
    assert markdown_escape("two\nlines\r") == "two lines "
    assert markdown_escape("\\<") == "\\\\\\<"  # a backslash of the input cannot undo the escape
    table = markdown_table(["class"], [[h] for h in HOSTILE])
    assert not re.search(r"(?<!\\)<", table) and "\x1b" not in table and "\r" not in table
    assert all(line.count(" | ") + 2 == line.count("|") - line.count("\\|") for line in table.splitlines()[2:])


def _run_folder(root: Path, preds: np.ndarray, labels: np.ndarray, classes: list[str]) -> Path:
    import pandas as pd

    root.mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
    for split in ("train", "dev"):
        pd.DataFrame({"label": labels, "pred": preds}).to_parquet(root / f"{split}.parquet")
    return root


@pytest.fixture
def hostile_runs(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    classes = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "\x1b]0;pwned\x07T", "a|b"]
    labels = rng.integers(0, len(classes), 400)
    old = np.where(rng.random(400) < 0.3, rng.integers(0, len(classes), 400), labels)
    new = np.where(rng.random(400) < 0.1, rng.integers(0, len(classes), 400), labels)
    return _run_folder(tmp_path / "old", old, labels, classes), _run_folder(tmp_path / "new", new, labels, classes)


def test_compare_markdown_writes_no_html_and_no_escape_sequences(cli, hostile_runs: tuple[Path, Path]) -> None:
    old, new = hostile_runs
    result = cli("compare", old, new, "--markdown")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "\\<script\\>alert(1)\\</script\\>" in out and "\\<img src=x onerror=alert(1)\\>" in out
    assert not re.search(r"(?<!\\)<", out)  # no raw HTML anywhere
    assert "\x1b" not in out and "\\\\x1b]0;pwned\\\\x07T" in out  # shown as \x1b: the backslash escaped
    assert "a\\|b" in out


def test_compare_on_the_terminal_shows_escapes_not_sequences(cli, hostile_runs: tuple[Path, Path]) -> None:
    old, new = hostile_runs
    result = cli("compare", old, new)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]0;pwned" in result.stdout  # rich drops the BEL itself; the ESC is shown, not sent


def test_the_result_console_escapes_every_cell_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.table import Table
    from rich.text import Text

    from diagnose.render import stdout_console

    console = stdout_console()
    table = Table()
    table.add_column("class")
    for name in HOSTILE:
        table.add_row(Text(name))
    console.print(table)
    console.print("\x1b[2J cleared?", markup=False)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b[2J cleared?" in out and "\\u202e" in out


def test_an_error_line_stays_one_line_whatever_the_path(cli, tmp_path: Path) -> None:
    bad = tmp_path / "x\x1b]0;t\x07\nsecond line"
    result = cli("data", bad)
    assert result.exit_code == 1
    line = result.stderr
    assert line.count("\n") == 1 and "\x1b" not in line and "\\x1b]0;t\\x07\\x0asecond line" in line


@pytest.mark.slow
def test_hostile_class_names_through_gaps_and_errors(cli, tmp_path: Path, example_model: Path, example_data: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(example_data, data)
    names = ["ze\tro", "one\x1b]0;pwn\x07", "<script>x</script>", "th|ree", "fo`ur", "fi\u202eve", "s$ix", "$\\frac{",
             "eight", "nine"]
    (data / "classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    gaps = cli("gaps", example_model, data, "--workdir", tmp_path / "wd", "--per-class")
    assert gaps.exit_code == 0, gaps.output
    errors = cli("errors", "--workdir", tmp_path / "wd", "--out", tmp_path / "sheet.csv", "--markdown")
    assert errors.exit_code == 0, errors.output
    for result in (gaps, errors):
        for stream in (result.stdout, result.stderr):
            assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202e]", stream)
    assert "Glyph" not in errors.stderr  # the figures drew the names as escapes, not missing glyphs
    assert not re.search(r"(?<!\\)<", errors.stdout) and "\\<script\\>x\\</script\\>" in errors.stdout
    assert (tmp_path / "sheet.png").is_file()
