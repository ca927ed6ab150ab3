"""Checks of how the run fits: divergence, instability, overfitting, underfitting."""

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
    _level,
    _per_step,
    _tail_level,
    _trend,
    _value_near,
    _where,
)
from diagnose.core.findings.thresholds import (
    DIVERGE_FACTOR,
    GAP_GROWING,
    JUMP_FACTOR,
    JUMP_HEIGHT,
    JUMPS_UNSTABLE,
    MIN_EVALS,
    OVERFIT_ACC_GAP,
    RECOVER_FACTOR,
    STALL_EARLY,
    STALL_PATIENCE,
    STALL_TRAIN_DROP,
    UNDERFIT_ACC,
    UNDERFIT_GAP,
)


def _diverged(loss: Series) -> Hint | None:
    """NaN/inf that stays, a loss far above its start, or a training loss that climbs back up."""
    finite = np.isfinite(loss.value)
    bad = np.flatnonzero(~finite)
    if len(bad):
        first = int(bad[0])
        after = ~finite[first:]
        # Divergence is a loss that becomes NaN/inf and stays so. A loss that is never finite is a
        # broken metric (a validation set with no boxes), and one that recovers is a skipped step
        # (mixed precision's loss scaling makes those on purpose).
        if finite[:first].any() and not finite[-1] and after.mean() >= 0.5:
            at = _at(loss, first)
            kinds = sorted({"NaN" if np.isnan(x) else "inf" for x in loss.value[bad]})
            return Hint(
                "diverged", "warn",
                f"{loss.name} is {'/'.join(kinds)} from {_where(at)} on ({len(bad)} of {len(loss)} points)",
                ADVICE["diverged"], at,
            )
    if loss.name != "train_loss":
        return None  # validation loss may rise far above its start by overfitting alone
    idx, v = _finite(loss)
    if len(v) < 5:
        return None
    # The start: the first value or the early level, whichever is higher (a huge first value is a start).
    start = max(float(v[0]), _level(v, True))
    # single batches (a training loss logged by step) are judged on their rolling median however few
    batches = loss.has_step and not loss.has_epoch and len(v) >= 20
    tr, pos = _trend(v, _per_step(loss) or batches)
    k = max(3, len(tr) // 20)
    over = np.flatnonzero(tr[k:] > DIVERGE_FACTOR * start)
    if start > 0 and len(over):
        i = int(idx[pos[k + over[0]]])
        peak = float(np.max(v))
        at = _at(loss, i)
        return Hint(
            "diverged", "warn",
            f"{loss.name} climbs above {DIVERGE_FACTOR:g}x its start ({_g(start)}) at {_where(at)}, up to {_g(peak)}",
            ADVICE["diverged"], at,
        )
    # Training loss never rises for long in a healthy run (overfitting shows on validation only): a
    # trend that climbs back to JUMP_FACTOR x its best, giving back at least JUMP_HEIGHT of the
    # progress made, and is still there at the end, has diverged after converging.
    best_i = int(np.argmin(tr))
    best = float(tr[best_i])
    end = float(np.median(tr[-max(3, len(tr) // 20) :]))
    if best > 0 and best_i < len(tr) - 3 and end >= JUMP_FACTOR * best and end - best >= JUMP_HEIGHT * (start - best) > 0:
        at = _at(loss, int(idx[pos[best_i]]))
        return Hint(
            "diverged", "warn",
            f"{loss.name} fell to {_g(best)} at {_where(at)}, then climbed back to {_g(end)} "
            f"({end / best:.1f}x its best, {(end - best) / (start - best):.0%} of the progress lost)",
            ADVICE["diverged"], at,
        )
    return None



def _unstable(s: Mapping[str, Series]) -> Hint | None:
    """lr_too_high by jumps: the loss leaps to JUMP_FACTOR x its best so far and comes back, again
    and again, even when the last value looks fine."""
    for n in ("train_loss", "val_loss"):
        if n not in s:
            continue
        idx, v = _finite(s[n])
        if len(v) < MIN_EVALS:
            continue
        y, pos = _trend(v, _per_step(s[n]))
        start = max(float(y[0]), _level(y, True))
        best = np.minimum.accumulate(y)
        prev = np.concatenate([[np.inf], best[:-1]])
        jumps: list[int] = []
        recovered = 0
        inside = False
        for i in range(1, len(y)):
            if not inside and prev[i] > 0 and y[i] >= JUMP_FACTOR * prev[i] and y[i] - prev[i] >= JUMP_HEIGHT * start:
                jumps.append(i)
                inside = True
            elif inside and y[i] <= RECOVER_FACTOR * prev[i]:
                inside = False
                recovered += 1
        if len(jumps) >= JUMPS_UNSTABLE and recovered >= 1:
            at = _at(s[n], int(idx[pos[jumps[0]]]))
            shown = ", ".join(f"{_g(float(prev[i]))} -> {_g(float(y[i]))} at {_where(_at(s[n], int(idx[pos[i]])))}" for i in jumps[:3])
            return Hint(
                "lr_too_high", "warn",
                f"{n} jumps to {JUMP_FACTOR:g}x or more its best so far {len(jumps)} times and comes back ({shown}"
                f"{', ...' if len(jumps) > 3 else ''}): the updates are too large for the learning rate to be stable",
                ADVICE["unstable"], at,
            )
    return None



def _overfitting(s: Mapping[str, Series]) -> Hint | None:
    """Overfitting by a validation loss stalled early, or by the accuracy gap (the rise of the validation
    loss after its best is judged in noise units: signals.overfitting)."""
    stalled = _stalled_validation(s)
    if stalled is not None:
        return stalled
    ta, va = s.get("train_acc"), s.get("val_acc")
    if ta is not None and va is not None:
        gap_end, gap_mid = _acc_gap(ta, va)
        if gap_end is not None and gap_end >= OVERFIT_ACC_GAP:
            b_i, best = _best(va, True)
            at = _at(va, b_i)
            growing = gap_mid is not None and gap_end > gap_mid + GAP_GROWING
            mid = f" (up from {gap_mid * 100:.1f} mid-run)" if growing and gap_mid is not None else (
                f" ({gap_mid * 100:.1f} mid-run: a stable gap)" if gap_mid is not None else "")
            best_txt = ""
            val = s.get("val_loss")
            if val is not None and np.isfinite(val.value).sum() >= MIN_EVALS:
                # the point to stop at is where validation loss is lowest, as early stopping monitors it
                l_i, l_best = _best(val, False)
                at = _at(val, l_i)
                best_txt = f"; validation loss is lowest at {_where(at)} ({_g(l_best)})"
            return Hint(
                "overfitting", "warn",
                f"training accuracy is {gap_end * 100:.1f} points above validation over the last third of the run{mid}; "
                f"validation accuracy peaked at {_where(_at(va, b_i))} ({best:.1%}){best_txt}",
                ADVICE["overfitting"] if growing else ADVICE["gap"], at,
                {"gap_points": round(gap_end * 100, 2), "threshold_points": OVERFIT_ACC_GAP * 100},
            )
    return None


def _stalled_validation(s: Mapping[str, Series]) -> Hint | None:
    """Validation loss best early and never beaten again while training loss kept falling."""
    val, train = s.get("val_loss"), s.get("train_loss")
    if val is None or train is None:
        return None
    idx, v = _finite(val)
    if len(v) < STALL_PATIENCE + 2:
        return None
    b_i, best = _best(val, False)
    pos = int(np.searchsorted(idx, b_i))
    if pos > STALL_EARLY * (len(v) - 1) or len(v) - 1 - pos < STALL_PATIENCE:
        return None
    va = s.get("val_acc")
    if va is not None and np.isfinite(va.value).sum() >= MIN_EVALS:
        a_idx, _ = _finite(va)
        a_i, _ = _best(va, True)
        if int(np.searchsorted(a_idx, a_i)) >= (2 / 3) * (len(a_idx) - 1):
            return None  # validation accuracy still peaks late: the loss alone does not show overfitting
    t_at_best, t_end = _value_near(train, val, b_i), _level(_finite(train)[1], False)
    if t_at_best is None or t_at_best <= 0 or (t_at_best - t_end) / t_at_best < STALL_TRAIN_DROP:
        return None
    if t_end >= best:
        return None  # training loss still above validation's best (dropout, augmentation): no gap to speak of
    at = _at(val, b_i)
    return Hint(
        "overfitting", "warn",
        f"validation loss is lowest at {_where(at)} ({_g(best)}) and no later evaluation of the {len(v) - 1 - pos} since "
        f"beat it (last {_g(float(v[-1]))}), while training loss fell from {_g(t_at_best)} to {_g(t_end)}: "
        f"the extra training fit the training set only; for early stopping, the best point is {_where(at)}",
        ADVICE["overfitting"], at,
    )



def _acc_gap(ta: Series, va: Series) -> tuple[float | None, float | None]:
    """(gap over the last third, gap around the middle), training minus validation accuracy; None
    with fewer than MIN_EVALS points of either."""
    _, tv = _finite(ta)
    _, vv = _finite(va)
    if len(tv) < MIN_EVALS or len(vv) < MIN_EVALS:
        return None, None
    end = _tail_level(tv) - _tail_level(vv)
    mid_t = float(np.median(tv[len(tv) // 2 - 1 : len(tv) // 2 + 2]))
    mid_v = float(np.median(vv[len(vv) // 2 - 1 : len(vv) // 2 + 2]))
    return end, mid_t - mid_v



def _underfitting(s: Mapping[str, Series]) -> Hint | None:
    ta, va, train = s.get("train_acc"), s.get("val_acc"), s.get("train_loss")
    if ta is None:
        return None
    _, tv = _finite(ta)
    if len(tv) < MIN_EVALS:
        return None
    acc = _tail_level(tv)
    gap = None
    if va is not None and np.isfinite(va.value).sum() >= MIN_EVALS:
        gap = acc - _tail_level(_finite(va)[1])
    if acc >= UNDERFIT_ACC or (gap is not None and gap >= UNDERFIT_GAP):
        return None
    # Still improving? The last quarter of the training accuracy (else loss) moved the right way.
    q = max(2, len(tv) // 4)
    improving = float(np.median(tv[-q:])) > float(np.median(tv[-2 * q : -q])) + 0.01 if len(tv) >= 2 * q else False
    if train is not None and not improving:
        _, v = _finite(train)
        q = max(2, len(v) // 4)
        improving = len(v) >= 2 * q and np.median(v[-q:]) < (1 - 0.02) * np.median(v[-2 * q : -q])
    gap_txt = f", {abs(gap) * 100:.1f} points {'below' if gap < 0 else 'above'} validation" if gap is not None else ""
    state = ("and still improving slowly" if improving else "and no longer improving")
    return Hint(
        "underfitting", "warn",
        f"training accuracy ends at {acc:.1%}{gap_txt}, {state}: the model does not fit even the training data",
        ADVICE["underfitting_improving" if improving else "underfitting"], {},
    )
