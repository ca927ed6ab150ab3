"""`diagnose report`: the HTML page and its JSON from a real `diagnose gaps` run, a marked sheet,
a generated training log and the data checks; escaping, overwrite refusal, no torch without --data."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diagnose.cli import app

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "fixtures" / "runs" / "overfitting.trainer_state.json"
# Class names and a sheet column a hostile (or careless) file could hold; they must arrive as text.
EVIL_CLASS = '<script>alert("one")</script>'
EVIL_CLASS_8 = "eight & <b>co</b>"
EVIL_COLUMN = "<img src=x onerror=alert(2)>"
EVIL_NOTE = "<script>alert(3)</script> thick stroke"


@dataclass
class Inputs:
    root: Path
    workdir: Path
    data: Path
    sheet: Path
    marks: dict[str, int]  # category -> rows marked, counted here with a plain loop
    rows: int


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory, example_model: Path, example_data: Path) -> Inputs:
    root = tmp_path_factory.mktemp("report")
    data = root / "data"
    shutil.copytree(example_data, data)
    names = [str(i) for i in range(10)]
    names[1], names[8] = EVIL_CLASS, EVIL_CLASS_8
    (data / "classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    workdir = root / ".diagnose"
    r = _run("gaps", example_model, data, "--workdir", workdir, "--json")
    assert r.exit_code == 0, r.output
    sheet = root / "sheet.csv"
    r = _run("errors", "--workdir", workdir, "--sample", 30, "--out", sheet, "--json")
    assert r.exit_code == 0, r.output
    assert (root / "sheet.png").is_file()  # the contact sheet, embedded in the report
    with open(sheet, encoding="utf-8-sig", newline="") as fh:
        table = list(csv.reader(fh))
    header, body = table[0] + [EVIL_COLUMN], [row + [""] for row in table[1:]]
    col = {h: k for k, h in enumerate(header)}
    for i, row in enumerate(body):  # a seeded marking pattern: blurry every 2nd row, confusable every 3rd, ...
        row[col["blurry"]] = "x" if i % 2 == 0 else ""
        row[col["confusable"]] = "x" if i % 3 == 0 else ""
        row[col[EVIL_COLUMN]] = "x" if i % 5 == 0 else ""
    body[0][col["note"]] = EVIL_NOTE
    with open(sheet, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([header, *body])
    cats = ["blurry", "confusable", "mislabeled", "other", EVIL_COLUMN]
    marks = {c: sum(1 for row in body if row[col[c]].strip()) for c in cats}
    return Inputs(root=root, workdir=workdir, data=data, sheet=sheet, marks=marks, rows=len(body))


@pytest.fixture(scope="session")
def full(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """The report with gaps, sheet and log: (HTML text, JSON document)."""
    out = tmp_path_factory.mktemp("full") / "report.html"
    r = _run("report", "--workdir", inputs.workdir, "--sheet", inputs.sheet, "--log", LOG, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    return out.read_text(encoding="utf-8"), json.loads(r.stdout)


class _Structure(HTMLParser):
    """Every non-void element closed in order; collects tags seen."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "line", "rect", "path", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def test_html_holds_the_manifest_numbers(full: tuple[str, dict], example_counts: dict[str, tuple[int, int]]) -> None:
    page, doc = full
    for split, (n, wrong) in example_counts.items():
        # the level table: n and error, counted here by a plain one-item-at-a-time loop
        assert f"<td class=num>{n:,}</td><td class=num>{wrong / n * 100:.1f}%</td>" in page, split
        assert doc["gaps"]["splits"][split]["errors"] == wrong
        assert doc["gaps"]["splits"][split]["n"] == n
    assert doc["gaps"]["verdict"]["problem"] == "data_mismatch"
    assert doc["summary"]["verdict"].startswith("data mismatch is the largest significant gap")
    assert doc["summary"]["top_advice"] == doc["gaps"]["verdict"]["advice"][0]
    # The advice is on the page with its command set as code, never as literal backticks.
    assert "Do error analysis on dev against train-dev to see how the data differ (<code>diagnose errors --split dev</code>)." in page
    assert "`" not in page.split("</style>", 1)[1]
    # "Do first" joins the verdict and the tally's lead (blurry and confusable tie on this sheet).
    assert doc["summary"]["do_first"] == (
        "data mismatch dominates; among dev errors blurry and confusable lead (tied) (ceiling 12.8 pts): "
        "add blurry training data (collect or synthesize items like them); "
        "add training items that tell the most-confused classes apart.")
    assert "<b>Do first:</b> data mismatch dominates; among dev errors blurry" in page
    # per-class rows from the saved predictions: class 1 is always wrong on dev, and the shares add up
    classes = doc["gaps"]["per_class"]["classes"]
    assert classes[1]["class"] == EVIL_CLASS and classes[1]["error"]["dev"] == 1.0
    dm = sum(c["contribution"]["data_mismatch"] for c in classes)
    assert dm == pytest.approx(doc["gaps"]["gaps"]["data_mismatch"]["value"], abs=1e-12)
    src = doc["gaps"]["source"]
    assert src["model"]["fingerprint"] in page and src["model"]["format"] == "torchscript"
    assert doc["gaps"]["report_notes"] == []


