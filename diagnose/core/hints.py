"""Curve findings: what a training log says about the run. Pure: arrays in, frozen dataclasses out.

Each finding has an id, a severity (`warn` or `info`), the evidence in numbers with the step or
epoch, and the advice. The thresholds are named constants below with where they come from; they
were checked on the runs `fixtures/make_runs.py` trains and on real logs from public repositories.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from diagnose.io.logs import ParsedLog

# --- thresholds ------------------------------------------------------------------------------------

# A loss that climbs this far above its starting level has diverged. The Deep Learning Tuning
# Playbook ("training instability") treats a loss rising well above its initial value as the sign
# that updates are too large; 3x keeps a noisy but stable start from counting.
DIVERGE_FACTOR = 3.0
# Less than this relative decrease from the start over the whole run: not learning. SageMaker
# Debugger's LossNotDecreasing rule compares the loss over a window against a percentage
# (`diff_percent`); 10% over the whole run is our reading of "not decreasing". A decrease larger than
# NOT_LEARNING_NOISE x the point-to-point noise is real progress even when small (a fine-tune, or a
# segment late in a long run), so it does not count as "not learning".
NOT_LEARNING_DROP = 0.10
NOT_LEARNING_NOISE = 3.0
# At chance: a C-class classifier that predicts the uniform distribution scores cross-entropy ln C
# and accuracy 1/C (CS231n notes, "Neural Networks Part 3": "look for correct loss at chance
# performance", 2.302 for CIFAR-10; the "verify loss @ init" step of Karpathy's "A Recipe for
# Training Neural Networks", 2019).
# A loss within CHANCE_MARGIN of ln C, with the accuracy within CHANCE_ACC_MARGIN of 1/C, is chance.
CHANCE_MARGIN = 0.05
CHANCE_ACC_MARGIN = 0.25  # relative to 1/C, or 0.05 absolute, whichever is larger
# When C is inferred from the loss alone, its first value must lie this close to ln C (relative):
# the values ln 2, ln 3, ln 4 ... are far apart for the small C where the inference means something.
CHANCE_START_MARGIN = 0.01
# A model that predicts one class: one exact accuracy value repeated in at least this share of the
# evaluations (an accuracy that never moves off the majority share), with the training accuracy no
# more than PINNED_TRAIN_ABOVE above it and the training loss down by less than PINNED_MAX_DROP.
PINNED_SHARE = 0.4
PINNED_TRAIN_ABOVE = 0.05
PINNED_MAX_DROP = 0.3
# A first loss this many times ln C is "orders of magnitude above chance": the initial updates blew
# the weights up (the Deep Learning Tuning Playbook, "training instability": instability early in
# training calls for a lower learning rate or a learning-rate warm-up).
EXPLODED_START = 100.0
# Instability at a constant learning rate: the loss jumps to JUMP_FACTOR x its best so far, by at
# least JUMP_HEIGHT x its starting level, and then comes back below RECOVER_FACTOR x that best,
# again and again (JUMPS_UNSTABLE or more jumps). The Tuning Playbook's "training instability"
# section describes these loss spikes at a learning rate near the edge of stability.
JUMP_FACTOR = 2.0
JUMP_HEIGHT = 0.5
RECOVER_FACTOR = 1.5
JUMPS_UNSTABLE = 2
# Learning rate too high (the Tuning Playbook and Smith, "Cyclical Learning Rates", 2017: a learning
# rate above the stable range makes the loss fall quickly, then stall or oscillate at a poor level):
# the loss ends at least this fraction of its start ...
HIGH_PLATEAU_LEVEL = 0.1
# ... and made no progress after its early drop: the smoothed loss (span ~1/20 of the run) averages at
# least REBOUND_HALF x its first-half minimum over the second half and ends no lower than
# REBOUND_END x that minimum. Healthy fixtures and real logs measure <= 0.96 / 1.05 (a step
# schedule); Adam at lr 0.1 measures 1.05 / 1.54.
REBOUND_END = 1.0
REBOUND_HALF = 1.2
# Learning rate too low (Karpathy's CS231n notes, "Babysitting the learning process": a low learning
# rate gives a nearly linear loss curve): a straight line explains this much of the smoothed loss
# (R^2) and the first half of the run made no more than this share of the total decrease (an
# exponential-looking healthy curve makes most of its progress early).
LINEAR_R2 = 0.95
LINEAR_FIRST_HALF_SHARE = 0.65
# Noisy batches (McCandlish et al., "An Empirical Model of Large-Batch Training", 2018: the gradient
# noise scales as 1/batch size): the per-step loss's standard deviation exceeds this multiple of its
# mean in the middle of training (windows from 10% to 50% of the run). Batch-32 runs measure 0.3-0.6
# on the fixtures and up to 1.0 on real Lightning logs; batch 1 measures 3.7.
NOISY_SPREAD = 1.5
# Overfitting: validation loss this far above its minimum (relative) while training loss keeps
# falling; Keras/Lightning EarlyStopping monitor the same minimum (patience counts evaluations).
OVERFIT_RISE = 0.10
# ... or a train-validation accuracy gap this large at the end (the last third of the run). Ng's
# "Machine Learning Yearning" (ch. 21) reads a 1% training vs 11% dev error as high variance: ten
# points. A gap that grows is overfitting in progress; a stable one is a generalization gap.
OVERFIT_ACC_GAP = 0.10
GAP_GROWING = 0.02
# ... or validation loss that stopped improving early and never again while training loss kept falling:
# its best is in the first STALL_EARLY share of the evaluations, at least STALL_PATIENCE evaluations
# (Keras EarlyStopping would have stopped after its patience) follow without a better one, and
# training loss fell at least STALL_TRAIN_DROP (relative) after the best, to below validation's best.
# The extra training only fit the training set: the train-validation gap grew. Not judged while validation accuracy still peaks
# late (label smoothing can hold the loss flat while accuracy rises).
STALL_EARLY = 0.25
STALL_PATIENCE = 10
STALL_TRAIN_DROP = 0.20
# Underfitting ("high bias" in Machine Learning Yearning, ch. 21: training error high, dev error close
# to it): training accuracy below this and the gap below UNDERFIT_GAP. Judged whether or not the
# loss still improves: a run at 28% is never fine.
UNDERFIT_ACC = 0.80
UNDERFIT_GAP = 0.05
# Plateau: no improvement larger than PLATEAU_MIN_DELTA (relative) over the last `patience`
# evaluations. Keras ReduceLROnPlateau and torch's ReduceLROnPlateau use patience=10 by default;
# short runs use a quarter of their evaluations (at least 3).
PLATEAU_PATIENCE = 10
PLATEAU_MIN_DELTA = 0.01
# Still improving: the best value is in the last tenth of the run and the last quarter improved by
# more than this (relative).
STILL_IMPROVING_DELTA = 0.02
# A learning-rate step: a fall by at least this factor between two logged values (StepLR/MultiStepLR
# default gamma 0.1; ReduceLROnPlateau's default factor 0.1, Keras users often pass 0.5).
LR_STEP_FACTOR = 2.0
# Fewer training-loss points than this and the shape of the curve is not judged.
MIN_POINTS = 10
# A finding judged on evaluations (gaps, accuracy, jumps) needs this many points of its own series;
# a shape finding on a per-step curve also needs MIN_EPOCHS epochs when the log counts them (three
# epochs of a healthy run can look like anything).
MIN_EVALS = 5
MIN_EPOCHS = 5
# Smoothing for the trend: TensorBoard's default scalar smoothing weight.
TREND_SMOOTHING = 0.6


@dataclass(frozen=True, eq=False)
class Series:
    """One logged quantity.

    step, epoch: (N,) float64, NaN where the log gives none; value: (N,) float64 with NaN/inf kept;
    points are in the order they were logged. `name` is canonical (train_loss, val_loss, train_acc,
    val_acc, lr) or the name as logged; `source` is the column, key or tag it was read from.
    """

    name: str
    source: str
    step: np.ndarray
    epoch: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.value)

    @property
    def has_step(self) -> bool:
        return bool(len(self.step)) and bool(np.isfinite(self.step).all())

    @property
    def has_epoch(self) -> bool:
        return bool(len(self.epoch)) and bool(np.isfinite(self.epoch).all())


@dataclass(frozen=True)
class Hint:
    """One finding. `at`: where it happens, {"step": int} and/or {"epoch": int}; empty when global."""

    id: str
    severity: str  # "warn" | "info"
    evidence: str
    advice: str
    at: dict[str, float] = field(default_factory=dict)


ADVICE = {
    "diverged": "lower the learning rate (by 10x to start), add gradient clipping, check the inputs and "
    "the loss for NaN/inf; a learning-rate warmup helps large models",
    "not_learning": "the learning rate is far off: try 10x lower and 10x higher; then run `diagnose sanity` "
    "(can the model overfit one batch? are the labels and the loss right?)",
    "not_learning_high": "the learning rate is far too high (the loss blew up before it settled): divide it "
    "by 10-100 or add a warm-up; then run `diagnose sanity` (can the model overfit one batch? are the labels "
    "and the loss right?)",
    "lr_too_high": "divide the learning rate by 3-10, or decay it (step, cosine); the loss should then "
    "keep falling past the level it sits at now",
    "unstable": "divide the learning rate by 3-10 (or add a warm-up and gradient clipping); the loss "
    "should then fall without jumping back up",
    "lr_too_low": "raise the learning rate by 3-10x (a learning-rate range test finds the largest "
    "stable value); the curve should bend down early instead of falling in a straight line",
    "noisy": "use a bigger batch (or accumulate gradients) or a lower learning rate; the spread shrinks "
    "roughly as 1/sqrt(batch size)",
    "overfitting": "stop at the best epoch (early stopping with restore-best), and add regularization: "
    "L2 / weight decay, dropout, data augmentation, or more data",
    "gap": "a generalization (variance) gap: add regularization (weight decay, dropout, augmentation) or "
    "more data; `diagnose gaps` measures it with intervals against train-dev and dev",
    "underfitting": "the model cannot fit the training data: use a bigger model (wider or deeper, no "
    "bottleneck), train longer, reduce regularization",
    "underfitting_improving": "the model is still learning but fits the training data poorly: train longer, "
    "and use a bigger model (wider or deeper, no bottleneck); reduce regularization",
    "plateau": "divide the learning rate by 2-5 when validation stops improving (ReduceLROnPlateau), "
    "or use a step or cosine schedule",
    "still_improving": "validation is still improving: train longer",
    "schedule": "",
    "healthy": "",
    "too_short": "log more evaluations (or train longer) before reading the curves",
    "no_curves": "",
}


# --- helpers ---------------------------------------------------------------------------------------


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: exponential moving average, debiased, NaN/inf points skipped.

    values: (N,) float; weight in [0, 1) (0 = no smoothing). Returns (N,) float64; non-finite inputs
    give NaN at their position and do not enter the average.
    """
    values = np.asarray(values, dtype=np.float64)
    if weight <= 0:
        return np.where(np.isfinite(values), values, np.nan)
    finite = np.isfinite(values)
    all_finite = bool(finite.all())
    v = values if all_finite else values[finite]
    out = values if all_finite else np.full(len(values), np.nan)
    if len(v) == 0:
        return out
    # y_t = w y_{t-1} + (1-w) v_t with y_0 = 0, as a parallel prefix scan: after the pass with
    # offset k each y_t holds the terms up to 2k-1 back. Stop once w^k is below float precision:
    # 7 passes for w = 0.6, 16 for w = 0.999, whatever the length.
    n = len(v)
    sm = (1 - weight) * v  # a new array: `values` is not modified
    k = 1
    wk = weight
    while k < n and wk > 1e-18:
        sm[k:] += wk * sm[:-k]
        wk *= wk
        k *= 2
    # Debias: divide by 1 - w^t; past the point where w^t is below float precision it is 1.
    head = min(n, int(np.ceil(np.log(1e-17) / np.log(weight))) + 1)
    sm[:head] /= 1 - np.exp(np.arange(1, head + 1) * np.log(weight))
    if all_finite:
        return sm
    out[finite] = sm
    return out


