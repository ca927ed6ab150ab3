"""What the findings work on: a logged series, a finding, and the small helpers shared by the checks."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from diagnose.core.findings.thresholds import MIN_EPOCHS

if TYPE_CHECKING:
    from diagnose.io.logs import ParsedLog


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
    # what was measured and the threshold it was judged against, e.g. {"rise_noise": 7.2, "threshold": 3.0}
    measured: dict[str, float] = field(default_factory=dict)



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



def _tail_level(v: np.ndarray) -> float:
    """The level at the end: the median of the last third (3+ points)."""
    return float(np.median(v[-max(3, len(v) // 3) :]))



def _enough_epochs(series: Series) -> bool:
    """A shape finding needs MIN_EPOCHS epochs of the series when the log counts them."""
    ep = series.epoch[np.isfinite(series.epoch)]
    return len(ep) == 0 or float(np.max(ep) - np.min(ep)) + 1 >= MIN_EPOCHS


def _best(series: Series, higher_is_better: bool) -> tuple[int, float]:
    idx, v = _finite(series)
    j = int(np.argmax(v) if higher_is_better else np.argmin(v))
    return int(idx[j]), float(v[j])



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



@dataclass
class RunResult:
    """One training run as read from its log (io.logs.ParsedLog) and the findings about it."""

    log: ParsedLog
    hints: list[Hint]
