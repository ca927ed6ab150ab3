"""The bias / variance / data-mismatch arithmetic: split errors in, gaps and a verdict out.

The levels are human-level < train < train_dev < dev < test; each gap is the difference between
two adjacent levels (the workflow of Ng's "Machine Learning Yearning", ch. 20-22 and 40-41):

    avoidable_bias = train - human_error
    variance       = train_dev - train
    data_mismatch  = dev - train_dev
    dev_overfit    = test - dev

Only gaps whose 95% interval excludes zero take part in the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from diagnose.core.stats import (
    mcnemar_one_sided,
    mean_difference_interval,
    mean_interval,
    newcombe_interval,
    wilson_interval,
)

SPLITS: tuple[str, ...] = ("train", "train_dev", "dev", "test")
# Target-distribution items that were in training: the "trained on" cell of the target column of the
# two-column table (see TwoColumn). Read and evaluated like the others, not a level of its own.
TARGET_SPLIT = "train_target"
ALL_SPLITS: tuple[str, ...] = (*SPLITS, TARGET_SPLIT)
GAPS: tuple[str, ...] = ("avoidable_bias", "variance", "data_mismatch", "dev_overfit")
# gap name -> (lower level, upper level); "human" is the given human-level error.
GAP_LEVELS: dict[str, tuple[str, str]] = {
    "avoidable_bias": ("human", "train"),
    "variance": ("train", "train_dev"),
    "data_mismatch": ("train_dev", "dev"),
    "dev_overfit": ("dev", "test"),
}
Metric = Literal["error", "mse", "mae"]

# What to do about each gap, after "Machine Learning Yearning" (ch. 23-27 bias and variance, 42-43
# data mismatch, 14-16 error analysis); users read these, so they are
# reviewed like interface text.
ADVICE: dict[str, tuple[str, ...]] = {
    "avoidable_bias": (
        "Train a bigger model (more layers or units) - the training error is far above human level.",
        "Train longer, and check the loss curve has flattened (`diagnose curves`).",
        "Use a better optimizer: momentum, RMSProp or Adam, with a learning-rate schedule (decay or warmup + cosine).",
        "Reduce regularization (weaker L2, less dropout) if it is holding the training error up.",
        "Search architectures and hyperparameters (random search, learning rate on a log scale).",
    ),
    "variance": (
        "Get more training data, or augment it (flips, crops, noise that keeps the label).",
        "Regularize: L2 weight decay, dropout, data augmentation.",
        "Stop early at the best validation epoch (`diagnose curves` shows where).",
        "Try a smaller model or an architecture with a better inductive bias.",
    ),
    "data_mismatch": (
        "Do error analysis on dev against train-dev to see how the data differ (`diagnose errors --split dev`).",
        "Collect more training data that looks like dev and test, or synthesize it (artificial data synthesis).",
        "Make the training data more similar to dev: same preprocessing, resolution, noise, sources.",
    ),
    "dev_overfit": (
        "Get a bigger dev set: the model (or the tuning) has overfit the current one.",
        "Refresh the dev set with new items from the same distribution as test.",
        "Tune less against dev: fewer hyperparameter rounds per dev set.",
    ),
}
NO_GAP_ADVICE: tuple[str, ...] = (
    "No gap is significant at these split sizes: collect larger dev and test splits to see smaller gaps.",
)
TARGET_HARDER_ADVICE: tuple[str, ...] = (
    "Judge dev against the target's human level, not against train-dev: the target data is harder for people too.",
    "Work on the target column's own gaps: its avoidable bias (train_target - human) and variance (dev - train_target).",
)
MISSING_LEVELS_ADVICE: tuple[str, ...] = (
    "Each gap needs both of its levels: give --human-error, hold out part of train as train_dev, "
    "and add dev and test splits from the data you care about.",
)


@dataclass(frozen=True)
class SplitResult:
    """One split's metric. error: fraction in [0, 1] (classification) or mean per-item loss (mse/mae)."""

    name: str
    n: int
    error: float
    ci: tuple[float, float]
    errors: int | None = None  # misclassified count (classification only)
    sd: float | None = None  # per-item standard deviation (regression only)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"n": self.n}
        if self.errors is not None:
            out["errors"] = self.errors
        out["error"] = self.error
        out["ci"] = [self.ci[0], self.ci[1]]
        if self.sd is not None:
            out["sd"] = self.sd
        return out


