"""Training-curve figures: loss (per-step band + smoothed line, validation on top), accuracy (train vs
validation, gap shaded), learning rate (log scale), on a shared x axis, with the findings marked.

Long series are reduced per pixel column to a min/max envelope before drawing, so the band keeps its
true width and ten million points draw in well under a second. Figures use the Agg canvas; never shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from diagnose.core.hints import Hint, Series, ema

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Columns of the envelope: about the plot's width in pixels at the default size and dpi.
ENVELOPE_COLUMNS = 1000
# Per-step series with more points than this are drawn as a band + smoothed line, not raw.
BAND_MIN_POINTS = 200
_MARKED = {"diverged", "overfitting", "lr_too_high"}


@dataclass
class RunCurves:
    """One run to draw: a label for the legend, its series by name, and its findings."""

    label: str
    series: Mapping[str, Series]
    hints: Sequence[Hint] = field(default_factory=list)


def envelope(x: np.ndarray, y: np.ndarray, columns: int = ENVELOPE_COLUMNS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reduce (x, y) to at most `columns` bins along x: (x_center, y_min, y_max, y_mean).

    x: (N,) sorted ascending, finite; y: (N,) finite. Bins with no points are dropped.
    """
    n = len(x)
    if n == 0:
        empty = np.empty(0)
        return empty, empty, empty, empty
    lo, hi = float(x[0]), float(x[-1])
    if n <= columns or hi <= lo:
        return x, y, y, y
    edges = np.linspace(lo, hi, columns + 1)
    starts = np.searchsorted(x, edges[:-1], side="left")
    starts[0] = 0
    ends = np.append(starts[1:], n)
    keep = ends > starts
    starts = starts[keep]
    y_min = np.minimum.reduceat(y, starts)
    y_max = np.maximum.reduceat(y, starts)
    sums = np.add.reduceat(y, starts)
    counts = np.diff(np.append(starts, n))
    centers = ((edges[:-1] + edges[1:]) / 2)[keep]
    return centers, y_min, y_max, sums / counts


def _x_for(series: Series, key: str, run: Mapping[str, Series]) -> np.ndarray:
    """The series' x values on the shared axis `key` ("step" or "epoch"), converting through the run."""
    own = series.step if key == "step" else series.epoch
    if np.isfinite(own).all():
        return own
    other_key = "epoch" if key == "step" else "step"
    other = series.epoch if key == "step" else series.step
    # A mapping epoch -> step (or back) from any series of the run that logs both.
    src = [np.empty(0)]
    dst = [np.empty(0)]
    for s in run.values():
        a = s.epoch if other_key == "epoch" else s.step
        b = s.step if key == "step" else s.epoch
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.any():
            src.append(a[ok])
            dst.append(b[ok])
    a = np.concatenate(src)
    b = np.concatenate(dst)
    out = own.copy()
    missing = ~np.isfinite(out) & np.isfinite(other)
    if len(a) and missing.any():
        order = np.lexsort((b, a))
        a, b = a[order], b[order]
        # the last x logged for that epoch (the end of the epoch), or the last at or before it
        idx = np.searchsorted(a, other[missing], side="right") - 1
        out[missing] = np.where(idx >= 0, b[np.clip(idx, 0, None)], np.nan)
    if not np.isfinite(out).any():
        return np.arange(len(series), dtype=np.float64)
    return out


def choose_x(runs: Sequence[RunCurves]) -> str:
    """'step' when every run's main loss series logs steps, else 'epoch'."""
    for run in runs:
        main = run.series.get("train_loss") or run.series.get("val_loss") or next(iter(run.series.values()), None)
        if main is None or not main.has_step:
            return "epoch"
    return "step"


# Beyond this magnitude a value cannot share an axis with a loss near 1 (matplotlib's transforms turn
# singular near 1e308): it is drawn as the NaN/inf marks are, not as a point.
_PLOTTABLE = 1e150


