"""Health-check results (`diagnose sanity`, `diagnose data`) as a rich table, Markdown or JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from diagnose.core.checks import Check, checks_document, worst_status
from diagnose.render import markdown_escape, markdown_table, print_json

if TYPE_CHECKING:
    from rich.console import Console

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def _summary(checks: Sequence[Check]) -> str:
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("pass", "warn", "fail", "skip")}
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    return f"{worst_status(checks).upper()}: " + ", ".join(parts)


def render_table(
    console: Console, title: str, checks: Sequence[Check], verdicts: Sequence[dict[str, str]] = ()
) -> None:
    """One row per check (status, check id, evidence), then the advice of every warn / fail, then verdicts."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("evidence", overflow="fold")
    for c in checks:
        table.add_row(Text(c.status, style=STYLE[c.status]), c.id, Text(c.evidence))
    console.print(table)
    advised = [c for c in checks if c.status in ("warn", "fail") and c.advice]
    for c in advised:
        line = Text()
        line.append(f"{c.id} ({c.status}): ", style=STYLE[c.status])
        line.append(c.advice)
        console.print(line)
    if verdicts:
        console.print(Text("Split pairs:", style="bold"))
        for v in verdicts:
            line = Text("  ")
            line.append(f"{v['status']:<4}", style=STYLE[v["status"]])
            line.append(f"  {v['pair']}: {v['verdict']}")
            console.print(line)
    console.print(Text(_summary(checks), style=STYLE[worst_status(checks)]))


def render_markdown(title: str, checks: Sequence[Check], verdicts: Sequence[dict[str, str]] = ()) -> str:
    """A Markdown section: heading, table of checks, advice list, split-pair verdicts, summary line."""
    out = [f"### {markdown_escape(title)}\n\n", markdown_table(["status", "check", "evidence"], [[c.status, f"`{c.id}`", c.evidence] for c in checks])]
    advised = [c for c in checks if c.status in ("warn", "fail") and c.advice]
    if advised:
        out.append("\n" + "\n".join(f"- **{c.id}** ({c.status}): {markdown_escape(c.advice)}" for c in advised) + "\n")
    if verdicts:
        out.append("\n" + markdown_table(["pair", "status", "verdict"], [[v["pair"], v["status"], v["verdict"]] for v in verdicts]))
    out.append(f"\n**{_summary(checks)}**\n")
    return "".join(out)


def print_document(checks: Sequence[Check], **extra: Any) -> None:
    """The JSON document on stdout: {"checks": [...], "status": worst, ...extra}."""
    print_json(checks_document(checks, status=worst_status(checks), **extra))


def emit_checks(checks: Sequence[Check], title: str, *, json_out: bool, markdown: bool,
                verdicts: Sequence[dict[str, str]] = ()) -> None:
    """Print checks on stdout as JSON, Markdown or a rich table (`diagnose sanity`, `diagnose data`)."""
    import sys

    from diagnose.render import stdout_console

    if json_out:
        extra = {"verdicts": list(verdicts)} if verdicts else {}
        print_document(checks, **extra)
    elif markdown:
        sys.stdout.write(render_markdown(title, checks, verdicts))
    else:
        render_table(stdout_console(), title, checks, verdicts)
