"""Training-curve figures: loss (per-step band + smoothed line, validation on top), accuracy (train vs
validation, gap shaded), learning rate (log scale), on a shared x axis, with the findings marked.

Long series are reduced per pixel column to a min/max envelope before drawing, so the band keeps its
true width and ten million points draw in well under a second. Figures use the Agg canvas; never shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from diagnose.core.hints import Hint, Series, ema
from diagnose.plots import log_scale
from diagnose.render import figure_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Columns of the envelope: about the plot's width in pixels at the default size and dpi.
ENVELOPE_COLUMNS = 1000
# Per-step series with more points than this are drawn as a band + smoothed line, not raw.
BAND_MIN_POINTS = 200
# Default smoothing: an EMA whose effective window is this share of the series' points. A fixed
# weight (TensorBoard's 0.6 is a window of 2.5 points) leaves 6,000 batch losses as noisy as the raw
# series; a window that grows with the run smooths every run to the same degree.
SMOOTH_SHARE = 0.02


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


_EPOCH_MAPS: dict[int, tuple[Series, tuple[np.ndarray, np.ndarray] | None]] = {}


def _epoch_map(run: Mapping[str, Series]) -> tuple[np.ndarray, np.ndarray] | None:
    """Step -> fractional epoch for a run whose per-step rows carry an integer epoch: the first step
    of each epoch is its start, and a step sits at epoch + its share of the way to the next start.
    Returns (steps, epochs) to interpolate along, or None when the run logs no (step, epoch) pairs or
    its epochs are already fractional. Read from the series with the most (step, epoch) pairs."""
    best: Series | None = None
    best_n = 0
    for s in run.values():
        n = len(s) if len(s) > best_n and np.isfinite(s.step[:1]).all() and np.isfinite(s.epoch[:1]).all() else 0
        if n > best_n:
            best, best_n = s, n
    if best is None:
        return None
    cached = _EPOCH_MAPS.get(id(best))
    if cached is not None and cached[0] is best:
        return cached[1]
    ok = np.isfinite(best.step) & np.isfinite(best.epoch)
    st, ep = best.step[ok], best.epoch[ok]
    result = None
    if len(ep) and np.all(ep == np.round(ep)):
        order = np.lexsort((st, ep))
        ep_s, st_s = ep[order], st[order]
        first = np.concatenate([[0], np.flatnonzero(np.diff(ep_s)) + 1])
        epochs, starts = ep_s[first], st_s[first]
        if len(epochs) >= 2 and not np.any(np.diff(starts) <= 0):
            # the last epoch ends one typical epoch length after it starts
            end = starts[-1] + float(np.median(np.diff(starts)))
            result = (np.append(starts, end), np.append(epochs, epochs[-1] + 1))
    if len(_EPOCH_MAPS) > 64:
        _EPOCH_MAPS.clear()
    _EPOCH_MAPS[id(best)] = (best, result)
    return result


def _x_for(series: Series, key: str, run: Mapping[str, Series]) -> np.ndarray:
    """The series' x values on the shared axis `key` ("step" or "epoch"). On the epoch axis a point
    with a step is placed at its fractional epoch (epoch + position in it), so the per-step rows of an
    epoch-indexed log spread across the epoch instead of stacking on its integer."""
    if key == "epoch":
        fractional = np.isfinite(series.epoch).all() and not np.all(series.epoch == np.round(series.epoch))
        emap = None if fractional else _epoch_map(run)
        if emap is not None and series.has_step:
            # every series with steps, per-step or per-epoch, on the same fractional axis: a validation
            # row logged at the last step of epoch 3 sits at the end of that epoch, not at its start
            return np.interp(series.step, emap[0], emap[1])
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
    """'epoch' when every run places its main series on epochs (directly, or steps through the
    run's epochs), else 'step' when every run logs steps, else 'epoch' (the point index as a last resort)."""
    def main(run: RunCurves) -> Series | None:
        return run.series.get("train_loss") or run.series.get("val_loss") or next(iter(run.series.values()), None)

    def on_epochs(run: RunCurves) -> bool:
        m = main(run)
        if m is None:
            return False
        return m.has_epoch or (m.has_step and _epoch_map(run.series) is not None)

    if runs and all(on_epochs(r) for r in runs):
        return "epoch"
    if runs and all((m := main(r)) is not None and m.has_step for r in runs):
        return "step"
    return "epoch"


def smoothing_weight(n: int, smooth: float | None) -> tuple[float, int]:
    """(EMA weight, effective window in points) for a series of n points. `smooth` None: the window
    is SMOOTH_SHARE of the points (so 6,000 batches are smoothed as much as 600, relative to the run);
    a number: that TensorBoard weight, whose window is 1 / (1 - weight)."""
    if smooth is None:
        window = max(1, round(SMOOTH_SHARE * n))
        return (1 - 1 / window if window > 1 else 0.0), window
    return smooth, max(1, round(1 / (1 - smooth)))


# Beyond this magnitude a value cannot share an axis with a loss near 1 (matplotlib's transforms turn
# singular near 1e308): it is drawn as the NaN/inf marks are, not as a point.
_PLOTTABLE = 1e150


def _drawable(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(v) & (np.abs(v) < _PLOTTABLE)


def _draw_series(
    ax: Axes, x: np.ndarray, s: Series, *, color: str, smooth: float | None, val: bool, lr: bool = False,
    band: bool = True, scale: float = 1.0, label: str = "",
) -> int | None:
    """Draw one series; returns the smoothing window used (None when drawn raw)."""
    y = s.value * scale if scale != 1.0 else s.value
    finite = _drawable(y) & np.isfinite(x)
    all_finite = bool(finite.all())
    xs, ys = (x, y) if all_finite else (x[finite], y[finite])  # no copy of a clean 10M-point series
    if len(xs) > 1 and bool((xs[1:] < xs[:-1]).any()):
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
    style = "--" if val else "-"
    window = None
    if lr:
        # a learning rate is a step function: hold each value until the next one
        cx, lo, hi, _ = envelope(xs, ys)
        ax.plot(cx, hi, color=color, linewidth=1.6, zorder=3, drawstyle="steps-post")
    elif val or len(xs) < BAND_MIN_POINTS:
        marker: dict[str, Any] = {"marker": "o", "markersize": 3} if len(xs) <= 60 else {}
        ax.plot(xs, ys, color=color, linewidth=1.6, linestyle=style, zorder=4 if val else 3, **marker)
    else:
        cx, lo, hi, mean = envelope(xs, ys)
        if band:
            ax.fill_between(cx, lo, hi, color=color, alpha=0.18, linewidth=0, zorder=1)
        weight, window = smoothing_weight(len(ys), smooth)
        # Default: forward then backward (zero phase), since a one-sided EMA over 2% of a run lags behind
        # a steep start and draws the training loss above a validation loss it is really below. A
        # weight the user chose gets TensorBoard's own one-sided smoothing.
        if smooth is None and len(cx) < len(xs):
            # the window spans many envelope columns: smooth the column means, the same curve at the
            # drawn resolution without scanning ten million points with a 200,000-point window
            per_column = len(xs) / len(cx)
            w_col = max(1.0, window / per_column)
            wc = 1 - 1 / w_col if w_col > 1 else 0.0
            sx, sm = cx, ema(ema(mean, wc)[::-1], wc)[::-1]
        else:
            smoothed = ema(ema(ys, weight)[::-1], weight)[::-1] if smooth is None else ema(ys, weight)
            sx, _, _, sm = envelope(xs, smoothed)
        ax.plot(sx, sm, color=color, linewidth=1.6, linestyle=style, zorder=3)
    bad = None if all_finite else ~_drawable(y) & np.isfinite(x)
    if bad is not None and bad.any():
        from matplotlib.transforms import blended_transform_factory

        trans = blended_transform_factory(ax.transData, ax.transAxes)
        bx = x[bad]
        if len(bx) > ENVELOPE_COLUMNS:
            bx = bx[:: max(1, len(bx) // ENVELOPE_COLUMNS)]
        ax.scatter(bx, np.full(len(bx), 0.97), transform=trans, marker="x", color="crimson", s=22, zorder=6,
                   label=f"{label or s.name}: NaN/inf ({int(bad.sum())})", clip_on=False)
    return window


def _loss_scale(ax: Axes, series: list[np.ndarray]) -> None:
    """Linear, as TensorBoard draws it, with the top at the early level so a late rise stays visible;
    log scale only when the loss explodes by orders of magnitude (divergence)."""
    # A strided sample of long series: axis limits need a percentile, not every one of 10M points.
    series = [v[:: max(1, len(v) // 1_000_000)] for v in series]
    vals = np.concatenate([v[_drawable(v)] for v in series]) if series else np.empty(0)
    if not len(vals):
        return
    starts = [float(np.median(v[_drawable(v)][: max(3, len(v) // 50)])) for v in series if _drawable(v).any()]
    typical = max(starts) if starts else float(np.median(vals))
    if vals.min() > 0 and vals.max() > 100 * typical:
        log_scale(ax, "y")
        return
    top = max(typical, float(np.percentile(vals, 99.5)))
    bottom = min(0.0, float(vals.min()))
    ax.set_ylim(bottom, top * 1.08 if top > 0 else None)


_LABELS = {"train_loss": "train loss", "val_loss": "validation loss", "train_acc": "train accuracy",
           "val_acc": "validation accuracy", "lr": "learning rate"}
_SHORT = {
    "overfitting": "overfitting", "diverged": "diverged", "lr_too_high": "LR too high", "lr_too_low": "LR too low",
    "plateau": "plateau", "not_learning": "not learning", "underfitting": "underfitting", "noisy": "noisy",
    "still_improving": "still improving", "schedule": "LR step",
}


def _hint_x(h: Hint, key: str, run: RunCurves) -> float | None:
    """Where a finding's `at` falls on the axis `key`."""
    if key in h.at and not (key == "epoch" and "step" in h.at and _epoch_map(run.series) is not None):
        return float(h.at[key])
    if not h.at:
        return None
    probe = Series("_", "_", np.array([h.at.get("step", np.nan)], dtype=float), np.array([h.at.get("epoch", np.nan)], dtype=float),
                   np.array([0.0]))
    conv = _x_for(probe, key, run.series)
    return float(conv[0]) if len(conv) and np.isfinite(conv[0]) else None


def _mark_hints(ax: Axes, run: RunCurves, key: str, color: str, multi: bool, row: int) -> set[str]:
    """A dotted line at every finding's `at` (with several runs, every warning's), labelled with the
    finding and staggered so that labels at nearby x don't collide. Returns the line colours used."""
    placed: list[float] = []
    xlim = None
    marked: set[str] = set()
    for h in run.hints:
        if multi and h.severity != "warn":
            continue  # several runs: only the warnings, or the lines hide the curves
        x = _hint_x(h, key, run)
        if x is None:
            continue
        line_color = color if multi else ("crimson" if h.severity == "warn" else "dimgray")
        ax.axvline(x, color=line_color, linestyle=":", linewidth=1.3, zorder=5)
        marked.add(line_color)
        if xlim is None:
            xlim = ax.get_xlim()
        near = sum(1 for p in placed if abs(p - x) < 0.08 * (xlim[1] - xlim[0]))
        placed.append(x)
        ax.annotate(_SHORT.get(h.id, h.id), xy=(x, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -11 - 10 * (near + row)), textcoords="offset points", fontsize=8, color=line_color, zorder=6)
    return marked


def _mark_best(axes: dict[str, Axes], run: RunCurves, key: str, color: str, scale: float) -> None:
    """The best validation point (lowest loss, else highest accuracy): a vertical line through the loss
    and accuracy panels, and a ring on each validation curve at its best."""
    best_x = None
    for name, higher, panel, sc in (("val_loss", False, "loss", 1.0), ("val_acc", True, "accuracy", scale)):
        s = run.series.get(name)
        ax = axes.get(panel)
        if s is None or ax is None or not np.isfinite(s.value).any():
            continue
        x = _x_for(s, key, run.series)
        v = np.where(np.isfinite(s.value) & np.isfinite(x), s.value, np.nan)
        if not np.isfinite(v).any():
            continue
        i = int(np.nanargmax(v) if higher else np.nanargmin(v))
        ax.plot([x[i]], [v[i] * sc], marker="o", markersize=9, markerfacecolor="none", markeredgecolor=color,
                markeredgewidth=1.5, zorder=7)
        if best_x is None:
            best_x = float(x[i])
    if best_x is None:
        return
    for panel in ("loss", "accuracy"):
        if panel in axes:
            axes[panel].axvline(best_x, color=color, linestyle="-.", linewidth=0.9, alpha=0.6, zorder=2)


def draw_curves(
    runs: Sequence[RunCurves], *, smooth: float | None = None, metrics: Sequence[str] = (), title: str | None = None,
    width: float = 10.0,
) -> Figure:
    """The figure for one or more runs. `smooth`: None scales the smoothing window with the number of
    points (SMOOTH_SHARE of each series); a number is a TensorBoard-style EMA weight in [0, 1).
    `metrics`: extra series names, one panel each. `width`: inches (the height follows the panels).

    One colour per run; training solid, validation dashed; the learning rate as steps. Accuracy is
    drawn in percent. The best validation point is ringed and lined through the loss and accuracy
    panels; every finding with an `at` is a dotted line on the loss panel. The legends sit below the
    panels so they never cover a curve."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

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
    multi = len(runs) > 1
    # A row under the panels holds the legends, so they never cover a curve: the line styles, then the runs.
    ncol = max(1, int(width // 3.2))
    legend_rows = math.ceil(6 / ncol) + (math.ceil(len(runs) / ncol) if multi else 0)
    legend_h = 0.2 * legend_rows + 0.1
    fig = Figure(figsize=(width, 1.0 + 2.5 * len(panels) + legend_h), dpi=100, layout="constrained")
    grid = fig.add_gridspec(len(panels) + 1, 1, height_ratios=[2.5] * len(panels) + [legend_h])
    axes_list: list[Axes] = []
    for i in range(len(panels)):
        ax = fig.add_subplot(grid[i], sharex=axes_list[0] if axes_list else None)
        if i < len(panels) - 1:
            ax.tick_params(labelbottom=False)
        axes_list.append(ax)
    axes = np.array(axes_list, dtype=object)
    legend_ax = fig.add_subplot(grid[len(panels)])
    legend_ax.axis("off")
    by_panel = dict(zip(panels, axes, strict=True))
    acc_scale = 100.0
    windows: list[tuple[int, int]] = []  # (window, points) of each smoothed series
    banded = False
    marks: set[str] = set()
    for ri, run in enumerate(runs):
        base = f"C{ri % 10}"
        val_color = base if multi else "C1"
        for ax, panel in zip(axes, panels, strict=True):
            if panel == "loss":
                names = [("train_loss", base, False), ("val_loss", val_color, True)]
            elif panel == "accuracy":
                names = [("train_acc", base, False), ("val_acc", val_color, True)]
            elif panel == "learning rate":
                names = [("lr", base, False)]
            else:
                names = [(panel, base, False)]
            prefix = f"{run.label}: " if multi else ""
            for name, color, val in names:
                s = run.series.get(name)
                if s is None:
                    continue
                x = _x_for(s, key, run.series)
                # accuracy in percent; a series already above 1 (a count, or percent the reader kept) as it is
                scale = 1.0
                if panel == "accuracy":
                    fin = s.value[np.isfinite(s.value)]
                    scale = acc_scale if len(fin) and float(fin.max()) <= 1.0 + 1e-9 else 1.0
                window = _draw_series(ax, x, s, color=color, smooth=smooth, val=val, lr=name == "lr",
                                      band=not multi or len(runs) <= 3, scale=scale,
                                      label=prefix + _LABELS.get(name, name))
                if window is not None:
                    windows.append((window, len(s)))
                    banded = banded or not multi or len(runs) <= 3
            if panel == "accuracy" and not multi:
                _shade_gap(ax, run, key, acc_scale)
        _mark_best(by_panel, run, key, base if multi else "C1", acc_scale)
        marks |= _mark_hints(by_panel.get("loss", axes[0]), run, key, base, multi, ri if multi else 0)
    for ax, panel in zip(axes, panels, strict=True):
        ax.set_ylabel("accuracy (%)" if panel == "accuracy" else panel)
        ax.grid(True, alpha=0.3)
        if panel == "learning rate":
            vals = [r.series["lr"].value for r in runs if "lr" in r.series]
            if all((v[np.isfinite(v)] > 0).all() for v in vals):
                log_scale(ax, "y")
        elif panel == "loss":
            _loss_scale(ax, [r.series[n].value for r in runs for n in ("train_loss", "val_loss") if n in r.series])
    axes[-1].set_xlabel(key)
    # Legends below the panels: the runs (one colour each), then what each line style means.
    style: list[tuple[Any, str]] = [
        (Line2D([], [], color="0.3", linestyle="-"), "train"),
        (Line2D([], [], color="0.3", linestyle="--"), "validation"),
    ]
    if not multi:
        style = [(Line2D([], [], color="C0", linestyle="-"), "train"), (Line2D([], [], color="C1", linestyle="--"), "validation")]
    if not any(n in r.series for r in runs for n in ("val_loss", "val_acc")):
        style = style[:1]  # no validation series: no dashed line to explain
    if banded:
        style.append((Patch(color="0.3", alpha=0.25), "per-step min-max"))
    if windows:
        w, n = max(windows, key=lambda t: t[1])
        what = f"two-sided EMA, window {w:,} of {n:,} points" if smooth is None else f"EMA weight {smooth:g} ({w:,} points)"
        style.append((Line2D([], [], color="0.3", linewidth=1.6), f"smoothed: {what}"))
    if any(np.isfinite(r.series[n].value).any() for r in runs for n in ("val_loss", "val_acc") if n in r.series):
        style.append((Line2D([], [], color="0.3", marker="o", markersize=8, markerfacecolor="none", linestyle="-."), "best validation"))
    if "crimson" in marks or (multi and marks):  # several runs: every line is a warning, in its run's colour
        style.append((Line2D([], [], color="crimson" if not multi else "0.3", linestyle=":"), "warning (see the table)"))
    if "dimgray" in marks and not multi:
        style.append((Line2D([], [], color="dimgray", linestyle=":"), "finding (see the table)"))
    if not multi and "accuracy" in by_panel and {"train_acc", "val_acc"} <= set(runs[0].series):
        style.append((Patch(color="crimson", alpha=0.15), "train-validation gap"))
    handles, labels = by_panel[panels[0]].get_legend_handles_labels()  # NaN markers, if any
    style += list(zip(handles, labels, strict=True))
    styles = legend_ax.legend([h for h, _ in style], [lbl for _, lbl in style], loc="upper center", ncol=ncol,
                              fontsize=8, frameon=False, borderaxespad=0)
    if multi:
        legend_ax.add_artist(styles)
        run_handles = [Line2D([], [], color=f"C{i % 10}", linewidth=3) for i in range(len(runs))]
        legend_ax.legend(run_handles, [figure_text(r.label) for r in runs], loc="lower center", ncol=ncol, fontsize=8,
                         frameon=False, borderaxespad=0)
    if title:
        fig.suptitle(figure_text(title), fontsize=11)
    return fig


def _shade_gap(ax: Axes, run: RunCurves, key: str, scale: float) -> None:
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
    t_s = ema(t_y, smoothing_weight(len(t_y), None)[0]) if len(t_y) >= BAND_MIN_POINTS else t_y
    v_x, v_y = vx[vok], va.value[vok]
    train_at_val = np.interp(v_x, t_x, t_s)
    ax.fill_between(v_x, v_y * scale, train_at_val * scale, color="crimson", alpha=0.12, linewidth=0, zorder=0)


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
            _layout_once(fig, dpi := 110 if fmt == "png" else fig.dpi)
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=figure_metadata(fmt))
    except OSError as exc:
        raise write_error(exc, target) from None
    return str(kept) if kept is not None else None


def _layout_once(fig: Figure, dpi: float) -> None:
    """Place the panels with the figure's layout engine now, then fix them. savefig would otherwise
    walk every artist twice: once with drawing switched off, only to run the layout, then to draw."""
    engine = fig.get_layout_engine()
    if engine is None:
        return
    fig.set_dpi(dpi)
    engine.execute(fig)
    fig.set_layout_engine("none")
