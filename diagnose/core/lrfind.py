"""The learning-rate range test, read: smoothing, divergence, and the suggestion (numpy only, no torch).

The range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017, section 3.3)
trains for a few hundred mini-batches while the rate grows exponentially and records the loss. What
the tools people use then do with the curve, and what their issue trackers say goes wrong:

- fastai's `lr_find` offers `minimum` (the rate at the lowest loss, divided by 10), `steep` (the
  steepest slope) and, since 2021, `valley` (the middle of the longest descending stretch:
  fastai pull request #3377, the default because the others were unreliable).
- torch-lr-finder suggests the steepest point of the raw gradient; its maintainers call this not
  robust on noisy curves (davidtvs/pytorch-lr-finder issues #56, #86, #106).
- Lightning's `Tuner.lr_find` takes the steepest point after skipping the first 10 points, added
  because early spikes made it suggest the very start of the curve (Lightning-AI/pytorch-lightning
  #1767); it stops at 4x the best smoothed loss (`early_stop_threshold=4.0`), and a 2025 change
  broke it on noisy losses again (#21141).
- Every one of them reads one sweep, so one unlucky batch order moves the suggestion.

Here several sweeps (different seeds and batch orders) are read together. Each is smoothed with a
centered window (a causal moving average lags the curve towards higher rates); the consensus is the
median over sweeps, a diverged sweep counting as +inf from where it stopped. Four rules read it:

- `steepest`: the steepest descent on which *every* sweep agrees (at each point the least negative
  slope among the sweeps), after the first 10% of the curve and before the minimum;
- `valley`: the middle of the descent (fastai's idea; the stretch is found differently, see below);
- `minimum_10`: the rate at the consensus minimum, divided by 10;
- `divergence_10`: the rate at which the sweeps diverged (median), divided by 10 (the "back off by
  an order of magnitude from where it blows up" rule of thumb).

The suggestion is the median of the rules in log space (one rule gone astray cannot move it far),
and the range spans the rules' values. Each rule's number and reason go into the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# Stop a sweep once its smoothed loss exceeds this multiple of its best (Lightning's
# early_stop_threshold; fastai stops at 4x too).
DIVERGE_FACTOR = 4.0
# Causal smoothing used only to decide when to stop (a debiased EMA, as fastai and Lightning smooth).
STOP_BETA = 0.9
# Skip this share of the curve's start when looking for the steepest descent (Lightning's
# skip_begin=10 of 100 points: early spikes at tiny rates are noise, not learning).
SKIP_BEGIN = 0.10
# The starting level: the smoothed loss after this many steps; a fall of FALL of it counts as learning.
START_STEPS = 5
FALL = 0.10
# valley: the descent runs from the last point within this share of the total fall from the start
# level down to the minimum.
DESCENT_BEGINS = 0.10
RULES = ("steepest", "valley", "minimum_10", "divergence_10")


def exp_rates(start: float, end: float, steps: int) -> np.ndarray:
    """`steps` rates growing geometrically from `start` to `end` (both included)."""
    if steps == 1:
        return np.array([start], dtype=np.float64)
    return start * (end / start) ** (np.arange(steps, dtype=np.float64) / (steps - 1))


class StopRule:
    """Feed losses one by one; `update` returns True once the sweep has diverged: the smoothed loss
    above 4x its best, or back within 10% of where it started after falling at least 10% (a
    cross-entropy that starts at ln C and blows up often levels off near 2 ln C, never reaching 4x a
    best of 0.8 ln C; a network whose ReLUs all died sits at ln C), or a loss that is not finite.

    Both are judged from the starting level on (the smoothed loss after START_STEPS batches): one
    batch is not a level, and a trained model's batches differ by a quarter of the loss or more, so
    a first batch read as "best" made most sweeps of a model being fine-tuned stop within a few
    steps. A fall counts only when it is also three times what the difference of the two levels
    wanders by noise alone (estimated from successive batches, so the trend of a falling curve does
    not count as noise)."""

    def __init__(self, factor: float = DIVERGE_FACTOR, beta: float = STOP_BETA) -> None:
        self.factor, self.beta = factor, beta
        self.avg, self.k, self.best, self.start = 0.0, 0, math.inf, math.nan
        self.last, self.jumps = math.nan, 0.0  # previous loss; sum of squared batch-to-batch changes

    def update(self, loss: float) -> bool:
        if not math.isfinite(loss):
            return True
        self.k += 1
        if self.k > 1:
            self.jumps += (loss - self.last) ** 2
        self.last = loss
        self.avg = self.beta * self.avg + (1 - self.beta) * loss
        smoothed = self.avg / (1 - self.beta**self.k)
        if self.k < START_STEPS:
            return False
        if self.k == START_STEPS:
            self.start = smoothed
        if smoothed > self.factor * self.best:
            return True
        # The spread of one batch's loss (from the mean squared change between batches); the fall is
        # the difference of two noisy levels: the start (a mean of START_STEPS batches) and the
        # exponential average at its lowest.
        var = self.jumps / (2 * (self.k - 1))
        noise = math.sqrt(var / START_STEPS + var * (1 - self.beta) / (1 + self.beta))
        fell = self.start - self.best > max(FALL * self.start, 3 * noise)
        if fell and smoothed > self.start - FALL * (self.start - self.best):
            return True
        self.best = min(self.best, smoothed)
        return False


def centered_smooth(y: np.ndarray, half: int) -> np.ndarray:
    """Mean over a window of 2*half+1 points centered on each point (shrunk at the ends)."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if half <= 0 or n < 3:
        return y.copy()
    c = np.concatenate([[0.0], np.cumsum(y)])
    i = np.arange(n)
    lo, hi = np.maximum(0, i - half), np.minimum(n, i + half + 1)
    return (c[hi] - c[lo]) / (hi - lo)


