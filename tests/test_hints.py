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
    "healthy.trainer_state.json", "healthy_tb", "healthy_tf2", "healthy_adam.mmdet.json",
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

    runs = make_runs.make_all(tmp_path, ["underfitting"])
    assert runs["underfitting"].epochs[-1]["train_acc"] < 0.5
    ids = {h.id: h.severity for h in find_hints(parse_log(tmp_path / "underfitting.keras.csv").series)}
    assert ids.get("underfitting") == "warn"
