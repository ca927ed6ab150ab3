"""Checks judged in noise units: a loss that never trained, jumps and climbs against the running best,
a short overfitting onset, validation that never learned while training memorized, underfitting,
noisy validation. Each takes the series so far (a prefix) and returns a finding or None."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from diagnose.core.findings.advice import ADVICE
from diagnose.core.findings.base import Hint, Series, _at, _g, _tail_level, _value_near, _where
from diagnose.core.findings.measure import Measures, jumps, measure, slope
from diagnose.core.findings.thresholds import (
    CLIMB_NOISE,
    CLIMB_PROGRESS,
    CLIMB_SHARE,
    JUMP_NOISE,
    JUMP_REL,
    JUMP_SHARE,
    JUMPS_UNSTABLE,
    MEMO_GAIN,
    MEMO_SAME_START,
    MEMO_TRAIN_END,
    MEMO_TRAIN_NOISE,
    MIN_EVALS,
    NOISY_VAL,
    NONFINITE_SHARE,
    OVERFIT_AFTER,
    OVERFIT_NOISE,
    OVERFIT_REL,
    OVERFIT_TAIL,
    RECOVER_SHARE,
    UNDER_ERROR,
    UNDER_GAP,
    UNDER_LEVEL,
    UNDER_SLOPE_SE,
)


def _units(x: float) -> str:
    """A count of noise units as text: one decimal while small, whole numbers past 100."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}"


_LABEL = {"train_loss": "training loss", "val_loss": "validation loss", "val_acc": "validation accuracy",
          "train_acc": "training accuracy"}


def never_trained(s: Mapping[str, Series]) -> Hint | None:
    """The loss (training, else validation) is non-finite from its first point, or never finite."""
    name = "train_loss" if "train_loss" in s else ("val_loss" if "val_loss" in s else None)
    if name is None or not len(s[name]):
        return None
    ser = s[name]
    bad = ~np.isfinite(ser.value)
    share = float(bad.mean())
    if not (bad[0] and share >= NONFINITE_SHARE):
        return None
    first = int(np.argmin(bad)) if not bad.all() else -1
    kinds = sorted({"NaN" if np.isnan(x) else "inf" for x in ser.value[bad]})
    where = "every point" if first < 0 else f"its first {first} points"
    return Hint(
        "diverged", "warn",
        f"{_LABEL[name]} is {'/'.join(kinds)} from its first logged point ({where}; {share:.0%} of {len(ser)} points "
        f"non-finite, threshold {NONFINITE_SHARE:.0%}): the run never produced a finite loss",
        ADVICE["diverged_start"], _at(ser, 0),
        {"nonfinite_share": round(share, 4), "threshold": NONFINITE_SHARE, "first_finite": first},
    )


def unstable(s: Mapping[str, Series], measures: Mapping[str, Measures]) -> Hint | None:
    """Repeated jumps against the running best, or a training loss that climbs back after its best."""
    for name in ("train_loss", "val_loss"):
        m = measures.get(name)
        if m is None or len(m.curve) < MIN_EVALS:
            continue
        found, back = _jumps(m)
        if len(found) >= JUMPS_UNSTABLE and back >= 1:
            y = m.curve
            run_best = np.minimum.accumulate(y)
            shown = ", ".join(f"{_g(float(run_best[i - 1]))} -> {_g(float(y[i]))} at {_where(_at(s[name], int(m.pos[i])))}"
                              for i in found[:3])
            top = max(m.in_noise(float(y[i] - run_best[i - 1])) for i in found)
            return Hint(
                "lr_too_high", "warn",
                f"{_LABEL[name]} jumps above its best so far {len(found)} times and comes back ({shown}"
                f"{', ...' if len(found) > 3 else ''}); the largest jump is {_units(top)} noise units (threshold "
                f"{JUMP_NOISE:g}, and {JUMP_SHARE:.0%} of the progress so far): the updates are too large to be stable",
                ADVICE["unstable"], _at(s[name], int(m.pos[found[0]])),
                {"jumps": len(found), "threshold_jumps": JUMPS_UNSTABLE, "largest_jump_noise": round(top, 2),
                 "threshold_noise": JUMP_NOISE, "noise": m.noise},
            )
    m = measures.get("train_loss")
    if m is None or len(m.curve) < MIN_EVALS or m.after_best < 2:
        return None
    progress = m.start - m.best
    rise = m.end - m.best
    if m.in_noise(progress) >= CLIMB_PROGRESS and m.in_noise(rise) >= CLIMB_NOISE and rise >= CLIMB_SHARE * progress:
        at = _at(s["train_loss"], int(m.pos[m.best_at]))
        return Hint(
            "lr_too_high", "warn",
            f"training loss fell to {_g(m.best)} at {_where(at)}, then climbed back to {_g(m.end)} (mean of the last "
            f"points; last {_g(m.last)}): {_units(m.in_noise(rise))} noise units (threshold {CLIMB_NOISE:g}) and "
            f"{rise / progress:.0%} of the progress made (threshold {CLIMB_SHARE:.0%}); a training loss rises only "
            f"when the steps are too large",
            ADVICE["unstable"], at,
            {"rise_noise": round(m.in_noise(rise), 2), "threshold_noise": CLIMB_NOISE,
             "rise_share": round(rise / progress, 4), "threshold_share": CLIMB_SHARE, "noise": m.noise},
        )
    return None


