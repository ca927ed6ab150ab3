"""Files a person owns survive: one output rule for every command (replace only what diagnose wrote,
else keep a .bak), outputs equal to inputs refused, write failures as one line, a workdir published
whole under a lock. Every test also checks that each file that was there before is byte-identical."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from diagnose.cli import app

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
LOG = "healthy.keras.csv"


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _unchanged(before: dict[str, bytes], root: Path) -> None:
    after = _snapshot(root)
    for name, data in before.items():
        assert after.get(name) == data, f"{name} changed or vanished"
    assert not [n for n in after if ".tmp" in n], "a temporary file was left"


@pytest.fixture()
def log(tmp_path: Path) -> Path:
    shutil.copy(RUNS / LOG, tmp_path / LOG)
    return tmp_path / LOG


@pytest.fixture()
def preds(tmp_path: Path) -> Path:
    folder = tmp_path / "preds"
    folder.mkdir()
    pq.write_table(pa.table({"index": list(range(6)), "label": [0, 1, 2, 0, 1, 2], "pred": [1, 1, 0, 2, 1, 0]}),
                   folder / "dev.parquet")
    return folder


# --- curves -------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("default", [False, True], ids=["--out", "default X.curves.png"])
def test_curves_keeps_a_figure_diagnose_did_not_write(tmp_path: Path, log: Path, default: bool) -> None:
    fig = tmp_path / (f"{LOG}.curves.png" if default else "fig.png")
    fig.write_bytes(b"\x89PNG\r\n\x1a\nmy own drawing")
    before = _snapshot(tmp_path)
    args = ["curves", log] + ([] if default else ["--out", fig])
    r = _run(*args)
    assert r.exit_code == 0, r.output
    assert Path(str(fig) + ".bak").read_bytes() == before[fig.name]
    assert f"note: {fig} was not written by diagnose; kept it as {fig}.bak" in r.stderr
    # diagnose's own figure is replaced with no second .bak
    r = _run(*args)
    assert r.exit_code == 0, r.output
    assert not Path(str(fig) + ".bak.1").exists()
    del before[fig.name]
    _unchanged(before, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".svg", ".pdf"])
def test_curves_recognizes_its_own_svg_and_pdf(tmp_path: Path, log: Path, suffix: str) -> None:
    fig = tmp_path / f"fig{suffix}"
    for _ in range(2):
        assert _run("curves", log, "--out", fig).exit_code == 0
    assert not Path(str(fig) + ".bak").exists()


def test_output_below_a_regular_file_is_one_line(tmp_path: Path, log: Path) -> None:
    (tmp_path / "notes").write_text("x")
    before = _snapshot(tmp_path)
    r = _run("curves", log, "--out", tmp_path / "notes" / "fig.png")
    assert r.exit_code == 2
    assert r.stderr == (f"Error: --out {tmp_path / 'notes' / 'fig.png'}: expected a folder to write in, got a file at "
                        f"{tmp_path / 'notes'}; pass another path\n")
    r = _run("report", "--log", log, "--out", tmp_path / "notes" / "r.html")
    assert r.exit_code == 2 and r.stderr.startswith(f"Error: --out {tmp_path / 'notes' / 'r.html'}: expected a folder")
    _unchanged(before, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["ENOSPC", "EROFS"])
@pytest.mark.parametrize("command", ["curves", "report", "errors"])
def test_disk_full_or_read_only_is_one_line(
    tmp_path: Path, log: Path, preds: Path, monkeypatch: pytest.MonkeyPatch, code: int, command: str
) -> None:
    out = {"curves": tmp_path / "fig.png", "report": tmp_path / "r.html", "errors": tmp_path / "s.csv"}[command]
    args = {"curves": ["curves", log, "--out", out], "report": ["report", "--log", log, "--out", out],
            "errors": ["errors", "--predictions", preds, "--out", out]}[command]
    assert _run(*args).exit_code == 0  # a previous output to keep
    before = _snapshot(tmp_path)

    def replace(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr(os, "replace", replace)
    r = _run(*args)
    assert r.exit_code == 1, r.output
    want = "a full disk" if code == errno.ENOSPC else "a read-only one"
    assert r.stderr.startswith("Error: ") and want in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert "unexpected" not in r.stderr
    monkeypatch.undo()
    _unchanged(before, tmp_path)


# --- errors -------------------------------------------------------------------------------------

def test_errors_keeps_a_person_png_beside_the_sheet(tmp_path: Path, preds: Path) -> None:
    # A predictions file whose ids are image paths: the contact sheet is drawn.
    from PIL import Image

    for k in range(6):
        Image.new("RGB", (8, 8), (40 * k, 0, 0)).save(tmp_path / f"img{k}.png")
    pq.write_table(pa.table({"index": list(range(6)), "id": [str(tmp_path / f"img{k}.png") for k in range(6)],
                             "label": [0, 1, 2, 0, 1, 2], "pred": [1, 1, 0, 2, 1, 0]}), preds / "dev.parquet")
    mine = tmp_path / "sheet.png"
    mine.write_bytes(b"\x89PNG\r\n\x1a\nmy chart")
    before = _snapshot(tmp_path)
    r = _run("errors", "--predictions", preds, "--out", tmp_path / "sheet.csv")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sheet.png.bak").read_bytes() == before["sheet.png"]
    from PIL import Image as I

    with I.open(mine) as im:
        assert im.text["Software"] == "diagnose"
    del before["sheet.png"]
    _unchanged(before, tmp_path)


def test_errors_keeps_a_sheet_with_hand_edited_labels(tmp_path: Path, preds: Path) -> None:
    out = tmp_path / "sheet.csv"
    assert _run("errors", "--predictions", preds, "--out", out, "--seed", 1).exit_code == 0
    edited = out.read_bytes().replace(b",dev,", b",dev-checked,", 1)
    out.write_bytes(edited)
    r = _run("errors", "--predictions", preds, "--out", out, "--seed", 1)
    assert r.exit_code == 0, r.output
    assert Path(str(out) + ".bak").read_bytes() == edited


@pytest.mark.parametrize("which", ["predictions file", "png beside"])
def test_errors_output_equal_to_an_input_is_refused(tmp_path: Path, preds: Path, which: str) -> None:
    before = _snapshot(tmp_path)
    out = preds / "dev.parquet" if which == "predictions file" else preds / "dev.csv"
    if which == "png beside":
        shutil.copy(preds / "dev.parquet", preds / "dev.png")
        (preds / "dev.parquet").unlink()
        (preds / "dev.png").rename(preds / "dev.parquet")
        out = tmp_path / "x.png"
    r = _run("errors", "--predictions", preds, "--out", out)
    assert r.exit_code == 2, r.output
    if which == "predictions file":
        assert r.stderr == (f"Error: --out {out}: expected a new file, got one of the inputs ({out}); choose another name\n")
    else:
        assert "expected the sheet's .csv path" in r.stderr
    _unchanged(before, tmp_path)


def test_errors_refuses_predictions_that_do_not_match_the_manifest(tmp_path: Path, preds: Path) -> None:
    from diagnose.io.digest import sha256_file

    (preds / "manifest.json").write_text(json.dumps({"splits": {"dev": {"sha256": "0" * 64}}}))
    before = _snapshot(tmp_path)
    r = _run("errors", "--predictions", preds, "--out", tmp_path / "s.csv")
    assert r.exit_code == 1
    assert r.stderr.startswith(f"Error: {preds / 'dev.parquet'}: expected the predictions its manifest records "
                               "(sha256 000000000000...), got a different file")
    _unchanged(before, tmp_path)
    (preds / "manifest.json").write_text(json.dumps({"splits": {"dev": {"sha256": sha256_file(preds / "dev.parquet")}}}))
    assert _run("errors", "--predictions", preds, "--out", tmp_path / "s.csv").exit_code == 0


# --- gaps: one unit, one writer -----------------------------------------------------------------

def test_gaps_refuses_a_second_run_into_a_locked_workdir(tmp_path: Path, example_model: Path, example_data: Path) -> None:
    from diagnose.io.outputs import workdir_lock

    wd = tmp_path / "wd"
    (wd / "predictions").mkdir(parents=True)
    (wd / "manifest.json").write_text("{}")
    before = _snapshot(tmp_path)
    with workdir_lock(wd):
        r = _run("gaps", example_model, example_data, "--workdir", wd)
    assert r.exit_code == 1
    assert r.stderr == (f"Error: --workdir {wd}: expected no other diagnose run writing to it, got one running; "
                        "wait for it to finish, or pass another --workdir\n")
    _unchanged(before, tmp_path)


def test_gaps_publishes_the_workdir_whole_and_keeps_a_person_file(
    tmp_path: Path, example_model: Path, example_data: Path
) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "my-notes.txt").write_text("keep me")
    r = _run("gaps", example_model, example_data, "--workdir", wd, "--max-items", 200)
    assert r.exit_code == 0, r.output
    assert (wd / "my-notes.txt").read_text() == "keep me"
    manifest = json.loads((wd / "manifest.json").read_text())
    from diagnose.io.digest import fingerprint_file

    for name, entry in manifest["splits"].items():
        assert entry["fingerprint"] == fingerprint_file(wd / "predictions" / f"{name}.parquet")
        assert entry["sha256"] is None  # a full digest only with --full-digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wd"], "a staging folder was left beside the workdir"


def test_workdir_equal_to_the_current_folder_is_refused(
    tmp_path: Path, example_model: Path, example_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mine.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    r = _run("gaps", example_model, example_data, "--workdir", ".")
    assert r.exit_code == 2
    assert r.stderr.startswith("Error: --workdir .: expected a folder for diagnose's own files, got the current folder")
    _unchanged(before, tmp_path)