def x_of(series: Series) -> tuple[np.ndarray, str]:
    """The x axis of a series: step when every point has one, else epoch, else the point index."""
    if series.has_step:
        return series.step, "step"
    if series.has_epoch:
        return series.epoch, "epoch"
    return np.arange(len(series), dtype=np.float64), "point"


def _at(series: Series, i: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, arr in (("step", series.step), ("epoch", series.epoch)):
        if i < len(arr) and np.isfinite(arr[i]):
            v = float(arr[i])
            out[key] = int(v) if v.is_integer() else round(v, 3)
    return out


def _where(at: dict[str, float]) -> str:
    if "epoch" in at and "step" in at:
        return f"epoch {_num(at['epoch'])} (step {_num(at['step'])})"
    if "epoch" in at:
        return f"epoch {_num(at['epoch'])}"
    if "step" in at:
        return f"step {_num(at['step'])}"
    return "the start"


def _num(v: float) -> str:
    if isinstance(v, (int, np.integer)) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:.3g}"


def _g(v: float) -> str:
    return f"{v:.3g}"


_FINITE: weakref.WeakKeyDictionary[Series, tuple[np.ndarray, np.ndarray]] = weakref.WeakKeyDictionary()


def _finite(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values) of the finite points, read-only. The findings ask for them about thirty
    times per run; on a million-point log each is a pass over 8 MB, so they are kept per series."""
    got = _FINITE.get(series)
    if got is None:
        ok = np.isfinite(series.value)
        if ok.all():
            idx, v = np.arange(len(ok)), series.value.copy()
        else:
            idx = np.flatnonzero(ok)
            v = series.value[idx]
        idx.setflags(write=False)
        v.setflags(write=False)
        got = _FINITE[series] = (idx, v)
    return got


def _level(v: np.ndarray, start: bool) -> float:
    """The level at the start or end of a curve: the mean of its first/last 5% (3+ points).

    A mean, not a median: per-step losses are skewed (most batches near zero, a few large)."""
    k = max(3, len(v) // 20)
    part = v[:k] if start else v[-k:]
    return float(np.mean(part))


def _rolling_median(v: np.ndarray, window: int) -> np.ndarray:
    """Centered rolling median over `window` points, NaN skipped, shrunk at the ends: pandas'
    `Series.rolling(window, center=True, min_periods=1).median()`, in numpy (pandas costs half a
    second to import; the series here are at most 4,000 points)."""
    import warnings

    from numpy.lib.stride_tricks import sliding_window_view

    v = np.asarray(v, dtype=np.float64)
    left = window // 2
    padded = np.concatenate([np.full(left, np.nan), v, np.full(window - 1 - left, np.nan)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a window of NaN only: NaN, as pandas gives
        return np.nanmedian(sliding_window_view(padded, window), axis=1)


# --- the findings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveStats:
    """Numbers the findings are decided on (exposed for tests and --debug)."""

    drop: float | None = None  # 1 - end/start of the training loss
    end_over_start: float | None = None
    rebound_end: float | None = None
    rebound_half: float | None = None
    linear_r2: float | None = None
    first_half_share: float | None = None
    spread: float | None = None


# A training series longer than this is judged on _BLOCKS block means for its levels and trends.
_BLOCKS_FROM = 20_000
_BLOCKS = 10_000


def _train_stats(train: Series) -> CurveStats:
    idx, v = _finite(train)
    if len(v) < MIN_POINTS:
        return CurveStats()
    x, _ = x_of(train)
    t, tx = v, x[idx]  # the levels and trends are judged on t at positions tx
    if len(v) > _BLOCKS_FROM:
        # The levels and the smoothed shapes below average over 5% of the run or more: block means
        # of a long run give the same numbers (the block is 1/10,000 of the run) at a fraction of the cost.
        # The spread (single batches) stays on the raw points.
        b = len(v) // _BLOCKS
        m = len(v) // b * b
        t, tx = t[:m].reshape(-1, b).mean(axis=1), tx[:m].reshape(-1, b).mean(axis=1)
    start, end = _level(t, True), _level(t, False)
    drop = 1 - end / start if start > 0 else None
    sm = ema(t, TREND_SMOOTHING if len(t) < 200 else 1 - 4.0 / max(20, len(t) / 25))
    half = len(t) // 2
    slow = ema(t, 1 - 1 / max(2, len(t) / 20))
    first_min = float(np.min(slow[:half]))
    rebound_end = float(np.mean(slow[-max(2, len(t) // 10) :]) / first_min) if first_min > 0 else None
    rebound_half = float(np.mean(slow[half:]) / first_min) if first_min > 0 else None
    # Shape: a straight-line fit of the smoothed curve, and the share of the decrease made in the first half.
    r2 = share = None
    if len(t) >= 8 and np.ptp(tx) > 0:
        coef = np.polyfit(tx, sm, 1)
        fit = np.polyval(coef, tx)
        ss_res = float(np.sum((sm - fit) ** 2))
        ss_tot = float(np.sum((sm - sm.mean()) ** 2))
        r2 = 1 - ss_res / ss_tot if ss_tot > 0 else None
        total = sm[0] - sm[-1]
        mid = int(np.searchsorted(tx, tx[0] + (tx[-1] - tx[0]) / 2))
        share = float((sm[0] - sm[min(mid, len(sm) - 1)]) / total) if total > 0 else None
    spread = None
    if len(v) >= 60:
        # Coefficient of variation in windows from 10% to 50% of the run: after the first drop,
        # before the level nears zero; the median over the windows.
        w = max(8, len(v) // 30)
        lo, hi = len(v) // 10, len(v) // 2
        cvs = [float(np.std(v[a : a + w]) / max(float(np.mean(v[a : a + w])), 1e-12)) for a in range(lo, hi - w + 1, w)]
        spread = float(np.median(cvs)) if cvs else None
    return CurveStats(
        drop=drop, end_over_start=end / start if start > 0 else None,
        rebound_end=rebound_end, rebound_half=rebound_half,
        linear_r2=r2, first_half_share=share, spread=spread,
    )


def _noise(v: np.ndarray) -> float:
    """Point-to-point noise of a curve: the robust standard deviation of successive differences,
    1.4826 x MAD / sqrt(2) (a trend changes little from one point to the next; the noise does)."""
    if len(v) < 3:
        return 0.0
    d = np.diff(v)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2))


def _per_step(series: Series) -> bool:
    """Logged per step (several points per epoch, or a long series), not once per evaluation."""
    if len(series) > 200:
        return True
    ep = series.epoch[np.isfinite(series.epoch)]
    return len(ep) > 0 and len(ep) > 1.5 * len(np.unique(ep))


def _trend(v: np.ndarray, per_step: bool) -> tuple[np.ndarray, np.ndarray]:
    """The curve to judge jumps and rises on, and the index into `v` of each of its points: the
    values themselves for an evaluation-level series; for a per-step one, whose single batches spike,
    a rolling median over 1/20 of the run (5+ points), taken over block medians when the run is long
    (2,000 blocks), so a million steps cost milliseconds."""
    if not per_step:
        return v, np.arange(len(v))
    if len(v) <= 4000:
        return _rolling_median(v, max(5, len(v) // 20)), np.arange(len(v))
    b = len(v) // 2000
    nb = len(v) // b
    blocks = np.median(v[: nb * b].reshape(nb, b), axis=1)
    return _rolling_median(blocks, max(5, nb // 20)), np.arange(nb) * b + b // 2


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
    tr, pos = _trend(v, _per_step(loss))
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


@dataclass(frozen=True)
class Chance:
    """The run is at chance: its loss sits at ln C (or its accuracy at one repeated share)."""

    classes: int | None  # C; None when the level is a majority share
    source: str  # how C was known, for the evidence
    evidence: str


def _tail_level(v: np.ndarray) -> float:
    """The level at the end: the median of the last third (3+ points)."""
    return float(np.median(v[-max(3, len(v) // 3) :]))


def _chance(s: Mapping[str, Series], classes: int | None) -> Chance | None:
    """At chance: loss ~ ln C and accuracy ~ 1/C, C from --classes, the accuracy plateau or the
    starting loss; or an accuracy pinned at one value (a model that predicts the majority class)."""
    losses = [(n, _finite(s[n])[1]) for n in ("val_loss", "train_loss") if n in s]
    losses = [(n, v) for n, v in losses if len(v) >= MIN_EVALS]
    accs = [(n, _finite(s[n])[1]) for n in ("val_acc", "train_acc") if n in s]
    accs = [(n, v) for n, v in accs if len(v) >= MIN_EVALS]
    label = {"val_loss": "validation loss", "train_loss": "training loss", "val_acc": "validation accuracy",
             "train_acc": "training accuracy"}
    cands: list[tuple[int, str]] = []
    if classes and classes > 1:
        cands.append((classes, "--classes"))
    else:
        for n, v in accs:
            k_acc = _k_from_acc(v)
            if k_acc is not None:
                cands.append((k_acc, f"the {label[n]} plateau at {_tail_level(v):.1%} ~ 1/{k_acc}"))
        for n, v in losses:
            first = float(v[0])
            k = round(math.exp(first)) if 0.5 < first < 14 else 0
            if k >= 2 and abs(first - math.log(k)) <= CHANCE_START_MARGIN * math.log(k):
                cands.append((k, f"the starting {label[n]} {first:.3g} ~ ln {k}"))
    train_end = None
    if "train_loss" in s and np.isfinite(s["train_loss"].value).sum() >= MIN_EVALS:
        train_end = _level(_finite(s["train_loss"])[1], False)
    for k, source in cands:
        lnk = math.log(k)
        for n, v in losses:
            end = _tail_level(v)
            if abs(end - lnk) > CHANCE_MARGIN * lnk:
                continue
            if train_end is not None and train_end < (1 - 4 * CHANCE_MARGIN) * lnk:
                continue  # the training data is fitted: a gap, not chance
            acc_txt = ""
            if accs:
                an, av = accs[0]
                a = _tail_level(av)
                if a > 1 / k + max(0.05, CHANCE_ACC_MARGIN / k):
                    continue
                acc_txt = f" and {label[an]} {a:.1%} (1/{k} = {1 / k:.1%})"
            return Chance(
                k, source,
                f"{label[n]} ends at {end:.3g}, at the chance level ln {k} = {lnk:.3g}{acc_txt}: "
                f"the model predicts no better than a uniform guess over {k} classes "
                f"({'C from ' + source if source != '--classes' else 'C from --classes'})",
            )
    # Pinned: one exact accuracy value over and over, the training accuracy never above it.
    for n, v in accs[:1]:  # validation accuracy, else training accuracy
        vals, counts = np.unique(np.round(v, 6), return_counts=True)
        j = int(np.argmax(counts))
        p, share = float(vals[j]), counts[j] / len(v)
        if not (share >= PINNED_SHARE and counts[j] >= 3 and 0 < p < 0.95):
            continue
        ta = dict(accs).get("train_acc") if n == "val_acc" else None
        if ta is not None and float(np.max(ta)) > p + PINNED_TRAIN_ABOVE:
            continue
        if _tail_level(v) > p + PINNED_TRAIN_ABOVE:
            continue  # it left the value and kept improving: it was a stall, not a pinned model
        if "train_loss" in s:
            _, tv = _finite(s["train_loss"])
            if len(tv) >= MIN_EVALS and 1 - _level(tv, False) / max(_level(tv, True), 1e-12) >= PINNED_MAX_DROP:
                continue
        return Chance(
            None, "repeated accuracy",
            f"{label[n]} is exactly {p:.2%} in {counts[j]} of {len(v)} evaluations"
            + (" and the training accuracy never rises above it" if ta is not None else "")
            + ": the model predicts one class (the majority share), not the inputs",
        )
    return None


def _acc_classes(s: Mapping[str, Series]) -> int | None:
    """C from an accuracy plateau near 1/C (validation, else training accuracy), or None."""
    for n in ("val_acc", "train_acc"):
        if n in s:
            _, v = _finite(s[n])
            if len(v) >= MIN_EVALS:
                return _k_from_acc(v)
    return None


def _k_from_acc(v: np.ndarray) -> int | None:
    """The C whose chance accuracy 1/C the accuracy's level at the end sits at, or None."""
    a = _tail_level(v)
    k = round(1 / a) if 0 < a < 0.5 else 0
    return k if k >= 2 and abs(a - 1 / k) <= max(0.05, CHANCE_ACC_MARGIN / k) else None


