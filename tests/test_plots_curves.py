"""The curves figure: the per-pixel envelope, the panels, NaN markers, formats by extension."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diagnose.core.hints import Series, find_hints
from diagnose.io.logs import parse_log
from diagnose.plots.curves import RunCurves, draw_curves, envelope, save_figure

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


def test_envelope_matches_a_loop() -> None:
    rng = np.random.default_rng(0)
    x = np.sort(rng.random(10_000) * 100)
    y = rng.standard_normal(10_000)
    cx, lo, hi, mean = envelope(x, y, columns=50)
    edges = np.linspace(x[0], x[-1], 51)
    exp_lo, exp_hi, exp_mean = [], [], []
    for i in range(50):
        last = i == 49
        m = (x >= edges[i]) & ((x < edges[i + 1]) if not last else (x <= edges[i + 1]))
        if m.any():
            exp_lo.append(y[m].min())
            exp_hi.append(y[m].max())
            exp_mean.append(y[m].mean())
    np.testing.assert_allclose(lo, exp_lo)
    np.testing.assert_allclose(hi, exp_hi)
    np.testing.assert_allclose(mean, exp_mean)
    assert len(cx) == len(lo) <= 50
    # the band keeps the true extremes of the whole series
    assert lo.min() == y.min() and hi.max() == y.max()


def test_short_series_is_not_reduced() -> None:
    x = np.arange(10.0)
    cx, lo, hi, _ = envelope(x, x**2, columns=100)
    np.testing.assert_array_equal(cx, x)
    np.testing.assert_array_equal(lo, hi)


def _run(name: str) -> RunCurves:
    log = parse_log(RUNS / name)
    return RunCurves(name, log.series, find_hints(log.series))


def test_panels_and_marks() -> None:
    fig = draw_curves([_run("overfitting.trainer_state.json")])
    axes = fig.get_axes()
    assert [a.get_ylabel() for a in axes] == ["loss", "accuracy", "learning rate"]
    assert axes[2].get_yscale() == "log"
    # the best epoch (step 40) is marked on the loss panel
    vlines = [ln for ln in axes[0].get_lines() if ln.get_linestyle() == ":"]
    assert [ln.get_xdata()[0] for ln in vlines] == [40]
    labels = axes[0].get_legend_handles_labels()[1]
    assert labels == ["train loss (per step)", "train loss (smoothed 0.6)", "validation loss"]


def test_nan_markers_and_log_scale_on_divergence() -> None:
    fig = draw_curves([_run("lr_diverged.metrics.json")])
    ax = fig.get_axes()[0]
    assert ax.get_yscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    assert "train loss: NaN/inf (350)" in labels


def test_extension_picks_the_format(tmp_path: Path) -> None:
    fig = draw_curves([_run("healthy.keras.csv")])
    for ext, magic in ((".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")):
        out = tmp_path / f"f{ext}"
        save_figure(fig, str(out))
        assert out.read_bytes().startswith(magic)
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic write leaves no temporary file


def test_ten_million_points_are_reduced_to_an_envelope(tmp_path: Path) -> None:
    # What keeps a 10M-point series quick to draw: matplotlib gets a few thousand vertices, and the
    # band still spans the series' true extremes. Speed itself is measured in bench/bench_plot.py.
    n = 10_000_000
    step = np.arange(n, dtype=np.float64)
    rng = np.random.default_rng(0)
    loss = 2.0 * np.exp(-step / 2e6) + 0.1 * rng.random(n)
    s = Series("train_loss", "loss", step, np.full(n, np.nan), loss)
    fig = draw_curves([RunCurves("big", {"train_loss": s})])
    save_figure(fig, str(tmp_path / "big.png"))
    ax = fig.get_axes()[0]
    band = ax.collections[0]
    ys = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
    assert ys.max() == pytest.approx(loss.max()) and ys.min() == pytest.approx(loss.min())
    drawn = sum(len(p.vertices) for p in band.get_paths()) + sum(len(line.get_xdata()) for line in ax.get_lines())
    assert drawn < 20_000, drawn
