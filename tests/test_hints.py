"""Curve findings on the runs fixtures/make_runs.py really trained, each with one problem induced."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from diagnose.core.hints import Series, ema, find_hints
from diagnose.io.logs import parse_log

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "fixtures" / "runs"


def _ids(name: str, **kw: object) -> dict[str, str]:
    hints = find_hints(parse_log(RUNS / name).series, **kw)  # type: ignore[arg-type]
    return {h.id: h.severity for h in hints}


HEALTHY = [
    "healthy.keras.csv", "healthy.keras.txt", "healthy.log", "healthy.metrics.csv", "healthy.mmdet.json",
    "healthy.trainer_state.json", "healthy_tb", "healthy_tf2", "healthy_adam.mmdet.json", "resumed.mnist.log",
]


@pytest.mark.parametrize("name", HEALTHY)
def test_no_warning_on_healthy_runs(name: str) -> None:
    ids = _ids(name)
    assert "warn" not in ids.values(), ids
    assert "healthy" in ids


@pytest.mark.parametrize(
    ("name", "finding"),
    [
        ("lr_diverged.metrics.json", "diverged"),
        ("lr_too_high.log", "lr_too_high"),
        ("lr_too_low.keras.txt", "lr_too_low"),
        ("noisy_tb", "noisy"),
        ("overfitting.trainer_state.json", "overfitting"),
        ("underfitting.keras.csv", "underfitting"),
        ("chance.history.csv", "not_learning"),
        ("warmup_diverged.hf.out", "diverged"),
        ("bottleneck.keras2.txt", "underfitting"),
        ("gap.history.tsv", "overfitting"),
    ],
)
def test_induced_problem_is_found(name: str, finding: str) -> None:
    ids = _ids(name)
    assert ids.get(finding) == "warn", ids
    assert "healthy" not in ids
    # one clear reading: no other warning competes with the induced one
    assert [k for k, v in ids.items() if v == "warn"] == [finding], ids


def test_overfitting_reports_the_best_epoch() -> None:
    doc = json.loads((RUNS / "overfitting.trainer_state.json").read_text())
    evals = [r for r in doc["log_history"] if "eval_loss" in r]
    best = min(evals, key=lambda r: r["eval_loss"])
    hint = next(h for h in find_hints(parse_log(RUNS / "overfitting.trainer_state.json").series) if h.id == "overfitting")
    assert hint.at == {"step": best["step"], "epoch": int(best["epoch"])}
    rise = (np.mean([r["eval_loss"] for r in evals[-3:]]) - best["eval_loss"]) / best["eval_loss"]
    assert f"has risen {rise:.0%} since" in hint.evidence
    assert f"({best['eval_loss']:.3g})" in hint.evidence


def test_diverged_points_at_the_first_nan() -> None:
    lines = [json.loads(x) for x in (RUNS / "lr_diverged.metrics.json").read_text().splitlines()]
    first = next(r for r in lines if isinstance(r["total_loss"], float) and math.isnan(r["total_loss"]))
    hint = next(h for h in find_hints(parse_log(RUNS / "lr_diverged.metrics.json").series) if h.id == "diverged")
    assert hint.at == {"step": first["iteration"]}
    n_nan = sum(1 for r in lines if isinstance(r["total_loss"], float) and math.isnan(r["total_loss"]))
    assert f"({n_nan} of {len(lines)} points)" in hint.evidence


def test_schedule_drops_are_found() -> None:
    hints = find_hints(parse_log(RUNS / "schedule.metrics.csv").series)
    sched = next(h for h in hints if h.id == "schedule")
    assert sched.severity == "info"
    assert "2 step drop(s) at epoch 10" in sched.evidence and "epoch 20" in sched.evidence
    assert sched.at["epoch"] == 10
    # 30% wrong labels keep the loss on a floor that the first drop lowers: the plateau lines up with it
    assert "at step 384 the loss had flattened and fell" in sched.evidence
    assert "warn" not in {h.severity for h in hints}
    plateau = next(h for h in hints if h.id == "plateau")
    assert "already lowered by the schedule" in plateau.evidence


def _series(name: str, values: np.ndarray, x: str = "epoch") -> Series:
    n = len(values)
    xs = np.arange(n, dtype=float)
    nan = np.full(n, np.nan)
    return Series(name, name, xs if x == "step" else nan, xs if x == "epoch" else nan, np.asarray(values, dtype=float))


def test_not_learning_at_chance() -> None:
    rng = np.random.default_rng(0)
    loss = math.log(10) + 0.01 * rng.standard_normal(300)
    hints = find_hints({"train_loss": _series("train_loss", loss, "step")}, classes=10)
    h = hints[0]
    assert h.id == "not_learning" and h.severity == "warn"
    assert "at the chance level ln 10 = 2.3" in h.evidence and "C from --classes" in h.evidence


def test_still_improving_and_plateau_by_hand() -> None:
    improving = 1.0 / np.arange(1, 21)
    ids = {h.id for h in find_hints({"val_loss": _series("val_loss", improving)})}
    assert "still_improving" in ids and "plateau" not in ids
    flat = np.concatenate([1.0 / np.arange(1, 11), np.full(10, 0.1)])
    hints = find_hints({"val_loss": _series("val_loss", flat)})
    plateau = next(h for h in hints if h.id == "plateau")
    assert plateau.severity == "info"
    assert plateau.at == {"epoch": 15}  # patience 5 of 20 evaluations: the last 5 start at epoch 15


def test_warmup_and_decay() -> None:
    lr = np.concatenate([np.linspace(1e-4, 1e-3, 10), 1e-3 * 0.5 * (1 + np.cos(np.linspace(0, np.pi, 40)))])
    hints = find_hints({"lr": _series("lr", lr), "train_loss": _series("train_loss", np.linspace(2, 1, 50))})
    sched = next(h for h in hints if h.id == "schedule")
    assert "warmup to 0.001 until epoch 9" in sched.evidence and "smooth decay" in sched.evidence


def _ema_loop(values: np.ndarray, w: float) -> np.ndarray:
    """TensorBoard's smoothing, written as the plain loop it is."""
    out = []
    last = 0.0
    k = 0
    for v in values:
        if not math.isfinite(v):
            out.append(math.nan)
            continue
        k += 1
        last = last * w + (1 - w) * v
        out.append(last / (1 - w**k))
    return np.array(out)