def _drawable(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(v) & (np.abs(v) < _PLOTTABLE)


def _draw_series(
    ax: Axes, x: np.ndarray, s: Series, *, color: str, label: str, smooth: float, val: bool, raw: bool = False,
    band: bool = True,
) -> None:
    y = s.value
    finite = _drawable(y) & np.isfinite(x)
    xs, ys = x[finite], y[finite]
    if len(xs) > 1 and np.any(np.diff(xs) < 0):
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
    if raw:
        cx, lo, hi, _ = envelope(xs, ys)
        ax.plot(cx, hi, color=color, label=label, linewidth=1.6, zorder=3)
    elif val or len(xs) < BAND_MIN_POINTS:
        style = {"marker": "o", "markersize": 3} if len(xs) <= 60 else {}
        ax.plot(xs, ys, color=color, label=label, linewidth=1.6, linestyle="--" if val else "-", zorder=4 if val else 3, **style)
    else:
        if not band:
            pass
        elif len(xs) > ENVELOPE_COLUMNS:
            cx, lo, hi, _ = envelope(xs, ys)
            ax.fill_between(cx, lo, hi, color=color, alpha=0.2, linewidth=0, zorder=1, label=f"{label} (per step, min-max)")
        else:
            ax.plot(xs, ys, color=color, alpha=0.25, linewidth=0.8, zorder=1, label=f"{label} (per step)")
        smoothed = ema(ys, smooth)
        sx, _, _, sm = envelope(xs, smoothed)
        ax.plot(sx, sm, color=color, linewidth=1.6, zorder=3, label=f"{label} (smoothed {smooth:g})")
    bad = ~_drawable(y) & np.isfinite(x)
    if bad.any():
        from matplotlib.transforms import blended_transform_factory

        trans = blended_transform_factory(ax.transData, ax.transAxes)
        bx = x[bad]
        if len(bx) > ENVELOPE_COLUMNS:
            bx = bx[:: max(1, len(bx) // ENVELOPE_COLUMNS)]
        ax.scatter(bx, np.full(len(bx), 0.97), transform=trans, marker="x", color="crimson", s=22, zorder=6,
                   label=f"{label}: NaN/inf ({int(bad.sum())})", clip_on=False)


def _loss_scale(ax: Axes, series: list[np.ndarray]) -> None:
    """Linear, as TensorBoard draws it, with the top at the early level so a late rise stays visible;
    log scale only when the loss explodes by orders of magnitude (divergence)."""
    vals = np.concatenate([v[_drawable(v)] for v in series]) if series else np.empty(0)
    if not len(vals):
        return
    starts = [float(np.median(v[_drawable(v)][: max(3, len(v) // 50)])) for v in series if _drawable(v).any()]
    typical = max(starts) if starts else float(np.median(vals))
    if vals.min() > 0 and vals.max() > 100 * typical:
        ax.set_yscale("log")
        return
    top = max(typical, float(np.percentile(vals, 99.5)))
    bottom = min(0.0, float(vals.min()))
    ax.set_ylim(bottom, top * 1.08 if top > 0 else None)


def _mark_hints(ax: Axes, run: RunCurves, key: str, color: str, multi: bool) -> None:
    for h in run.hints:
        if h.id not in _MARKED or not h.at:
            continue
        x = h.at.get(key)
        if x is None:
            # convert through the series that logs both
            ref = next(iter(run.series.values()), None)
            if ref is None:
                continue
            other = "epoch" if key == "step" else "step"
            if other not in h.at:
                continue
            probe = Series("_", "_", np.array([np.nan if key == "step" else h.at.get("step", np.nan)]),
                           np.array([h.at.get("epoch", np.nan)]), np.array([0.0]))
            conv = _x_for(probe, key, run.series)
            x = float(conv[0]) if np.isfinite(conv[0]) else None
        if x is None:
            continue
        line_color = "crimson" if h.severity == "warn" else "gray"
        ax.axvline(x, color=line_color if not multi else color, linestyle=":", linewidth=1.2, zorder=5)
        text = {"overfitting": "best (stop here)", "diverged": "diverged", "lr_too_high": "stops improving",
                "plateau": "plateau from here", "not_learning": "stuck"}[h.id]
        ax.annotate(text, xy=(x, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12), textcoords="offset points",
                    fontsize=8, color=line_color if not multi else color, zorder=6)


def draw_curves(runs: Sequence[RunCurves], *, smooth: float = 0.6, metrics: Sequence[str] = (), title: str | None = None) -> Figure:
    """The figure for one or more runs. `smooth`: TensorBoard-style EMA weight in [0, 1).
    `metrics`: extra series names, one panel each."""
    from matplotlib.figure import Figure

    key = choose_x(runs)
    panels: list[str] = []
    if any("train_loss" in r.series or "val_loss" in r.series for r in runs):
        panels.append("loss")
    if any("train_acc" in r.series or "val_acc" in r.series for r in runs):
        panels.append("accuracy")
    if any("lr" in r.series for r in runs):
        panels.append("learning rate")
    panels += [m for m in metrics if any(m in r.series for r in runs)]
    if not panels:
        panels.append("loss")
    fig = Figure(figsize=(10, 1.2 + 2.6 * len(panels)), dpi=100, layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    multi = len(runs) > 1
    palette = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"]
    for ri, run in enumerate(runs):
        base = palette[(2 * ri) % 10] if multi else "C0"
        val_color = palette[(2 * ri + 1) % 10] if multi else "C1"
        prefix = f"{run.label}: " if multi else ""
        for ax, panel in zip(axes, panels, strict=True):
            if panel == "loss":
                names = [("train_loss", base, "train loss", False), ("val_loss", val_color, "validation loss", True)]
            elif panel == "accuracy":
                names = [("train_acc", base, "train accuracy", False), ("val_acc", val_color, "validation accuracy", True)]
            elif panel == "learning rate":
                names = [("lr", base, "learning rate", False)]
            else:
                names = [(panel, base, panel, False)]
            for name, color, label, val in names:
                s = run.series.get(name)
                if s is None:
                    continue
                x = _x_for(s, key, run.series)
                _draw_series(ax, x, s, color=color, label=prefix + label, smooth=smooth, val=val, raw=name == "lr",
                             band=not multi)
            if panel == "accuracy" and not multi:
                _shade_gap(ax, run, key, val_color)
            if panel == "loss":
                _mark_hints(ax, run, key, base, multi)
    for ax, panel in zip(axes, panels, strict=True):
        ax.set_ylabel(panel)
        ax.grid(True, alpha=0.3)
        if panel == "learning rate":
            vals = [r.series["lr"].value for r in runs if "lr" in r.series]
            if all((v[np.isfinite(v)] > 0).all() for v in vals):
                ax.set_yscale("log")
        elif panel == "loss":
            _loss_scale(ax, [r.series[n].value for r in runs for n in ("train_loss", "val_loss") if n in r.series])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8, framealpha=0.8)
    axes[-1].set_xlabel(key)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _shade_gap(ax: Axes, run: RunCurves, key: str, color: str) -> None:
    ta, va = run.series.get("train_acc"), run.series.get("val_acc")
    if ta is None or va is None:
        return
    tx = _x_for(ta, key, run.series)
    vx = _x_for(va, key, run.series)
    tok = np.isfinite(tx) & np.isfinite(ta.value)
    vok = np.isfinite(vx) & np.isfinite(va.value)
    if tok.sum() < 2 or vok.sum() < 2:
        return
    order = np.argsort(tx[tok], kind="stable")
    t_x, t_y = tx[tok][order], ta.value[tok][order]
    t_s = ema(t_y, 0.6) if len(t_y) >= BAND_MIN_POINTS else t_y
    v_x, v_y = vx[vok], va.value[vok]
    train_at_val = np.interp(v_x, t_x, t_s)
    ax.fill_between(v_x, v_y, train_at_val, color="crimson", alpha=0.12, linewidth=0, zorder=0, label="train-validation gap")


def save_figure(fig: Figure, target: str) -> str | None:
    """Write the figure atomically; PNG, SVG or PDF by the target's extension. The figure carries
    diagnose's mark, so a later run replaces it; a file diagnose did not write is first kept as .bak
    (returned). Disk full, a read-only disk or a file in the path end in one line (DiagnoseError)."""
    from pathlib import Path

    from diagnose.io.atomic import atomic_path
    from diagnose.io.outputs import check_target, figure_metadata, keep_or_backup, write_error

    fmt = Path(target).suffix.lower().lstrip(".") or "png"
    check_target(Path(target))
    try:
        kept = keep_or_backup(Path(target))
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=110 if fmt == "png" else None, metadata=figure_metadata(fmt))
    except OSError as exc:
        raise write_error(exc, target) from None
    return str(kept) if kept is not None else None
