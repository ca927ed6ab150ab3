"""`diagnose data`: split sizes, class balance, label and input shift, and leakage between splits,
with a one-line verdict per split pair. No model needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from diagnose.exceptions import UsageError
from diagnose.options import FailOn, parse_floats, parse_image_size

NAME = "data"
HELP = (
    "Check the splits in DATA: sizes and the smallest gap each can show, class balance, label and input "
    "shift between splits, items shared across splits (leakage), and a verdict per split pair."
)


def command(
    data: Path = typer.Argument(..., readable=False, help="Data folder with train / train_dev / dev / test splits (.pt, .npz, .csv, .parquet or image folders).", show_default=False),
    error_rate: float = typer.Option(0.1, "--error-rate", min=0.0, max=1.0, help="Error rate assumed when saying how small a gap each split can show."),
    batch_size: int = typer.Option(1024, "--batch-size", min=1, help="Items read at a time."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes decoding image folders."),
    label_column: str = typer.Option("label", "--label-column", help="Label column in CSV / Parquet splits."),
    image_size: str | None = typer.Option(None, "--image-size", help="Resize images to H,W (or one number for square) before hashing and statistics."),
    mean: str | None = typer.Option(None, "--mean", help="Mean subtracted from the inputs: one value, or one per channel (image pixels in [0, 1]) or per column of a table."),
    std: str | None = typer.Option(None, "--std", help="Standard deviation the inputs are divided by after --mean: one value, or one per channel or column."),
    channels: int | None = typer.Option(None, "--channels", min=1, max=3, help="Read images as 1 (grayscale) or 3 (RGB) channels; default: as the first image."),
    fail_on: FailOn | None = typer.Option(None, "--fail-on", help="Exit with code 3 when any check reaches this status (warn: warn or fail)."),
    json_out: bool = typer.Option(False, "--json", help="Print {\"checks\": [...], \"verdicts\": [...]} as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the checks as Markdown."),
) -> None:
    if json_out and markdown:
        raise UsageError("--json and --markdown: expected at most one output format, got both; pick one")
    from diagnose.io.settings import INPUT_KEYS, resolve

    # Options not typed come from DATA/diagnose.toml, then [tool.diagnose] in pyproject.toml.
    settings = resolve(data, label_column=label_column, image_size=parse_image_size(image_size),
                       mean=parse_floats(mean, "--mean"), std=parse_floats(std, "--std"))
    checks, verdicts, title = run_data_checks(
        data, error_rate=error_rate, batch_size=batch_size, workers=workers, label_column=settings.get("label_column"),
        image_size=settings.get("image_size"), mean=settings.get("mean"), std=settings.get("std"),
        channels=channels, show_progress=not (json_out or markdown),
    )
    where = settings.describe(INPUT_KEYS)
    if where:
        title = f"{title} ({where})"
    from diagnose.core.checks import gate_checks
    from diagnose.render.checks import emit_checks

    emit_checks(checks, title, json_out=json_out, markdown=markdown, verdicts=verdicts)
    gate_checks(checks, fail_on.value if fail_on else None, str(data))


def run_data_checks(
    data: Path, *, error_rate: float, batch_size: int, workers: int, label_column: str,
    image_size: tuple[int, int] | None, mean: list[float] | None, std: list[float] | None, channels: int | None,
    show_progress: bool,
) -> tuple[list[Any], list[dict[str, str]], str]:
    from diagnose.api import data_checks
    from diagnose.io.splits import load_dataset

    dataset = load_dataset(
        data, label_column=label_column, image_size=image_size, mean=mean, std=std, channels=channels, workers=workers
    )
    splits = dataset.splits
    checks, verdicts = data_checks(dataset, error_rate=error_rate, batch_size=batch_size, show_progress=show_progress)
    title = f"diagnose data: {data} ({', '.join(f'{n} {s.n:,}' for n, s in splits.items())})"
    return checks, verdicts, title
