"""Chance-level checks: a run at ln C, a model pinned to one class, a start blown far above chance."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from diagnose.core.findings.advice import ADVICE
from diagnose.core.findings.base import (
    Hint,
    Series,
    _at,
    _finite,
    _g,
    _level,
    _noise,
    _tail_level,
    _where,
)
from diagnose.core.findings.measure import CurveStats
from diagnose.core.findings.thresholds import (
    CHANCE_ACC_MARGIN,
    CHANCE_MARGIN,
    CHANCE_START_MARGIN,
    CHANCE_START_SEPARATION,
    DIVERGE_FACTOR,
    EXPLODED_START,
    MIN_EVALS,
    NOT_LEARNING_DROP,
    NOT_LEARNING_NOISE,
    PINNED_MAX_DROP,
    PINNED_SHARE,
    PINNED_TRAIN_ABOVE,
)


@dataclass(frozen=True)
class Chance:
    """The run is at chance: its loss sits at ln C (or its accuracy at one repeated share)."""

    classes: int | None  # C; None when the level is a majority share
    source: str  # how C was known, for the evidence
    evidence: str



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
            # ln k and ln (k+1) lie 1/(k ln k) apart (relative): past C = 10 a resumed run's first loss
            # sits near some ln k by coincidence, so the start names C only while they are well apart.
            apart = 1 / (k * math.log(k)) if k >= 2 else 0.0
            if (k >= 2 and apart >= CHANCE_START_SEPARATION * CHANCE_START_MARGIN
                    and abs(first - math.log(k)) <= CHANCE_START_MARGIN * math.log(k)):
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
    if any(n in s for n in ("train_acc", "val_acc")) and end < (1 - CHANCE_MARGIN) * math.log(2):
        # a classifier whose loss sits below ln 2, the chance level of every class count, has learned:
        # flat here is converged (a resumed run), not stuck
        return None
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
