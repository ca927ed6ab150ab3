"""`diagnose errors`: a seeded sample of misclassified items as a sheet to mark (+ a contact sheet).

Options in, `errorsheet.run_errors`, the summary out. The work (reading predictions or evaluating
MODEL DATA, the seeded draw, the sheet, the contact sheet) lives in `diagnose.errorsheet`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from diagnose import options as opt
from diagnose.exceptions import UsageError
from diagnose.options import parse_floats, parse_image_size

NAME = "errors"
HELP = (
    "Sample misclassified items into a sheet to mark by hand (error_analysis.csv), with a contact "
    "sheet of the images; then count it with `diagnose tally`."
)

def command(
    model: Path | None = typer.Argument(None, readable=False, metavar="MODEL", help="A model to evaluate now (with DATA) instead of reading saved predictions."),
    data: Path | None = typer.Argument(None, readable=False, metavar="DATA", help="The DATA folder of splits, with MODEL."),
    split: str = typer.Option("dev", "--split", help="Which split's errors to sample: train, train_dev, dev, test."),
    sample: int = typer.Option(100, "--sample", min=1, help="Rows in the sheet: misclassified items drawn uniformly."),
    seed: opt.Seed = opt.SEED,
    workdir: opt.Workdir = opt.WORKDIR,
    predictions: Path | None = typer.Option(
        None, "--predictions", readable=False, help="A folder of <split>.parquet files or <split>/ shard folders written by any framework."
    ),
    out: Path = typer.Option(Path("error_analysis.csv"), "--out", readable=False, help="The sheet to write (the PNG goes beside it)."),
    categories: str | None = typer.Option(
        None, "--categories", help="Comma-separated category columns; default blurry,confusable,mislabeled,other."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a sheet that holds marks or notes (keeps a .bak copy)."),
    images: bool = typer.Option(True, "--images/--no-images", help="Draw the contact sheet PNG for image data."),
    neighbours: bool | None = typer.Option(
        None, "--neighbours/--no-neighbours",
        help="Flag a suspect only when none of its most similar items (by the model's features) carries its label; default: with MODEL DATA only.",
    ),
    batch_size: opt.BatchSize = opt.BATCH_SIZE,
    device: opt.DeviceOpt = opt.Device.auto,
    precision: opt.PrecisionOpt = opt.Precision.fp32,
    max_items: opt.MaxItems = None,
    arch: opt.Arch = None,
    trust_pickle: opt.TrustPickle = False,
    trust_settings: opt.TrustSettings = False,
    app_dir: opt.AppDir = opt.APP_DIR,
    arch_kwargs: opt.ArchKwargs = None,
    label_column: opt.LabelColumn = opt.LABEL_COLUMN,
    image_size: opt.ImageSize = None,
    mean: opt.Mean = None,
    std: opt.Std = None,
    as_json: opt.Json = False,
    markdown: opt.Markdown = False,
) -> None:
    opt.one_format(as_json, markdown)
    if (model is None) != (data is None):
        raise UsageError("expected MODEL and DATA together, got only MODEL; pass both, or neither to read saved predictions")
    if model is not None and predictions is not None:
        raise UsageError("expected MODEL DATA or --predictions DIR, got both; pass one source of predictions")
    from diagnose.errorsheet import parse_categories, run_errors
    from diagnose.io.splits import canonical_split

    split = canonical_split(split)
    cats = parse_categories(categories)
    out = Path(out)
    # How MODEL is loaded and DATA read: the same options as `diagnose gaps`, so the sheet's
    # predictions are the ones gaps counted.
    # Options not typed come from DATA/diagnose.toml, then [tool.diagnose] in pyproject.toml.
    import json

    from diagnose.io.settings import parse_arch_kwargs, resolve

    settings = resolve(data, trust_settings=trust_settings, arch=arch, arch_kwargs=parse_arch_kwargs(arch_kwargs), label_column=label_column,
                       image_size=parse_image_size(image_size), mean=parse_floats(mean, "--mean"),
                       std=parse_floats(std, "--std"))
    kwargs = settings.get("arch_kwargs")
    evaluation = {
        "device": device.value, "precision": precision.value, "max_items": max_items, "seed": seed,
        "batch_size": batch_size, "arch": settings.get("arch"), "arch_kwargs": json.dumps(kwargs) if kwargs else None,
        "trust_pickle": trust_pickle, "app_dir": app_dir, "label_column": settings.get("label_column"),
        "image_size": settings.get("image_size"), "mean": settings.get("mean"), "std": settings.get("std"),
    }

    summary = run_errors(
        model=model, data=data, split=split, sample=sample, seed=seed, workdir=workdir, predictions=predictions,
        out=out, cats=cats, force=force, images=images, evaluation=evaluation, neighbours=neighbours,
    )
    from diagnose.render import print_json, stdout_console
    from diagnose.render.errors import render_table, to_json, to_markdown

    if as_json:
        print_json(to_json(summary))
    elif markdown:
        typer.echo(to_markdown(summary), nl=False)
    else:
        render_table(stdout_console(), summary)
