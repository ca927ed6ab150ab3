"""Confusion matrices of two splits side by side (train_dev, dev), row-normalized, with the cells whose
rate grew most from the first to the second marked: where the errors of the new distribution come from.

Row-normalized: cell (i, j) is the share of items of true class i predicted as j, so classes of
different sizes compare, and the two splits compare whatever their sizes. The colour scale is a
square root, so the small off-diagonal rates that make up the error are visible next to a diagonal
near 100%. Up to ANNOTATE_MAX classes each cell carries its percentage and the axes their class
names; above it the grown cells are marked and named in the figure's list instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from diagnose.io.atomic import atomic_path
from diagnose.render import figure_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ANNOTATE_MAX = 12  # classes: cell percentages and class-name ticks up to this many
NAMES_MAX = 30  # classes: every tick named up to this many
MARK_RGB = "#d62728"
TOP_GROWN = 5


@dataclass(frozen=True)
class GrownCell:
    true: int
    pred: int
    before: float  # rate in the first split (share of the true class's items)
    after: float  # rate in the second split
    count: int  # items in that cell of the second split

    @property
    def growth(self) -> float:
        return self.after - self.before


def row_rates(counts: np.ndarray) -> np.ndarray:
    """Row-normalized rates; rows without items are NaN."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.where(totals > 0, totals, 1), np.nan)


def _square(a: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, size), dtype=np.int64)
    k = min(size, a.shape[0])
    out[:k, :k] = np.asarray(a)[:k, :k]
    return out


def grown_cells(before: np.ndarray, after: np.ndarray, top: int = TOP_GROWN, *, min_count: int = 2) -> list[GrownCell]:
    """Off-diagonal cells whose row rate grew most from `before` to `after` (counts, C x C), largest
    first; only growth > 0, in a class present in both, of at least `min_count` items in `after`
    (a single item is not a pattern)."""
    size = max(np.asarray(before).shape[0], np.asarray(after).shape[0])
    b, a = _square(before, size), _square(after, size)
    rb, ra = row_rates(b), row_rates(a)
    growth = ra - rb
    growth[np.eye(size, dtype=bool)] = np.nan
    growth[a < min_count] = np.nan
    growth[~np.isfinite(growth) | (growth <= 0)] = np.nan
    flat = np.argsort(np.nan_to_num(-growth, nan=np.inf), axis=None, kind="stable")
    out = []
    for code in flat[:top]:
        i, j = divmod(int(code), size)
        if not np.isfinite(growth[i, j]):
            break
        out.append(GrownCell(i, j, float(rb[i, j]), float(ra[i, j]), int(a[i, j])))
    return out


