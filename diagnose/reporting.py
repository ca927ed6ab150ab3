"""The content of `diagnose report`: each section built from what the other commands left behind.

The gaps section reads the last `diagnose gaps` run (manifest.json and the saved predictions) and says
when its files changed since; the tally section counts a marked sheet; the curves section reads logs
and draws them; the data section runs the data checks; the compare section sets this run against an
earlier one. `build_content` assembles the ReportContent that render.report turns into HTML.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diagnose.exceptions import InputError, OverwriteRefused, UsageError

if TYPE_CHECKING:
    from diagnose.io.manifest import Manifest


def build_content(
    workdir: Path, manifest: Manifest | None, *, log: list[Path], sheet: Path | None, data: Path | None,
    out: Path, classes: int | None, smooth: float | None, label_column: str, image_size: str | None,
    baseline: Path | None, show_progress: bool,
) -> Any:
    """The ReportContent of every section asked for (render.report.ReportContent)."""
    from diagnose.render.report import ReportContent

    content = ReportContent(
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        command=_command_line(workdir, log, sheet, data, out, classes, smooth, label_column, image_size),
    )
    if manifest is not None:
        content.gaps = _gaps_section(workdir, manifest)
    if sheet is not None:
        content.tally = _tally_section(sheet, workdir)
    if log:
        content.curves = _curves_section(log, classes=classes, smooth=smooth)
    if data is not None:
        content.data = _data_section(data, manifest, label_column=label_column, image_size=image_size,
                                     show_progress=show_progress)
    if baseline is not None:
        content.compare = _compare_section(baseline, workdir)
    return content


def open_in_browser(out: Path) -> None:
    """The default browser (the BROWSER environment variable, else the desktop's), as a file:// URL."""
    import webbrowser

    url = out.resolve().as_uri()
    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        sys.stderr.write(f"Could not open a browser here; open {url} yourself.\n")


def guard_output(out: Path, force: bool) -> str | None:
    """Replace only a report diagnose wrote; anything else needs --force, and then a .bak is kept."""
    from diagnose.io.sheet import backup
    from diagnose.render.report import GENERATOR_MARK

    if out.is_dir():
        raise UsageError(f"--out {out}: expected a file path, got a folder; pass e.g. {out / 'diagnose-report.html'}")
    from diagnose.io.outputs import check_target

    check_target(out)  # below a regular file, or in a folder you may not write: refused before any work
    if not out.exists():
        return None
    with open(out, "rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace")
    if GENERATOR_MARK in head:
        return None
    if not force:
        raise OverwriteRefused(
            f"{out}: expected no file or a report diagnose wrote, got a file diagnose did not write; "
            "pass --out another.html, or --force to replace it (a .bak copy is kept)"
        )
    return str(backup(out))


def _command_line(workdir: Path, log: list[Path], sheet: Path | None, data: Path | None, out: Path,
                  classes: int | None, smooth: float | None, label_column: str, image_size: str | None) -> str:
    import shlex

    args = ["diagnose", "report"]
    if workdir != Path(".diagnose"):
        args += ["--workdir", str(workdir)]
    for p in log:
        args += ["--log", str(p)]
    if sheet is not None:
        args += ["--sheet", str(sheet)]
    if data is not None:
        args += ["--data", str(data)]
    if classes is not None:
        args += ["--classes", str(classes)]
    if smooth is not None:
        args += ["--smooth", str(smooth)]
    if label_column != "label":
        args += ["--label-column", label_column]
    if image_size:
        args += ["--image-size", image_size]
    args += ["--out", str(out)]
    return " ".join(shlex.quote(a) for a in args)


# --------------------------------------------------------------------------- gaps


def _report_from_json(doc: dict[str, Any], where: Path) -> Any:
    """Rebuild the GapReport `diagnose gaps` saved in the manifest (`report`, as its --json)."""
    from diagnose.core.gaps import GapReport

    try:
        return GapReport.from_json(doc)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(
            f"{where}: expected the report of a `diagnose gaps` run, got a manifest without a readable "
            f"report ({type(exc).__name__}: {exc}); rerun diagnose gaps"
        ) from None


def _created_epoch(created: Any) -> float | None:
    import calendar

    try:
        return float(calendar.timegm(time.strptime(str(created), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def _stale_notes(manifest: Manifest) -> list[str]:
    """Files changed since `diagnose gaps` evaluated them: the report would describe another model.

    A file is read again only when its modification time is after the run (a full sha256 of a large
    model costs seconds; an untouched file is not read).
    """
    from diagnose.io.digest import same_file

    created = _created_epoch(manifest.created)
    files: list[tuple[str, Path, str | None, str | None]] = []
    model = manifest.model
    if model.path and (model.sha256 or model.fingerprint):
        files.append(("model", Path(model.path), model.fingerprint, model.sha256))
    for name, s in manifest.data.splits.items():
        if (s.sha256 or s.fingerprint) and s.path and manifest.data.path:
            files.append((f"{name} split", Path(manifest.data.path) / s.path, s.fingerprint, s.sha256))
    notes = []
    for what, path, fingerprint, sha in files:
        if not path.is_file():
            notes.append(f"the {what} file {path} is no longer there; the numbers are from the run of {manifest.created}")
            continue
        if created is not None and path.stat().st_mtime <= created:
            continue
        if same_file(path, fingerprint=fingerprint, sha256=sha) is False:
            notes.append(f"the {what} file {path} changed after `diagnose gaps` evaluated it "
                         f"(its {'sha256' if sha else 'fingerprint'} differs): rerun diagnose gaps for numbers of the current file")
    return notes


def _gaps_section(workdir: Path, manifest: Manifest) -> Any:
    from diagnose.core.gaps import class_breakdown
    from diagnose.exceptions import DataError
    from diagnose.io.manifest import MANIFEST
    from diagnose.io.predictions import prediction_files, tally_predictions
    from diagnose.render.report import GapsSection

    where = Path(workdir) / MANIFEST
    doc = manifest.report
    if doc is None:
        raise InputError(f"{where}: expected a `report` entry written by diagnose gaps, got none; rerun diagnose gaps")
    report = _report_from_json(doc, where)
    notes = _stale_notes(manifest)
    rows = None
    figure = None
    if report.metric == "error":
        # Which classes drive each gap, from the saved per-item predictions (pyarrow, no torch).
        try:
            files = prediction_files(workdir)
        except DataError:
            files = {}
        if all(s in files for s in report.splits):
            classes = manifest.classes
            confusions: dict[str, Any] = {}  # split -> (C, C) confusion matrix
            for name, path in files.items():
                if name not in report.splits:
                    continue
                t = tally_predictions(path, metric="error", classes=classes)
                if (t.n, t.errors) != (report.splits[name].n, report.splits[name].errors):
                    notes.append(f"{path} holds {t.errors} errors in {t.n} items, the manifest {report.splits[name].errors} "
                                 f"in {report.splits[name].n}: the per-class table is left out; rerun diagnose gaps")
                    confusions = {}
                    break
                assert t.confusion is not None  # classification counts of a non-empty split (matched above)
                confusions[name] = t.confusion
            if confusions:
                rows = class_breakdown(confusions, classes)
                figure = _confusion_figures(confusions, classes)
        else:
            notes.append(f"no saved predictions in {Path(workdir) / 'predictions'} for every split: the per-class table is left out")
    section = GapsSection(report=report, manifest=manifest.to_json(), manifest_path=str(where), class_rows=rows,
                          notes=notes)
    if figure is not None:
        section.confusion_png, section.confusion_png_narrow, section.confusion_splits, section.grown = figure
    return section


def _confusion_figures(confusions: dict[str, Any], classes: list[str] | None) -> Any:
    """train_dev and dev (or the last split) side by side, wide and phone-width PNGs, grown cells named."""
    from diagnose.plots.confusion import confusion_figure, grown_cells, panels_for, png_bytes

    last = next((s for s in ("dev", "test", "train_dev") if confusions.get(s) is not None), None)
    if last is None:
        return None
    names = panels_for([s for s, c in confusions.items() if c is not None], last)
    panels = [(s, confusions[s]) for s in names]
    grown = grown_cells(panels[0][1], panels[-1][1]) if len(panels) == 2 else []
    wide = png_bytes(confusion_figure(panels, classes, grown))
    narrow = png_bytes(confusion_figure(panels, classes, grown, stacked=True))

    def name(k: int) -> str:
        return str(classes[k]) if classes and k < len(classes) else str(k)

    named = [(name(g.true), name(g.pred), g.before, g.after, g.count) for g in grown]
    return wide, narrow, tuple(names), named


# --------------------------------------------------------------------------- the other sections


def _tally_section(sheet: Path, workdir: Path) -> Any:
    # The same reading as `diagnose tally SHEET` with its defaults.
    from diagnose.io.sheet import tally_sheet
    from diagnose.render.report import TallySection

    result = tally_sheet(sheet, workdir=workdir)
    ctx = result.context
    assert ctx is not None  # tally_sheet always says where the sheet came from
    # The contact sheet `diagnose errors` drew beside the sheet, when there is one and it is a PNG.
    png = sheet.with_suffix(".png")
    contact = None
    if png.is_file() and png.stat().st_size <= 16 << 20:
        raw = png.read_bytes()
        contact = raw if raw.startswith(b"\x89PNG\r\n\x1a\n") else None
    from diagnose.plots.contact import regrid

    narrow = regrid(contact) if contact else None
    return TallySection(tally=result, ctx=ctx, contact_png=contact, contact_name=png.name if contact else None,
                        contact_png_narrow=narrow)


def _compare_section(baseline: Path, workdir: Path) -> Any:
    """This run (workdir) against an earlier one: `diagnose compare BASELINE WORKDIR`."""
    from diagnose.io.compare import compare_paths
    from diagnose.render.report import CompareSection

    return CompareSection(comparison=compare_paths(baseline, workdir), baseline=str(baseline), current=str(workdir))


def _curves_section(logs: list[Path], *, classes: int | None, smooth: float | None) -> Any:
    # The same reading and figure as `diagnose curves LOG...`; the figure is kept in memory as PNG.
    import io

    from diagnose.core.hints import RunResult, find_hints
    from diagnose.io.logs import parse_log
    from diagnose.render.report import CurvesSection
    from diagnose.runs import curves_figure, expand_runs, run_labels

    logs = expand_runs(logs)  # a TensorBoard folder of several runs: one run each, as `diagnose curves`
    parsed = [parse_log(p) for p in logs]
    results = [RunResult(p, find_hints(p.series, classes=classes)) for p in parsed]
    labels = run_labels(logs)
    pngs = []
    # The page's figure, and a 430 px one for phones (its text stays readable at their width).
    for width in (10.0, 4.3):
        buf = io.BytesIO()
        curves_figure(labels, results, smooth=smooth, width=width).savefig(buf, format="png", dpi=100)
        pngs.append(buf.getvalue())
    notes = [f"{label}: {note}" for label, r in zip(labels, results, strict=True) for note in r.log.notes]
    return CurvesSection(results=results, labels=labels, figure_png=pngs[0], figure_png_narrow=pngs[1], notes=notes)


def _data_section(data: Path, manifest: Manifest | None, *, label_column: str, image_size: str | None,
                  show_progress: bool) -> Any:
    # `diagnose data DIR`, with the smallest-detectable-gap check at the model's dev error when known.
    from diagnose.api import data_checks
    from diagnose.io.splits import load_dataset
    from diagnose.options import parse_image_size
    from diagnose.render.report import DataSection

    error_rate = 0.1
    for split in ("dev", "test", "train_dev"):
        entry = manifest.splits.get(split) if manifest is not None else None
        if entry is not None and entry.error is not None and 0 < entry.error < 1:
            error_rate = entry.error
            break
    dataset = load_dataset(data, label_column=label_column, image_size=parse_image_size(image_size))
    checks, verdicts = data_checks(dataset, error_rate=error_rate, batch_size=1024, show_progress=show_progress)
    title = f"diagnose data: {data} ({', '.join(f'{n} {s.n:,}' for n, s in dataset.splits.items())})"
    return DataSection(checks=list(checks), verdicts=list(verdicts), title=title)
