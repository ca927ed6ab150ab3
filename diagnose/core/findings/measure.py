"""Measurements of one series, the numbers the findings are judged on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diagnose.core.findings.base import (
    Series,
    _finite,
    _level,
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
