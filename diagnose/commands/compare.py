"""`diagnose compare OLD NEW`: did it help? Error per split, per gap and per class, before and after."""

from __future__ import annotations

from pathlib import Path

import typer

from diagnose import options as opt

NAME = "compare"
HELP = (
    "Compare two runs on the same splits (two `diagnose gaps` workdirs or two prediction folders): "
    "old and new error, the change, its 95% interval and p-value, per split, per gap and per class."
)


def command(
    old: Path = typer.Argument(..., readable=False, metavar="OLD", help="The earlier run: a --workdir of diagnose gaps, or a folder of <split>.parquet predictions.", show_default=False),
    new: Path = typer.Argument(..., readable=False, metavar="NEW", help="The later run, in the same form.", show_default=False),
    *,
    human_error: float | None = typer.Option(None, "--human-error", min=0.0, max=0.999999, help="Human-level error for the avoidable-bias gap. Default: the runs' manifests."),
    split: str | None = typer.Option(None, "--split", help="Split whose per-class table is shown (default dev). --json holds every split."),
    allow_other_preprocessing: bool = typer.Option(False, "--allow-other-preprocessing", help="Compare runs whose manifests record different preprocessing (refused by default: the change would measure the preprocessing too)."),
    json_out: opt.Json = False,
    markdown: opt.Markdown = False,
) -> None:
    from diagnose import api
    from diagnose.exceptions import ArgumentError, UsageError
    from diagnose.io.splits import canonical_split
    from diagnose.render import print_json, stdout_console
    from diagnose.render.compare import render_markdown, render_rich

    opt.one_format(json_out, markdown)
    which = canonical_split(split) if split is not None else None
    try:
        cmp = api.compare(old, new, human_error=human_error, allow_other_preprocessing=allow_other_preprocessing)
    except ArgumentError as exc:  # the API names its arguments; here they are OLD, NEW and flags
        raise UsageError(exc.as_flag({"old": "OLD", "new": "NEW"}.get(exc.argument, "--" + exc.argument.replace("_", "-")))) from None
    if which is not None and which not in cmp.per_class:
        raise UsageError(f"--split {split}: expected a split both runs have ({', '.join(cmp.splits)}), got {which}; pick one of them")
    if json_out:
        print_json(cmp.to_json())
    elif markdown:
        import sys

        sys.stdout.write(render_markdown(cmp, split=which))
    else:
        render_rich(stdout_console(), cmp, split=which)
