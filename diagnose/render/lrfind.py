"""`diagnose lr-find` on the terminal (a short table of the rules) or as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RULE_NAMES = {
    "steepest": "steepest stable descent",
    "valley": "valley (middle of the descent)",
    "minimum_10": "minimum / 10",
    "divergence_10": "divergence / 10",
}


def result_document(res: Any, figure: Path | None = None) -> dict:
    doc = res.to_json()
    doc["start"] = getattr(res, "source", "")
    doc["optimizer"] = getattr(res, "optimizer", "")
    doc["figure"] = str(figure) if figure is not None else None
    return doc


def print_result(res: Any, title: str, *, json_out: bool, figure: Path | None, kept: str | None) -> None:
    from diagnose.render import print_json, stdout_console

    if json_out:
        print_json(result_document(res, figure))
        return
    from rich.table import Table

    con = stdout_console()
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("rule")
    table.add_column("rate", justify="right")
    table.add_column("why")
    for key, rule in res.rules.items():
        table.add_row(RULE_NAMES.get(key, key), f"{rule.lr:.2g}" if rule.lr is not None else "-", rule.why)
    con.print(table)
    con.print(f"Started from {getattr(res, 'source', '') or 'the model'}.")
    if res.suggested_lr is not None and res.range is not None:
        con.print(
            f"Suggested learning rate: [bold]{res.suggested_lr:.2g}[/bold] (the median of the rules); "
            f"range {res.range[0]:.2g} to {res.range[1]:.2g}."
        )
    else:
        con.print("[bold]No suggestion[/bold]: see the notes.")
    if res.diverged_at is not None:
        con.print(f"The loss diverged at {res.diverged_at:.2g}.")
    for note in res.notes:
        con.print(f"Note: {note}")
    if figure is not None:
        con.print(f"Figure: {figure}" + (f" (the file that was there is kept as {kept})" if kept else ""), soft_wrap=True)
