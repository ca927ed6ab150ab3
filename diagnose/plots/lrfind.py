"""The range-test figure: loss against the learning rate on a log axis, the band between the sweeps,
the suggestion and its range, what each rule said, and where the loss diverged. Agg canvas, never shown."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from diagnose.core.lrfind import LRFindResult
from diagnose.plots import log_scale

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_RULE_STYLE = {
    "steepest": ("v", "#1b9e77", "steepest stable descent"),
    "valley": ("D", "#7570b3", "valley"),
    "minimum_10": ("s", "#e6ab02", "minimum / 10"),
    "divergence_10": ("^", "#d95f02", "divergence / 10"),
}


def lrfind_figure(res: LRFindResult, *, title: str = "") -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    n = len(res.curve)
    lrs = res.lrs
    lo, hi = res.band[:, 0], res.band[:, 1]
    shown = np.isfinite(lo)
    top_ref = float(np.nanmax(res.curve)) if n else 1.0
    bottom = float(np.nanmin(lo[shown])) if shown.any() else 0.0
    top = max(top_ref, float(np.nanmean(res.curve[: min(5, n)])) if n else top_ref)
    span = max(top - bottom, 1e-12)
    ceiling = top + 0.35 * span
    ax.fill_between(
        lrs[shown], lo[shown], np.minimum(hi[shown], ceiling), color="#4c72b0", alpha=0.18, linewidth=0,
        label=f"band between {res.losses.shape[0]} sweeps",
    )
    ax.plot(lrs[:n], res.curve, color="#4c72b0", linewidth=2, label="median loss (smoothed)")
    if res.range is not None:
        ax.axvspan(res.range[0], res.range[1], color="#2ca02c", alpha=0.08, label="suggested range")
    for key, rule in res.rules.items():
        if rule.lr is None:
            continue
        marker, color, name = _RULE_STYLE[key]
        y = float(np.interp(math.log10(rule.lr), np.log10(lrs[:n]), res.curve)) if n else 0.0
        ax.plot([rule.lr], [y], marker=marker, color=color, markersize=8, linestyle="none", label=f"{name}: {rule.lr:.2g}")
    if res.suggested_lr is not None:
        ax.axvline(res.suggested_lr, color="#2ca02c", linewidth=2, label=f"suggested: {res.suggested_lr:.2g}")
    if res.diverged_at is not None:
        ax.axvline(res.diverged_at, color="#c44e52", linestyle="--", linewidth=1.5, label=f"diverged at {res.diverged_at:.2g}")
    log_scale(ax, "x")
    ax.set_xlim(lrs[0], lrs[-1])
    ax.set_ylim(bottom - 0.05 * span, ceiling)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title or "learning-rate range test", loc="left", fontsize=11)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    return fig
