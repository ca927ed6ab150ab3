"""`diagnose errors` output: the summary of the misclassified items and the sheet written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diagnose.core.sampling import SUSPECT_RULE, ErrorsSummary  # noqa: F401  (the result type lives in core)
from diagnose.render import markdown_escape, markdown_table, pct

if TYPE_CHECKING:
    from rich.console import Console

PAIR_HEADERS = ("true", "predicted", "count", "share of errors")
# What a flagged row means, for people: see diagnose.core.labelissues.
SUSPECT_WHY = (
    "confident learning: another class passes its own threshold, the mean probability the model gives "
    "items labelled with that class"
)


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
    why = SUSPECT_WHY
    if s.thresholds_split is not None and s.thresholds_split != s.split:
        why += f", over {s.thresholds_split}, a split drawn like training"
    if s.neighbours:
        why += f"; and none of the {s.neighbours} most similar {s.split} items by the model's features carries the label"
    return (
        f"Suspect mislabels: {s.suspect} of {s.sample} rows ({why}); they are the first rows "
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
    return s.to_json()


def to_markdown(s: ErrorsSummary) -> str:
    text = "\n".join(markdown_escape(line) for line in lines(s)) + "\n"
    if s.pairs:
        text += "\n" + markdown_table(PAIR_HEADERS, pair_rows(s))
    extra = [x for x in (suspect_line(s), *s.notes, next_line(s)) if x]
    return text + ("\n" + "\n".join(f"- {markdown_escape(x)}" for x in extra) + "\n" if extra else "")
