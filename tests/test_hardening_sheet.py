"""Formula-safe sheets: every text cell a spreadsheet would run as a formula is escaped on the way out
and read back as the original by `diagnose tally` (OWASP CSV injection: = + - @ TAB CR)."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from diagnose.cli import app
from diagnose.io.sheet import FORMULA_STARTS, read_sheet, write_sheet

HOSTILE = [
    "=1+1",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1)",
    "\tcalc",
    "\r=calc",
    "'=already quoted",
    "plain",
    "-",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_cell_escaped_on_write_and_read_back_as_the_original(tmp_path: Path, value: str) -> None:
    out = tmp_path / "s.csv"
    write_sheet(out, ["n", "split", "index", "id", "label", "pred", value.strip() or "x", "note"],
                [[1, "dev", 3, value, value, "cat", "", value]])
    with open(out, encoding="utf-8-sig", newline="") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    # No cell of the file starts with a formula character.
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    sheet = read_sheet(out)
    row = sheet.rows[0]
    assert row["id"] == value and row["label"] == value and row["note"] == value


def test_errors_sheet_from_hostile_ids_and_class_names(tmp_path: Path) -> None:
    preds = tmp_path / "preds"
    preds.mkdir()
    n = 8
    pq.write_table(
        pa.table({
            "index": list(range(n)),
            "id": [HOSTILE[k % len(HOSTILE)] for k in range(n)],
            "label": ["-cls", "=cls", "@cls", "+cls"] * 2,
            "pred": ["+cls", "-cls", "=cls", "@cls"] * 2,
        }),
        preds / "dev.parquet",
    )
    out = tmp_path / "sheet.csv"
    result = CliRunner().invoke(app, ["errors", "--predictions", str(preds), "--out", str(out), "--no-images"])
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8-sig", newline="") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    sheet = read_sheet(out)
    assert {r["label"] for r in sheet.rows} == {"-cls", "=cls", "@cls", "+cls"}
    assert sorted(r["id"] for r in sheet.rows) == sorted(HOSTILE[k % len(HOSTILE)] for k in range(n))
    tally = CliRunner().invoke(app, ["tally", str(out), "--json"])
    assert tally.exit_code in (0, 1), tally.output
