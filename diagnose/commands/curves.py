"""`diagnose curves`: read training logs, draw the curves, and say what they mean. Never imports torch."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path

import typer

from diagnose import options as opt
from diagnose.exceptions import UsageError

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

    if not (no_plot or list_names):
        # matplotlib (about 0.7 s of imports) is imported on a thread while the logs are read.
        from diagnose.plots import import_in_background

        import_in_background()
    _curves(logs, target, fmt, smooth, metric, classes, list_names, no_plot, as_json, markdown)


def _curves(logs: list[Path], target: Path, fmt: LogFormat | None, smooth: float | None, metric: list[str],
            classes: int | None, list_names: bool, no_plot: bool, as_json: bool, markdown: bool) -> None:
    from diagnose import api
    from diagnose.exceptions import ArgumentError

    # A file holding several runs (a counter back at its start) gives one entry per run, never only the last.
    try:
        result = api.curves(logs, smooth=smooth, classes=classes, fmt=fmt.value if fmt is not None else None,
                            metrics=metric, judge=not list_names)
    except ArgumentError as exc:
        if exc.argument == "metrics":
            raise UsageError(exc.as_flag("--metric")) from None
        raise
    from diagnose import render
    from diagnose.render import curves as rc

    parsed = [r.log for r in result.runs]
    if list_names:
        if as_json:
            render.print_json(rc.list_json(parsed))
        else:
            rc.render_list(render.stdout_console(), parsed)
        return
    said: set[tuple[Path, str]] = set()
    for log in parsed:
        for note in log.notes:
            if (log.path, note) not in said:  # the runs of one file share its notes
                said.add((log.path, note))
                sys.stderr.write(f"note: {log.path}: {note}\n")

    plot_path = None
    if not no_plot:
        kept = result.save(target)
        if kept is not None:
            sys.stderr.write(f"note: {target} was not written by diagnose; kept it as {kept}\n")
        plot_path = str(target)

    if as_json:
        render.print_json(rc.to_json(result.runs, plot_path, metric))
    elif markdown:
        sys.stdout.write(rc.findings_markdown(result.runs, plot_path))
    else:
        rc.render_findings(render.stdout_console(), result.runs, plot_path)