@dataclass(frozen=True)
class Gap:
    """The difference upper - lower between two adjacent levels, with its 95% interval."""

    name: str
    lower: str
    upper: str
    value: float
    ci: tuple[float, float]

    @property
    def significant(self) -> bool:
        return self.ci[0] > 0 or self.ci[1] < 0

    def to_json(self) -> dict[str, object]:
        return {"value": self.value, "ci": [self.ci[0], self.ci[1]], "significant": self.significant}


@dataclass(frozen=True)
class Verdict:
    problem: str | None
    advice: tuple[str, ...]
    detail: str | None = None  # e.g. the target data is harder, not mismatched

    def to_json(self) -> dict[str, object]:
        return {"problem": self.problem, "advice": list(self.advice), "detail": self.detail}


# What to check first when the numbers themselves are in doubt (the model is not fed what it was
# trained on, or does no better than a constant): every gap, and every prescription built on one, is
# then an artefact of the measurement. Users read these, so they are reviewed like interface text.
CHECK_FIRST: tuple[str, ...] = (
    "Preprocessing: feed the model what it was trained on - the same normalization (--mean/--std, "
    "or --standardize train for the statistics of the train split), resizing and channel order for "
    "images, the same columns in the same units for tables.",
    "Labels: check that the label column is the one the model was trained to predict, and that each "
    "item still has its own label.",
    "Class mapping: check that class index i means the same class in the data as in the model "
    "(classes.txt, the order of the image folders, the label encoder of training).",
    "Checkpoint: check that MODEL is the trained checkpoint of this run, not initial weights or "
    "another run's.",
)
# Why the inputs are in doubt, as the verdict's withholding lists them (the warnings hold the numbers).
INPUT_CHECK_DOUBT = ("the batch-norm input check: the train split does not look like what the model was "
                     "trained on (see the warning above)")
LOG_DOUBT = ("the training log: its last validation value disagrees with what is measured here "
             "(see the warning above)")
# A model must beat always answering train's most frequent class on train at this one-sided level.
BASELINE_ALPHA = 0.05


@dataclass(frozen=True)
class Baseline:
    """The chance baseline: always predicting train's most frequent class (`label`, named `name`).

    splits: its error on each split (a SplitResult with the Wilson interval); p_value: the one-sided
    exact McNemar p-value that the model is better than it on train, from the paired train items;
    better: p_value < BASELINE_ALPHA.
    """

    label: int
    name: str | None
    splits: dict[str, SplitResult]
    p_value: float
    better: bool

    def to_json(self) -> dict[str, object]:
        return {"class": self.label, "name": self.name, "splits": {n: s.to_json() for n, s in self.splits.items()},
                "test": "one-sided exact McNemar on train", "p_value": self.p_value, "alpha": BASELINE_ALPHA,
                "model_better": self.better}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Baseline:
        splits = {n: SplitResult(name=n, n=int(s["n"]), error=_num(s["error"]), ci=(_num(s["ci"][0]), _num(s["ci"][1])),
                                 errors=s.get("errors")) for n, s in doc["splits"].items()}
        return cls(label=int(doc["class"]), name=doc.get("name"), splits=splits, p_value=float(doc["p_value"]),
                   better=bool(doc["model_better"]))


