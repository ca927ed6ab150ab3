"""`diagnose gaps` output: the level table, the verdict and its prescriptions, notes, per-class table."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from diagnose.core.gaps import BASELINE_ALPHA, GAP_LEVELS, GAPS, SPLITS, ClassRow, Gap, GapReport, SplitResult
from diagnose.render import markdown_escape, markdown_table, pct, pts

if TYPE_CHECKING:
    from rich.console import Console

LEVEL_NAMES = {"human": "human-level", "train": "train", "train_dev": "train-dev", "dev": "dev", "test": "test"}
GAP_NAMES = {
    "avoidable_bias": "avoidable bias",
    "variance": "variance",
    "data_mismatch": "data mismatch",
    "dev_overfit": "dev overfitting",
}
# The gap shown on each level's row: the one between it and the level above.
_ROW_GAP = {upper: name for name, (_, upper) in GAP_LEVELS.items()}


def _value(v: float | None, metric: str) -> str:
    if metric == "error":
        return pct(v)
    return f"{v:.4g}" if v is not None and math.isfinite(v) else ""


def _diff(v: float, metric: str) -> str:
    if not math.isfinite(v):
        return "?"
    return pts(v) if metric == "error" else f"{v:+.4g}"


def _ci(ci: Sequence[float], metric: str) -> str:
    lo, hi = ci
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    if metric == "error":
        return f"{lo * 100:.1f} – {hi * 100:.1f}"
    return f"{lo:.4g} – {hi:.4g}"


def _gap_text(gap: Gap | None, name: str, metric: str) -> str:
    if gap is None:
        return f"{GAP_NAMES[name]} unknown"
    text = f"{GAP_NAMES[name]} {_diff(gap.value, metric)}"
    return text if gap.significant else text + " (n.s.)"


def level_rows(report: GapReport) -> list[list[str]]:
    """Rows: level, n, error, 95% CI, gap, 95% CI of the gap."""
    m = report.metric
    rows: list[list[str]] = []
    if report.human_error is not None:
        rows.append([LEVEL_NAMES["human"], "", _value(report.human_error, m), "", "", ""])
    for split in SPLITS:
        s = report.splits.get(split)
        gap_name = _ROW_GAP[split]
        gap = report.gaps.get(gap_name)
        if s is None:
            rows.append([LEVEL_NAMES[split], "", "absent", "", f"{GAP_NAMES[gap_name]} unknown", ""])
            continue
        if gap_name == "avoidable_bias" and gap is None:
            gap_cell, gap_ci = "avoidable bias unknown", ""
        else:
            gap_cell = _gap_text(gap, gap_name, m)
            gap_ci = _ci(gap.ci, m) if gap is not None else ""
        rows.append([LEVEL_NAMES[split], f"{s.n:,}", _value(s.error, m), _ci(s.ci, m), gap_cell, gap_ci])
    base = report.baseline
    if base is not None:  # the chance baseline beside each level: its error (95% CI)
        for row in rows:
            level = next((k for k, v in LEVEL_NAMES.items() if v == row[0]), "")
            b = base.splits.get(level)
            row.append(f"{pct(b.error)} ({b.ci[0] * 100:.1f}–{b.ci[1] * 100:.1f})" if b is not None else "")
    return rows


HEADERS = ("level", "n", "error", "95% CI", "gap", "gap 95% CI")
BASELINE_HEADER = "majority class"


def level_headers(metric: str, report: GapReport | None = None) -> list[str]:
    h = list(HEADERS)
    if metric != "error":
        h[2] = metric
    if report is not None and report.baseline is not None:
        h.append(BASELINE_HEADER)
    return h


def baseline_lines(report: GapReport, escape: Callable[[str], str] = str) -> list[str]:
    """What the majority-class column is, and whether the model beats it on train; `escape` is applied
    to the class name, which comes from the input (markdown_escape for a Markdown document)."""
    base = report.baseline
    if base is None:
        return []
    name = f" ({escape(base.name)})" if base.name and base.name != str(base.label) else ""
    verdict = "better than it" if base.better else "not significantly better than it"
    p = "p < 0.0001" if base.p_value < 1e-4 else f"p = {base.p_value:.2g}"
    return [f"Majority class: the error of always predicting train's most frequent class, {base.label}{name} "
            f"(95% CI). On train the model is {verdict} (one-sided exact McNemar test, {p}, level {BASELINE_ALPHA:g})."]


def doubt_lines(report: GapReport) -> list[str]:
    """Why the verdict is withheld (or shown despite doubts, with --force-verdict)."""
    if not report.doubts:
        return []
    if report.withheld is not None:
        head = ("Verdict withheld: the numbers above may not measure the model as it was trained, so no gap "
                "is prescribed for (--force-verdict shows it anyway). Why:")
    else:
        head = "Verdict shown with --force-verdict despite:"
    return [head] + [f"- {d}" for d in report.doubts]


def two_column_rows(report: GapReport) -> list[list[str]]:
    """The table of two distributions: rows human-level, trained on, not trained on, and their gaps."""
    t = report.two_column
    if t is None:
        return []
    m = report.metric

    def cell(r: SplitResult | None, name: str) -> str:
        return f"{_value(r.error, m)} ({name})" if r is not None else f"absent ({name})"

    def gap(g: Gap | None) -> str:
        return "unknown" if g is None else _gap_value(g, m)

    rows = [
        ["human-level", _value(t.human, m) if t.human is not None else "unknown",
         _value(t.human_target, m) if t.human_target is not None else "unknown"],
        ["error on items trained on", cell(t.train, "train"), cell(t.train_target, "train_target")],
        ["error on items not trained on", cell(t.train_dev, "train_dev"), cell(t.dev, "dev")],
        ["avoidable bias (trained on - human)", gap(report.gaps.get("avoidable_bias")), gap(t.target_bias)],
        ["variance (not trained on - trained on)", gap(report.gaps.get("variance")), gap(t.target_variance)],
    ]
    return rows


def two_column_lines(report: GapReport) -> list[str]:
    t = report.two_column
    if t is None:
        return []
    m = report.metric
    lines = []
    if t.difficulty is not None:
        word = "harder" if t.difficulty > 0 else "easier" if t.difficulty < 0 else "as hard"
        lines.append(f"The target data is {word} for people: its human level is {_value(t.human_target, m)} "
                     f"against {_value(t.human, m)} on the training distribution.")
    if t.mismatch_beyond is not None:
        lines.append(f"Data mismatch beyond that difficulty (dev - train-dev - difficulty): {_gap_value(t.mismatch_beyond, m)}.")
    return lines


def _gap_value(g: Gap, metric: str) -> str:
    text = f"{_diff(g.value, metric)} ({_ci(g.ci, metric)})"
    return text if g.significant else text + " n.s."


TWO_COLUMN_HEADERS = ("", "general (train distribution)", "target (dev/test distribution)")


def verdict_lines(report: GapReport) -> list[str]:
    v = report.verdict
    if report.withheld is not None:
        return ["Verdict: withheld - check these first:"]
    if v.problem is None and all(g is None for g in report.gaps.values()):
        head = "Verdict: no gap can be computed from these splits."
    elif v.problem is None:
        head = "Verdict: no gap is significant."
    else:
        gap = report.gaps[v.problem]
        assert gap is not None
        head = (
            f"Verdict: {GAP_NAMES[v.problem]} is the largest significant gap "
            f"({_diff(gap.value, report.metric)}, 95% CI {_ci(gap.ci, report.metric)})."
        )
        others = [
            f"{GAP_NAMES[g.name]} {_diff(g.value, report.metric)}"
            for g in report.gaps.values()
            if g is not None and g.significant and g.value > 0 and g.name != v.problem
        ]
        beyond = report.two_column.mismatch_beyond if report.two_column is not None else None
        if v.problem == "data_mismatch" and beyond is not None:
            head = head[:-1] + f"; {_diff(beyond.value, report.metric)} once the target's own human level is allowed for."
        if others:
            head += f" Also significant: {', '.join(others)}."
    if v.detail:
        if v.problem is None:
            head = "Verdict: the target data is harder, not mismatched."
        return [head, v.detail]
    return [head]


def class_headers(report: GapReport, *, short: bool = False) -> list[str]:
    splits = [s for s in SPLITS if s in report.splits]
    gaps = [g for g in GAPS[1:] if report.gaps.get(g) is not None]
    suffix = "" if short else " error"
    return ["class"] + [f"{LEVEL_NAMES[s]}{suffix}" for s in splits] + [GAP_NAMES[g] for g in gaps]


def class_rows(report: GapReport, rows: list[ClassRow], *, with_n: bool = True) -> list[list[str]]:
    splits = [s for s in SPLITS if s in report.splits]
    gaps = [g for g in GAPS[1:] if report.gaps.get(g) is not None]
    out = []
    for r in rows:
        cells = [r.name]
        cells += [_value(r.error.get(s), "error") + (f" of {r.n[s]}" if with_n and r.n.get(s) else "") for s in splits]
        cells += [_signed_pts(r.contribution.get(g)) for g in gaps]
        out.append(cells)
    return out


def _signed_pts(v: float | None) -> str:
    return "" if v is None else f"{v * 100:+.1f}"


def drivers(report: GapReport, rows: list[ClassRow], top: int = 3) -> dict[str, list[dict[str, Any]]]:
    """For each gap: the classes that add most to it (largest positive contributions first)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for g in GAPS[1:]:
        if report.gaps.get(g) is None:
            continue
        ranked = sorted(rows, key=lambda r: -(r.contribution.get(g) or 0.0))
        out[g] = [
            {"class": r.name, "contribution": r.contribution[g]}
            for r in ranked[:top]
            if (r.contribution.get(g) or 0.0) > 0
        ]
    return out