@pytest.mark.parametrize("w", [0.0, 0.6, 0.9, 0.999])
def test_ema_matches_the_loop(w: float) -> None:
    rng = np.random.default_rng(1)
    v = rng.random(5000) * 3
    v[[10, 500, 4000]] = [math.nan, math.inf, math.nan]
    np.testing.assert_allclose(ema(v, w), _ema_loop(v, w), rtol=1e-9, equal_nan=True)


def test_make_runs_really_trains(tmp_path: Path) -> None:
    from fixtures import make_runs

    runs = make_runs.make_all(tmp_path, ["underfitting", "gap"])
    assert runs["underfitting"].epochs[-1]["train_acc"] < 0.5
    ids = {h.id: h.severity for h in find_hints(parse_log(tmp_path / "underfitting.keras.csv").series)}
    assert ids.get("underfitting") == "warn"
    # 40 training images: every one learned, about a fifth of the validation set missed, stably
    last = runs["gap"].epochs[-10:]
    gaps = [e["train_acc"] - e["val_acc"] for e in last]
    assert min(gaps) > 0.15 and max(gaps) - min(gaps) < 0.03
    warns = [h.id for h in find_hints(parse_log(tmp_path / "gap.history.tsv").series) if h.severity == "warn"]
    assert warns == ["overfitting"]
    # the bundled file is what the script writes (to float noise: BLAS sums differ in the last bits)
    def rows(p: Path) -> np.ndarray:
        return np.array([[float(x) for x in r.split("\t")] for r in p.read_text().splitlines()[1:]])

    np.testing.assert_allclose(rows(tmp_path / "gap.history.tsv"), rows(RUNS / "gap.history.tsv"), atol=0.02)


def _hint(hints: list, hid: str):
    return next(h for h in hints if h.id == hid)


def test_chance_is_inferred_without_classes_and_gets_learning_rate_advice() -> None:
    # the pandas history has no --classes: C = 10 comes from the accuracy plateau, and the loss agrees
    hints = find_hints(parse_log(RUNS / "chance.history.csv").series)
    h = _hint(hints, "not_learning")
    assert "ln 10" in h.evidence and "C from the validation accuracy plateau" in h.evidence
    # the loss blew up in the first epoch before it settled at chance: the rate is far too high
    assert "far too high" in h.advice and "diagnose sanity" in h.advice and "bigger model" not in h.advice
    assert "underfitting" not in {x.id for x in hints}  # chance takes precedence


def test_chance_from_the_starting_loss() -> None:
    rng = np.random.default_rng(3)
    loss = math.log(5) * (1 + 0.002 * rng.standard_normal(40))
    loss[0] = math.log(5)
    acc = 0.2 + 0.01 * rng.standard_normal(40)
    hints = find_hints({"train_loss": _series("train_loss", loss), "train_acc": _series("train_acc", acc)})
    assert [h.id for h in hints if h.severity == "warn"] == ["not_learning"]
    assert "ln 5" in hints[0].evidence