def _jumps(m: Measures) -> tuple[list[int], int]:
    return jumps(m, height_noise=JUMP_NOISE, height_share=JUMP_SHARE, height_rel=JUMP_REL, recover_share=RECOVER_SHARE)


def overfitting(s: Mapping[str, Series], measures: Mapping[str, Measures]) -> Hint | None:
    """Validation loss risen above its best by OVERFIT_NOISE noise units and OVERFIT_REL, while the
    training loss kept falling."""
    m = measures.get("val_loss")
    if m is None or len(m.curve) < MIN_EVALS or m.after_best < OVERFIT_AFTER or m.best <= 0:
        return None
    tail = m.curve[-OVERFIT_TAIL:]
    end = float(np.mean(tail))
    level = m.best
    rise = end - level
    rel = rise / level if level > 0 else 0.0
    if not (m.in_noise(rise) >= OVERFIT_NOISE and rel >= OVERFIT_REL):
        return None
    val = s["val_loss"]
    b_i = int(m.pos[m.best_at])
    train_note = ""
    if "train_loss" in s:
        t_best = _value_near(s["train_loss"], val, b_i)
        t = measures.get("train_loss")
        if t_best is None or t is None or not t.end < t_best:
            return None  # both rising: instability, not overfitting
        train_note = f" while training loss fell from {_g(t_best)} to {_g(t.end)}"
    at = _at(val, b_i)
    return Hint(
        "overfitting", "warn",
        f"validation loss is lowest at {_where(at)} ({_g(m.best)}) and has risen {rel:.0%} since (threshold "
        f"{OVERFIT_REL:.0%}; {_units(m.in_noise(rise))} noise units, threshold {OVERFIT_NOISE:g}; mean of the last "
        f"{len(tail)} evaluations {_g(end)}, last {_g(m.last)}){train_note}; for early stopping, "
        f"the best point is {_where(at)}",
        ADVICE["overfitting"], at,
        {"rise_relative": round(rel, 4), "threshold_relative": OVERFIT_REL, "rise_noise": round(m.in_noise(rise), 2),
         "threshold_noise": OVERFIT_NOISE, "evaluations_after_best": m.after_best, "noise": m.noise},
    )


def memorizing(s: Mapping[str, Series], measures: Mapping[str, Measures]) -> Hint | None:
    """Validation loss never below its first value while the training loss, which started at the same
    level, fell far: nothing learned carries over to unseen data."""
    v, t, va = measures.get("val_loss"), measures.get("train_loss"), measures.get("val_acc")
    if v is None or t is None or va is None or min(len(v.curve), len(t.curve), len(va.curve)) < MIN_EVALS:
        return None  # without a validation accuracy a fine-tune whose validation loss rises looks the same
    v0 = float(v.curve[0])
    if v0 <= 0 or t.start <= 0:
        return None
    gain = (v0 - v.best) / v0
    a0 = float(np.mean(va.curve[:2]))
    # the accuracy's gain beyond its own noise (OVERFIT_NOISE units), as a share of its headroom
    acc_gain = max(0.0, va.best - a0 - OVERFIT_NOISE * va.noise) / (1 - a0) if a0 < 1 else 1.0
    t0 = float(s["train_loss"].value[t.pos[0]])
    same = abs(t0 - v0) <= MEMO_SAME_START * v0
    fell = t.end <= MEMO_TRAIN_END * t.start and t.in_noise(t.start - t.end) >= MEMO_TRAIN_NOISE
    if not (gain <= MEMO_GAIN and acc_gain <= MEMO_GAIN and fell and same):
        return None
    return Hint(
        "memorizing", "warn",
        f"validation loss never improves on its first value {_g(v0)} (best {_g(v.best)}, {gain:.1%} below it; threshold "
        f"{MEMO_GAIN:.0%}; validation accuracy gains {acc_gain:.0%} of its headroom) and ends at {_g(v.last)}, while training loss, which started at the same level ({_g(t0)}), "
        f"fell to {_g(t.end)} ({t.end / t.start:.0%} of its start): the network memorizes the training set and "
        f"learns nothing that carries over",
        ADVICE["memorizing"], {},
        {"val_gain": round(gain, 4), "val_acc_gain": round(acc_gain, 4), "threshold_gain": MEMO_GAIN,
         "train_end_over_start": round(t.end / t.start, 4),
         "threshold_train": MEMO_TRAIN_END},
    )