def smoothing_half_window(steps: int) -> int:
    """About 2% of the sweep on each side: 2 points for 100 steps."""
    return max(1, round(steps * 0.02))


@dataclass
class Rule:
    lr: float | None
    why: str

    def to_json(self) -> dict:
        return {"lr": self.lr, "why": self.why}


@dataclass
class LRFindResult:
    """The sweeps and what they suggest. `losses[r]` is sweep r's raw loss per step, NaN after it stopped."""

    lrs: np.ndarray
    losses: np.ndarray
    stopped: list[int | None]
    curve: np.ndarray = field(init=False)
    band: np.ndarray = field(init=False)
    rules: dict[str, Rule] = field(init=False)
    suggested_lr: float | None = field(init=False)
    range: tuple[float, float] | None = field(init=False)
    diverged_at: float | None = field(init=False)
    notes: list[str] = field(init=False)
    source: str = field(default="", init=False)  # where the starting weights came from, in words
    optimizer: str = field(default="", init=False)
    split: str = field(default="train", init=False)  # the split the sweeps trained on

    def __post_init__(self) -> None:
        analyse(self)

    def to_json(self) -> dict:
        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "suggested_lr": self.suggested_lr,
            "range": list(self.range) if self.range else None,
            "diverged_at": self.diverged_at,
            "rules": {k: r.to_json() for k, r in self.rules.items()},
            "curve": {
                "lr": [float(v) for v in self.lrs[: len(self.curve)]],
                "loss": [num(v) for v in self.curve],
                "band": [[num(a), num(b)] for a, b in self.band[: len(self.curve)]],
            },
            "sweeps": {
                "repeats": int(self.losses.shape[0]),
                "steps": int(self.losses.shape[1]),
                "diverged_at": [float(self.lrs[s]) if s is not None else None for s in self.stopped],
            },
            "notes": list(self.notes),
        }


