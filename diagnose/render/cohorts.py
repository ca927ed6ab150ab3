"""`diagnose cohorts` output: the cohorts found, most significant first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diagnose.render import markdown_table, pct

if TYPE_CHECKING:
    from rich.console import Console

    from diagnose.core.cohorts import CohortSearch

HEADERS = ("cohort", "items", "error (95% CI)", "rest", "lift", "p (BH)")


def lines(s: CohortSearch) -> list[str]:
    head = (
        f"{s.split}: {s.errors} of {s.items} misclassified ({pct(s.errors / s.items if s.items else 0.0)}). "
        f"Searched {s.slices_tried:,} slices of one or two conditions on {len(s.columns)} columns, each of at least "
        f"{s.min_support} items; {s.found_first_half} passed on one half (Benjamini-Hochberg, 5% false discoveries)."
    )
    if not s.cohorts:
        return [head, "No cohort errs significantly more than the rest once confirmed on the other half."]
    return [head, f"{len(s.cohorts)} confirmed on the other half (error, interval and lift measured there):"]


def rows(s: CohortSearch) -> list[list[str]]:
    return [[c.description, f"{c.n:,}", f"{pct(c.error)} ({pct(c.ci[0])}\u2013{pct(c.ci[1])})", pct(c.rest_error),
             f"{c.lift:.2f}x", f"{c.p_adjusted:.2g}"] for c in s.cohorts]


def render_table(console: Console, s: CohortSearch) -> None:
    from rich import box
    from rich.table import Table

    for line in lines(s):
        console.print(line, markup=False, soft_wrap=True)
    if s.cohorts:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for k, h in enumerate(HEADERS):
            table.add_column(h, justify="left" if k == 0 else "right")
        for row in rows(s):
            table.add_row(*row)
        console.print(table)
    for note in s.notes:
        console.print(note, markup=False, soft_wrap=True)


def to_json(s: CohortSearch) -> dict[str, object]:
    return s.to_json()


def to_markdown(s: CohortSearch) -> str:
    text = "\n".join(lines(s)) + "\n"
    if s.cohorts:
        text += "\n" + markdown_table(HEADERS, rows(s))
    return text