def test_page_is_self_contained_and_well_formed(full: tuple[str, dict]) -> None:
    page, _ = full
    parser = _Structure()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta name="generator" content="diagnose ' in page
    assert "script" not in parser.tags and "link" not in parser.tags and "iframe" not in parser.tags
    # no external resource: every src is inline data
    assert all(s.startswith("data:") for s in re.findall(r'\ssrc="([^"]*)"', page))
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    # the levels chart twice (one for wide screens, one drawn at a phone's width); summary + five sections
    assert parser.tags.count("svg") == 2 and parser.tags.count("section") == 6
    assert "Not in this report: pass --data DIR" in page


def test_embedded_figures_are_pngs(full: tuple[str, dict], inputs: Inputs) -> None:
    from PIL import Image

    page, doc = full
    blobs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(blobs) == 3  # the confusion matrices, the contact sheet of the sampled errors, the curves
    with Image.open(io.BytesIO(base64.b64decode(blobs[0], validate=True))) as im:
        assert im.format == "PNG" and im.size[0] > 900  # train_dev and dev side by side
    contact = base64.b64decode(blobs[1], validate=True)
    assert contact == (inputs.root / "sheet.png").read_bytes()
    # Phones get their own variants (srcset): the matrices stacked, the tiles two to a row, the curves narrow.
    narrow = re.findall(r'srcset="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(narrow) == 3
    for blob, width in zip(narrow, (430, 2 * 144, 430), strict=True):
        with Image.open(io.BytesIO(base64.b64decode(blob, validate=True))) as im:
            assert im.size[0] == width
    with Image.open(io.BytesIO(base64.b64decode(blobs[2], validate=True))) as im:
        assert im.format == "PNG"
        assert im.size[0] == 1000 and im.size[1] > 500  # 10 in at 100 dpi; three panels
    run = doc["curves"]["runs"][0]
    assert run["path"] == str(LOG) and doc["curves"]["figure"] == "embedded"
    assert "overfitting" in [f["id"] for f in run["findings"]]
    assert "<td>overfitting</td>" in page


def test_tally_section_counts_the_sheet(full: tuple[str, dict], inputs: Inputs) -> None:
    page, doc = full
    tally = doc["tally"]
    assert tally["rows"] == inputs.rows == 30
    assert {c["name"]: c["count"] for c in tally["categories"]} == inputs.marks
    assert tally["first"] == "blurry" and inputs.marks["blurry"] == 15
    dev_error = json.loads((inputs.workdir / "manifest.json").read_text())["splits"]["dev"]["error"]
    assert tally["error"] == dev_error
    blurry = next(c for c in tally["categories"] if c["name"] == "blurry")
    assert blurry["ceiling"] == pytest.approx(15 / 30 * dev_error)
    assert "<td>blurry</td><td class=num>15</td><td class=num>50.0%</td>" in page


def test_user_strings_are_escaped(full: tuple[str, dict]) -> None:
    page, doc = full
    assert "<script" not in page and "<img src=x" not in page and "<b>co</b>" not in page
    assert html.escape(EVIL_CLASS) in page  # class name in the per-class table
    assert html.escape(EVIL_CLASS_8) in page
    assert html.escape(EVIL_COLUMN) in page  # sheet column as a category
    assert any(c["name"] == EVIL_COLUMN for c in doc["tally"]["categories"])  # JSON keeps the text as is


@pytest.mark.slow
def test_refuses_to_overwrite_a_file_it_did_not_write(inputs: Inputs, tmp_path: Path) -> None:
    out = tmp_path / "notes.html"
    out.write_text("<html>my own notes</html>", encoding="utf-8")
    r = _run("report", "--workdir", inputs.workdir, "--out", out)
    assert r.exit_code == 1
    assert r.stderr == (
        f"Error: {out}: expected no file or a report diagnose wrote, got a file diagnose did not write; "
        "pass --out another.html, or --force to replace it (a .bak copy is kept)\n"
    )
    assert out.read_text(encoding="utf-8") == "<html>my own notes</html>"
    r = _run("report", "--workdir", inputs.workdir, "--out", out, "--force")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "notes.html.bak").read_text(encoding="utf-8") == "<html>my own notes</html>"
    assert f"The file it replaced was kept as {out}.bak" in r.stdout
    first = out.read_text(encoding="utf-8")
    assert '<meta name="generator" content="diagnose' in first
    # its own report is replaced without --force, and no second .bak appears
    r = _run("report", "--workdir", inputs.workdir, "--out", out)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.html", "notes.html.bak"]