def majority_baseline(confusions: dict[str, np.ndarray], classes: list[str] | None = None) -> Baseline | None:
    """The chance baseline from each split's confusion matrix (rows: true class, columns: predicted).

    The majority class is the most frequent true class of train (the lowest index on a tie). None
    without a train confusion matrix (regression, or no train split)."""
    train = confusions.get("train")
    if train is None or train.sum() == 0:
        return None
    label = int(np.argmax(train.sum(axis=1)))
    splits = {}
    for name in ALL_SPLITS:
        conf = confusions.get(name)
        if conf is None or conf.sum() == 0:
            continue
        n = int(conf.sum())
        right = int(conf[label].sum()) if label < conf.shape[0] else 0
        splits[name] = summarize_errors(name, n - right, n)
    # Paired on the train items: b = only the model right, c = only the baseline right.
    both = int(train[label, label])
    b = int(np.trace(train)) - both
    c = int(train[label].sum()) - both
    p = mcnemar_one_sided(b, c)
    called = classes[label] if classes is not None and label < len(classes) else None
    return Baseline(label=label, name=called, splits=splits, p_value=p, better=p < BASELINE_ALPHA)


@dataclass(frozen=True)
class TwoColumn:
    """The table of two distributions: general (train) and target (dev/test), each with its own
    human level, error on items trained on and error on items not trained on.

        difficulty       = human_target - human            (how much harder the target is for people)
        target_bias      = train_target - human_target     (avoidable bias on the target)
        target_variance  = dev - train_target               (variance on the target)
        mismatch_beyond  = (dev - train_dev) - difficulty   (data mismatch the harder data does not explain)
    """

    human: float | None
    human_target: float | None
    train: SplitResult | None
    train_target: SplitResult | None
    train_dev: SplitResult | None
    dev: SplitResult | None
    difficulty: float | None
    target_bias: Gap | None
    target_variance: Gap | None
    mismatch_beyond: Gap | None

    def to_json(self) -> dict[str, object]:
        def cell(r: SplitResult | None) -> object:
            return None if r is None else {"split": r.name, **r.to_json()}

        def gap(g: Gap | None) -> object:
            return None if g is None else g.to_json()

        return {
            "human": {"general": self.human, "target": self.human_target},
            "trained_on": {"general": cell(self.train), "target": cell(self.train_target)},
            "not_trained_on": {"general": cell(self.train_dev), "target": cell(self.dev)},
            "difficulty": self.difficulty,
            "target_avoidable_bias": gap(self.target_bias),
            "target_variance": gap(self.target_variance),
            "mismatch_beyond_difficulty": gap(self.mismatch_beyond),
        }


def two_column(splits: dict[str, SplitResult], human: float | None, human_target: float | None,
               data_mismatch: Gap | None) -> TwoColumn:
    tt, dev = splits.get(TARGET_SPLIT), splits.get("dev")
    difficulty = None if human is None or human_target is None else human_target - human
    target_bias = None
    if tt is not None and human_target is not None:
        target_bias = Gap("target_avoidable_bias", "human_target", TARGET_SPLIT, tt.error - human_target,
                          (tt.ci[0] - human_target, tt.ci[1] - human_target))
    target_variance = None
    if tt is not None and dev is not None:
        g = _gap("data_mismatch", tt, dev)  # the same interval arithmetic, renamed below
        target_variance = Gap("target_variance", TARGET_SPLIT, "dev", g.value, g.ci)
    beyond = None
    if data_mismatch is not None and difficulty is not None:
        beyond = Gap("mismatch_beyond_difficulty", "train_dev", "dev", data_mismatch.value - difficulty,
                     (data_mismatch.ci[0] - difficulty, data_mismatch.ci[1] - difficulty))
    return TwoColumn(human=human, human_target=human_target, train=splits.get("train"), train_target=tt,
                     train_dev=splits.get("train_dev"), dev=dev, difficulty=difficulty, target_bias=target_bias,
                     target_variance=target_variance, mismatch_beyond=beyond)


