"""`diagnose data`: split sizes, class balance, label and input shift, and leakage between splits,
with a one-line verdict per split pair. No model needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from diagnose.commands.gaps import parse_floats, parse_image_size
from diagnose.commands.sanity import FailOn, emit_checks, gate_checks
from diagnose.exceptions import UsageError

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
    mean: str | None = typer.Option(None, "--mean", help="Per-channel mean subtracted from image pixels in [0, 1]."),
    std: str | None = typer.Option(None, "--std", help="Per-channel standard deviation pixels are divided by."),
    channels: int | None = typer.Option(None, "--channels", min=1, max=3, help="Read images as 1 (grayscale) or 3 (RGB) channels; default: as the first image."),
    fail_on: FailOn | None = typer.Option(None, "--fail-on", help="Exit with code 3 when any check reaches this status (warn: warn or fail)."),
    json_out: bool = typer.Option(False, "--json", help="Print {\"checks\": [...], \"verdicts\": [...]} as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the checks as Markdown."),
) -> None:
    if json_out and markdown:
        raise UsageError("--json and --markdown: expected at most one output format, got both; pick one")
    checks, verdicts, title = run_data_checks(
        data, error_rate=error_rate, batch_size=batch_size, workers=workers, label_column=label_column,
        image_size=parse_image_size(image_size), mean=parse_floats(mean, "--mean"), std=parse_floats(std, "--std"),
        channels=channels, show_progress=not (json_out or markdown),
    )
    emit_checks(checks, title, json_out=json_out, markdown=markdown, verdicts=verdicts)
    gate_checks(checks, fail_on.value if fail_on else None, str(data))


def run_data_checks(
    data: Path, *, error_rate: float, batch_size: int, workers: int, label_column: str,
    image_size: tuple[int, int] | None, mean: list[float] | None, std: list[float] | None, channels: int | None,
    show_progress: bool,
) -> tuple[list[Any], list[dict[str, str]], str]:
    from diagnose.core import datachecks as dc
    from diagnose.io.splits import load_dataset
    from diagnose.progress import progress_bar

    dataset = load_dataset(
        data, label_column=label_column, image_size=image_size, mean=mean, std=std, channels=channels, workers=workers
    )
    splits = dataset.splits
    summaries: dict[str, dc.InputSummary] = {}
    hashes: dict[str, dc.ItemHashes] = {}
    total = sum(s.n for s in splits.values())
    with progress_bar("reading splits", total=total, enabled=show_progress) as advance:
        for name, split in splits.items():
            summary, h = dc.InputSummary(), dc.ItemHashes()
            for batch in split.batches(batch_size):
                x = batch.x.numpy()
                summary.update(x)
                h.update(x)
                advance(len(x))
            summaries[name], hashes[name] = summary, h
    labels = {name: split.labels() for name, split in splits.items()}
    import numpy as np

    from diagnose.exceptions import DataError

    for name, lab in labels.items():  # class counts need indices >= 0 (`diagnose gaps` refuses them too)
        arr = np.asarray(lab)
        if arr.dtype.kind in "iu" and len(arr) and int(arr.min()) < 0:
            raise DataError(
                f"{splits[name].path}: expected class indices >= 0, got {int(arr.min())} ({int((arr < 0).sum())} of "
                f"{len(arr)} items); -1 often marks unlabeled items: drop them or give them a class"
            )
    ids = {name: split.ids() for name, split in splits.items()}
    checks = [
        dc.check_split_sizes({name: s.n for name, s in splits.items()}, error_rate=error_rate),
        dc.check_class_balance(labels, dataset.classes),
        dc.check_label_shift(labels, dataset.classes),
        dc.check_input_shift(summaries),
        dc.check_leakage(hashes, ids, labels),
    ]
    verdicts = dc.pair_verdicts(list(splits), checks)
    title = f"diagnose data: {data} ({', '.join(f'{n} {s.n:,}' for n, s in splits.items())})"
    return checks, verdicts, title