def _smoothed_sweeps(losses: np.ndarray, stopped: Sequence[int | None]) -> np.ndarray:
    """Each sweep smoothed over its recorded steps; +inf from the step it diverged at."""
    r, n = losses.shape
    out = np.full((r, n), np.inf)
    half = smoothing_half_window(n)
    for k in range(r):
        end = stopped[k] if stopped[k] is not None else n
        good = losses[k, :end]
        good = good[np.isfinite(good)]
        m = len(good)
        if m:
            out[k, :m] = centered_smooth(good, half)
    return out


def _curve_noise(losses: np.ndarray, stopped: Sequence[int | None], length: int, half: int) -> float:
    """The noise of the median curve: one batch's spread (from the median absolute change between
    successive batches, which a trend hardly moves) over the points the smoothing averages and the
    sweeps."""
    r = losses.shape[0]
    jumps = []
    for k in range(r):
        stop = stopped[k]
        end = length if stop is None else min(length, stop)
        raw = losses[k, :end]
        raw = raw[np.isfinite(raw)]
        jumps.append(np.abs(np.diff(raw)))
    d = np.concatenate(jumps) if jumps else np.empty(0)
    if not len(d):
        return 0.0
    sigma = 1.4826 * float(np.median(d)) / math.sqrt(2)
    return sigma / math.sqrt((2 * half + 1) * r)


def _fmt(lr: float) -> str:
    return f"{lr:.2g}"


