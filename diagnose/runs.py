"""Training runs read from logs, labelled and judged, and the figure that draws them.

`read_runs` is what `diagnose curves`, `diagnose report` and `diagnose.curves` share: TensorBoard
folders of several runs expanded, every run of a file read (a counter back at its start starts a new
run), each run labelled for the legend. `curves_figure` builds the matplotlib Figure; nothing is saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from diagnose.core.hints import RunResult
    from diagnose.io.logs import ParsedLog
    from diagnose.plots.curves import RunCurves


def read_runs(paths: Sequence[Path], *, fmt: str | None = None) -> tuple[list[ParsedLog], list[str]]:
    """Every run in `paths` and its legend label. fmt forces the log format (io.logs.FORMATS)."""
    from diagnose.io.logs import parse_runs

    logs = expand_runs(list(paths))
    parsed = [run for p in logs for run in parse_runs(p, fmt=fmt)]
    by_path = dict(zip(logs, run_labels(logs), strict=True))
    labels = [_run_label(by_path[log.path], log, single=len(logs) == 1) for log in parsed]
    return parsed, labels


def curves_figure(labels: Sequence[str], results: Sequence[RunResult], *, smooth: float | None, metrics: Sequence[str] = (),
                  width: float = 10.0) -> Figure:
    """The figure of `diagnose curves` (and of the report's curves section): each run's canonical
    series plus the --metric ones, its findings marked, titled by the run or the number of runs."""
    from diagnose.plots.curves import draw_curves

    runs, title = _drawn(labels, results, metrics)
    return draw_curves(runs, smooth=smooth, metrics=metrics, title=title, width=width)


def save_curves_figure(labels: Sequence[str], results: Sequence[RunResult], target: str, *, smooth: float | None,
                       metrics: Sequence[str] = ()) -> str | None:
    """Draw `curves_figure` and write it to `target` (see plots.curves.save_figure; returns the
    backup it kept, if any)."""
    from diagnose.plots.curves import save_figure

    return save_figure(curves_figure(labels, results, smooth=smooth, metrics=metrics), target)


def _drawn(labels: Sequence[str], results: Sequence[RunResult], metrics: Sequence[str]) -> tuple[list[RunCurves], str]:
    from diagnose.plots.curves import RunCurves

    runs = []
    for label, r in zip(labels, results, strict=True):
        series = dict(r.log.series)
        for m in metrics:
            s = r.log.get(m)
            if s is not None:
                series[m] = s
        runs.append(RunCurves(label=label, series=series, hints=r.hints))
    return runs, labels[0] if len(labels) == 1 else f"{len(labels)} runs"


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
