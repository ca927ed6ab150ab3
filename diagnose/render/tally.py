"""`diagnose tally` output: the table, its JSON and its Markdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diagnose.core.tally import TallyContext  # noqa: F401  (the result type lives in core)
from diagnose.render import markdown_escape, markdown_table, pct, pts

if TYPE_CHECKING:
    from rich.console import Console

    from diagnose.core.tally import SheetTally

HEADERS = ("category", "count", "share", "95% CI", "ceiling", "ceiling 95% CI")


def _range(lo: float, hi: float, as_points: bool = False) -> str:
    if as_points:
        return f"{lo * 100:.1f}\u2013{hi * 100:.1f} pts"
    return f"{lo * 100:.1f}\u2013{hi * 100:.1f}%"


def rows(tally: SheetTally) -> list[list[str]]:
    out = []
    for c in tally.categories:
        out.append(
            [
                c.name,
                str(c.count),
                pct(c.share),
                _range(*c.ci),
                pts(c.ceiling) if c.ceiling is not None else "",
                _range(*c.ceiling_ci, as_points=True) if c.ceiling_ci is not None else "",
            ]
        )
    return out


def headline(tally: SheetTally, ctx: TallyContext) -> str:
    split = ctx.split or "an unknown split"
    line = f"{ctx.sheet}: {tally.rows} rows of {split} errors"
    if tally.error is not None:
        line += f"; {split} error {pct(tally.error)} (from {ctx.error_source})"
    return line


def findings(tally: SheetTally, ctx: TallyContext) -> list[str]:
    """The sentences under the table: the multi-label note, the first category, distinguishability."""
    lines = []
    if tally.unmarked:
        what = "left out of the shares" if tally.skipped_unmarked else "counted in every share's denominator"
        finish = "finish the sheet" if tally.skipped_unmarked else "finish the sheet or pass --skip-unmarked"
        lines.append(
            f"{tally.unmarked} of {tally.rows + (tally.unmarked if tally.skipped_unmarked else 0)} rows have "
            f"no mark ({what}): if they fit no category, add one; if they were not looked at yet, {finish}."
        )
    if ctx.skipped_rows:
        lines.append(f"{ctx.skipped_rows} sum/total row(s) at the bottom of the sheet were skipped.")
    lines.append("An item may sit in several categories: shares need not sum to 100%.")
    first = tally.first
    if first is None:
        lines.append("No category has a mark yet: mark the rows, then tally again.")
        return lines
    lead = tally.categories[0]
    if lead.ceiling is not None and tally.error is not None:
        gain = (
            f": fixing all of it could take at most {pts(lead.ceiling)} off the {pct(tally.error)} "
            f"{ctx.split or ''} error".replace("  ", " ")
        )
    else:
        gain = ""
        lines.append("No ceilings: the split's error rate is unknown; pass --error, or run `diagnose gaps` first.")
    test = tally.leader_test
    if test is None or test.distinguishable:
        lines.append(f"Work on {first} first{gain}.")
        if test is not None:
            lines.append(
                f"{first} leads {test.runner_up} by {pts(test.difference)} "
                f"(95% CI {test.ci[0] * 100:.1f} to {test.ci[1] * 100:.1f} pts, paired on the same rows)."
            )
    else:
        tied = ", ".join(tally.tied_with_first)
        lines.append(
            f"{first} has the most marks{gain}, but it is not distinguishable from {tied} at {tally.rows} rows: "
            f"{first} - {test.runner_up} = {pts(test.difference)}, 95% CI {test.ci[0] * 100:.1f} to "
            f"{test.ci[1] * 100:.1f} pts (paired on the same rows)."
        )
        if test.rows_needed and ctx.split_errors is not None and test.rows_needed > ctx.split_errors:
            lines.append(
                f"About {test.rows_needed} rows would tell them apart if the shares hold, more than the "
                f"{ctx.split_errors} misclassified {ctx.split} items there are: treat them as equals and "
                "weigh them by cost to fix."
            )
        elif test.rows_needed:
            lines.append(
                f"About {test.rows_needed} rows would tell them apart if the shares hold "
                f"(diagnose errors --sample {test.rows_needed}); until then weigh them by cost to fix."
            )
        else:
            lines.append("Their counts are equal: choose by which is cheaper to fix.")
    if tally.note_words:
        words = ", ".join(f"{w} ({c})" for w, c in tally.note_words)
        lines.append(f"Frequent words in notes: {words} - a category the sheet lacks?")
    return lines


def render_table(console: Console, tally: SheetTally, ctx: TallyContext) -> None:
    from rich import box
    from rich.table import Table

    console.print(headline(tally, ctx), markup=False, soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for k, h in enumerate(HEADERS):
        if h.startswith("ceiling") and tally.error is None:
            continue
        table.add_column(h, justify="left" if k == 0 else "right")
    width = len(table.columns)
    for r in rows(tally):
        table.add_row(*r[:width])
    table.add_row("(no mark)", str(tally.unmarked), *[""] * (width - 2))
    console.print(table)
    for line in findings(tally, ctx):
        console.print(line, markup=False, soft_wrap=True)


def to_json(tally: SheetTally, ctx: TallyContext) -> dict[str, object]:
    """The issue's schema first (split, error, rows, unmarked, categories, first), then the extras."""
    test = tally.leader_test
    return {
        "split": ctx.split,
        "error": tally.error,
        "rows": tally.rows,
        "unmarked": tally.unmarked,
        "categories": [c.to_json() for c in tally.categories],
        "first": tally.first,
        "distinguishable": None if test is None else test.distinguishable,
        "leader_test": None if test is None else test.to_json(),
        "tied_with_first": list(tally.tied_with_first),
        "note_words": [{"word": w, "rows": c} for w, c in tally.note_words],
        "sheet": ctx.sheet,
        "error_source": ctx.error_source,
        "skipped_unmarked": tally.skipped_unmarked,
    }


def to_markdown(tally: SheetTally, ctx: TallyContext) -> str:
    headers = [h for h in HEADERS if tally.error is not None or not h.startswith("ceiling")]
    body = [r[: len(headers)] for r in rows(tally)]
    body.append(["(no mark)", str(tally.unmarked), *[""] * (len(headers) - 2)])
    text = markdown_escape(headline(tally, ctx)) + "\n\n" + markdown_table(headers, body) + "\n"
    return text + "\n".join(f"- {markdown_escape(line)}" for line in findings(tally, ctx)) + "\n"