def test_no_input_is_one_error_line(tmp_path: Path) -> None:
    r = _run("report", "--workdir", tmp_path / ".diagnose", "--out", tmp_path / "r.html")
    assert r.exit_code == 2
    assert r.stderr == (
        f"Error: {tmp_path / '.diagnose' / 'manifest.json'}: expected the manifest of a `diagnose gaps` run, "
        "got no such file; run `diagnose gaps MODEL DATA` first, or pass --log, --sheet or --data\n"
    )
    assert not (tmp_path / "r.html").exists()


def test_out_may_not_be_an_input(inputs: Inputs, tmp_path: Path) -> None:
    log = tmp_path / "run.html"  # the format is read from the content, so a log may have any name
    shutil.copy(LOG, log)
    r = _run("report", "--log", log, "--out", log, "--force")
    assert r.exit_code == 2
    assert r.stderr == f"Error: --out {log}: expected a new HTML file, got one of the inputs; choose another name\n"


def test_out_must_be_html(tmp_path: Path) -> None:
    r = _run("report", "--log", LOG, "--out", tmp_path / "r.pdf")
    assert r.exit_code == 2
    assert r.stderr == (f"Error: --out {tmp_path / 'r.pdf'}: expected an .html file, got .pdf; "
                        "name it report.html (print it to PDF from the browser)\n")


def test_curves_only_says_what_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = _run("report", "--workdir", tmp_path / "none", "--log", LOG, "--out", out)
    assert r.exit_code == 0, r.output
    page = out.read_text(encoding="utf-8")
    assert "No gap verdict: run <code>diagnose gaps MODEL DATA</code> first" in page
    assert "Not in this report: pass --sheet error_analysis.csv" in page
    assert r.stdout.splitlines()[0].startswith(f"Wrote {out} (")
    assert "sections: curves)" in r.stdout.splitlines()[0]
    assert "Curves of overfitting.trainer_state.json: overfitting" in r.stdout
    assert "Not included: tally; pass --sheet error_analysis.csv" in r.stdout