def per_class_json(report: GapReport, rows: list[ClassRow]) -> dict[str, Any]:
    return {"classes": [r.to_json() for r in rows], "drivers": drivers(report, rows)}


def render_rich(console: Console, report: GapReport, rows: list[ClassRow] | None = None) -> None:
    from rich.table import Table

    for warning in report.warnings:
        console.print(f"Warning: {warning}", markup=False, soft_wrap=True, style="bold yellow")
    table = Table(show_edge=True, header_style="bold")
    for i, h in enumerate(level_headers(report.metric, report)):
        # Numbers never wrap; the gap's words may, so an 80-column terminal keeps every number whole.
        table.add_column(h, justify="right" if i in (1, 2) else "left", no_wrap=i != 4)
    for r in level_rows(report):
        table.add_row(*r)
    console.print(table)
    if report.two_column is not None:
        two = Table(show_edge=True, header_style="bold", title="Two distributions", title_justify="left")
        for i, h in enumerate(TWO_COLUMN_HEADERS):
            two.add_column(h, justify="left" if i == 0 else "right")
        for r in two_column_rows(report):
            two.add_row(*r)
        console.print(two)
        for line in two_column_lines(report):
            console.print(line, markup=False, soft_wrap=True)
    for line in baseline_lines(report) + doubt_lines(report) + verdict_lines(report):
        console.print(line, markup=False, soft_wrap=True)
    for i, advice in enumerate(report.verdict.advice, 1):
        console.print(f"  {i}. {advice}", markup=False, soft_wrap=True)
    if rows is not None:
        ct = Table(title="Per class: error in each split; each class's share of each gap (pts)", header_style="bold")
        headers = class_headers(report, short=True)
        n_splits = sum(1 for s in SPLITS if s in report.splits)
        for i, h in enumerate(headers):
            # Cells are short numbers (class sizes are in --json and --markdown); the gap headers may
            # wrap, so the table fits an 80-column terminal.
            ct.add_column(h, justify="left" if i == 0 else "right", no_wrap=i <= n_splits, min_width=5)
        for r in class_rows(report, rows, with_n=False):
            ct.add_row(*r)
        console.print(ct)
        for gap, items in drivers(report, rows).items():
            g = report.gaps[gap]
            if g is not None and g.significant and items:
                named = ", ".join(f"{d['class']} ({d['contribution'] * 100:+.1f})" for d in items)
                console.print(f"{GAP_NAMES[gap]} is driven most by classes {named}", markup=False, soft_wrap=True)
    for note in report.notes:
        console.print(f"Note: {note}", markup=False, soft_wrap=True)


def render_markdown(report: GapReport, rows: list[ClassRow] | None = None) -> str:
    parts = [f"> **Warning:** {markdown_escape(w)}\n" for w in report.warnings]
    parts += [markdown_table(level_headers(report.metric, report), level_rows(report)).rstrip("\n"), ""]
    if report.two_column is not None:
        parts += [markdown_table(TWO_COLUMN_HEADERS, two_column_rows(report)).rstrip("\n"), ""]
        parts += two_column_lines(report) + [""]
    extra = baseline_lines(report, markdown_escape) + doubt_lines(report)
    parts += extra + ([""] if extra else []) + verdict_lines(report)
    parts += [""] + [f"{i}. {a}" for i, a in enumerate(report.verdict.advice, 1)]
    if rows is not None:
        parts += ["", markdown_table(class_headers(report), class_rows(report, rows)).rstrip("\n")]
    if report.notes:
        parts += [""] + [f"- Note: {markdown_escape(n)}" for n in report.notes]
    return "\n".join(parts).rstrip("\n") + "\n"