def underfitting(s: Mapping[str, Series], measures: Mapping[str, Measures]) -> Hint | None:
    """Training loss still high against its own start, and unseen data scored no worse than training."""
    t, v = measures.get("train_loss"), measures.get("val_loss")
    ta, va = measures.get("train_acc"), measures.get("val_acc")
    if t is None or len(t.curve) < MIN_EVALS or t.start <= 0 or t.end <= 0:
        return None
    level = t.end / t.start
    if level < UNDER_LEVEL:
        return None
    t0 = float(s["train_loss"].value[t.pos[0]])
    if (ta is not None or va is not None) and t0 < math.log(2):
        # a classifier starting below ln 2, under chance for every class count, was resumed or pre-trained:
        # its start is no reference for how much it should have learned (cannot tell)
        return None
    if v is not None and len(v.curve) >= MIN_EVALS:
        gap = (v.end - t.end) / t.end
        gap_txt = f"validation loss {_g(v.end)} is within {max(gap, 0):.0%} of it"
    elif ta is not None and va is not None and len(ta.curve) >= MIN_EVALS and len(va.curve) >= MIN_EVALS:
        a_t, a_v = _tail_level(ta.curve), _tail_level(va.curve)
        gap = (a_t - a_v) / max(1 - a_t, 1e-12)
        gap_txt = f"validation accuracy {a_v:.1%} is within {max(gap, 0):.0%} of the training error of it"
    else:
        return None  # no unseen data to compare with: cannot tell underfitting from a hard task
    if gap > UNDER_GAP:
        return None
    err_share = None
    if ta is not None and len(ta.curve) >= MIN_EVALS:
        err0, err1 = 1 - float(np.mean(ta.curve[:2])), 1 - _tail_level(ta.curve)
        err_share = err1 / err0 if err0 > 0 else 0.0
        if err_share < UNDER_ERROR:
            return None
    b, se = slope(t, max(3, len(t.curve) // 3))
    improving = b < 0 and -b >= UNDER_SLOPE_SE * se
    acc_txt = f"; training accuracy ends at {_tail_level(ta.curve):.1%}" if ta is not None and len(ta.curve) else ""
    state = "and still improving slowly" if improving else "and no longer improving"
    return Hint(
        "underfitting", "warn",
        f"training loss ends at {_g(t.end)}, {level:.0%} of its start {_g(t.start)} (threshold {UNDER_LEVEL:.0%}), "
        f"{state}, and {gap_txt} (threshold {UNDER_GAP:.0%}){acc_txt}: the model does not fit even the training data",
        ADVICE["underfitting_improving" if improving else "underfitting"], {},
        {"train_end_over_start": round(level, 4), "threshold_level": UNDER_LEVEL, "gap": round(gap, 4),
         "threshold_gap": UNDER_GAP, "slope_per_point": b, "slope_se": se}
        | ({"train_error_share": round(err_share, 4), "threshold_error": UNDER_ERROR} if err_share is not None else {}),
    )


def noisy_validation(s: Mapping[str, Series], measures: Mapping[str, Measures]) -> Hint | None:
    """The validation curve's noise is a large share of the progress it makes."""
    # the loss first: an accuracy on a few hundred items moves in steps of one item, noise of its own
    for name, higher in (("val_loss", False), ("val_acc", True)):
        m = measures.get(name)
        if m is None or len(m.curve) < MIN_EVALS or (name == "val_acc" and "val_loss" in measures):
            continue
        progress = (m.best - m.start) if higher else (m.start - m.best)
        scale = max(progress, abs(m.end))
        if scale <= 0:
            continue
        share = m.noise / scale
        if share < NOISY_VAL:
            continue
        unit = (lambda x: f"{x * 100:.1f} points") if higher else _g
        return Hint(
            "noisy", "warn",
            f"{_LABEL[name]} moves by {unit(m.noise)} from one evaluation to the next (robust scale of its "
            f"differences), {share:.1%} of the larger of its progress and its level (threshold {NOISY_VAL:.0%}): single "
            f"evaluations "
            f"cannot tell the epochs apart",
            ADVICE["noisy_val"], {},
            {"noise": m.noise, "noise_over_scale": round(share, 4), "threshold": NOISY_VAL},
        )
    return None


def measure_all(s: Mapping[str, Series]) -> dict[str, Measures]:
    """Measures of the loss and accuracy series with a finite point."""
    out = {}
    for name, higher in (("train_loss", False), ("val_loss", False), ("train_acc", True), ("val_acc", True)):
        if name in s and np.isfinite(s[name].value).any():
            # a training loss logged by step holds single batches, whose isolated spikes are not jumps
            batches = name == "train_loss" and s[name].has_step and not s[name].has_epoch
            out[name] = measure(s[name], higher_is_better=higher, batches=batches)
    return out