def test_changed_model_is_flagged(inputs: Inputs, example_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    shutil.copy(example_model, model)
    workdir = tmp_path / ".diagnose"
    r = _run("gaps", model, inputs.data, "--workdir", workdir, "--max-items", 100, "--json")
    assert r.exit_code == 0, r.output
    with open(model, "ab") as fh:  # the file changes after the run
        fh.write(b"retrained")
    r = _run("report", "--workdir", workdir, "--out", tmp_path / "r.html", "--json")
    assert r.exit_code == 0, r.output
    notes = json.loads(r.stdout)["gaps"]["report_notes"]
    assert notes == [f"the model file {model} changed after `diagnose gaps` evaluated it (its fingerprint differs): "
                     "rerun diagnose gaps for numbers of the current file"]
    shown = html.escape(notes[0]).replace("`diagnose gaps`", "<code>diagnose gaps</code>")
    assert shown in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_data_section(inputs: Inputs, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = _run("report", "--workdir", inputs.workdir, "--data", inputs.data, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    ids = [c["id"] for c in doc["data"]["checks"]]
    assert ids == ["split_sizes", "class_balance", "label_shift", "input_shift", "leakage"]
    assert doc["data"]["status"] in ("pass", "warn", "fail")
    # the smallest detectable gap is judged at the model's dev error, not the default 10%
    assert "near 26%" in doc["data"]["checks"][0]["evidence"]
    page = out.read_text(encoding="utf-8")
    assert "<code>leakage</code>" in page and "Split pairs" in page
    # Without a marked sheet, "do first" is the verdict's gap and its first advice.
    assert doc["summary"]["do_first"] == ("data mismatch dominates: do error analysis on dev against train-dev to "
                                          "see how the data differ (`diagnose errors --split dev`).")
    assert doc["missing"] == {"compare": "pass --baseline OLD_WORKDIR to compare this run with an earlier one",
                              "tally": "pass --sheet error_analysis.csv (written by `diagnose errors`, marked by you)",
                              "curves": "pass --log run.log (any log `diagnose curves` reads)"}


@pytest.mark.slow
def test_does_not_import_torch_without_data(inputs: Inputs, tmp_path: Path) -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom diagnose.cli import app\n"
        f"r = CliRunner().invoke(app, ['report', '--workdir', {str(inputs.workdir)!r}, '--sheet', {str(inputs.sheet)!r}, "
        f"'--log', {str(LOG)!r}, '--out', {str(tmp_path / 'r.html')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert out == ["False"]
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_many_classes_show_those_driving_the_verdict() -> None:
    import numpy as np

    from diagnose.core.gaps import class_breakdown, compute_gaps, summarize_errors
    from diagnose.render.report import MAX_CLASS_ROWS, shown_classes

    # 100 classes, 100 items each per split; class c has c dev errors and none in train_dev.
    k = 100
    eye = np.eye(k, dtype=np.int64) * 100
    dev = eye.copy()
    for c in range(k):
        wrong = c
        dev[c, c] -= wrong
        dev[c, (c + 1) % k] += wrong
    confusions = {"train_dev": eye, "dev": dev}
    rows = class_breakdown(confusions, [f"c{i}" for i in range(k)])
    errors = {s: int(m.sum() - np.trace(m)) for s, m in confusions.items()}
    report = compute_gaps({s: summarize_errors(s, e, 100 * k) for s, e in errors.items()})
    assert report.verdict.problem == "data_mismatch"
    shown, note = shown_classes(report, rows)
    assert len(shown) == MAX_CLASS_ROWS == 25
    # the 25 classes with the most dev errors, c75..c99, in class order
    assert [r.name for r in shown] == [f"c{i}" for i in range(75, 100)]
    assert note == "Showing the 25 classes that add most to data mismatch, of 100; every class is in the --json output."
    assert shown_classes(report, rows[:20]) == (rows[:20], None)