def test_learning_from_chance_is_not_stuck() -> None:
    # starts at ln 7 (a fresh 7-class classifier), stalls, then learns: not "not learning"
    loss = np.concatenate([np.full(4, math.log(7)), np.linspace(math.log(7), 1.2, 8)])
    acc = np.concatenate([np.full(4, 0.2), np.linspace(0.2, 0.53, 8)])
    ids = {h.id for h in find_hints({"val_loss": _series("val_loss", loss), "val_acc": _series("val_acc", acc)})}
    assert "not_learning" not in ids


def test_pinned_majority_accuracy_is_not_learning() -> None:
    val_acc = np.array([0.8095, 0.27, 0.8095, 0.81, 0.8095, 0.87, 0.8095, 0.5, 0.8095])
    train_acc = np.array([0.69, 0.72, 0.74, 0.73, 0.75, 0.77, 0.74, 0.76, 0.75])
    train_loss = np.linspace(0.60, 0.53, 9)
    hints = find_hints({"train_loss": _series("train_loss", train_loss), "train_acc": _series("train_acc", train_acc),
                        "val_acc": _series("val_acc", val_acc)})
    h = _hint(hints, "not_learning")
    assert "80.95% in 5 of 9" in h.evidence
    assert "overfitting" not in {x.id for x in hints}


def test_repeated_jumps_at_a_constant_rate_are_lr_too_high() -> None:
    loss = np.array([5.7, 10.9, 1.6, 11.0, 1.5, 9.0, 1.4])  # the last value looks fine
    hints = find_hints({"train_loss": _series("train_loss", loss), "lr": _series("lr", np.full(7, 100.0))})
    h = _hint(hints, "lr_too_high")
    assert h.severity == "warn" and "2 times" in h.evidence and h.at == {"epoch": 3}
    # one spike that recovers is not "again and again"
    once = np.array([5.7, 3.0, 2.0, 9.0, 1.8, 1.6, 1.5, 1.4])
    assert "lr_too_high" not in {x.id for x in find_hints({"train_loss": _series("train_loss", once)})}


def test_a_loss_orders_of_magnitude_above_chance_from_the_start() -> None:
    loss = np.concatenate([[1e8, 3e4], np.linspace(1.7, 0.6, 18)])
    hints = find_hints({"train_loss": _series("train_loss", loss)}, classes=5)
    h = _hint(hints, "lr_too_high")
    assert "8 orders of magnitude above the chance level ln 5" in h.evidence


def test_a_stable_accuracy_gap_warns_and_points_to_gaps() -> None:
    doc = (RUNS / "gap.history.tsv").read_text().splitlines()[1:]
    rows = [list(map(float, r.split("\t"))) for r in doc]
    tr, va = np.array([r[2] for r in rows]) / 100, np.array([r[4] for r in rows]) / 100
    k = len(rows) // 3
    h = _hint(find_hints(parse_log(RUNS / "gap.history.tsv").series), "overfitting")
    assert f"{(np.median(tr[-k:]) - np.median(va[-k:])) * 100:.1f} points above validation" in h.evidence
    assert "stable gap" in h.evidence and "diagnose gaps" in h.advice


def test_underfitting_does_not_wait_for_a_plateau() -> None:
    t = np.arange(20.0)
    acc = 0.30 - 0.20 * np.exp(-t / 10)  # still climbing at 28%
    loss = 1.9 + 0.4 * np.exp(-t / 8)
    hints = find_hints({"train_loss": _series("train_loss", loss), "train_acc": _series("train_acc", acc),
                        "val_acc": _series("val_acc", acc - 0.01)})
    h = _hint(hints, "underfitting")
    assert "still improving" in h.evidence and "train longer" in h.advice and "bigger model" in h.advice
    assert "healthy" not in {x.id for x in hints}


def test_no_alarm_on_a_short_healthy_segment() -> None:
    # the last three epochs of a healthy Adam run, as a log cut short holds them
    full = parse_log(RUNS / "healthy_adam.mmdet.json").series
    cut = {}
    for name, s in full.items():
        keep = s.epoch >= np.nanmax(s.epoch) - 2
        cut[name] = Series(s.name, s.source, s.step[keep], s.epoch[keep], s.value[keep])
    assert [h.id for h in find_hints(cut) if h.severity == "warn"] == []


