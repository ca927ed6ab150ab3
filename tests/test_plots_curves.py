"""The curves figure: the per-pixel envelope, the panels, NaN markers, formats by extension."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

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


def _vlines(ax, style: str) -> list[float]:
    return [float(ln.get_xdata()[0]) for ln in ax.get_lines() if ln.get_linestyle() == style and len(ln.get_xdata()) == 2
            and ln.get_xdata()[0] == ln.get_xdata()[1]]


def test_panels_and_marks() -> None:
    run = _run("overfitting.trainer_state.json")
    fig = draw_curves([run])
    axes = fig.get_axes()
    panels = [a for a in axes if a.get_ylabel()]
    assert [a.get_ylabel() for a in panels] == ["loss", "accuracy (%)", "learning rate"]
    assert panels[2].get_yscale() == "log"
    # every finding with an `at` is a dotted line on the loss panel, at its epoch
    marked = [h.at["epoch"] for h in run.hints if h.at]
    assert sorted(_vlines(panels[0], ":")) == sorted(marked)
    # the best validation epoch (lowest validation loss) is lined through the accuracy panel too
    val = run.series["val_loss"]
    best_epoch = float(val.epoch[np.nanargmin(val.value)])
    assert _vlines(panels[1], "-.") == [best_epoch]
    # the legends sit in their own row, not on a panel
    assert all(a.get_legend() is None for a in panels)
    assert axes[-1].get_legend() is not None


def test_accuracy_in_percent_and_lr_as_steps() -> None:
    run = _run("schedule.metrics.csv")
    fig = draw_curves([run])
    acc_ax = next(a for a in fig.get_axes() if a.get_ylabel() == "accuracy (%)")
    dashed = next(ln for ln in acc_ax.get_lines() if ln.get_linestyle() == "--")
    val = run.series["val_acc"].value
    np.testing.assert_allclose(np.sort(dashed.get_ydata()), np.sort(100 * val[np.isfinite(val)]))
    lr_ax = next(a for a in fig.get_axes() if a.get_ylabel() == "learning rate")
    assert [ln.get_drawstyle() for ln in lr_ax.get_lines()] == ["steps-post"]


def test_per_step_rows_sit_at_fractional_epochs() -> None:
    # Lightning's metrics.csv: per-step rows carry the integer epoch and the global step
    run = _run("healthy.metrics.csv")
    fig = draw_curves([run])
    ax = fig.get_axes()[0]
    assert ax.get_xlabel() == "" and fig.get_axes()[-2].get_xlabel() == "epoch"
    train = ax.get_lines()[0].get_xdata()
    assert len(np.unique(np.floor(train))) < len(train)  # several rows per epoch ...
    assert not np.all(train == np.round(train))  # ... spread across it, not stacked on the integer
    assert np.all(np.diff(train) > 0)
    # a row at step s of epoch e sits at e + (s - first step of e) / (steps in e)
    tl = run.series["train_loss"]
    first = {e: tl.step[tl.epoch == e].min() for e in np.unique(tl.epoch)}
    e, s = tl.epoch[5], tl.step[5]
    length = first[e + 1] - first[e]
    assert train[5] == pytest.approx(e + (s - first[e]) / length, abs=0.02)


def test_several_runs_one_colour_each() -> None:
    runs = [_run("healthy.log"), _run("lr_too_high.log"), _run("overfitting.trainer_state.json")]
    fig = draw_curves(runs)
    loss_ax = fig.get_axes()[0]
    curves = [ln for ln in loss_ax.get_lines() if ln.get_linestyle() in ("-", "--") and len(ln.get_xdata()) > 2]
    colours = {ln.get_color() for ln in curves}
    assert colours == {"C0", "C1", "C2"}
    for c in colours:  # train solid and validation dashed in the run's colour
        assert {ln.get_linestyle() for ln in curves if ln.get_color() == c} == {"-", "--"}
    legend_ax = fig.get_axes()[-1]
    texts = [t.get_text() for leg in [*legend_ax.artists, legend_ax.get_legend()] for t in leg.get_texts()]
    assert [r.label for r in runs] == [t for t in texts if t in {r.label for r in runs}]
    assert "train" in texts and "validation" in texts


def test_smoothing_window_scales_with_the_run() -> None:
    from diagnose.plots.curves import smoothing_weight

    w, window = smoothing_weight(6000, None)
    assert window == 120 and 1 / (1 - w) == pytest.approx(120)
    assert smoothing_weight(600, None)[1] == 12
    assert smoothing_weight(6000, 0.6)[0] == 0.6
    rng = np.random.default_rng(0)
    n = 6000
    s = Series("train_loss", "loss", np.arange(n, dtype=float), np.full(n, np.nan), 1 + 0.3 * rng.standard_normal(n))
    fig = draw_curves([RunCurves("noisy", {"train_loss": s})])
    texts = [t.get_text() for t in fig.get_axes()[-1].get_legend().get_texts()]
    assert "smoothed: two-sided EMA, window 120 of 6,000 points" in texts
    smooth_line = next(ln for ln in fig.get_axes()[0].get_lines() if ln.get_linestyle() == "-")
    # much quieter than the raw series, and the min-max band is still drawn
    assert np.std(smooth_line.get_ydata()) < 0.1 * np.std(s.value)
    assert len(fig.get_axes()[0].collections) >= 1


def test_nan_markers_and_log_scale_on_divergence() -> None:
    fig = draw_curves([_run("lr_diverged.metrics.json")])
    ax = fig.get_axes()[0]
    assert ax.get_yscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    assert "train loss: NaN/inf (350)" in labels


def test_the_legend_explains_only_the_lines_drawn() -> None:
    run = _run("schedule.metrics.csv")
    only_train = RunCurves("train only", {k: v for k, v in run.series.items() if not k.startswith("val_")}, [])
    texts = [t.get_text() for t in draw_curves([only_train]).get_axes()[-1].get_legend().get_texts()]
    assert "train" in texts and "validation" not in texts
    texts = [t.get_text() for t in draw_curves([run]).get_axes()[-1].get_legend().get_texts()]
    assert "validation" in texts


def test_log_axes_are_labelled_in_plain_numbers() -> None:
    # learning rates read as people write them (0.01, 1e-4), not as mathtext powers of ten
    from diagnose.plots import plain_number

    assert [plain_number(v) for v in (0.1, 0.01, 0.001, 1e-4, 2.5e-5, 3e6, 20, 0)] == [
        "0.1", "0.01", "0.001", "1e-4", "2.5e-5", "3e6", "20", "0"]
    fig = draw_curves([_run("schedule.metrics.csv")])
    fig.draw_without_rendering()
    lr_ax = next(a for a in fig.get_axes() if a.get_ylabel() == "learning rate")
    assert lr_ax.get_yscale() == "log"
    lo, hi = lr_ax.get_ylim()
    shown = [t.get_text() for t in lr_ax.get_yticklabels(which="both") if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert shown and not any("$" in t for t in shown)
    assert all(float(t.replace("\N{MINUS SIGN}", "-")) > 0 for t in shown)


def test_saved_layout_is_matplotlibs_own(tmp_path: Path) -> None:
    # save_figure runs the constrained layout once itself; the pixels are those of a plain savefig
    from PIL import Image

    run = _run("overfitting.trainer_state.json")
    save_figure(draw_curves([run]), str(tmp_path / "ours.png"))
    draw_curves([run]).savefig(tmp_path / "plain.png", dpi=110)
    ours = np.asarray(Image.open(tmp_path / "ours.png"))
    plain = np.asarray(Image.open(tmp_path / "plain.png"))
    assert ours.shape == plain.shape and (ours == plain).all()


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


def test_the_legend_names_the_finding_lines_in_their_colour() -> None:
    """A warning's line is crimson, an informational finding's gray: the legend shows what is drawn."""
    def legend(fig: Figure) -> dict[str, str]:
        leg = fig.get_axes()[-1].get_legend()
        return {t.get_text(): h.get_color() for t, h in zip(leg.get_texts(), leg.legend_handles, strict=True)
                if "see the table" in t.get_text()}

    warned = draw_curves([_run("lr_diverged.metrics.json")])
    assert legend(warned).get("warning (see the table)") == "crimson"
    calm = draw_curves([_run("healthy.log")])
    assert "warning (see the table)" not in legend(calm)
    drawn = {ln.get_color() for ln in calm.get_axes()[0].get_lines() if ln.get_linestyle() == ":"}
    assert set(legend(calm).values()) == drawn