def _exploded_start(s: Mapping[str, Series], k: int | None) -> Hint | None:
    """A first loss orders of magnitude above ln C: the first updates blew the weights up."""
    if not k or k < 2:
        return None
    lnk = math.log(k)
    for n in ("train_loss", "val_loss"):
        if n not in s:
            continue
        idx, v = _finite(s[n])
        if len(v) >= MIN_EVALS and float(v[0]) >= EXPLODED_START * lnk:
            at = _at(s[n], int(idx[0]))
            sits = float(np.median(v)) >= EXPLODED_START * lnk
            return Hint(
                "lr_too_high", "warn",
                f"{n} starts at {_g(float(v[0]))} at {_where(at)}, {math.log10(float(v[0]) / lnk):.0f} orders of "
                f"magnitude above the chance level ln {k} = {lnk:.3g}"
                + (f", and stays there (median {_g(float(np.median(v)))})" if sits else "")
                + ": the updates blew the weights (or the logits) up",
                ADVICE["unstable"], at,
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


def _enough_epochs(series: Series) -> bool:
    """A shape finding needs MIN_EPOCHS epochs of the series when the log counts them."""
    ep = series.epoch[np.isfinite(series.epoch)]
    return len(ep) == 0 or float(np.max(ep) - np.min(ep)) + 1 >= MIN_EPOCHS


def _best(series: Series, higher_is_better: bool) -> tuple[int, float]:
    idx, v = _finite(series)
    j = int(np.argmax(v) if higher_is_better else np.argmin(v))
    return int(idx[j]), float(v[j])


def _overfitting(s: Mapping[str, Series]) -> Hint | None:
    val, train = s.get("val_loss"), s.get("train_loss")
    if val is not None and np.isfinite(val.value).sum() >= 5:
        idx, v = _finite(val)
        b_i, best = _best(val, False)
        pos = int(np.searchsorted(idx, b_i))
        after = len(v) - 1 - pos
        end = float(np.mean(v[-3:]))
        rise = (end - best) / abs(best) if best != 0 else 0.0
        if after >= 3 and rise >= OVERFIT_RISE:
            at = _at(val, b_i)
            train_note = ""
            if train is not None:
                t_at_best, t_end = _value_near(train, val, b_i), _level(_finite(train)[1], False)
                if t_at_best is not None and not t_end < t_at_best:
                    return None  # both rising: instability, not overfitting
                if t_at_best is not None:
                    train_note = f" while training loss fell from {_g(t_at_best)} to {_g(t_end)}"
            return Hint(
                "overfitting", "warn",
                f"validation loss is lowest at {_where(at)} ({_g(best)}) and has risen {rise:.0%} since "
                f"(last {_g(end)}){train_note}; for early stopping, the best point is {_where(at)}",
                ADVICE["overfitting"], at,
            )
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
            return Hint(
                "overfitting", "warn",
                f"training accuracy is {gap_end * 100:.1f} points above validation over the last third of the run{mid}; "
                f"validation accuracy peaked at {_where(at)} ({best:.1%})",
                ADVICE["overfitting"] if growing else ADVICE["gap"], at,
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
        f"beat it (last {_g(float(np.mean(v[-3:])))}), while training loss fell from {_g(t_at_best)} to {_g(t_end)}: "
        f"the extra training fit the training set only; for early stopping, the best point is {_where(at)}",
        ADVICE["overfitting"], at,
    )


def _value_near(series: Series, ref: Series, i: int) -> float | None:
    """`series`' smoothed value at the x of `ref`'s point i (epoch-level or step-level)."""
    idx, v = _finite(series)
    if len(v) == 0:
        return None
    for key in ("step", "epoch"):
        a, b = getattr(series, key)[idx], getattr(ref, key)[i]
        if np.isfinite(b) and np.isfinite(a).all():
            j = int(np.searchsorted(a, b, side="right")) - 1
            lo = max(0, j - max(1, len(v) // 40))
            return float(np.median(v[lo : j + 1])) if j >= 0 else float(v[0])
    return None


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
    diverged = None
    for cand in (train, val):
        if cand is not None:
            diverged = _diverged(cand)
            if diverged is not None:
                hints.append(diverged)
                break
    stats = _train_stats(train) if train is not None else CurveStats()
    shape = train is not None and _enough_epochs(train)
    stuck = exploded_start = False
    if diverged is None:
        chance = _chance(series, classes)
        k = classes or (chance.classes if chance is not None else None) or _acc_classes(series)
        exploded = _exploded_start(series, k)
        not_learning = _not_learning(series, stats, chance, exploded is not None)
        if not_learning is not None:
            stuck = True
            hints.append(not_learning)
        exploded_start = exploded is not None  # a blown-up run: its gaps and plateaus mean nothing
        unstable = exploded or _unstable(series)
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
    if diverged is None and not stuck and not exploded_start:
        over = _overfitting(series)
        if over is not None:
            hints.append(over)
        under = _underfitting(series)
        if under is not None and over is None and not any(h.id == "lr_too_low" for h in hints):
            hints.append(under)
        hints.extend(_progress(series, drops, decay, over is not None))
    sched = _schedule(series, drops, warmup, decay)
    if sched is not None:
        hints.append(sched)
    if not any(h.severity == "warn" for h in hints):
        hints.insert(0, _healthy(series))
    hints.sort(key=lambda h: h.severity != "warn")
    return hints


def _not_learning(s: Mapping[str, Series], stats: CurveStats, chance: Chance | None, exploded: bool) -> Hint | None:
    """At chance, or a training loss that does not go down (less than NOT_LEARNING_DROP, and not
    beyond its own noise)."""
    train = s.get("train_loss")
    blew_up = exploded or _jumped_early(s, chance.classes if chance is not None else None)
    advice = ADVICE["not_learning_high" if blew_up else "not_learning"]
    if chance is not None:
        at = {}
        ref = s.get("val_loss") or train or s.get("val_acc")
        if ref is not None:
            idx, _ = _finite(ref)
            at = _at(ref, int(idx[-1])) if len(idx) else {}
        return Hint("not_learning", "warn", chance.evidence, advice, at)
    if train is None or stats.drop is None or stats.drop >= NOT_LEARNING_DROP:
        return None
    idx, v = _finite(train)
    start, end = _level(v, True), _level(v, False)
    if start - end > NOT_LEARNING_NOISE * _noise(v):
        return None  # small but real progress (a fine-tune, a late segment of a long run)
    direction = "below" if stats.drop >= 0 else "above"
    return Hint(
        "not_learning", "warn",
        f"training loss ends at {_g(end)}, {abs(stats.drop):.0%} {direction} where it started ({_g(start)}) over "
        f"{len(v)} points, within its own noise ({_g(_noise(v))} point to point)",
        advice, _at(train, int(idx[-1])),
    )


def _jumped_early(s: Mapping[str, Series], k: int | None) -> bool:
    """The loss blew up before it settled: it rose above DIVERGE_FACTOR x its first value, or (with
    C known) above DIVERGE_FACTOR x the chance level ln C, which no fresh classifier starts at."""
    for n in ("train_loss", "val_loss"):
        if n in s:
            _, v = _finite(s[n])
            if len(v) < MIN_EVALS:
                continue
            top = float(np.max(v))
            if top > DIVERGE_FACTOR * max(float(v[0]), 1e-12) or (k and top > DIVERGE_FACTOR * math.log(k)):
                return True
    return False


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
    return Hint("healthy", "info", "no problem found: " + "; ".join(parts), "", {})


@dataclass
class RunResult:
    """One training run as read from its log (io.logs.ParsedLog) and the findings about it."""

    log: ParsedLog
    hints: list[Hint]