@dataclass(frozen=True)
class GapReport:
    metric: Metric
    human_error: float | None
    splits: dict[str, SplitResult]
    gaps: dict[str, Gap | None]
    verdict: Verdict
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Two distributions, two human levels: present when human_error_target or a train_target split is given.
    two_column: TwoColumn | None = None
    # The measurement itself looks wrong (the model not fed what it was trained on): shown first.
    warnings: tuple[str, ...] = field(default_factory=tuple)
    # What a notebook asks of a report after the fact (per-class gaps, a sample of errors); not in to_json.
    classes: list[str] | None = field(default=None, compare=False, repr=False)
    confusions: dict[str, np.ndarray] | None = field(default=None, compare=False, repr=False)
    predictions: str | None = field(default=None, compare=False, repr=False)  # folder of <split>.parquet rows
    # Always predicting train's most frequent class (classification with confusion matrices).
    baseline: Baseline | None = None
    # Why the measurement itself is in doubt (see `judge`); withheld: the verdict not shown because of them.
    doubts: tuple[str, ...] = field(default_factory=tuple)
    withheld: Verdict | None = None

    def per_class(self) -> list[ClassRow]:
        """Which classes drive each gap (see `class_breakdown`); needs a classification report that
        was evaluated here (the confusion matrices are not kept in the JSON)."""
        if self.metric != "error":
            raise ValueError(f"per_class: expected a classification report (metric 'error'), got metric {self.metric!r}")
        if not self.confusions:
            raise ValueError("per_class: expected a report with confusion matrices, got one read from JSON; "
                             "call diagnose.gaps on the model and data")
        return class_breakdown(self.confusions, self.classes)

    def _repr_html_(self) -> str:
        """The split and gap tables as HTML, for Jupyter; every text cell escaped."""
        from html import escape

        def num(v: float | None) -> str:
            if v is None or not math.isfinite(v):
                return "-"
            return f"{v * 100:.2f}%" if self.metric == "error" else f"{v:.4g}"

        rows = "".join(
            f"<tr><td>{escape(n)}</td><td>{s.n:,}</td><td>{num(s.error)}</td><td>[{num(s.ci[0])}, {num(s.ci[1])}]</td></tr>"
            for n, s in self.splits.items()
        )
        gaps = "".join(
            f"<tr><td>{escape(n)}</td><td>{num(g.value)}</td><td>[{num(g.ci[0])}, {num(g.ci[1])}]</td>"
            f"<td>{'yes' if g.significant else 'no'}</td></tr>"
            for n, g in self.gaps.items() if g is not None
        )
        advice = "".join(f"<li>{escape(a)}</li>" for a in self.verdict.advice)
        notes = "".join(f"<li>{escape(n)}</li>" for n in self.notes)
        problem = escape(self.verdict.problem or "no significant gap")
        return (
            "<div>" + "".join(f"<p><b>warning:</b> {escape(w)}</p>" for w in self.warnings)
            + f"<p><b>verdict:</b> {problem}</p>"
            f"<table><tr><th>split</th><th>n</th><th>{escape(self.metric)}</th><th>95% interval</th></tr>{rows}</table>"
            f"<table><tr><th>gap</th><th>value</th><th>95% interval</th><th>significant</th></tr>{gaps}</table>"
            f"<ul>{advice}</ul>" + (f"<p>notes</p><ul>{notes}</ul>" if notes else "") + "</div>"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "human_error": self.human_error,
            "splits": {name: s.to_json() for name, s in self.splits.items()},
            "gaps": {name: (g.to_json() if g else None) for name, g in self.gaps.items()},
            "verdict": self.verdict.to_json(),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "two_column": self.two_column.to_json() if self.two_column is not None else None,
            "baseline": self.baseline.to_json() if self.baseline is not None else None,
            "doubts": list(self.doubts),
            "verdict_withheld": self.withheld is not None,
            "withheld_verdict": self.withheld.to_json() if self.withheld is not None else None,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> GapReport:
        """The inverse of `to_json` after a JSON round trip, where NaN and inf were written as null.

        A null number comes back as NaN (an interval bound that was infinite, e.g. a one-item
        regression split's). Raises KeyError, TypeError, ValueError or IndexError on a malformed doc.
        """
        splits = {
            name: SplitResult(name=name, n=int(s["n"]), error=_num(s["error"]), ci=(_num(s["ci"][0]), _num(s["ci"][1])),
                              errors=s.get("errors"), sd=s.get("sd"))
            for name, s in doc["splits"].items()
        }
        gaps: dict[str, Gap | None] = {}
        for name, g in doc["gaps"].items():
            lower, upper = GAP_LEVELS[name]
            gaps[name] = None if g is None else Gap(
                name=name, lower=lower, upper=upper, value=_num(g["value"]), ci=(_num(g["ci"][0]), _num(g["ci"][1]))
            )
        verdict = Verdict(problem=doc["verdict"]["problem"], advice=tuple(doc["verdict"]["advice"]),
                          detail=doc["verdict"].get("detail"))
        table = doc.get("two_column")
        target = None
        if isinstance(table, dict):  # rebuilt from the splits and the two human levels it was made of
            target = two_column(splits, doc.get("human_error"), (table.get("human") or {}).get("target"),
                                gaps.get("data_mismatch"))
        base = doc.get("baseline")
        held = doc.get("withheld_verdict")
        withheld = None if not isinstance(held, dict) else Verdict(
            problem=held["problem"], advice=tuple(held["advice"]), detail=held.get("detail"))
        return cls(metric=doc["metric"], human_error=doc.get("human_error"), splits=splits, gaps=gaps, two_column=target,
                   verdict=verdict, notes=tuple(doc.get("notes") or ()), warnings=tuple(doc.get("warnings") or ()),
                   baseline=Baseline.from_json(base) if isinstance(base, dict) else None,
                   doubts=tuple(doc.get("doubts") or ()), withheld=withheld)


def check_human_error(value: object, metric: Metric | str, where: Path | str) -> float | None:
    """Human-level error for `metric`: a fraction in [0, 1) for error, a mean loss >= 0 for mse / mae.

    where: what to name in the message (an argument, a flag or a file). None passes through.
    """
    from diagnose.exceptions import UsageError

    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if metric == "error":
        if not 0.0 <= number < 1.0:
            raise UsageError(f"{where}: expected human-level error as a fraction in [0, 1), got {value}; write 0.01 for 1%")
    elif not (math.isfinite(number) and number >= 0.0):
        raise UsageError(
            f"{where}: expected human-level {metric} as a mean per-item loss >= 0, got {value}; "
            f"pass the {metric} a person (or the best known model) reaches"
        )
    return number


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def summarize_errors(name: str, errors: int, n: int) -> SplitResult:
    """A classification split: `errors` misclassified out of n, with its Wilson interval."""
    if n <= 0:
        raise ValueError(f"split {name!r} is empty")
    return SplitResult(name=name, n=n, error=errors / n, ci=wilson_interval(errors, n), errors=errors)


def summarize_values(name: str, mean: float, sd: float, n: int) -> SplitResult:
    """A regression split: mean per-item loss (squared or absolute error) and its normal interval."""
    if n <= 0:
        raise ValueError(f"split {name!r} is empty")
    lo, hi = mean_interval(mean, sd, n)
    return SplitResult(name=name, n=n, error=mean, ci=(max(0.0, lo), hi), sd=sd)


def _gap(name: str, lo: SplitResult, hi: SplitResult) -> Gap:
    if lo.errors is not None and hi.errors is not None:
        ci = newcombe_interval(lo.errors, lo.n, hi.errors, hi.n)
    else:
        ci = mean_difference_interval(lo.error, lo.sd or 0.0, lo.n, hi.error, hi.sd or 0.0, hi.n)
    lower, upper = GAP_LEVELS[name]
    return Gap(name=name, lower=lower, upper=upper, value=hi.error - lo.error, ci=ci)


def compute_gaps(
    splits: dict[str, SplitResult], *, human_error: float | None = None, metric: Metric = "error",
    human_error_target: float | None = None,
) -> GapReport:
    """Gaps between adjacent levels, the dominant significant one, and its prescriptions.

    splits: any subset of train, train_dev, dev, test (and train_target). A gap whose either level is
    missing is None. human_error_target: the human level on the target (dev/test) data; with it, or a
    train_target split, the report holds the two-column table, and a rise from train_dev to dev that
    the harder target data explains is not called data mismatch.
    """
    unknown = set(splits) - set(ALL_SPLITS)
    if unknown:
        raise ValueError(f"unknown split names {sorted(unknown)}; expected some of {SPLITS}")
    notes: list[str] = []
    gaps: dict[str, Gap | None] = dict.fromkeys(GAPS)

    train = splits.get("train")
    if train is not None and human_error is not None:
        # human_error is given, not estimated: the interval is train's interval shifted.
        gaps["avoidable_bias"] = Gap(
            name="avoidable_bias",
            lower="human",
            upper="train",
            value=train.error - human_error,
            ci=(train.ci[0] - human_error, train.ci[1] - human_error),
        )
    for name in GAPS[1:]:
        lower, upper = GAP_LEVELS[name]
        if lower in splits and upper in splits:
            gaps[name] = _gap(name, splits[lower], splits[upper])

    for split in SPLITS:
        if split not in splits:
            affected = [g for g, (lo, hi) in GAP_LEVELS.items() if split in (lo, hi)]
            notes.append(f"no {split} split: {', '.join(affected)} unknown")
    if human_error is None:
        if train is not None:
            notes.append(
                "avoidable bias unknown: pass --human-error (or human_error in DATA/diagnose.toml); "
                f"it is at most the train error, {_fmt(train.error, metric)}"
            )
        else:
            notes.append("avoidable bias unknown: no human-level error and no train split")
    if "train_dev" not in splits and "train" in splits and "dev" in splits:
        mixed = splits["dev"].error - splits["train"].error
        notes.append(
            f"without a train_dev split, dev - train = {_fmt(mixed, metric, signed=True)} mixes variance "
            "and data mismatch; hold out part of train as train_dev to tell them apart"
        )

    target = None
    if human_error_target is not None or TARGET_SPLIT in splits:
        target = two_column(splits, human_error, human_error_target, gaps["data_mismatch"])
    candidates = dict(gaps)
    detail = None
    raw = gaps["data_mismatch"]
    beyond = target.mismatch_beyond if target is not None else None
    if raw is not None and beyond is not None and target is not None and target.difficulty is not None:
        # Judge data mismatch by what the harder target data does not explain.
        candidates["data_mismatch"] = Gap("data_mismatch", raw.lower, raw.upper, beyond.value, beyond.ci)
        if raw.significant and raw.value > 0 and not (beyond.significant and beyond.value > 0) and target.difficulty > 0:
            detail = (
                f"The target data is harder: its human-level error is {_fmt(human_error_target, metric)} against "  # type: ignore[arg-type]
                f"{_fmt(human_error, metric)} on the training distribution ({_fmt(target.difficulty, metric, signed=True)}). "  # type: ignore[arg-type]
                f"Dev is {_fmt(raw.value, metric, signed=True)} above train-dev, and beyond what the harder data explains "
                f"it is {_fmt(beyond.value, metric, signed=True)} (95% CI {_fmt(beyond.ci[0], metric, signed=True)} to "
                f"{_fmt(beyond.ci[1], metric, signed=True)}): not a data mismatch to fix."
            )
    significant = [g for g in candidates.values() if g is not None and g.significant and g.value > 0]
    if significant:
        top = max(significant, key=lambda g: g.value)
        verdict = Verdict(problem=top.name, advice=ADVICE[top.name], detail=detail)
    elif detail is not None:
        verdict = Verdict(problem=None, advice=TARGET_HARDER_ADVICE, detail=detail)
    elif all(g is None for g in gaps.values()):
        verdict = Verdict(problem=None, advice=MISSING_LEVELS_ADVICE)
    else:
        verdict = Verdict(problem=None, advice=NO_GAP_ADVICE)
    return GapReport(
        metric=metric,
        human_error=human_error,
        splits={s: splits[s] for s in ALL_SPLITS if s in splits},
        gaps=gaps,
        verdict=verdict,
        notes=tuple(notes),
        two_column=target,
    )


def baseline_doubt(report: GapReport) -> str | None:
    """Why the model's train error is in doubt against the chance baseline, or None."""
    base = report.baseline
    train = report.splits.get("train")
    if base is None or base.better or train is None or "train" not in base.splits:
        return None
    name = f" ({base.name})" if base.name and base.name != str(base.label) else ""
    return (
        f"the model is not significantly better on train than always predicting train's most frequent class "
        f"{base.label}{name}: {_fmt(train.error, 'error')} error against {_fmt(base.splits['train'].error, 'error')} "
        f"(one-sided exact McNemar test on the train items, p = {base.p_value:.2g}, needs < {BASELINE_ALPHA:g})"
    )


def judge(report: GapReport, *, doubts: tuple[str, ...] = (), force: bool = False) -> GapReport:
    """The report with its verdict withheld while the measurement is in doubt.

    Doubts: the chance baseline (`baseline_doubt`), those already on the report and `doubts` (the
    input check, a training log that disagrees). With any and not `force`, the verdict and its
    prescriptions move to `withheld` and the verdict becomes CHECK_FIRST; with `force` the verdict
    stands and the doubts are still listed. Calling it again with more doubts keeps the first verdict.
    """
    from dataclasses import replace

    verdict = report.withheld or report.verdict
    found = [d for d in (baseline_doubt(report),) if d is not None]
    every = tuple(dict.fromkeys((*report.doubts, *found, *doubts)))
    if not every or force:
        return replace(report, verdict=verdict, withheld=None, doubts=every)
    return replace(report, verdict=Verdict(problem=None, advice=CHECK_FIRST), withheld=verdict, doubts=every)


def with_target(report: GapReport, human_error_target: float | None) -> GapReport:
    """The report with the target's human level: gaps, verdict and the two-column table recomputed
    from its splits (notes, warnings and the rest kept)."""
    from dataclasses import replace

    fresh = compute_gaps(report.splits, human_error=report.human_error, metric=report.metric,
                         human_error_target=human_error_target)
    redone = replace(report, gaps=fresh.gaps, verdict=fresh.verdict, two_column=fresh.two_column, withheld=None)
    return judge(redone, force=report.withheld is None and bool(report.doubts))


def _fmt(value: float, metric: Metric, signed: bool = False) -> str:
    if metric == "error":
        return f"{value * 100:+.1f} pts" if signed else f"{value * 100:.1f}%"
    if math.isfinite(value):
        return f"{value:+.4g}" if signed else f"{value:.4g}"
    return str(value)


# --------------------------------------------------------------------------- streamed tallies


@dataclass
class SplitCounts:
    """What a split's evaluation keeps in memory: counts, sums and a C x C confusion matrix.

    Filled batch by batch (`add_classes` or `add_losses`), so memory does not grow with the split.
    confusion[i, j] counts items of true class i predicted as j.
    """

    metric: Metric
    n: int = 0
    errors: int = 0
    loss_sum: float = 0.0
    loss_sq_sum: float = 0.0
    confusion: np.ndarray | None = None

    def add_classes(self, labels: np.ndarray, preds: np.ndarray, num_classes: int) -> None:
        """labels, preds: (B,) int class indices in [0, num_classes)."""
        labels = np.asarray(labels, dtype=np.int64)
        preds = np.asarray(preds, dtype=np.int64)
        if self.confusion is None:
            self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        elif self.confusion.shape[0] < num_classes:
            grown = np.zeros((num_classes, num_classes), dtype=np.int64)
            k = self.confusion.shape[0]
            grown[:k, :k] = self.confusion
            self.confusion = grown
        c = self.confusion.shape[0]
        self.confusion += np.bincount(labels * c + preds, minlength=c * c).reshape(c, c)
        self.n += int(len(labels))
        self.errors += int(np.count_nonzero(labels != preds))

    def add_losses(self, losses: np.ndarray) -> None:
        """losses: (B,) per-item squared or absolute errors (regression)."""
        v = np.asarray(losses, dtype=np.float64)
        self.n += int(len(v))
        self.loss_sum += float(v.sum())
        self.loss_sq_sum += float(np.square(v).sum())

    def merge(self, other: SplitCounts) -> SplitCounts:
        """Add another tally of the same metric (a shard of the same split) into this one."""
        if other.metric != self.metric:
            raise ValueError(f"cannot merge a {other.metric} tally into a {self.metric} tally")
        self.n += other.n
        self.errors += other.errors
        self.loss_sum += other.loss_sum
        self.loss_sq_sum += other.loss_sq_sum
        if other.confusion is not None:
            k = other.confusion.shape[0]
            if self.confusion is None:
                self.confusion = other.confusion.copy()
            else:
                size = max(k, self.confusion.shape[0])
                grown = np.zeros((size, size), dtype=np.int64)
                grown[: self.confusion.shape[0], : self.confusion.shape[0]] = self.confusion
                grown[:k, :k] += other.confusion
                self.confusion = grown
        return self

    def summary(self, name: str) -> SplitResult:
        if self.metric == "error":
            return summarize_errors(name, self.errors, self.n)
        mean = self.loss_sum / self.n if self.n else math.nan
        var = (self.loss_sq_sum - self.n * mean * mean) / (self.n - 1) if self.n > 1 else 0.0
        return summarize_values(name, mean, math.sqrt(max(var, 0.0)), self.n)


@dataclass(frozen=True)
class ClassRow:
    """One class: per-split n and error rate, and its share of each gap (points of the split error)."""

    index: int
    name: str
    n: dict[str, int]
    error: dict[str, float | None]
    contribution: dict[str, float | None]

    def to_json(self) -> dict[str, object]:
        return {"class": self.name, "index": self.index, "n": self.n, "error": self.error,
                "contribution": self.contribution}


def class_breakdown(confusions: dict[str, np.ndarray], classes: list[str] | None = None) -> list[ClassRow]:
    """Which classes drive each gap.

    A split's error is the sum over classes of (errors in class c) / n. The contribution of class c to
    the gap between adjacent splits lo and hi is errors_hi[c] / n_hi - errors_lo[c] / n_lo; the
    contributions of all classes add up to the gap exactly. avoidable_bias is left out: human error
    is not known per class.
    """
    size = max(m.shape[0] for m in confusions.values())
    per: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    for split, m in confusions.items():
        full = np.zeros((size, size), dtype=np.int64)
        full[: m.shape[0], : m.shape[1]] = m
        n_c = full.sum(axis=1)
        err_c = n_c - np.diag(full)
        per[split] = (n_c, err_c, int(full.sum()))
    rows = []
    for c in range(size):
        name = classes[c] if classes is not None and c < len(classes) else str(c)
        n = {s: int(v[0][c]) for s, v in per.items()}
        error = {s: (float(v[1][c] / v[0][c]) if v[0][c] else None) for s, v in per.items()}
        contribution: dict[str, float | None] = {}
        for gap in GAPS[1:]:
            lo, hi = GAP_LEVELS[gap]
            if lo in per and hi in per and per[lo][2] and per[hi][2]:
                contribution[gap] = float(per[hi][1][c] / per[hi][2] - per[lo][1][c] / per[lo][2])
            else:
                contribution[gap] = None
        rows.append(ClassRow(index=c, name=name, n=n, error=error, contribution=contribution))
    return rows
