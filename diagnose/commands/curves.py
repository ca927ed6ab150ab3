"""`diagnose curves`: read training logs, draw the curves, and say what they mean. Never imports torch."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from diagnose import options as opt
from diagnose.exceptions import UsageError

if TYPE_CHECKING:
    from diagnose.plots.helper import FigureHelper

NAME = "curves"
HELP = (
    "Read training logs (CSV, JSON lines, JSON, TensorBoard, console text), draw loss/accuracy/LR "
    "curves and report what they show: divergence, learning rate too high or low, noisy batches, "
    "overfitting with the best epoch, underfitting, plateaus, the schedule."
)

_IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


class LogFormat(str, Enum):
    """The formats `--format` can force (diagnose.io.logs.FORMATS)."""

    csv = "csv"
    tsv = "tsv"
    jsonl = "jsonl"
    json = "json"
    tensorboard = "tensorboard"
    mlflow = "mlflow"
    text = "text"


def early(args: list[str]) -> None:
    """Before the command line is parsed: start the figure helper unless no figure will be drawn."""
    if not {"--no-plot", "--list", "-h", "--help"} & set(args):
        from diagnose.plots import import_matplotlib
        from diagnose.plots.helper import FigureHelper

        FigureHelper.start_early(import_matplotlib)


def _default_out(first: Path) -> Path:
    return first.parent / f"{first.name}.curves.png"


def command(
    logs: list[Path] = typer.Argument(..., help="Training log files, TensorBoard log folders, or MLflow run or experiment folders.", show_default=False),
    out: Path | None = typer.Option(None, "--out", "-o", help="Figure to write: .png (default <log>.curves.png), .svg or .pdf."),
    fmt: LogFormat | None = typer.Option(None, "--format", "-f", help="Force the log format (default: detected from the content)."),
    smooth: opt.Smooth = None,
    metric: list[str] = typer.Option([], "--metric", "-m", help="Also draw this logged metric in its own panel (repeatable)."),
    classes: opt.Classes = None,
    list_names: bool = typer.Option(False, "--list", help="Show the names found in each log and what each was read as; no plot."),
    no_plot: bool = typer.Option(False, "--no-plot", help="Report the findings without writing a figure."),
    as_json: opt.Json = False,
    markdown: opt.Markdown = False,
) -> None:
    opt.one_format(as_json, markdown)
    if out is not None and out.suffix.lower() not in _IMAGE_SUFFIXES:
        raise UsageError(f"--out {out}: expected a .png, .svg or .pdf file, got {out.suffix or 'no extension'}; name the figure file.png")
    from diagnose.exceptions import InputError
    from diagnose.io.paths import require_file

    for p in (p for p in logs if os.path.lexists(p)):  # a symlink loop, a FIFO, /dev/zero: one line first
        require_file(p, "a training log file or TensorBoard folder", "pass the log the run wrote", InputError, folder_ok=True)
    target = out if out is not None else _default_out(logs[0])
    if any(target.resolve() == p.resolve() for p in logs):
        raise UsageError(f"--out {target}: expected a new figure file, got one of the logs; choose another name")

    helper = None
    if not (no_plot or list_names):
        # matplotlib is imported, and the figure drawn, in a helper process on another core while the
        # logs are read (plots/helper.py); where there is none, on a thread.
        from diagnose.cli import debug_enabled
        from diagnose.plots import import_in_background, import_matplotlib
        from diagnose.plots.helper import FigureHelper

        helper = None if debug_enabled() else FigureHelper.take(import_matplotlib)
        if helper is None:
            import_in_background()
    try:
        _curves(logs, target, fmt, smooth, metric, classes, list_names, no_plot, as_json, markdown, helper)
    finally:
        if helper is not None:
            helper.close()


def _curves(logs: list[Path], target: Path, fmt: LogFormat | None, smooth: float | None, metric: list[str],
            classes: int | None, list_names: bool, no_plot: bool, as_json: bool, markdown: bool,
            helper: FigureHelper | None) -> None:
    from diagnose.runs import read_runs, save_curves_figure

    # A file holding several runs (a counter back at its start) gives one entry per run, never only the last.
    parsed, labels = read_runs(logs, fmt=fmt.value if fmt is not None else None)
    for m in metric:
        if not any(log.get(m) is not None for log in parsed):
            names = sorted({*(n for log in parsed for n in log.series), *(n for log in parsed for n in log.others)})
            raise UsageError(f"--metric {m}: expected a name found in the logs, got none called that; found {', '.join(names)}")

    from diagnose import render
    from diagnose.render import curves as rc

    if list_names:
        if as_json:
            render.print_json(rc.list_json(parsed))
        else:
            rc.render_list(render.stdout_console(), parsed)
        return

    from diagnose.core.hints import RunResult, find_hints

    results = [RunResult(log, find_hints(log.series, classes=classes)) for log in parsed]
    said: set[tuple[Path, str]] = set()
    for log in parsed:
        for note in log.notes:
            if (log.path, note) not in said:  # the runs of one file share its notes
                said.add((log.path, note))
                sys.stderr.write(f"note: {log.path}: {note}\n")

    plot_path = None
    if not no_plot:
        kept = save_curves_figure(labels, results, str(target), smooth=smooth, metrics=metric, helper=helper)
        if kept is not None:
            sys.stderr.write(f"note: {target} was not written by diagnose; kept it as {kept}\n")
        plot_path = str(target)

    if as_json:
        render.print_json(rc.to_json(results, plot_path, metric))
    elif markdown:
        sys.stdout.write(rc.findings_markdown(results, plot_path))
    else:
        rc.render_findings(render.stdout_console(), results, plot_path)
