"""`diagnose compare` output: per split, per gap and per class, old -> new, as rich tables or Markdown."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from diagnose.core.compare import PAIRED_TEST, Change, Comparison
from diagnose.core.gaps import GAPS
from diagnose.render import markdown_escape, markdown_table, pct
from diagnose.render.gaps import GAP_NAMES, LEVEL_NAMES

if TYPE_CHECKING:
    from rich.console import Console

METHOD = {
    PAIRED_TEST: "paired: exact McNemar test, Newcombe's paired interval",
    "newcombe_unpaired": "unpaired: Newcombe's hybrid score interval, pooled z-test",
}


def signed_pts(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return ""
    return f"{v * 100:+.1f} pts"


def p_text(p: float) -> str:
    if not math.isfinite(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def ci_text(ci: tuple[float, float]) -> str:
    return f"{ci[0] * 100:+.1f} – {ci[1] * 100:+.1f}"


def _word(c: Change) -> str:
    """The interval and the test agree (both at 95%): better / worse; only one of them: borderline."""
    sure = c.significant + (c.p_value < 0.05)
    if sure == 0:
        return "no clear change"
    direction = "better" if c.change < 0 else "worse"
    return direction if sure == 2 else f"borderline ({direction}?)"


def _n(c: Change) -> str:
    return f"{c.old.n:,}" if c.old.n == c.new.n else f"{c.old.n:,} / {c.new.n:,}"


def split_rows(cmp: Comparison) -> list[list[str]]:
    return [[LEVEL_NAMES.get(s, s), _n(c), pct(c.old.error), pct(c.new.error), signed_pts(c.change), ci_text(c.ci),
             p_text(c.p_value), _word(c)] for s, c in cmp.splits.items()]


def gap_rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    for g in GAPS:
        gc = cmp.gaps[g]

        def cell(gap: object) -> str:
            if gap is None:
                return "unknown"
            text = signed_pts(gap.value)  # type: ignore[attr-defined]
            return text if gap.significant else text + " (n.s.)"  # type: ignore[attr-defined]

        rows.append([GAP_NAMES[g], cell(gc.old), cell(gc.new), signed_pts(gc.change)])
    return rows


def class_rows(cmp: Comparison, split: str) -> list[list[str]]:
    return [[r.name, _n(r.change), pct(r.change.old.error), pct(r.change.new.error), signed_pts(r.change.change),
             ci_text(r.change.ci), p_text(r.change.p_value)] for r in cmp.per_class.get(split, [])]


SPLIT_HEADERS = ("split", "n", "old error", "new error", "change", "95% CI (pts)", "p", "")
GAP_HEADERS = ("gap", "old", "new", "change")
CLASS_HEADERS = ("class", "n", "old error", "new error", "change", "95% CI (pts)", "p")


def method_line(cmp: Comparison) -> str:
    tests = {c.test for c in cmp.splits.values()}
    if len(tests) == 1:
        return f"Method: {METHOD[tests.pop()]}."
    return "Method: " + "; ".join(f"{s} {METHOD[c.test].split(':')[0]}" for s, c in cmp.splits.items()) + "."


def headline(cmp: Comparison) -> str:
    key = "dev" if "dev" in cmp.splits else next(iter(cmp.splits))
    c = cmp.splits[key]
    old_v, new_v = cmp.verdict
    text = (f"{LEVEL_NAMES.get(key, key)} error {pct(c.old.error)} -> {pct(c.new.error)} "
            f"({signed_pts(c.change)}, 95% CI {ci_text(c.ci)}, p {p_text(c.p_value)}): {_word(c)}.")
    if old_v != new_v:
        text += f" Largest gap: {GAP_NAMES.get(old_v or '', 'none')} before, {GAP_NAMES.get(new_v or '', 'none')} after."
    elif old_v is not None:
        text += f" {GAP_NAMES[old_v].capitalize()} is still the largest gap."
    return text


def class_split(cmp: Comparison, split: str | None) -> str:
    if split is not None:
        return split
    return "dev" if "dev" in cmp.per_class else next(iter(cmp.per_class))


def render_rich(console: Console, cmp: Comparison, *, split: str | None = None) -> None:
    from rich.table import Table

    def table(title: str, headers: tuple[str, ...], rows: list[list[str]], left: int = 1) -> Table:
        t = Table(title=title, title_justify="left")
        for i, h in enumerate(headers):
            t.add_column(h, justify="left" if i < left else "right")
        for r in rows:
            t.add_row(*r)
        return t

    console.print(table("Error per split, old -> new", SPLIT_HEADERS, split_rows(cmp)))
    console.print(method_line(cmp))
    console.print(table("Gaps before and after", GAP_HEADERS, gap_rows(cmp)))
    which = class_split(cmp, split)
    console.print(table(f"Per class on {LEVEL_NAMES.get(which, which)}", CLASS_HEADERS, class_rows(cmp, which)))
    console.print(headline(cmp), markup=False)
    for note in cmp.notes:
        console.print(f"note: {note}", markup=False)


def render_markdown(cmp: Comparison, *, split: str | None = None) -> str:
    which = class_split(cmp, split)
    parts = [
        "## Error per split, old -> new\n", markdown_table(SPLIT_HEADERS[:-1] + ("verdict",), split_rows(cmp)),
        f"\n{markdown_escape(method_line(cmp))}\n",
        "\n## Gaps before and after\n", markdown_table(GAP_HEADERS, gap_rows(cmp)),
        f"\n## Per class on {LEVEL_NAMES.get(which, which)}\n", markdown_table(CLASS_HEADERS, class_rows(cmp, which)),
        f"\n{markdown_escape(headline(cmp))}\n",
    ]
    parts += [f"\n- {markdown_escape(n)}" for n in cmp.notes]
    return "".join(parts) + ("\n" if cmp.notes else "")
