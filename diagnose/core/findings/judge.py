"""find_hints: every check over one run, in order, each judgement from the measurements."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from diagnose.core.findings import signals
from diagnose.core.findings.advice import ADVICE
from diagnose.core.findings.base import (
    Hint,
    Series,
    _at,
    _enough_epochs,
    _finite,
    _g,
    _level,
    _where,
    ema,
)
from diagnose.core.findings.chance import _acc_classes, _chance, _exploded_start, _not_learning
from diagnose.core.findings.fit import _diverged, _overfitting
from diagnose.core.findings.measure import CurveStats, _train_stats
from diagnose.core.findings.progress import _healthy, _lr_changes, _progress, _schedule
from diagnose.core.findings.thresholds import (
    HIGH_PLATEAU_LEVEL,
    LINEAR_FIRST_HALF_SHARE,
    LINEAR_R2,
    NOISY_SPREAD,
    REBOUND_END,
    REBOUND_HALF,
)


def find_hints(series: Mapping[str, Series], *, classes: int | None = None) -> list[Hint]:
    """Findings for one run. `series`: canonical name -> Series (train_loss, val_loss, train_acc,
    val_acc, lr; any may be missing). `classes`: number of classes, for the chance level ln(C);
    without it C is inferred from an accuracy plateau at 1/C or a starting loss at ln C."""
    hints: list[Hint] = []
    train, val = series.get("train_loss"), series.get("val_loss")
    lr = series.get("lr")
    loss = train if train is not None else val
    if loss is None and series.get("val_acc") is None and series.get("train_acc") is None:
        return [
            Hint(
                "no_curves", "info", "no loss or accuracy series in the log, so nothing to judge",
                "--list shows the names found and how they were read; --metric NAME draws any of them", {},
            )
        ]
    drops, warmup, decay = _lr_changes(lr)
    measures = signals.measure_all(series)
    diverged = signals.never_trained(series)
    if diverged is not None:
        hints.append(diverged)
    for cand in (train, val):
        if cand is not None and diverged is None:
            diverged = _diverged(cand)
            if diverged is not None:
                hints.append(diverged)
                break
    memo = signals.memorizing(series, measures) if diverged is None else None
    if memo is not None:
        hints.append(memo)
    stats = _train_stats(train) if train is not None else CurveStats()
    shape = train is not None and _enough_epochs(train)
    stuck = exploded_start = False
    exploded = None
    if diverged is None and memo is None:
        chance = _chance(series, classes)
        k = classes or (chance.classes if chance is not None else None) or _acc_classes(series)
        exploded = _exploded_start(series, k)
        not_learning = _not_learning(series, stats, chance, exploded is not None)
        if not_learning is not None:
            stuck = True
            hints.append(not_learning)
        exploded_start = exploded is not None  # a blown-up run: its gaps and plateaus mean nothing
    if diverged is None:
        unstable = exploded or signals.unstable(series, measures)
        if unstable is not None:
            hints.append(unstable)
    if diverged is None and not stuck and train is not None and not any(h.id == "lr_too_high" for h in hints):
        idx, v = _finite(train)
        noisy = stats.spread is not None and stats.spread >= NOISY_SPREAD
        if (
            shape
            and stats.end_over_start is not None
            and stats.rebound_end is not None
            and stats.rebound_half is not None
            and stats.end_over_start >= HIGH_PLATEAU_LEVEL
            and stats.rebound_end >= REBOUND_END
            and stats.rebound_half >= REBOUND_HALF
            and not noisy  # a noisy loss bounces too; the batch is the first thing to fix then
            and not drops
        ):
            low_i = int(idx[int(np.argmin(ema(v, 1 - 1 / max(2, len(v) / 20))[: len(v) // 2]))])
            at = _at(train, low_i)
            hints.append(
                Hint(
                    "lr_too_high", "warn",
                    f"training loss fell fast from {_g(_level(v, True))} to its low at {_where(at)}, then stopped "
                    f"improving: the second half averages {stats.rebound_half:.2f}x that low and the run ends at "
                    f"{stats.end_over_start:.0%} of its start",
                    ADVICE["lr_too_high"], at,
                )
            )
        elif (
            shape
            and stats.linear_r2 is not None
            and stats.first_half_share is not None
            and stats.linear_r2 >= LINEAR_R2
            and stats.first_half_share <= LINEAR_FIRST_HALF_SHARE
            and stats.end_over_start is not None
            and stats.end_over_start > HIGH_PLATEAU_LEVEL
            and not (drops or warmup or decay)  # a changing LR explains the shape by itself
        ):
            hints.append(
                Hint(
                    "lr_too_low", "warn",
                    f"training loss falls in a nearly straight line (R^2 {stats.linear_r2:.2f} for a line; "
                    f"{stats.first_half_share:.0%} of the decrease in the first half) and is still at "
                    f"{stats.end_over_start:.0%} of its start",
                    ADVICE["lr_too_low"], {},
                )
            )
        if noisy and stats.spread is not None:
            hints.append(
                Hint(
                    "noisy", "warn",
                    f"per-step training loss varies by {stats.spread:.0%} of its level (standard deviation over mean "
                    f"in windows of the run's middle, {len(v):,} points)",
                    ADVICE["noisy"], {},
                )
            )
    if diverged is None and not stuck and not exploded_start and memo is None:
        # after jumps against the running best, a validation rise is the same instability, not overfitting
        jumpy = any(h.id == "lr_too_high" and "jumps" in h.measured for h in hints)
        over = None if jumpy else (signals.overfitting(series, measures) or _overfitting(series))
        noisy_val = None
        if over is None and not any(h.id in ("noisy", "lr_too_high") for h in hints):
            noisy_val = signals.noisy_validation(series, measures)
        if over is not None:
            hints.append(over)
        under = signals.underfitting(series, measures)
        if under is not None and over is None and not any(h.id in ("lr_too_low", "lr_too_high") for h in hints):
            hints.append(under)
        if noisy_val is not None and not any(h.id in ("underfitting", "lr_too_low") for h in hints):
            hints.append(noisy_val)
        hints.extend(_progress(series, drops, decay, over is not None))
    sched = _schedule(series, drops, warmup, decay)
    if sched is not None:
        hints.append(sched)
    if not any(h.severity == "warn" for h in hints):
        hints.insert(0, _healthy(series))
    hints.sort(key=lambda h: h.severity != "warn")
    return hints
