"""The result of `diagnose.curves`: the runs read from logs, their findings, and their figure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from diagnose.core.hints import Hint, RunResult


class Curves:
    """Training curves read from logs: `runs` (one per run), `findings` (every run's hints, in order),
    `to_json()` (the document of `diagnose curves --json`), `figure()` (a matplotlib Figure)."""

    def __init__(self, runs: list[RunResult], labels: list[str], smooth: float | None, metrics: tuple[str, ...]) -> None:
        self.runs = runs
        self.labels = labels
        self.smooth = smooth
        self.metrics = metrics

    @property
    def findings(self) -> list[Hint]:
        return [h for r in self.runs for h in r.hints]

    def to_json(self) -> dict[str, Any]:
        from diagnose.render import curves as rc

        return rc.to_json(self.runs, None, list(self.metrics))

    def figure(self) -> Figure:
        """The figure of `diagnose curves`; saved only when you call its savefig."""
        from diagnose.runs import curves_figure

        return curves_figure(self.labels, self.runs, smooth=self.smooth, metrics=self.metrics)

    def save(self, path: str | Path) -> str | None:
        """Write the figure to `path` (.png, .svg or .pdf) as `diagnose curves` does: atomically, a file
        diagnose did not write kept as a .bak first. Returns that backup's path, or None."""
        from diagnose.runs import save_curves_figure

        return save_curves_figure(self.labels, self.runs, str(path), smooth=self.smooth, metrics=self.metrics)

    def __repr__(self) -> str:
        return f"Curves({len(self.runs)} runs, {len(self.findings)} findings)"
