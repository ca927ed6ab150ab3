"""The report page in a real browser: the system's Chromium driven by Playwright (no browser download).

At a phone's width (390 px) and a laptop's (1280 px): the page never scrolls sideways (wide tables
scroll in their own box), every image loads, the chart's text is at least 11 px on screen, and the
console stays free of errors. Screenshots go to $DIAGNOSE_SCREENSHOTS when it is set (the docs'
docs/img/report-390.png and report-1280.png are made that way), else to the test's temporary folder.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no system chromium (apt-get install chromium)")]

LOG = Path(__file__).resolve().parent.parent / "fixtures" / "runs"

CHECKS = """() => {
  const texts = Array.from(document.querySelectorAll('svg text')).filter(t => t.getClientRects().length);
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    images: Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth, shown: i.getBoundingClientRect().width})),
    svgText: texts.map(t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a),
    backticks: document.body.innerText.includes('`'),
    boxes: Array.from(document.querySelectorAll('.tw')).map(b => b.getBoundingClientRect().right),
  };
}"""


def _mark(sheet: Path) -> None:
    """A person's marks: blurry on every other row, mislabeled on the suspects."""
    with open(sheet, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    col = {h: k for k, h in enumerate(rows[0])}
    for i, row in enumerate(rows[1:]):
        row[col["blurry"]] = "x" if i % 2 == 0 else ""
        row[col["mislabeled"]] = "x" if row[col["suspect_mislabel"]] == "yes" else ""
    with open(sheet, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    from diagnose.cli import app

    root = tmp_path_factory.mktemp("browser")
    example = Path(__file__).resolve().parent.parent / "fixtures" / "example"
    runner = CliRunner()

    def run(*args: object) -> None:
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output

    wd = root / "wd"
    run("gaps", example / "model.pt", example / "data", "--workdir", wd, "--human-error", 0.01)
    sheet = root / "error_analysis.csv"
    run("errors", "--workdir", wd, "--out", sheet, "--sample", 30)
    _mark(sheet)
    log = sorted(p for p in LOG.iterdir() if p.is_file())[0]
    out = root / "report.html"
    run("report", "--workdir", wd, "--sheet", sheet, "--log", log, "--baseline", wd, "--out", out)
    return out


@pytest.mark.parametrize("width", [390, 1280])
def test_report_in_chromium(page_path: Path, width: int, tmp_path: Path) -> None:
    shots = Path(os.environ.get("DIAGNOSE_SCREENSHOTS") or tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 844 if width < 600 else 800})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri(), wait_until="load")
            got = page.evaluate(CHECKS)
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"report-{width}.png"))
            page.screenshot(path=str(tmp_path / f"report-{width}-full.png"), full_page=True)
        finally:
            browser.close()
    if os.environ.get("DIAGNOSE_SCREENSHOTS"):  # for the docs: 64 colours keep them a few tens of KB
        from PIL import Image

        with Image.open(shots / f"report-{width}.png") as im:
            small = im.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        small.save(shots / f"report-{width}.png", optimize=True)
    assert errors == []
    assert got["scrollWidth"] <= got["innerWidth"] == width  # no sideways scroll of the page
    assert len(got["images"]) >= 3  # confusion matrices, contact sheet, curves
    for image in got["images"]:
        assert image["complete"] and image["width"] > 0
        assert image["shown"] <= width  # scaled to the screen
    assert got["svgText"] and min(got["svgText"]) >= 11  # the chart's text, in CSS px on screen
    assert not got["backticks"]
    assert all(right <= width for right in got["boxes"])  # wide tables scroll inside their own box
