"""`diagnose curves` results -> the findings table, the --list table, JSON and Markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from diagnose.core.hints import Hint, RunResult, Series  # noqa: F401  (RunResult lives in core)
from diagnose.render import markdown_escape, markdown_table

if TYPE_CHECKING:
    from rich.console import Console

    from diagnose.io.logs import ParsedLog


def _int_or_round(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(float(v), 4)


def run_extent(log: ParsedLog) -> tuple[int | None, int | None]:
    """(steps, epochs): the largest step logged, and how many epochs the log covers."""
    every = (*log.series.values(), *log.others.values())
    top_steps = [float(np.nanmax(s.step)) for s in every if np.isfinite(s.step).any()]
    epochs = [_distinct(s.epoch[np.isfinite(s.epoch)]) for s in every]
    ep = np.concatenate(epochs) if epochs else np.empty(0)
    n_steps = int(max(top_steps)) if top_steps else None
    n_epochs = None
    if len(ep):
        n_epochs = len(np.unique(ep)) if np.all(ep == np.round(ep)) else math.ceil(float(ep.max()))
    return n_steps, n_epochs


def _distinct(v: np.ndarray) -> np.ndarray:
    """The distinct values of `v`, without sorting a million points when they are in order already."""
    if len(v) > 1 and bool((v[1:] >= v[:-1]).all()):
        return v[np.concatenate([[True], v[1:] != v[:-1]])]
    return np.unique(v)


def series_summary(s: Series) -> dict[str, Any]:
    finite = np.isfinite(s.value)
    out: dict[str, Any] = {"points": len(s)}
    if finite.any():
        v = s.value
        i = int(np.flatnonzero(finite)[np.argmin(v[finite])])
        out.update(first=float(v[0]), last=float(v[-1]), min=float(v[i]))
        at: dict[str, Any] = {}
        if np.isfinite(s.step[i]):
            at["step"] = _int_or_round(s.step[i])
        if np.isfinite(s.epoch[i]):
            at["epoch"] = _int_or_round(s.epoch[i])
        out["min_at"] = at
    else:
        out.update(first=None, last=None, min=None, min_at={})
    bad = int((~finite).sum())
    if bad:
        out["nonfinite"] = bad
    return out


def _run_index(log: ParsedLog) -> dict[str, Any]:
    """Which run of its file a run is: `run` from 1 of `runs`, and the name the file gives it (or null)."""
    return {"run": log.run, "runs": log.runs, "run_name": log.run_name or None}


def to_json(results: Sequence[RunResult], plot: str | None, metrics: Sequence[str] = ()) -> dict[str, Any]:
    runs = []
    for r in results:
        steps, epochs = run_extent(r.log)
        series = {name: series_summary(s) for name, s in r.log.series.items()}
        for m in metrics:
            s = r.log.get(m)
            if s is not None and m not in series:
                series[m] = series_summary(s)
        runs.append(
            {
                "path": str(r.log.path),
                "format": r.log.format,
                **_run_index(r.log),
                "steps": steps,
                "epochs": epochs,
                "series": series,
                "findings": [
                    {"id": h.id, "severity": h.severity, "evidence": h.evidence, "advice": h.advice, "at": dict(h.at)}
                    for h in r.hints
                ],
            }
        )
    return {"runs": runs, "plot": plot}


def _at_text(at: dict[str, float]) -> str:
    return ", ".join(f"{k} {int(v) if float(v).is_integer() else v}" for k, v in at.items())


def run_header(log: ParsedLog) -> str:
    """The line above a run's findings: `<path> (<format>, N steps, M epochs): train_loss (n), ...`."""
    steps, epochs = run_extent(log)
    parts = [log.format]
    if steps is not None:
        parts.append(f"{steps:,} steps")
    if epochs is not None:
        parts.append(f"{epochs} epochs")
    names = ", ".join(f"{k} ({len(s):,})" for k, s in log.series.items())
    return f"{_run_path(log)} ({', '.join(parts)}): {names or 'no canonical series'}"


def _run_path(log: ParsedLog) -> str:
    """The log's path, and which of its runs this is when the file holds several."""
    if log.runs <= 1:
        return str(log.path)
    return f"{log.path} {log.run_name}" if log.run_name else f"{log.path} run {log.run} of {log.runs}"


FINDING_HEADERS = ("severity", "finding", "at", "evidence", "advice")


def finding_rows(hints: Sequence[Hint]) -> list[tuple[str, str, str, str, str]]:
    """One plain-text row per finding, in FINDING_HEADERS order (Markdown and the HTML report)."""
    return [(h.severity, h.id, _at_text(h.at), h.evidence, h.advice) for h in hints]


def render_findings(console: Console, results: Sequence[RunResult], plot: str | None) -> None:
    from rich.table import Table

    for r in results:
        console.print(run_header(r.log), markup=False, highlight=False, soft_wrap=True)
        table = Table(show_header=True, header_style="bold", show_lines=False, expand=False)
        for col in FINDING_HEADERS:
            table.add_column(col, overflow="fold")
        for h in r.hints:
            sev = f"[yellow]{h.severity}[/yellow]" if h.severity == "warn" else h.severity
            from rich.markup import escape

            table.add_row(sev, h.id, _at_text(h.at), escape(h.evidence), escape(h.advice))
        console.print(table)
    if plot:
        console.print(f"plot: {plot}", markup=False, highlight=False, soft_wrap=True)


def findings_markdown(results: Sequence[RunResult], plot: str | None) -> str:
    out = []
    for r in results:
        out.append(f"### {markdown_escape(_run_path(r.log))}\n")
        out.append(markdown_table(FINDING_HEADERS, finding_rows(r.hints)))
    if plot:
        out.append(f"\nPlot: `{plot}`\n")
    return "\n".join(out)


def list_rows(log: ParsedLog) -> list[tuple[str, str, str, str]]:
    rows = []
    for m in log.mapping:
        rows.append((m.source, m.target or "-", f"{m.points:,}", m.note))
    for name, s in log.series.items():
        if not any(m.target == name for m in log.mapping):
            rows.append((s.source, name, f"{len(s):,}", ""))
    order = {name: i for i, name in enumerate(("train_loss", "val_loss", "train_acc", "val_acc", "lr"))}
    rows.sort(key=lambda r: (order.get(r[1], 9), r[1] == "-", r[0]))
    return rows


def render_list(console: Console, logs: Sequence[ParsedLog]) -> None:
    from rich.table import Table

    for log in logs:
        console.print(run_header(log), markup=False, highlight=False, soft_wrap=True)
        table = Table(show_header=True, header_style="bold")
        for col in ("logged as", "read as", "points", "note"):
            table.add_column(col, overflow="fold")
        for row in list_rows(log):
            table.add_row(*row)
        console.print(table)
        for note in log.notes:
            console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)


def list_json(logs: Sequence[ParsedLog]) -> dict[str, Any]:
    return {
        "runs": [
            {
                "path": str(log.path),
                "format": log.format,
                **_run_index(log),
                "names": [{"source": a, "target": None if b == "-" else b, "points": int(c.replace(",", "")), "note": d} for a, b, c, d in list_rows(log)],
                "notes": list(log.notes),
            }
            for log in logs
        ]
    }