def _short(name: str, limit: int = 12) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def confusion_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    classes: Sequence[str] | None = None,
    grown: Sequence[GrownCell] = (),
    title: str = "",
    *,
    stacked: bool = False,
) -> Figure:
    """One heatmap per (split name, C x C counts), side by side; `grown` cells outlined in red and
    listed under the panels. matplotlib's object API on an Agg canvas: nothing is shown.

    stacked: the panels one above the other in a figure 430 px wide, for a phone's screen (at 360 px
    its text stays about 11 px); without the colour bar and the list, which the page shows as text."""
    from matplotlib.colors import PowerNorm
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from matplotlib.patches import Rectangle

    size = max(np.asarray(c).shape[0] for _, c in panels)
    names = [figure_text(c) for c in classes] if classes is not None and len(classes) >= size else [str(k) for k in range(size)]
    annotate = size <= ANNOTATE_MAX
    panel_in = 4.6 if size <= ANNOTATE_MAX else 5.2
    listed = len(grown)
    foot_in = 0.4 + 0.27 * max(listed, 1)
    if stacked:
        fig = Figure(figsize=(4.3, 4.6 * len(panels)), dpi=100, layout="constrained")
        gs = fig.add_gridspec(len(panels), 1)
        cells = [gs[p, 0] for p in range(len(panels))]
    else:
        fig = Figure(figsize=(panel_in * len(panels) + 1.2, panel_in + 0.9 + foot_in), dpi=100, layout="constrained")
        gs = fig.add_gridspec(2, len(panels), height_ratios=[panel_in + 0.9, foot_in])
        cells = [gs[0, p] for p in range(len(panels))]
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):  # always: the figure is made with layout="constrained"
        engine.set(h_pad=0.08, w_pad=0.08)
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)
    image = None
    tick_font = 11 if size <= ANNOTATE_MAX else 9
    for p, (split, counts) in enumerate(panels):
        ax = fig.add_subplot(cells[p])
        rates = row_rates(_square(counts, size))
        image = ax.imshow(np.nan_to_num(rates, nan=0.0), cmap="Blues", norm=norm, interpolation="nearest", aspect="equal")
        n = int(np.asarray(counts).sum())
        errors = n - int(np.trace(_square(counts, size)))
        ax.set_title(f"{split}: {errors / n * 100 if n else 0:.1f}% error ({n:,} items)", fontsize=13)
        if annotate:
            ticks = np.arange(size)
            ax.set_xticks(ticks, [_short(x) for x in names], rotation=45, ha="right", fontsize=tick_font)
            ax.set_yticks(ticks, [_short(x) for x in names], fontsize=tick_font)
            cell_font = 11 if size <= 8 else 9
            for i in range(size):
                for j in range(size):
                    r = rates[i, j]
                    if np.isfinite(r) and (r >= 0.005 or i == j):
                        ax.text(j, i, f"{r * 100:.0f}", ha="center", va="center", fontsize=cell_font,
                                color="white" if r > 0.45 else "#1d2127")
        else:
            step = 1 if size <= NAMES_MAX else int(np.ceil(size / 10))
            ticks = np.arange(0, size, step)
            labels = [_short(names[k], 8) for k in ticks] if size <= NAMES_MAX else [str(k) for k in ticks]
            ax.set_xticks(ticks, labels, rotation=90 if size <= NAMES_MAX else 0, fontsize=tick_font)
            ax.set_yticks(ticks, labels, fontsize=tick_font)
        ax.set_xlabel("predicted", fontsize=12)
        if p == 0 or stacked:
            ax.set_ylabel("true", fontsize=12)
        for rank, g in enumerate(grown, 1):
            pad = 0.5 if size <= NAMES_MAX else max(0.5, size / 60)
            ax.add_patch(Rectangle((g.pred - pad, g.true - pad), 2 * pad, 2 * pad, fill=False, clip_on=False,
                                   edgecolor=MARK_RGB, linewidth=2.2 if size <= ANNOTATE_MAX else 1.6))
            if p == len(panels) - 1 and not annotate:  # which box is which line of the list
                ax.text(g.pred + pad + size / 80, g.true - pad, str(rank), color=MARK_RGB, fontsize=11,
                        fontweight="bold", ha="left", va="bottom")
    if stacked:
        return fig
    if image is not None:
        bar = fig.colorbar(image, ax=fig.axes, shrink=0.8, pad=0.01)
        bar.set_ticks([0, 0.01, 0.05, 0.2, 0.5, 1.0], labels=["0", "1%", "5%", "20%", "50%", "100%"], fontsize=10)
        bar.set_label("share of the true class's items", fontsize=11)
    foot = fig.add_subplot(gs[-1, :])
    foot.axis("off")
    first, last = panels[0][0], panels[-1][0]
    if grown:
        lines = [f"Grew most from {first} to {last} (red boxes):"]
        lines += [f"{k}. {names[g.true]} \u2192 {names[g.pred]}: {g.before * 100:.1f}% \u2192 {g.after * 100:.1f}% "
                  f"({g.growth * 100:+.1f} pts, {g.count} items)" for k, g in enumerate(grown, 1)]
    else:
        lines = [f"No confusion grew from {first} to {last} in at least 2 items."]
    foot.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=12, linespacing=1.5,
              transform=foot.transAxes)
    if title:
        fig.suptitle(figure_text(title), fontsize=13)
    return fig


def save_png(fig: Any, path: Path) -> None:
    """Write the figure as PNG atomically (never shown), marked as diagnose's own."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": "diagnose"})


def panels_for(available: Sequence[str], split: str) -> list[str]:
    """Which saved splits to draw for `split`: train_dev beside it (the training distribution, not
    trained on), or train beside train_dev; just `split` when the other is not there."""
    first = "train" if split == "train_dev" else "train_dev"
    if split == "train":
        return [split]
    return [first, split] if first in available else [split]


def png_bytes(fig: Any) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