def test_nan_that_recovers_or_never_was_a_number_is_not_divergence() -> None:
    val = np.linspace(1.0, 0.3, 20)
    val[1] = np.nan  # one evaluation of an empty category
    train = np.linspace(2.0, 0.2, 20)
    ids = {h.id for h in find_hints({"train_loss": _series("train_loss", train), "val_loss": _series("val_loss", val)})}
    assert "diverged" not in ids
    never = np.full(20, np.inf)  # a validation loss with nothing to score, inf in every row
    ids = {h.id for h in find_hints({"train_loss": _series("train_loss", train), "val_loss": _series("val_loss", never)})}
    assert "diverged" not in ids
    stays = train.copy()
    stays[12:] = np.nan
    assert _hint(find_hints({"train_loss": _series("train_loss", stays)}), "diverged").at == {"epoch": 12}


def test_a_training_loss_that_climbs_back_has_diverged() -> None:
    rng = np.random.default_rng(5)
    loss = np.concatenate([np.linspace(10.9, 3.7, 40), np.linspace(3.7, 7.5, 40), np.full(40, 7.4)])
    loss = loss + 0.05 * rng.standard_normal(len(loss))
    h = _hint(find_hints({"train_loss": _series("train_loss", loss, "step")}), "diverged")
    assert "climbed back" in h.evidence


def test_a_loss_that_sits_orders_of_magnitude_above_chance_is_broken_not_overfitting() -> None:
    # a 5-class run whose accuracy alternates between two shares and whose validation loss sits at
    # ~5e8 from the first evaluation: no --classes, C comes from the accuracy
    val_loss = np.array([5.5e8, 5.2e8, 8.1e8, 8.4e8, 4.7e8, 5.3e8, 4.2e8, 4.9e8, 5.8e8, 6.2e8])
    acc = np.array([0.15, 0.16, 0.15, 0.16, 0.15, 0.16, 0.16, 0.15, 0.16, 0.15])
    hints = find_hints({"val_loss": _series("val_loss", val_loss), "val_acc": _series("val_acc", acc)})
    warns = {h.id for h in hints if h.severity == "warn"}
    assert warns == {"not_learning", "lr_too_high"}
    assert "orders of magnitude above the chance level" in _hint(hints, "lr_too_high").evidence


def test_a_run_too_short_to_judge_is_not_called_healthy() -> None:
    acc = np.array([0.34, 0.37, 0.42, 0.48])  # 48% after four epochs
    loss = np.array([1.28, 1.12, 1.07, 1.03])
    hints = find_hints({"train_loss": _series("train_loss", loss), "train_acc": _series("train_acc", acc)})
    assert [h.id for h in hints] == ["too_short"]
    assert "4 points, 5 needed" in hints[0].evidence


def test_validation_loss_that_stalls_early_while_training_loss_falls_is_overfitting() -> None:
    # A fine-tune whose validation loss is best at epoch 2 and barely moves for 40 epochs while the
    # training loss keeps falling below it: no 10% rise, but the extra training fit the training set only.
    n = 42
    rng = np.random.default_rng(0)
    val = np.concatenate([[3.9, 3.75, 3.66], 3.70 + 0.05 * rng.random(n - 3)])
    train = np.linspace(3.5, 2.25, n)
    h = _hint(find_hints({"train_loss": _series("train_loss", train), "val_loss": _series("val_loss", val)}), "overfitting")
    assert h.at["epoch"] == 2 and "no later evaluation of the 39 since beat it" in h.evidence
    # The same validation curve is no overfitting when training loss stays above it (regularized), when
    # training stopped improving, or while validation accuracy still peaks at the end.
    for tr in (np.linspace(4.2, 3.9, n), np.full(n, 2.5)):
        ids = [x.id for x in find_hints({"train_loss": _series("train_loss", tr), "val_loss": _series("val_loss", val)})]
        assert "overfitting" not in ids
    acc = np.linspace(0.5, 0.8, n)
    ids = [x.id for x in find_hints({"train_loss": _series("train_loss", train), "val_loss": _series("val_loss", val),
                                      "val_acc": _series("val_acc", acc)})]
    assert "overfitting" not in ids


@pytest.mark.parametrize("window", [5, 6, 101, 200])
def test_rolling_median_is_pandas_centered_rolling_median(window: int) -> None:
    import pandas as pd

    from diagnose.core.hints import _rolling_median

    rng = np.random.default_rng(window)
    for n in (3, 50, 4000):
        v = rng.lognormal(size=n)
        v[rng.random(n) < 0.05] = np.nan
        want = pd.Series(v).rolling(window, center=True, min_periods=1).median().to_numpy()
        np.testing.assert_allclose(_rolling_median(v, window), want, equal_nan=True)
