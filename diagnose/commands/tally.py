"""`diagnose tally SHEET.csv`: count a marked error-analysis sheet; say which category to work on first.

Never imports torch (a test checks `sys.modules`): the sheet is read with the csv module and the
error rate comes from `.diagnose/manifest.json` or `--error`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from diagnose.exceptions import UsageError

NAME = "tally"
HELP = (
    "Count a marked error-analysis sheet: per category the count, share with a 95% interval and the "
    "ceiling on the error it explains; names the category to work on first."
)


def command(
    sheet: Path = typer.Argument(..., readable=False, metavar="SHEET", help="The error-analysis CSV, as saved back by the spreadsheet."),
    error: float | None = typer.Option(
        None, "--error", help="The split's error rate for the ceilings, 0.12 (12 is read as 12%); default: from the manifest."
    ),
    split: str | None = typer.Option(None, "--split", help="The split the sheet was drawn from; default: its split column."),
    workdir: Path = typer.Option(Path(".diagnose"), "--workdir", readable=False, help="Where `diagnose gaps` saved manifest.json."),
    categories: str | None = typer.Option(
        None, "--categories", help="Comma-separated category columns to count; default: every column diagnose did not write."
    ),
    skip_unmarked: bool = typer.Option(
        False, "--skip-unmarked", help="Leave rows with no mark out of the shares (a sheet labeled part-way)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the table."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table instead."),
) -> None:
    from diagnose import api
    from diagnose.io.splits import canonical_split
    from diagnose.render import print_json, stdout_console
    from diagnose.render.tally import render_table, to_json, to_markdown

    if as_json and markdown:
        raise UsageError("--json and --markdown: expected one output format, got both; pass one of them")
    wanted = [c.strip() for c in categories.split(",") if c.strip()] if categories else None
    if categories is not None and not wanted:
        raise UsageError(f"--categories: expected comma-separated names, got {categories!r}; pass e.g. blurry,mislabeled")
    if error is not None:
        if error > 1:
            error = error / 100  # 12 means 12%
        if not 0 <= error <= 1:
            raise UsageError(f"--error: expected a rate in [0, 1] (or a percentage), got {error}; pass e.g. 0.12")
    result = api.tally(sheet, error=error, split=canonical_split(split) if split is not None else None,
                       categories=wanted, skip_unmarked=skip_unmarked, workdir=workdir)
    ctx = result.context
    assert ctx is not None
    if error is not None:
        ctx = replace(ctx, error_source="--error")
    if as_json:
        print_json(to_json(result, ctx))
    elif markdown:
        typer.echo(to_markdown(result, ctx), nl=False)
    else:
        render_table(stdout_console(), result, ctx)
