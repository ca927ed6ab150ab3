"""Data health checks (`diagnose data`): split sizes, class balance, label and input shift, leakage.

Pure numpy: labels as (N,) arrays, inputs summarised batch by batch into `InputSummary`, items
hashed into `ItemHashes`. Each check returns a `core.checks.Check`.

Split pairs have a role (after the train / train-dev / dev / test design of Ng's "Machine Learning
Yearning", ch. 36-42): train and train_dev must match, and so must dev and test; train and dev / test
may differ on purpose when a train_dev split exists, because `diagnose gaps` then
measures that difference as data_mismatch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np

from diagnose.core.checks import Check, Status, most_severe
from diagnose.core.gaps import SPLITS
from diagnose.core.stats import detectable_difference

# --- thresholds (named, with where they come from) -------------------------------------------------
# A split that cannot tell apart gaps of this size at 95% (core.stats.detectable_difference, the
# half-width the gaps intervals have) is too small to steer by: Ng ("Machine Learning Yearning", ch. 6)
# wants dev sets that show 0.1-1 point differences; we warn only when even a 10-point gap - the size
# of the gaps in that book's worked examples - would be invisible (under ~70 items at 10% error). The
# 5-point level is printed for every split; the bundled example's 250-item dev sits at 5.3 points.
DETECTABLE_WARN = 0.10
ASSUMED_ERROR_RATE = 0.1
# Imbalance ratio (largest / smallest class count). Buda, Maki & Mazurowski (2018, "A systematic
# study of the class imbalance problem in CNNs") see clear losses from ratio 10 on; a ratio of 3 is
# where class-weighting usually starts to matter. Our choice of cut-offs from that study.
IMBALANCE_WARN = 3.0
IMBALANCE_FAIL = 10.0
# Family-wise significance level of the shift tests (Bonferroni over pairs, and channels for inputs).
# 1%, not 5%: a shift between splits that should match is a "fail" that tells people to re-split, so
# it should rarely fire on splits drawn at random - the bundled example's dev and test, drawn at random
# from one pool and processed alike, differ in mean brightness at a family-wise p of about 0.016.
ALPHA = 0.01
# Smallest label shift worth reporting: 5 points of probability mass moved between classes (total
# variation distance). Below that a significant test in a large split is not a practical problem.
TV_MIN = 0.05
# Smallest input shift worth reporting, in pooled standard deviations of a feature's per-item mean:
# Cohen's (1988) "small" effect size d = 0.2.
COHEN_D_MIN = 0.2
# Scale: a channel's (or feature's) standard deviation differing by 2x or more between two splits, a
# variance 4x off: the bar the batch-norm input check uses (diagnose.inputcheck.VARIANCE_RATIO_LIMIT).
# A split stored in other units, or one left unnormalized, is 10x or 100x off; our choice of bar.
SCALE_RATIO_MIN = 2.0
# A channel whose standard deviation is under 25% of the median channel's in both splits has no scale
# to compare (the corner pixels of a digit). Our choice.
SCALE_FLOOR = 0.25
SCALE_CHANNEL_MIN = 10.0
# Leakage: a shared share of 1% can move a split's error by a full point, the size of gap people act
# on; below that the duplicates are reported as a warning. Our choice.
LEAK_FAIL_SHARE = 0.01
# Near-duplicates: correlation of two items' standardised 8x8-per-channel thumbnails. Distinct
# scikit-learn digits reach 0.994 at most (measured over all 1,797), so 0.995 flags only the same
# picture re-encoded, rescaled or brightened.
NEAR_CORR = 0.995
THUMB_SIDE = 8
# Near-duplicate search compares every pair of thumbnails; above this many pairs it is skipped.
NEAR_MAX_PAIRS = 400_000_000
NEAR_BLOCK = 20_000_000
# input_stats: inputs are "zero-centred" when each channel's |mean| is under this many standard
# deviations, and "normalised" when its standard deviation lies in this range (LeCun et al. 1998,
# "Efficient BackProp" §4.3: zero mean and similar, unit-order variance per input; the numbers are ours).
CENTER_MAX_SD = 1.0
SCALE_RANGE = (0.1, 10.0)

CLASS_BALANCE_ADVICE = (
    "Rebalance the training data: up-sample the small classes (more crops or augmentations of them) "
    "or down-sample the large ones; or weight the loss by inverse class frequency "
    "(CrossEntropyLoss(weight=...)); or fine-tune in two stages, first on the large classes, then on "
    "the small ones. Report per-class error, not only accuracy."
)


# --- chi-square survival function ------------------------------------------------------------------


def _gamma_series(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) by its power series (x < a + 1)."""
    term = 1.0 / a
    total = term
    ap = a
    for _ in range(10_000):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * 1e-16:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_cf(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) by Lentz's continued fraction (x >= a + 1)."""
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square(df): the regularized upper incomplete gamma Q(df/2, x/2)."""
    if df <= 0:
        raise ValueError(f"expected df >= 1, got {df}")
    if x <= 0:
        return 1.0
    a, h = df / 2.0, x / 2.0
    if h < a + 1.0:
        return max(0.0, 1.0 - _gamma_series(a, h))
    return _gamma_cf(a, h)


def chi2_test(counts_a: np.ndarray, counts_b: np.ndarray) -> tuple[float, int, float]:
    """Chi-square test of homogeneity on a 2 x K table of class counts: (statistic, df, p-value).

    Classes empty in both splits are dropped; df = K' - 1. (statistic 0, df 0, p 1) when fewer than
    two classes remain or a split is empty.
    """
    table = np.vstack([counts_a, counts_b]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    df = table.shape[1] - 1
    return stat, df, chi2_sf(stat, df)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance between two discrete distributions given as counts or probabilities."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.sum() == 0 or q.sum() == 0:
        return float("nan")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


# --- summaries of inputs ---------------------------------------------------------------------------


def _channels(x: np.ndarray) -> np.ndarray:
    """(B, *shape) -> (B, C, V): channel = feature for (B, D), axis 1 for (B, C, ...), one for (B,)."""
    if x.ndim == 1:
        return x.reshape(-1, 1, 1)
    if x.ndim == 2:
        return x.reshape(x.shape[0], x.shape[1], 1)
    return x.reshape(x.shape[0], x.shape[1], -1)


@dataclass
class InputSummary:
    """Running per-channel statistics of a split's inputs, fed batch by batch.

    Value level (every pixel / feature value): `mean`, `std` per channel. Item level (each item's
    mean over a channel's values): `item_mean`, `item_sd` per channel, the samples the shift test uses.
    """

    n: int = 0
    count: int = 0  # values per channel seen
    nonfinite: int = 0
    _vsum: np.ndarray | None = None
    _vsq: np.ndarray | None = None
    _isum: np.ndarray | None = None
    _isq: np.ndarray | None = None
    vmin: float = math.inf
    vmax: float = -math.inf

    def update(self, x: np.ndarray) -> None:
        """Add a batch: x (B, *input_shape), any float or integer dtype."""
        v = _channels(np.asarray(x, dtype=np.float64))
        finite = np.isfinite(v)
        if not finite.all():
            self.nonfinite += int((~finite).sum())
            v = np.where(finite, v, 0.0)
        item = v.mean(axis=2)
        if self._vsum is None:
            c = v.shape[1]
            self._vsum, self._vsq, self._isum, self._isq = (np.zeros(c) for _ in range(4))
        assert self._vsum is not None and self._vsq is not None and self._isum is not None and self._isq is not None
        self._vsum += v.sum(axis=(0, 2))
        self._vsq += (v * v).sum(axis=(0, 2))
        self._isum += item.sum(axis=0)
        self._isq += (item * item).sum(axis=0)
        self.n += v.shape[0]
        self.count += v.shape[0] * v.shape[2]
        if v.size:
            self.vmin = min(self.vmin, float(v.min()))
            self.vmax = max(self.vmax, float(v.max()))

    @property
    def channels(self) -> int:
        return 0 if self._vsum is None else len(self._vsum)

    @property
    def mean(self) -> np.ndarray:
        assert self._vsum is not None
        return self._vsum / max(self.count, 1)

    @property
    def std(self) -> np.ndarray:
        assert self._vsq is not None
        var = self._vsq / max(self.count, 1) - self.mean**2
        return np.sqrt(np.maximum(var, 0.0))

    @property
    def item_mean(self) -> np.ndarray:
        assert self._isum is not None
        return self._isum / max(self.n, 1)

    @property
    def item_sd(self) -> np.ndarray:
        """Sample standard deviation (n - 1) of the per-item channel means."""
        assert self._isq is not None
        if self.n < 2:
            return np.zeros(self.channels)
        var = (self._isq - self.n * self.item_mean**2) / (self.n - 1)
        return np.sqrt(np.maximum(var, 0.0))


# --- hashes of items -------------------------------------------------------------------------------


def _thumbnails(x: np.ndarray) -> np.ndarray | None:
    """(B, C, H, W) or (B, H, W) -> (B, C*s*s) float32 block means, standardised per item; None for
    (B, D) features and for volumes or clips (B, C, D, H, W), which get the exact-duplicate check only."""
    if not 3 <= x.ndim <= 4:
        return None
    if x.ndim == 3:
        x = x[:, None]
    x = x.reshape(x.shape[0], x.shape[1], x.shape[-2], x.shape[-1]).astype(np.float64)
    h, w = x.shape[-2:]
    rows = np.linspace(0, h, min(THUMB_SIDE, h) + 1).astype(int)[:-1]
    cols = np.linspace(0, w, min(THUMB_SIDE, w) + 1).astype(int)[:-1]
    t = np.add.reduceat(np.add.reduceat(x, rows, axis=2), cols, axis=3)
    sizes = np.diff(np.append(rows, h))[:, None] * np.diff(np.append(cols, w))[None, :]
    t = (t / sizes).reshape(x.shape[0], -1)
    t -= t.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(t, axis=1, keepdims=True)
    t = np.divide(t, norm, out=np.zeros_like(t), where=norm > 0)
    return t.astype(np.float32)


@dataclass
class ItemHashes:
    """Per-item digests of one split's inputs (exact bytes) and thumbnails for near-duplicates."""

    digests: list[bytes] = field(default_factory=list)
    thumbs: list[np.ndarray] = field(default_factory=list)

    def update(self, x: np.ndarray) -> None:
        """Add a batch x (B, *input_shape): the bytes of each item as it reaches the model."""
        x = np.ascontiguousarray(x)
        self.digests.extend(hashlib.blake2b(item.tobytes(), digest_size=16).digest() for item in x)
        t = _thumbnails(x)
        if t is not None:
            self.thumbs.append(t)

    def thumbnails(self) -> np.ndarray | None:
        """All thumbnails as one array, joined once: a split is in several pairs."""
        if len(self.thumbs) > 1:
            self.thumbs = [np.concatenate(self.thumbs)]
        return self.thumbs[0] if self.thumbs else None


# --- the checks ------------------------------------------------------------------------------------


def _ordered(names: Sequence[str]) -> list[str]:
    return sorted(names, key=lambda s: SPLITS.index(s) if s in SPLITS else len(SPLITS))


def split_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Every pair of present splits, in canonical order."""
    o = _ordered(names)
    return [(a, b) for i, a in enumerate(o) for b in o[i + 1 :]]


def pair_role(a: str, b: str, names: Sequence[str]) -> str:
    """'same' (must match), 'by_design' (may differ: train_dev measures it) or 'unmeasured'."""
    if {a, b} in ({"train", "train_dev"}, {"dev", "test"}):
        return "same"
    if "train_dev" in names:
        return "by_design"
    return "unmeasured"


_SHIFT_STATUS: dict[str, Status] = {"same": "fail", "unmeasured": "warn", "by_design": "pass"}


def check_split_sizes(sizes: Mapping[str, int], *, error_rate: float = ASSUMED_ERROR_RATE) -> Check:
    """How small a gap each split can show at 95% (core.stats.detectable_difference at error_rate)."""
    rows = {}
    statuses: list[Status] = []
    phrases = []
    for name in _ordered(list(sizes)):
        n = int(sizes[name])
        dd = detectable_difference(n, error_rate)
        rows[name] = {"n": n, "detectable_gap": dd}
        phrases.append(f"{name} has {n:,} items: gaps under about {dd * 100:.0f} points are not distinguishable")
        if n == 0:
            statuses.append("fail")
        elif name != "train" and dd > DETECTABLE_WARN:
            statuses.append("warn")
    status = most_severe(statuses)
    small = [s for s in rows if s != "train" and rows[s]["detectable_gap"] > DETECTABLE_WARN]
    advice = ""
    if status != "pass":
        advice = (
            f"Grow {', '.join(small) or 'the empty split'}: the 95% interval of a gap shrinks with the square root "
            "of the items, so 4x the items halves the smallest gap you can see. Ng suggests dev and test "
            "sets of 1,000-10,000 items."
        )
    return Check(
        "split_sizes",
        status,
        "; ".join(phrases) + f" (at an error rate near {error_rate * 100:.0f}%).",
        advice,
        {"error_rate": error_rate, "splits": rows},
    )


def _counts(labels: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=k)[:k]


def num_classes(labels: Mapping[str, np.ndarray], classes: Sequence[str] | None) -> int:
    top = max((int(np.max(v)) for v in labels.values() if len(v)), default=-1) + 1
    return max(len(classes) if classes else 0, top)


def is_classification(labels: Mapping[str, np.ndarray]) -> bool:
    return all(np.issubdtype(np.asarray(v).dtype, np.integer) for v in labels.values())


def check_class_balance(labels: Mapping[str, np.ndarray], classes: Sequence[str] | None = None) -> Check:
    """Counts per class in each split and the imbalance ratio (largest / smallest non-empty class)."""
    if not is_classification(labels):
        return Check("class_balance", "skip", "Labels are not class indices (regression); no class balance to check.")
    k = num_classes(labels, classes)
    names = list(classes) if classes and len(classes) >= k else [str(i) for i in range(k)]
    rows = {}
    statuses: list[Status] = []
    phrases = []
    for split in _ordered(list(labels)):
        c = _counts(labels[split], k)
        present = c[c > 0]
        ratio = float(present.max() / present.min()) if len(present) else float("nan")
        missing = [names[i] for i in range(k) if c[i] == 0]
        big, small = int(np.argmax(c)), int(np.argmin(np.where(c > 0, c, np.iinfo(np.int64).max)))
        rows[split] = {
            "counts": {names[i]: int(c[i]) for i in range(k)},
            "imbalance_ratio": ratio,
            "largest": names[big],
            "smallest": names[small],
            "missing": missing,
        }
        if split == "train":
            if missing or ratio >= IMBALANCE_FAIL:
                statuses.append("fail")
            elif ratio >= IMBALANCE_WARN:
                statuses.append("warn")
        elif ratio >= IMBALANCE_FAIL or (missing and "train" not in labels):
            statuses.append("warn")
        text = f"{split} {ratio:.1f}:1 (largest '{names[big]}' {int(c[big])}, smallest '{names[small]}' {int(c[small])})"
        if missing:
            text += f", no items of {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
        phrases.append(text)
    status = most_severe(statuses)
    return Check(
        "class_balance",
        status,
        "Imbalance (largest:smallest class): " + "; ".join(phrases) + ".",
        CLASS_BALANCE_ADVICE if status != "pass" else "",
        {"classes": names, "splits": rows, "warn_ratio": IMBALANCE_WARN, "fail_ratio": IMBALANCE_FAIL},
    )


def _fmt_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _shift_evidence(lead: str, phrases: Sequence[str], status: Status) -> str:
    """'<lead>: <pair>; <pair>.' and, when only pairs that may differ by design moved, that they may."""
    text = f"{lead}: " + "; ".join(phrases) + "."
    if status == "pass":
        text += " Only between train and dev/test, which may differ by design (train_dev is there to measure it)."
    return text


def check_label_shift(labels: Mapping[str, np.ndarray], classes: Sequence[str] | None = None) -> Check:
    """Total variation distance and a chi-square test of the class proportions, per split pair."""
    if not is_classification(labels):
        return Check("label_shift", "skip", "Labels are not class indices (regression); label shift not tested.")
    names = list(labels)
    pairs = split_pairs(names)
    if not pairs:
        return Check("label_shift", "skip", "Only one split: nothing to compare.")
    k = num_classes(labels, classes)
    alpha = ALPHA / len(pairs)
    rows: dict[str, dict[str, Any]] = {}
    statuses: list[Status] = []
    phrases = []
    for a, b in pairs:
        ca, cb = _counts(labels[a], k), _counts(labels[b], k)
        tv = total_variation(ca, cb)
        stat, df, p = chi2_test(ca, cb)
        shifted = bool(p < alpha and tv >= TV_MIN)
        role = pair_role(a, b, names)
        rows[f"{a}/{b}"] = {"tv": tv, "chi2": stat, "df": df, "p": p, "shifted": shifted, "role": role}
        if shifted:
            statuses.append(_SHIFT_STATUS[role])
            phrases.append(f"{a} vs {b}: TV {tv:.2f}, chi2 {stat:.1f} (df {df}), {_fmt_p(p)}")
    status = most_severe(statuses)
    if phrases:
        evidence = _shift_evidence("Class proportions differ", phrases, status)
    else:
        worst = max(rows.items(), key=lambda kv: kv[1]["tv"])
        evidence = (
            f"No pair's class proportions differ (largest: {worst[0].replace('/', ' vs ')} TV {worst[1]['tv']:.2f}, "
            f"{_fmt_p(worst[1]['p'])})."
        )
    advice = ""
    if status != "pass":
        advice = (
            "Splits that should come from one distribution do not: re-split them with a seeded, stratified "
            "shuffle of the pooled items (dev and test from the same source; train_dev held out of train)."
        )
    return Check(
        "label_shift",
        status,
        evidence,
        advice,
        {"alpha": alpha, "tv_min": TV_MIN, "pairs": rows},
    )


def check_input_shift(summaries: Mapping[str, InputSummary]) -> Check:
    """Per-channel (or per-feature) mean and scale of the inputs compared between splits, per pair.

    For each channel, the per-item channel means of two splits are compared with a two-sample z test
    (Bonferroni over channels and pairs) and Cohen's d; a channel is shifted when both pass their bar.
    A channel is scaled when the standard deviation of its values differs by SCALE_RATIO_MIN or more.
    NaN or infinite input values (counted as 0 in the means) fail the check whatever the shift.
    """
    check = _input_shift(summaries)
    bad = {s: summaries[s].nonfinite for s in _ordered(list(summaries)) if summaries[s].nonfinite}
    if not bad:
        return check
    listed = ", ".join(f"{s} {k:,}" for s, k in bad.items())
    return replace(
        check,
        status="fail",
        evidence=f"NaN or infinite input values: {listed} (the means count them as 0). {check.evidence}",
        advice=" ".join(filter(None, (
            "Impute or drop the missing values before training and evaluation: a model's output on a NaN input is NaN.",
            check.advice,
        ))),
        details={**check.details, "nonfinite": bad},
    )


def _input_shift(summaries: Mapping[str, InputSummary]) -> Check:
    names = [s for s in summaries if summaries[s].n > 0]
    pairs = split_pairs(names)
    if not pairs:
        return Check("input_shift", "skip", "Only one split: nothing to compare.")
    channels = {summaries[s].channels for s in names}
    if len(channels) != 1:
        return Check("input_shift", "fail", f"Splits have different numbers of channels/features: {sorted(channels)}.",
                     "Every split must go through the same preprocessing.")
    c = channels.pop()
    z_crit = NormalDist().inv_cdf(1 - ALPHA / (2 * c * len(pairs)))
    rows: dict[str, dict[str, Any]] = {}
    statuses: list[Status] = []
    phrases = []
    for a, b in pairs:
        sa, sb = summaries[a], summaries[b]
        diff = sb.item_mean - sa.item_mean
        se = np.sqrt(sa.item_sd**2 / sa.n + sb.item_sd**2 / sb.n)
        pooled = np.sqrt((sa.item_sd**2 + sb.item_sd**2) / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, np.abs(diff) / se, np.where(diff != 0, np.inf, 0.0))
            d = np.where(pooled > 0, np.abs(diff) / pooled, np.where(diff != 0, np.inf, 0.0))
        shifted = (z > z_crit) & (d >= COHEN_D_MIN)
        j = int(np.argmax(np.where(np.isfinite(d), d, 1e300)))
        # Scale: the standard deviation of every value of a channel, split b against split a.
        # Channels with next to no spread in both splits (an image's border, a constant column, float
        # rounding) are left out: their ratio is noise. A split is wider or narrower as a whole when the
        # median channel's ratio passes SCALE_RATIO_MIN (then every channel past it is named); one
        # channel alone must pass SCALE_CHANNEL_MIN (a sparse pixel's spread varies 2-3x between
        # random splits of the same data).
        sd_a, sd_b = sa.std, sb.std
        typical = float(np.median(np.concatenate([sd_a, sd_b]))) or 1.0
        material = np.maximum(sd_a, sd_b) > SCALE_FLOOR * typical
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(material & (sd_a > 0), sd_b / np.where(sd_a > 0, sd_a, 1.0), np.where(material, np.inf, 1.0))
            wide = np.maximum(ratio, 1.0 / np.where(ratio > 0, ratio, np.inf))
        log_ratio = np.log(np.clip(ratio[material], 1e-300, 1e300)) if material.any() else np.zeros(1)
        whole = bool(abs(float(np.median(log_ratio))) >= math.log(SCALE_RATIO_MIN)) and min(sa.n, sb.n) >= 2
        scaled = material & (wide >= (SCALE_RATIO_MIN if whole else SCALE_CHANNEL_MIN)) & (min(sa.n, sb.n) >= 2)
        k = int(np.argmax(np.where(np.isfinite(wide), wide, 1e300)))
        role = pair_role(a, b, names)
        rows[f"{a}/{b}"] = {
            "shifted_channels": [int(i) for i in np.flatnonzero(shifted)],
            "max_d": float(d[j]),
            "max_d_channel": j,
            "mean_a": float(sa.item_mean[j]),
            "mean_b": float(sb.item_mean[j]),
            "shifted": bool(shifted.any()),
            "scaled_channels": [int(i) for i in np.flatnonzero(scaled)],
            "max_sd_ratio": float(ratio[k]),
            "max_sd_ratio_channel": k,
            "sd_a": float(sd_a[k]),
            "sd_b": float(sd_b[k]),
            "scaled": bool(scaled.any()),
            "role": role,
        }
        if shifted.any():
            statuses.append(_SHIFT_STATUS[role])
            phrases.append(
                f"{a} vs {b}: {int(shifted.sum())} of {c} channels, largest d={d[j]:.2f} on channel {j} "
                f"(mean {sa.item_mean[j]:.3g} -> {sb.item_mean[j]:.3g})"
            )
        if scaled.any():
            statuses.append(_SHIFT_STATUS[role])
            phrases.append(
                f"{a} vs {b}: the spread of {int(scaled.sum())} of {c} channels, largest x{ratio[k]:.3g} on channel {k} "
                f"(standard deviation {sd_a[k]:.3g} -> {sd_b[k]:.3g})"
            )
    status = most_severe(statuses)
    if phrases:
        moved = any(r["shifted"] for r in rows.values())
        spread = any(r["scaled"] for r in rows.values())
        lead = "Input means and scales differ" if moved and spread else "Input scales differ" if spread else "Input means differ"
        evidence = _shift_evidence(lead, phrases, status)
    else:
        worst = max(rows.items(), key=lambda kv: kv[1]["max_d"])
        evidence = (
            f"No pair's input means differ beyond d={COHEN_D_MIN} (largest: {worst[0].replace('/', ' vs ')} "
            f"d={worst[1]['max_d']:.2f} on channel {worst[1]['max_d_channel']})."
        )
    advice = ""
    if status != "pass":
        advice = (
            "Check that every split goes through the same preprocessing (resize, scaling, --mean/--std, colour "
            "order) and comes from the same source; if the difference is real, hold out a train_dev split so "
            "`diagnose gaps` can measure it as data_mismatch."
        )
    return Check("input_shift", status, evidence, advice,
                 {"z_crit": float(z_crit), "d_min": COHEN_D_MIN, "sd_ratio_min": SCALE_RATIO_MIN, "pairs": rows})


def _near_pairs(ta: np.ndarray, tb: np.ndarray, exclude_b: set[int]) -> list[tuple[int, int, float]]:
    """(index in a, index in b, correlation) for each item of b whose best match in a is >= NEAR_CORR."""
    out = []
    rows = max(16, NEAR_BLOCK // max(len(ta), 1))  # similarity block of at most NEAR_BLOCK floats (~80 MB)
    for start in range(0, len(tb), rows):
        sim = tb[start : start + rows] @ ta.T
        best = sim.argmax(axis=1)
        top = sim[np.arange(len(best)), best]
        for i in np.flatnonzero(top >= NEAR_CORR):
            jb = start + int(i)
            if jb not in exclude_b:
                out.append((int(best[i]), jb, float(top[i])))
    return out


def check_leakage(
    hashes: Mapping[str, ItemHashes],
    ids: Mapping[str, Sequence[str] | None] | None = None,
    labels: Mapping[str, np.ndarray] | None = None,
    *,
    max_examples: int = 10,
) -> Check:
    """Exact duplicates within and across splits (same input bytes), and near-duplicates across splits."""
    ids = ids or {}
    labels = labels or {}

    def name(split: str, i: int) -> str:
        s = ids.get(split)
        return f"{split}:{s[i]}" if s is not None else f"{split}[{i}]"

    groups: dict[str, dict[bytes, list[int]]] = {}
    for split, h in hashes.items():
        g: dict[bytes, list[int]] = {}
        for i, digest in enumerate(h.digests):
            g.setdefault(digest, []).append(i)
        groups[split] = g
    names = _ordered(list(hashes))
    within = {}
    statuses: list[Status] = []
    phrases = []
    for split in names:
        dup_groups = [v for v in groups[split].values() if len(v) > 1]
        extra = sum(len(v) - 1 for v in dup_groups)
        conflicting = 0
        if split in labels:
            lab = np.asarray(labels[split])
            conflicting = sum(1 for v in dup_groups if len(set(lab[v].tolist())) > 1)
        n = len(hashes[split].digests)
        within[split] = {
            "duplicates": extra,
            "groups": len(dup_groups),
            "conflicting_labels": conflicting,
            "examples": [[name(split, i) for i in v[:4]] for v in dup_groups[:max_examples]],
        }
        if extra:
            statuses.append("warn" if extra / max(n, 1) >= LEAK_FAIL_SHARE or conflicting else "pass")
            phrases.append(f"{extra} repeated items within {split}" + (f" ({conflicting} groups with conflicting labels)" if conflicting else ""))
    across = {}
    skipped: list[str] = []
    for a, b in split_pairs(names):
        shared = set(groups[a]) & set(groups[b])
        items_b = sorted(i for dg in shared for i in groups[b][dg])
        nb = len(hashes[b].digests)
        share = len(items_b) / max(nb, 1)
        # Examples in the order the items sit in split b, so every run names the same ones.
        first = sorted(shared, key=lambda dg: groups[b][dg][0])[:max_examples]
        examples = [[name(a, groups[a][dg][0]), name(b, groups[b][dg][0])] for dg in first]
        row: dict[str, object] = {"exact": len(items_b), "share_of_b": share, "examples": examples}
        if shared:
            statuses.append("fail" if share >= LEAK_FAIL_SHARE else "warn")
            phrases.append(f"{len(items_b)} {b} items ({share * 100:.1f}%) also in {a}, e.g. {', '.join(' = '.join(e) for e in examples[:2])}")
        if hashes[a].thumbs and hashes[b].thumbs:
            # Sizes from the digests (one per item, as the thumbnails): no join for a skipped pair.
            if len(hashes[a].digests) * nb <= NEAR_MAX_PAIRS:
                thumbs_a, thumbs_b = hashes[a].thumbnails(), hashes[b].thumbnails()
                assert thumbs_a is not None and thumbs_b is not None  # both lists are non-empty (above)
                near = _near_pairs(thumbs_a, thumbs_b, set(items_b))
                near_examples = [[name(a, i), name(b, j), round(r, 4)] for i, j, r in near[:max_examples]]
                row["near"] = len(near)
                row["near_examples"] = near_examples
                if near:
                    near_share = len(near) / max(nb, 1)
                    statuses.append("warn" if near_share >= LEAK_FAIL_SHARE else "pass")
                    phrases.append(
                        f"{len(near)} {b} items nearly identical to a {a} item (thumbnail correlation >= {NEAR_CORR}), "
                        f"e.g. {near_examples[0][0]} ~ {near_examples[0][1]}"
                    )
            else:
                row["near"] = None
                skipped.append(f"{a}/{b}")
        across[f"{a}/{b}"] = row
    status = most_severe(statuses)
    evidence = ("; ".join(phrases) + ".") if phrases else "No item appears twice, within a split or across splits."
    if skipped:
        evidence += f" Near-duplicate search skipped for {', '.join(skipped)} (over {NEAR_MAX_PAIRS:,} item pairs)."
    advice = ""
    if status != "pass":
        advice = (
            "Remove the repeated items from the evaluation split (or from train), deduplicating before splitting; "
            "items shared with train make dev/test error look better than it is. Split by source (person, "
            "session, document) when near-duplicates come from one."
        )
    return Check(
        "leakage",
        status,
        evidence,
        advice,
        {"within": within, "across": across, "fail_share": LEAK_FAIL_SHARE, "near_corr": NEAR_CORR},
    )


def pair_verdicts(names: Sequence[str], checks: Sequence[Check]) -> list[dict[str, str]]:
    """One line per split pair from the label_shift, input_shift and leakage details."""
    by_id = {c.id: c for c in checks}

    def pair_row(check_id: str, key: str) -> dict | None:
        c = by_id.get(check_id)
        return None if c is None else c.details.get("pairs" if check_id != "leakage" else "across", {}).get(key)

    out = []
    for a, b in split_pairs(names):
        key = f"{a}/{b}"
        role = pair_role(a, b, names)
        problems = []
        lab, inp, leak = pair_row("label_shift", key), pair_row("input_shift", key), pair_row("leakage", key)
        if lab and lab["shifted"]:
            problems.append(f"class proportions differ (TV {lab['tv']:.2f})")
        if inp and inp["shifted"]:
            problems.append(f"input means differ (d={inp['max_d']:.2f})")
        if leak and leak["exact"]:
            problems.append(f"{leak['exact']} shared items")
        if leak and leak.get("near"):
            problems.append(f"{leak['near']} near-duplicates")
        shared = bool(leak and (leak["exact"] or leak.get("near")))
        if not problems:
            status, text = "pass", "same distribution as far as these checks see; no shared items"
        elif shared and leak and leak["share_of_b"] >= LEAK_FAIL_SHARE:
            status, text = "fail", "; ".join(problems) + f": {b} error is measured partly on training items"
        elif role == "same":
            status, text = "fail", "; ".join(problems) + f": {a} and {b} should come from one distribution; re-split them"
        elif role == "by_design" and not shared:
            status, text = "pass", "; ".join(problems) + ": differ as train and dev/test may (gaps measures it as data_mismatch)"
        else:
            status = "warn"
            text = "; ".join(problems) + (
                ": without a train_dev split, gaps cannot tell variance from this mismatch" if role == "unmeasured" else ""
            )
        out.append({"pair": f"{a} vs {b}", "status": status, "verdict": text})
    return out


def check_input_stats(summary: InputSummary, *, split: str = "train", sampled: int | None = None) -> Check:
    """Per-channel mean and standard deviation of the training inputs: zero-centred? normalised?

    sampled: the split's size when the summary covers a sample of it (None: the whole split).
    """
    if summary.n == 0:
        return Check("input_stats", "skip", f"{split} has no items.")
    mean, std = summary.mean, summary.std
    c = len(mean)
    constant = np.flatnonzero(std == 0)
    varying = std > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(varying, np.abs(mean) / std, 0.0)
    off_centre = np.flatnonzero(off > CENTER_MAX_SD)
    off_scale = np.flatnonzero(varying & ((std < SCALE_RANGE[0]) | (std > SCALE_RANGE[1])))
    label = "feature" if c > 4 else "channel"

    def show(idx: np.ndarray) -> str:
        return ", ".join(f"{label} {i} mean {mean[i]:.3g} std {std[i]:.3g}" for i in idx[:3]) + (" ..." if len(idx) > 3 else "")

    if c <= 4:
        head = "Per channel mean/std: " + ", ".join(f"{mean[i]:.3g}/{std[i]:.3g}" for i in range(c))
    else:
        head = (
            f"{c} features: means {mean.min():.3g}..{mean.max():.3g}, "
            f"stds {std[varying].min() if varying.any() else 0:.3g}..{std.max():.3g}"
        )
    head += f" over {summary.n:,} of {sampled:,} {split} items (a seeded sample)" if sampled else f" over {summary.n:,} {split} items"
    notes = []
    status: Status = "pass"
    advice = ""
    if summary.nonfinite:
        status = "fail"
        notes.append(f"{summary.nonfinite:,} values are NaN or infinite")
        advice = "Find and drop or impute the NaN / infinite inputs: one reaching the model turns the loss into NaN."
    if len(off_centre):
        status = "warn" if status == "pass" else status
        notes.append(f"{len(off_centre)} of {c} {label}s are not zero-centred (|mean| > {CENTER_MAX_SD:g} std), e.g. {show(off_centre)}")
    if len(off_scale):
        status = "warn" if status == "pass" else status
        notes.append(f"{len(off_scale)} of {c} {label}s have a std outside {SCALE_RANGE[0]:g}..{SCALE_RANGE[1]:g}, e.g. {show(off_scale)}")
    if len(off_centre) or len(off_scale):
        advice = advice or (
            "Subtract the training mean and divide by the training std per channel (images: --mean/--std, or "
            "transforms.Normalize; tables: a standard scaler fitted on train only), and apply the same numbers "
            "to every split."
        )
    if len(constant):
        notes.append(f"{len(constant)} constant {label}s carry no information")
    evidence = head + "." + (
        " " + "; ".join(notes) + "."
        if notes
        else f" Every mean within {CENTER_MAX_SD:g} std of zero, every std within {SCALE_RANGE[0]:g}..{SCALE_RANGE[1]:g}."
    )
    return Check(
        "input_stats",
        status,
        evidence,
        advice,
        {
            "split": split,
            "n": summary.n,
            "mean": mean.tolist(),
            "std": std.tolist(),
            "min": summary.vmin,
            "max": summary.vmax,
            "nonfinite": summary.nonfinite,
            "not_centred": off_centre.tolist(),
            "off_scale": off_scale.tolist(),
            "constant": constant.tolist(),
        },
    )
