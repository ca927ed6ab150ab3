"""Checks of progress and schedule: plateau, still improving, learning-rate changes, the healthy summary."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from diagnose.core.findings.advice import ADVICE
from diagnose.core.findings.base import (
    Hint,
    Series,
    _at,
    _best,
    _finite,
    _g,
    _num,
    _where,
    ema,
)
from diagnose.core.findings.measure import measure
from diagnose.core.findings.thresholds import (
    LR_STEP_FACTOR,
    MIN_EVALS,
    PLATEAU_MIN_DELTA,
    PLATEAU_PATIENCE,
    STILL_IMPROVING_DELTA,
)


def _lr_changes(lr: Series | None) -> tuple[list[int], bool, bool]:
    """(indices where the LR steps down by LR_STEP_FACTOR+, warmup seen, smooth decay seen)."""
    if lr is None:
        return [], False, False
    idx, v = _finite(lr)
    if len(v) < 2 or v.max() <= 0:
        return [], False, False
    ratio = v[:-1] / np.where(v[1:] > 0, v[1:], np.nan)
    # A step: a fall by LR_STEP_FACTOR+ after a flat stretch (the tail of a cosine falls fast too).
    flat_before = np.concatenate([[True], np.abs(v[1:-1] / np.where(v[:-2] > 0, v[:-2], np.nan) - 1) < 0.01])
    drops = [int(idx[i + 1]) for i in np.flatnonzero((ratio >= LR_STEP_FACTOR) & flat_before)]
    peak = int(np.argmax(v))
    warmup = peak > 0 and v[0] < 0.5 * v[peak]
    decay = not drops and v[-1] < 0.5 * v[peak] and peak < len(v) - 1
    return drops, warmup, decay



def _progress(s: Mapping[str, Series], drops: list[int], decay: bool, overfit: bool) -> list[Hint]:
    """plateau / still_improving on validation loss (else validation accuracy, else training loss)."""
    pick = next(
        (
            (name, higher)
            for name, higher in (("val_loss", False), ("val_acc", True), ("train_loss", False))
            if name in s and np.isfinite(s[name].value).sum() >= 5
        ),
        None,
    )
    if pick is None:
        return []
    name, higher = pick
    ser = s[name]
    idx, v = _finite(ser)
    n = len(v)
    sign = -1.0 if higher else 1.0
    patience = min(PLATEAU_PATIENCE, max(3, n // 4))
    if n > 200:  # per-step series: judge on a smoothed curve, patience as a share of the run
        v = ema(v, 0.9)
        patience = max(patience, n // 4)
    best_i = int(np.argmin(sign * v))
    best = float(v[best_i])
    before = v[: n - patience]
    out: list[Hint] = []
    label = {"val_loss": "validation loss", "val_acc": "validation accuracy", "train_loss": "training loss"}[name]
    if n - 1 - best_i >= patience or (
        len(before) and abs(best - float((np.min if not higher else np.max)(before))) <= PLATEAU_MIN_DELTA * abs(best)
    ):
        if overfit:
            return out
        ref_best = float((np.min if not higher else np.max)(before)) if len(before) else best
        at = _at(ser, int(idx[best_i]))
        since = int(idx[n - patience])
        lr_note = ""
        if drops or decay:
            lr_note = "; the learning rate was already lowered by the schedule, so the run has converged there"
        out.append(
            Hint(
                "plateau", "info",
                f"{label} has not improved by more than {PLATEAU_MIN_DELTA:.0%} over the last {patience} "
                f"{'evaluations' if n <= 200 else 'points'} (best {_g(best)} at {_where(at)}; "
                f"best before them {_g(ref_best)}){lr_note}",
                ADVICE["plateau"] if not lr_note else "nothing to change; train longer only with a lower learning rate",
                _at(ser, since),
            )
        )
        return out
    q = max(2, n // 4)
    last_q_gain = sign * (float(v[n - q - 1]) - float(v[-1]))
    if best_i >= n - max(1, n // 10) and last_q_gain > STILL_IMPROVING_DELTA * max(abs(best), 1e-12):
        at = _at(ser, int(idx[-1]))
        out.append(
            Hint(
                "still_improving", "info",
                f"{label} is still improving at the end: {_g(float(v[n - q - 1]))} -> {_g(float(v[-1]))} over the "
                f"last {q} {'evaluations' if n <= 200 else 'points'}",
                ADVICE["still_improving"], at,
            )
        )
    return out


def _schedule(s: Mapping[str, Series], drops: list[int], warmup: bool, decay: bool) -> Hint | None:
    lr = s.get("lr")
    if lr is None or not (drops or warmup or decay):
        return None
    parts = []
    if warmup:
        peak = int(np.nanargmax(lr.value))
        parts.append(f"warmup to {_g(float(lr.value[peak]))} until {_where(_at(lr, peak))}")
    if drops:
        where = ", ".join(_where(_at(lr, i)) for i in drops[:6])
        parts.append(f"{len(drops)} step drop(s) at {where}")
    if decay:
        parts.append(f"a smooth decay to {_g(float(lr.value[np.isfinite(lr.value)][-1]))}")
    aligned = _drops_aligned(s.get("train_loss"), lr, drops)
    text = "learning-rate schedule: " + "; ".join(parts)
    if aligned:
        text += "; " + aligned
    return Hint("schedule", "info", text, "", _at(lr, drops[0]) if drops else {})


def _drops_aligned(train: Series | None, lr: Series, drops: list[int]) -> str:
    """Whether the training loss was flat before each LR drop and fell right after it."""
    if train is None or not drops:
        return ""
    key = "step" if train.has_step and lr.has_step else ("epoch" if train.has_epoch and lr.has_epoch else None)
    if key is None:
        return ""
    tx = getattr(train, key)
    idx, v = _finite(train)
    tx = tx[idx]
    notes = []
    for d in drops:
        x_d = float(getattr(lr, key)[d])
        j = int(np.searchsorted(tx, x_d))
        w = max(3, len(v) // 30)
        if j - 2 * w < 0 or j + w > len(v):
            continue
        before_early = float(np.median(v[j - 2 * w : j - w]))
        before = float(np.median(v[j - w : j]))
        after = float(np.median(v[j : j + w]))
        flat = before_early > 0 and (before_early - before) / before_early < 0.1
        fell = before > 0 and (before - after) / before
        notes.append((x_d, flat, fell))
    if not notes:
        return ""
    parts = []
    for x, flat, fell in notes:
        change = f"{'fell' if fell >= 0 else 'rose'} {abs(fell):.0%}"
        if flat and fell >= 0.1:
            parts.append(f"at {key} {_num(x)} the loss had flattened and {change} right after the drop (the plateau lines up with it)")
        else:
            parts.append(f"at {key} {_num(x)} the loss {change} right after the drop")
    lined = sum(1 for _, flat, fell in notes if flat and fell >= 0.1)
    return f"plateaus line up with {lined} of {len(notes)} drops: " + "; ".join(parts)


def _healthy(s: Mapping[str, Series]) -> Hint:
    parts = []
    val = s.get("val_loss")
    if val is not None and np.isfinite(val.value).any():
        i, best = _best(val, False)
        parts.append(f"validation loss best {_g(best)} at {_where(_at(val, i))}")
    va = s.get("val_acc")
    if va is not None and np.isfinite(va.value).any():
        i, best = _best(va, True)
        parts.append(f"validation accuracy best {best:.1%} at {_where(_at(va, i))}")
    train = s.get("train_loss")
    if train is not None and np.isfinite(train.value).sum() >= 2:
        _, v = _finite(train)
        parts.append(f"training loss {_g(float(v[0]))} -> {_g(float(v[-1]))}")
    counts = [int(np.isfinite(s[n].value).sum()) for n in ("train_loss", "val_loss", "train_acc", "val_acc") if n in s]
    if counts and max(counts) < MIN_EVALS:
        # a handful of points: nothing fired because nothing could be judged, not because all is well
        return Hint("too_short", "info", f"too short to judge ({max(counts)} points, {MIN_EVALS} needed): " + "; ".join(parts),
                    ADVICE["too_short"], {})
    unjudged = _unjudged(s)
    if unjudged:
        # "healthy" only when every check had enough evidence; otherwise say which could not be made
        return Hint("cannot_tell", "info", "no warning, but not every check could be made: " + "; ".join(unjudged)
                    + (" (" + "; ".join(parts) + ")" if parts else ""), ADVICE["cannot_tell"], {},
                    {"checks_not_made": len(unjudged)})
    return Hint("healthy", "info", "no problem found: " + "; ".join(parts), "", {})


def _unjudged(s: Mapping[str, Series]) -> list[str]:
    """The checks the series cannot support: no validation series to judge overfitting, underfitting
    and memorizing on; a loss whose noise is as large as the progress it makes (no trend to read)."""
    out = []
    if not any(n in s and np.isfinite(s[n].value).sum() >= MIN_EVALS for n in ("val_loss", "val_acc")):
        out.append(f"overfitting, underfitting and memorizing need a validation series of {MIN_EVALS}+ points, "
                   "and none was logged")
    for n in ("train_loss", "val_loss"):
        if n in s and np.isfinite(s[n].value).sum() >= MIN_EVALS:
            m = measure(s[n], batches=n == "train_loss" and s[n].has_step and not s[n].has_epoch)
            if m.noise > 0 and m.start - m.best < m.noise:
                out.append(f"the {n.replace('_', ' ')} moves less than its own noise ({_g(m.noise)} point to point), "
                           "so its trend cannot be read")
    return out
