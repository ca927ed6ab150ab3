"""Measurements of one series, the numbers the findings are judged on."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from diagnose.core.findings.base import (
    Series,
    _finite,
    _level,
    _per_step,
    _rolling_median,
    _trend,
    ema,
    x_of,
)
from diagnose.core.findings.thresholds import (
    MIN_POINTS,
    TREND_SMOOTHING,
)


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
    if train.has_step and not train.has_epoch and 20 <= len(t) <= 4000:
        # single batches logged by step: a mean is pulled up by one hard batch, a rolling median is not
        slow = ema(_rolling_median(t, max(5, len(t) // 20)), 1 - 1 / max(2, len(t) / 20))
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


@dataclass(frozen=True)
class Measures:
    """One series measured in its own units. Every judgement compares these with thresholds in noise
    units or relative terms; each is computable from a prefix of the series (no look-ahead).

    The curve measured is the series itself for an evaluation-level series and a rolling median for a
    per-step one (single batches spike); `pos` maps its points to indices of the series.
    """

    points: int  # logged points, finite or not
    finite: int  # finite points
    first_finite: int | None  # index of the first finite point; None when there is none
    curve: np.ndarray  # the curve judged on (finite points only)
    pos: np.ndarray  # index into the series of each curve point
    noise: float  # robust scale of successive differences: 1.4826 x MAD(diff) / sqrt(2)
    start: float  # level at the start: mean of the first 5% (3+ points) of the curve
    end: float  # level at the end: mean of the last 5% (3+ points)
    last: float  # the last finite value as logged (not smoothed)
    best_at: int  # position in `curve` of its lowest (highest, for an accuracy) point
    best: float

    @property
    def finite_share(self) -> float:
        return self.finite / self.points if self.points else 0.0

    @property
    def after_best(self) -> int:
        """Curve points after the best one."""
        return len(self.curve) - 1 - self.best_at

    def in_noise(self, delta: float) -> float:
        """`delta` in noise units (inf when the curve has no noise and delta > 0)."""
        if self.noise > 0:
            return delta / self.noise
        return math.inf if delta > 0 else 0.0


def robust_noise(v: np.ndarray) -> float:
    """The point-to-point noise of a curve: the robust scale (1.4826 x the median absolute deviation) of
    its second differences, over sqrt(6), the factor that gives back the scatter of independent points.
    Second differences cancel a trend and most of its bend, so a short curve that falls fast and then
    flattens is not counted as noisy; the MAD ignores single spikes (Stoehr et al., "DER_SNR: a simple
    and general spectroscopic signal-to-noise measurement algorithm", 2008, uses the same differences).
    """
    if len(v) < 4:
        return 0.0
    d = np.diff(v, 2)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(6))


_MEASURES: weakref.WeakKeyDictionary[Series, dict[tuple[bool, bool], Measures]] = weakref.WeakKeyDictionary()


def measure(series: Series, *, higher_is_better: bool = False, batches: bool = False) -> Measures:
    """Measure one series, once per series and reading (several checks ask; a million-point series
    costs a pass over 8 MB each time)."""
    got = _MEASURES.setdefault(series, {})
    key = (higher_is_better, batches)
    if key not in got:
        got[key] = _measure(series, higher_is_better=higher_is_better, batches=batches)
    return got[key]


def _measure(series: Series, *, higher_is_better: bool = False, batches: bool = False) -> Measures:
    """Measure one series (loss: lower is better; accuracy: `higher_is_better`). `batches`: the points
    are single batches (a training loss logged by step), judged on their rolling median however few."""
    finite = np.isfinite(series.value)
    nf = int(finite.sum())
    first = int(np.argmax(finite)) if nf else None
    idx, v = _finite(series)
    if nf == 0:
        empty = np.zeros(0)
        return Measures(len(series), 0, None, empty, empty.astype(int), 0.0, math.nan, math.nan, math.nan, 0, math.nan)
    curve, pos = _trend(v, _per_step(series) or (batches and len(v) >= 20))
    noise = robust_noise(curve)
    k = max(3, len(curve) // 20)
    best_at = int(np.argmax(curve) if higher_is_better else np.argmin(curve))
    return Measures(
        points=len(series), finite=nf, first_finite=first, curve=curve, pos=idx[pos], noise=noise,
        start=float(np.mean(curve[:k])), end=float(np.mean(curve[-k:])), last=float(v[-1]),
        best_at=best_at, best=float(curve[best_at]),
    )


def jumps(
    m: Measures, *, height_noise: float, height_share: float, height_rel: float, recover_share: float
) -> tuple[list[int], int]:
    """Jumps of a loss curve against its running best: a point above the best so far by at least
    `height_noise` noise units, by at least `height_share` of the progress made so far (start - best) and
    by `height_rel` of the best itself (relative),
    counted once until the curve comes back within `recover_share` of that height. Returns (positions
    of the jumps in m.curve, how many of them came back)."""
    y = m.curve
    if len(y) < 3:
        return [], 0
    run_best = np.minimum.accumulate(y)
    prev = np.concatenate([[y[0]], run_best[:-1]])
    # The noise of the calm points (those not far above the best so far): in a run that jumps at every
    # other evaluation the successive differences are the jumps themselves and would hide them.
    calm = y <= (1 + height_rel / 2) * np.abs(prev)
    noise = robust_noise(y[calm]) if calm.sum() >= 3 else 0.0
    head = np.maximum.accumulate(y)  # the start level so far: the highest point up to here
    out: list[int] = []
    back = 0
    inside = False
    top = peak = 0.0
    for i in range(1, len(y)):
        h = y[i] - prev[i]
        progress = head[i - 1] - prev[i]
        big = h >= height_noise * noise and h >= height_share * progress and h >= height_rel * abs(prev[i])
        if not inside and big:
            out.append(i)
            inside, top, peak = True, h, y[i]
        elif inside and y[i] - peak >= height_noise * noise and y[i] >= (1 + height_rel) * peak:
            out.append(i)  # a second, larger leap before the first one came back
            top, peak = h, y[i]
        elif inside and h <= recover_share * top:
            inside = False
            back += 1
        elif inside:
            peak = max(peak, y[i])
    return out, back


def slope(m: Measures, window: int) -> tuple[float, float]:
    """Least-squares slope of the last `window` curve points, per point, and its standard error."""
    y = m.curve[-window:]
    n = len(y)
    if n < 3:
        return 0.0, math.inf
    x = np.arange(n, dtype=np.float64)
    x -= x.mean()
    b = float(np.dot(x, y - y.mean()) / np.dot(x, x))
    resid = y - y.mean() - b * x
    se = float(np.sqrt(np.dot(resid, resid) / (n - 2) / np.dot(x, x)))
    return b, se
