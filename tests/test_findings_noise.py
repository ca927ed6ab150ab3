"""Findings judged against each series' own noise: the kinds of run that absolute thresholds got wrong,
each built from the numbers such a run logs, with the judgement checked against a plain recomputation."""

from __future__ import annotations

import math

import numpy as np

from diagnose.core.hints import Series, find_hints

try:  # the measurements module, where it exists
    from diagnose.core.findings.measure import measure, robust_noise
except ImportError:  # pragma: no cover
    measure = robust_noise = None  # type: ignore[assignment]


def _series(name: str, values: np.ndarray | list[float], x: str = "epoch") -> Series:
    v = np.asarray(values, dtype=float)
    xs = np.arange(len(v), dtype=float)
    nan = np.full(len(v), np.nan)
    return Series(name, name, xs if x == "step" else nan, xs if x == "epoch" else nan, v)


def _warns(series: dict[str, Series]) -> dict[str, object]:
    return {h.id: h for h in find_hints(series) if h.severity == "warn"}


def test_robust_noise_is_the_mad_of_second_differences() -> None:
    rng = np.random.default_rng(3)
    v = 2.0 * np.exp(-np.arange(400) / 60) + 0.05 * rng.standard_normal(400)
    d = [v[i + 2] - 2 * v[i + 1] + v[i] for i in range(len(v) - 2)]
    med = sorted(d)[len(d) // 2 - 1 : len(d) // 2 + 1]
    center = (med[0] + med[1]) / 2
    dev = sorted(abs(x - center) for x in d)
    expected = 1.4826 * (dev[len(dev) // 2 - 1] + dev[len(dev) // 2]) / 2 / math.sqrt(6)
    assert abs(robust_noise(v) - expected) < 1e-12
    assert 0.04 < robust_noise(v) < 0.06  # the scatter put in, whatever the curve


def test_repeated_blow_ups_at_a_constant_rate() -> None:
    # validation loss leaps to 3-9x its running best again and again over 15 epochs
    val = [1.05, 0.62, 0.35, 0.21, 0.77, 0.39, 1.82, 1.97, 0.26, 1.12, 0.22, 0.5, 0.23, 0.9, 0.25]
    train = np.linspace(1.2, 0.15, 15)
    got = _warns({"train_loss": _series("train_loss", train), "val_loss": _series("val_loss", val),
                  "lr": _series("lr", np.full(15, 0.1))})
    h = got["lr_too_high"]
    assert h.at == {"epoch": 4} and h.measured["jumps"] >= 3  # type: ignore[attr-defined]
    assert "overfitting" not in got  # the rises are the instability, not overfitting


def test_single_batch_spikes_on_a_tiny_loss_are_not_instability() -> None:
    # a fine-tune logged every few steps: the loss comes down to ~0.002, and two single batches score 0.14
    rng = np.random.default_rng(1)
    t = np.arange(150.0)
    loss = 0.02 * np.exp(-t / 10) + 0.002 + 0.0003 * rng.random(150)
    loss[70] = loss[120] = 0.14
    got = _warns({"train_loss": _series("train_loss", loss, "step")})
    assert "lr_too_high" not in got and "diverged" not in got


def test_nan_from_the_first_point_is_diverged_never_healthy() -> None:
    for loss in (np.full(30, np.nan), np.concatenate([np.full(20, np.nan), np.linspace(1, 0.5, 10)])):
        hints = find_hints({"train_loss": _series("train_loss", loss), "val_acc": _series("val_acc", np.full(30, 0.1))})
        ids = {h.id for h in hints}
        assert "diverged" in ids and "healthy" not in ids
        h = next(h for h in hints if h.id == "diverged")
        assert abs(h.measured["nonfinite_share"] - np.mean(~np.isfinite(loss))) < 1e-4 and h.evidence


def test_a_short_overfitting_onset_is_found_at_the_validation_minimum() -> None:
    # validation loss rises 8.6% over the last 4 of 10 epochs while training loss keeps falling
    val = [1.2, 0.8, 0.62, 0.55, 0.52, 0.50, 0.505, 0.515, 0.53, 0.543]
    train = [1.3, 0.85, 0.6, 0.48, 0.4, 0.34, 0.29, 0.25, 0.22, 0.19]
    ta = [0.6, 0.75, 0.82, 0.86, 0.88, 0.9, 0.92, 0.93, 0.94, 0.95]
    va = [0.58, 0.72, 0.8, 0.84, 0.86, 0.88, 0.885, 0.885, 0.89, 0.89]
    got = _warns({"train_loss": _series("train_loss", train), "val_loss": _series("val_loss", val),
                  "train_acc": _series("train_acc", ta), "val_acc": _series("val_acc", va)})
    assert set(got) == {"overfitting"}  # not lr_too_low for a straight training curve
    h = got["overfitting"]
    assert h.at == {"epoch": 5}  # type: ignore[attr-defined]
    m = measure(_series("val_loss", val))
    assert h.measured["rise_relative"] == round((np.mean(val[-3:]) - min(val)) / min(val), 4)  # type: ignore[attr-defined]
    assert h.measured["noise"] == m.noise  # type: ignore[attr-defined]


def test_validation_at_chance_while_training_memorizes() -> None:
    # shuffled labels: training loss falls from ln 10 to near zero, validation climbs from ln 10
    n = 30
    train = 2.30 * np.exp(-np.arange(n) / 5) + 0.01
    val = 2.30 + 0.15 * np.arange(n)
    ta = 1 - 0.9 * np.exp(-np.arange(n) / 5)
    va = 0.1 + 0.01 * np.sin(np.arange(n))
    got = _warns({"train_loss": _series("train_loss", train), "val_loss": _series("val_loss", val),
                  "train_acc": _series("train_acc", ta), "val_acc": _series("val_acc", va)})
    assert set(got) == {"memorizing"}
    assert "labels" in got["memorizing"].advice and "early stopping" not in got["memorizing"].advice.split(";")[0]  # type: ignore[attr-defined]


def test_a_resumed_run_does_not_name_a_class_count_from_its_first_loss() -> None:
    # a resumed sequence model whose loss sits near ln 23 = 3.135 by coincidence
    rng = np.random.default_rng(2)
    loss = 3.135 - 0.05 * np.arange(40) / 40 + 0.01 * rng.standard_normal(40)
    hints = find_hints({"train_loss": _series("train_loss", loss), "val_loss": _series("val_loss", loss + 0.1)})
    assert not any("chance level ln" in h.evidence for h in hints)


def test_noisy_validation_on_a_tiny_set() -> None:
    # validation accuracy on a handful of items swings 30-40 points between epochs
    rng = np.random.default_rng(4)
    n = 25
    train = 1.6 * np.exp(-np.arange(n) / 6) + 0.3
    val = 1.6 * np.exp(-np.arange(n) / 6) + 0.5 + 0.25 * rng.standard_normal(n)
    va = np.clip(0.55 + 0.2 * (1 - np.exp(-np.arange(n) / 6)) + 0.15 * rng.standard_normal(n), 0, 1)
    got = _warns({"train_loss": _series("train_loss", train), "val_loss": _series("val_loss", np.abs(val)),
                  "val_acc": _series("val_acc", va)})
    assert "noisy" in got
    m = got["noisy"].measured  # type: ignore[attr-defined]
    assert m["noise_over_scale"] >= m["threshold"]
