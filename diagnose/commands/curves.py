"""`diagnose curves`: read training logs, draw the curves, and say what they mean. Never imports torch."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from diagnose.exceptions import UsageError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from diagnose.io.logs import ParsedLog
    from diagnose.render.curves import RunResult

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
    text = "text"


def _default_out(first: Path) -> Path:
    return first.parent / f"{first.name}.curves.png"


def command(
    logs: list[Path] = typer.Argument(..., help="Training log files, or TensorBoard log folders.", show_default=False),
    out: Path | None = typer.Option(None, "--out", "-o", help="Figure to write: .png (default <log>.curves.png), .svg or .pdf."),
    fmt: LogFormat | None = typer.Option(None, "--format", "-f", help="Force the log format (default: detected from the content)."),
    smooth: float | None = typer.Option(None, "--smooth", min=0.0, max=0.999, help="TensorBoard-style smoothing weight for per-step curves, 0 to 0.999 (default: an EMA window of 2% of the points).", show_default=False),
    metric: list[str] = typer.Option([], "--metric", "-m", help="Also draw this logged metric in its own panel (repeatable)."),
    classes: int | None = typer.Option(None, "--classes", min=2, help="Number of classes: checks the loss against chance, ln(C)."),
    list_names: bool = typer.Option(False, "--list", help="Show the names found in each log and what each was read as; no plot."),
    no_plot: bool = typer.Option(False, "--no-plot", help="Report the findings without writing a figure."),
    as_json: bool = typer.Option(False, "--json", help="Write the result as JSON on stdout."),
    markdown: bool = typer.Option(False, "--markdown", help="Write the findings as Markdown tables."),
) -> None:
    from diagnose.io.logs import parse_runs
    if as_json and markdown:
        raise UsageError("--json and --markdown: expected one output format, got both; pick one")
    if out is not None and out.suffix.lower() not in _IMAGE_SUFFIXES:
        raise UsageError(f"--out {out}: expected a .png, .svg or .pdf file, got {out.suffix or 'no extension'}; name the figure file.png")
    from diagnose.exceptions import InputError
    from diagnose.io.paths import require_file

    for p in (p for p in logs if os.path.lexists(p)):  # a symlink loop, a FIFO, /dev/zero: one line first
        require_file(p, "a training log file or TensorBoard folder", "pass the log the run wrote", InputError, folder_ok=True)
    target = out if out is not None else _default_out(logs[0])
    if any(target.resolve() == p.resolve() for p in logs):
        raise UsageError(f"--out {target}: expected a new figure file, got one of the logs; choose another name")

    logs = expand_runs(logs)
    # A file holding several runs (a counter back at its start) gives one entry per run, never only the last.
    parsed = [run for p in logs for run in parse_runs(p, fmt=fmt.value if fmt is not None else None)]
    by_path = dict(zip(logs, run_labels(logs), strict=True))
    labels = [_run_label(by_path[log.path], log, single=len(logs) == 1) for log in parsed]
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

    from diagnose.core.hints import find_hints

    results = [rc.RunResult(log, find_hints(log.series, classes=classes)) for log in parsed]
    said: set[tuple[Path, str]] = set()
    for log in parsed:
        for note in log.notes:
            if (log.path, note) not in said:  # the runs of one file share its notes
                said.add((log.path, note))
                sys.stderr.write(f"note: {log.path}: {note}\n")

    plot_path = None
    if not no_plot:
        from diagnose.plots.curves import save_figure

        kept = save_figure(curves_figure(labels, results, smooth=smooth, metrics=metric), str(target))
        if kept is not None:
            sys.stderr.write(f"note: {target} was not written by diagnose; kept it as {kept}\n")
        plot_path = str(target)

    if as_json:
        render.print_json(rc.to_json(results, plot_path, metric))
    elif markdown:
        sys.stdout.write(rc.findings_markdown(results, plot_path))
    else:
        rc.render_findings(render.stdout_console(), results, plot_path)


def curves_figure(labels: Sequence[str], results: Sequence[RunResult], *, smooth: float | None, metrics: Sequence[str] = ()) -> Figure:
    """The figure of `diagnose curves` (and of the report's curves section): each run's canonical
    series plus the --metric ones, its findings marked, titled by the run or the number of runs."""
    from diagnose.plots.curves import RunCurves, draw_curves

    runs = []
    for label, r in zip(labels, results, strict=True):
        series = dict(r.log.series)
        for m in metrics:
            s = r.log.get(m)
            if s is not None:
                series[m] = s
        runs.append(RunCurves(label=label, series=series, hints=r.hints))
    title = labels[0] if len(labels) == 1 else f"{len(labels)} runs"
    return draw_curves(runs, smooth=smooth, metrics=metrics, title=title)


def expand_runs(paths: list[Path]) -> list[Path]:
    """A TensorBoard folder holding several runs (lightning_logs/ with version_0, version_1, ...)
    becomes one run per folder of event files."""
    from diagnose.io.tensorboard import run_folders

    out: list[Path] = []
    for p in paths:
        runs = run_folders(p) if p.is_dir() else []
        out.extend(runs if len(runs) > 1 else [p])
    return out


def _run_label(file_label: str, log: ParsedLog, *, single: bool) -> str:
    """A run's name in the legend: the file's label, plus the run's name or number when the file holds
    several; the run alone when only one file was given (the title names the file)."""
    if log.runs == 1:
        return file_label
    run = log.run_name or f"run {log.run}"
    return run if single else f"{file_label} {run}"


def run_labels(paths: list[Path]) -> list[str]:
    """Short names for the legend: the file names, with parent folders added until they differ."""
    parts = [p.resolve().parts for p in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]
