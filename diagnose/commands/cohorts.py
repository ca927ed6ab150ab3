"""`diagnose cohorts [WORKDIR] [--meta FILE]`: groups of items whose error rate is significantly above
the rest, from per-item metadata and image statistics. Options in, `cohorts.run_cohorts`, the cohorts out."""

from __future__ import annotations

from pathlib import Path

import typer

from diagnose import options as opt

NAME = "cohorts"
HELP = (
    "Find groups of items (slices of one or two conditions on metadata or image statistics) whose error rate is significantly "
    "above the rest: found on one half of the split, confirmed on the other."
)


def command(
    workdir: Path = typer.Argument(Path(".diagnose"), readable=False, metavar="[WORKDIR]",
                                   help="A `diagnose gaps` workdir, or a folder of <split>.parquet predictions."),
    meta: Path | None = typer.Option(None, "--meta", readable=False,
                                     help="CSV or Parquet of per-item columns, with an id or index column."),
    source: list[str] = typer.Option([], "--source", help="Which sources to search: meta, image (repeatable); default: all that apply."),
    data: Path | None = typer.Option(None, "--data", readable=False,
                                     help="The DATA folder whose images to measure; default: the one the workdir records."),
    split: str = typer.Option("dev", "--split", help="Which split's errors: train, train_dev, dev, test."),
    min_support: int | None = typer.Option(None, "--min-support", min=2,
                                           help="Fewest items in a slice; default: 1% of the split, at least 30."),
    seed: opt.Seed = opt.SEED,
    as_json: opt.Json = False,
    markdown: opt.Markdown = False,
) -> None:
    opt.one_format(as_json, markdown)
    from diagnose.cohorts import run_cohorts
    from diagnose.io.splits import canonical_split
    from diagnose.render import print_json, stdout_console
    from diagnose.render.cohorts import render_table, to_json, to_markdown

    found = run_cohorts(workdir, meta=meta, split=canonical_split(split), sources=tuple(source), seed=seed,
                        min_support=min_support, data=data)
    if as_json:
        print_json(to_json(found))
    elif markdown:
        typer.echo(to_markdown(found), nl=False)
    else:
        render_table(stdout_console(), found)
