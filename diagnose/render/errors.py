"""`diagnose errors` output: the summary of the misclassified items and the sheet written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from diagnose.render import markdown_table, pct

if TYPE_CHECKING:
    from rich.console import Console

PAIR_HEADERS = ("true", "predicted", "count", "share of errors")
SUSPECT_RULE = "confident_learning"
# What a flagged row means, for people: see diagnose.core.labelissues.
SUSPECT_WHY = (
    "confident learning: another class passes its own threshold, the mean probability the model gives "
    "items labelled with that class"
)


@dataclass(frozen=True)
class ErrorsSummary:
    split: str
    items: int
    errors: int
    error_ci: tuple[float, float]
    sample: int  # rows in the sheet
    asked: int  # --sample
    seed: int
    sheet: str
    contact_sheet: str | None
    categories: tuple[str, ...]
    pairs: tuple[tuple[str, str, int], ...]  # ten most-confused (true, predicted, count)
    suspect: int | None  # rows flagged suspect_mislabel (None: no confidence / p_label columns)
    source: str  # where the predictions came from
    backup: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    thresholds: dict[str, float] | None = None  # class name -> its confident-learning threshold
    confusion_png: str | None = None
    grown: tuple[tuple[str, str, float, float, int], ...] = ()  # (true, pred, before, after, count), largest first
    confusion_splits: tuple[str, ...] = ()  # the splits the confusion image shows

    @property
    def error(self) -> float:
        return self.errors / self.items if self.items else 0.0


def lines(s: ErrorsSummary) -> list[str]:
    out = [
        f"{s.split}: {s.errors} of {s.items} misclassified ({pct(s.error)}, 95% CI "
        f"{pct(s.error_ci[0])}\u2013{pct(s.error_ci[1])}); predictions from {s.source}",
    ]
    if s.errors == 0:
        out.append("Nothing to analyse: no item is misclassified, so no sheet was written.")
        return out
    if s.sample < s.asked:
        out.append(f"Sample: all {s.sample} misclassified items (fewer than --sample {s.asked}).")
    else:
        out.append(f"Sample: {s.sample} of {s.errors} misclassified items, uniform at random (seed {s.seed}).")
    if s.backup:
        out.append(f"Kept the previous sheet as {s.backup}.")
    written = f"Wrote {s.sheet} ({s.sample} rows; categories {', '.join(s.categories)}; one column each, plus note)"
    if s.contact_sheet:
        written += f" and {s.contact_sheet} (tile numbers = column n)"
    out.append(written + ".")
    if s.confusion_png:
        out.append(f"Wrote {s.confusion_png} (confusion matrices of {' and '.join(s.confusion_splits)}, row-normalized).")
    line = grown_line(s)
    if line:
        out.append(line)
    return out


def grown_line(s: ErrorsSummary) -> str | None:
    """The confusions that grew most from the first split drawn to the second."""
    if not s.grown or len(s.confusion_splits) < 2:
        return None
    a, b = s.confusion_splits[0], s.confusion_splits[-1]
    cells = "; ".join(f"{t} \u2192 {p} from {pct(x)} to {pct(y)}" for t, p, x, y, _ in s.grown[:3])
    return f"Confusions that grew most from {a} to {b} (share of the true class): {cells}."



def suspect_line(s: ErrorsSummary) -> str | None:
    if s.errors == 0:
        return None
    if s.suspect is None:
        return "Suspect mislabels: unknown (the predictions carry no confidence / p_label columns)."
    return (
        f"Suspect mislabels: {s.suspect} of {s.sample} rows ({SUSPECT_WHY}); they are the first rows "
        "of the sheet, most likely first (label_issue_score): check their labels first."
    )


def next_line(s: ErrorsSummary) -> str | None:
    if s.errors == 0:
        return None
    return f"Next: mark each row's categories (x) in a spreadsheet, then `diagnose tally {s.sheet}`."


def pair_rows(s: ErrorsSummary) -> list[list[str]]:
    return [[a, b, str(c), pct(c / s.errors if s.errors else 0.0)] for a, b, c in s.pairs]


def render_table(console: Console, s: ErrorsSummary) -> None:
    from rich import box
    from rich.table import Table

    for line in lines(s):
        console.print(line, markup=False, soft_wrap=True)
    if s.pairs:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Most-confused pairs", title_justify="left")
        for k, h in enumerate(PAIR_HEADERS):
            table.add_column(h, justify="left" if k < 2 else "right")
        for row in pair_rows(s):
            table.add_row(*row)
        console.print(table)
    for extra in (suspect_line(s), *s.notes, next_line(s)):
        if extra:
            console.print(extra, markup=False, soft_wrap=True)


def to_json(s: ErrorsSummary) -> dict[str, object]:
    return {
        "split": s.split,
        "items": s.items,
        "errors": s.errors,
        "error": s.error,
        "error_ci": [s.error_ci[0], s.error_ci[1]],
        "sample": s.sample,
        "sample_asked": s.asked,
        "all_errors": s.sample == s.errors,
        "seed": s.seed,
        "sheet": s.sheet if s.errors else None,
        "contact_sheet": s.contact_sheet,
        "confusion_png": s.confusion_png,
        "confusion_splits": list(s.confusion_splits),
        "grown_confusions": [
            {"label": t, "pred": p, "before": x, "after": y, "growth": y - x, "count": n} for t, p, x, y, n in s.grown
        ],
        "backup": s.backup,
        "categories": list(s.categories),
        "pairs": [{"label": a, "pred": b, "count": c} for a, b, c in s.pairs],
        "suspect_mislabel": s.suspect,
        "suspect_rule": SUSPECT_RULE,
        "suspect_thresholds": s.thresholds,
        "source": s.source,
        "notes": list(s.notes),
    }


def to_markdown(s: ErrorsSummary) -> str:
    text = "\n".join(lines(s)) + "\n"
    if s.pairs:
        text += "\n" + markdown_table(PAIR_HEADERS, pair_rows(s))
    extra = [x for x in (suspect_line(s), *s.notes, next_line(s)) if x]
    return text + ("\n" + "\n".join(f"- {x}" for x in extra) + "\n" if extra else "")