def analyse(res: LRFindResult) -> None:
    """Fill curve, band, rules, suggestion, range, divergence and notes of a result from its sweeps."""
    lrs, losses = res.lrs, res.losses
    r, n = losses.shape
    sm = _smoothed_sweeps(losses, res.stopped)
    with np.errstate(invalid="ignore"):
        median = np.median(sm, axis=0)
    finite = np.isfinite(median)
    length = int(np.argmin(finite)) if not finite.all() else n  # the consensus ends where most sweeps diverged
    curve = median[:length]
    band = np.stack([np.min(sm, axis=0), np.max(sm, axis=0)], axis=1)
    res.curve, res.band, res.notes = curve, band, []
    stops = [s for s in res.stopped if s is not None]
    rules: dict[str, Rule] = {}
    if length < 5:
        res.diverged_at = float(lrs[min(length, n - 1)])
        res.rules = {k: Rule(None, "the loss diverged within the first steps") for k in RULES}
        res.suggested_lr, res.range = None, None
        res.notes.append(
            f"The loss diverged at once (by {_fmt(lrs[max(length - 1, 0)])}): lower --start, or check the data and the loss."
        )
        return
    best = int(np.argmin(curve))
    level = float(np.mean(curve[: min(START_STEPS, length)]))
    # What the median curve wanders by noise alone (a model already trained: flat, and its batches
    # differ by a quarter of the loss): a fall or a rise counts only beyond three times the noise
    # of the difference of two of its points.
    wander = 3 * math.sqrt(2) * _curve_noise(losses, res.stopped, length, smoothing_half_window(n))
    fell = level - float(curve[best]) > wander
    margin = max(FALL * level, wander)
    # Diverged: where the median curve, past its minimum, has lost 90% of what it gained (back near its
    # starting level: a network whose ReLUs all died sits at chance, ln C, not above it), or where most
    # sweeps had stopped (the stop rule fires later: it smooths causally).
    # A curve that fell less than that diverged where it rose 10% above its start (an SGD sweep whose
    # few useful steps lie between the flat start and the blow-up hardly falls before it climbs).
    back = np.nonzero(curve[best:] > level - FALL * (level - curve[best]))[0]
    above = np.nonzero(curve[best:] > level + margin)[0]
    if len(back) and level - curve[best] > margin:
        res.diverged_at = float(lrs[best + int(back[0])])
    elif len(above):
        res.diverged_at = float(lrs[best + int(above[0])])
    elif length < n:
        res.diverged_at = float(lrs[length])
    else:
        res.diverged_at = None
    skip = max(1, int(SKIP_BEGIN * n))
    # steepest stable descent: per point, the least steep slope among the sweeps (all agree on at least that)
    logs = np.log10(lrs)
    with np.errstate(invalid="ignore"):
        slopes = np.gradient(sm[:, :length], logs[:length], axis=1) if length > 1 else np.zeros((r, length))
        agreed = np.max(slopes, axis=0)
    window = np.arange(length)
    ok = (window >= skip) & (window <= best) & np.isfinite(agreed) & (agreed < 0)
    if not fell:
        rules["steepest"] = Rule(None, f"the median curve never falls beyond its noise ({wander:.2g})")
    elif ok.any():
        i = int(np.argmin(np.where(ok, agreed, np.inf)))
        drop = -float(agreed[i])
        rules["steepest"] = Rule(
            float(lrs[i]),
            f"every sweep descends at least {drop:.3g} loss per decade here, the steepest such point "
            f"(first {skip} steps skipped)",
        )
    else:
        rules["steepest"] = Rule(None, "no point after the first steps where every sweep descends")
    # fastai's valley is the middle of the longest decreasing subsequence; on a sweep whose first
    # two thirds are flat (SGD below 1e-2) that subsequence reaches back into the noise of the flat
    # part and its middle lands there. Here the descent is the stretch from where the median curve
    # has covered 10% of its fall to its minimum.
    fall = level - float(curve[best])
    if best >= 2 and fell:
        above = np.nonzero(curve[:best] >= level - DESCENT_BEGINS * fall)[0]
        begin = int(above[-1]) if len(above) else 0
        mid = begin + (best - begin) // 2
        rules["valley"] = Rule(
            float(lrs[mid]),
            f"middle of the descent of the median curve, from {_fmt(lrs[begin])} (10% of the fall) to its minimum at {_fmt(lrs[best])}",
        )
    else:
        rules["valley"] = Rule(None, "the median curve never descends beyond its noise")
    if best > 0 and fell:
        rules["minimum_10"] = Rule(
            float(lrs[best]) / 10, f"lowest median loss {curve[best]:.3g} at {_fmt(lrs[best])}, divided by 10"
        )
    else:
        rules["minimum_10"] = Rule(None, "the lowest loss is at the very first rate" if best == 0
                                   else "the lowest point is within the noise of the start")
    if res.diverged_at is not None:
        rules["divergence_10"] = Rule(
            res.diverged_at / 10,
            f"the median loss was back near or above its start at {_fmt(res.diverged_at)} ({len(stops)} of {r} sweeps "
            "stopped), divided by 10",
        )
    else:
        rules["divergence_10"] = Rule(None, f"the loss did not diverge before {_fmt(lrs[-1])}: raise --end")
    res.rules = rules
    values = [v.lr for v in rules.values() if v.lr is not None]
    if not values:
        res.suggested_lr, res.range = None, None
        res.notes.append("The loss never went down over the sweep: raise --steps or --end, or run diagnose sanity.")
        return
    res.range = (float(min(values)), float(max(values)))
    res.suggested_lr = min(max(float(10 ** np.median(np.log10(values))), res.range[0]), res.range[1])
    if not fell:
        res.notes.append(
            "The loss did not fall beyond its noise over the sweep (a model already trained, or too few steps): "
            "only the divergence rule reads it."
        )
    elif curve[best] > 0.98 * curve[0]:
        res.notes.append("The loss barely fell over the sweep: the suggestion is weak; raise --steps or check the model with diagnose sanity.")
    if best >= length - 1 and res.diverged_at is None:
        res.notes.append(f"The loss was still falling at --end {_fmt(lrs[-1])}: raise --end.")
    if res.suggested_lr <= lrs[skip]:
        res.notes.append("The suggestion lies at the very start of the sweep: lower --start.")
