"""`diagnose gaps`: evaluate a model on train / train_dev / dev / test and say which gap holds it back."""

from __future__ import annotations

from pathlib import Path

import typer

from diagnose import options as opt
from diagnose.exceptions import UsageError
from diagnose.options import Device, Metric, Precision, parse_floats, parse_image_size

NAME = "gaps"
HELP = (
    "Evaluate MODEL on the splits in DATA and show the bias / variance / data-mismatch table, "
    "the verdict and what to do about it."
)


def command(
    model: Path | None = typer.Argument(None, readable=False, metavar="MODEL", help="Model file: TorchScript, torch.export .pt2, state dict, checkpoint, .safetensors, or a pickled module.", show_default=False),
    data: Path | None = typer.Argument(None, readable=False, metavar="DATA", help="Folder with train, train_dev, dev, test splits (.pt, .npz, .csv, .parquet or image folders).", show_default=False),
    *,
    human_error: float | None = typer.Option(None, "--human-error", help="Human-level (or best achievable) error as a fraction, e.g. 0.01. Default: human_error in DATA/diagnose.toml."),
    human_error_target: float | None = typer.Option(None, "--human-error-target", help="Human-level error on the target (dev/test) data, when it differs from the training data's: adds the two-column table and tells harder target data from data mismatch. Default: human_error_target in the project settings."),
    arch: opt.Arch = None,
    arch_kwargs: opt.ArchKwargs = None,
    trust_pickle: opt.TrustPickle = False,
    trust_settings: opt.TrustSettings = False,
    app_dir: opt.AppDir = opt.APP_DIR,
    metric: Metric = typer.Option(Metric.error, "--metric", help="error (classification) or mse / mae (regression: gaps are differences of the mean)."),
    device: opt.DeviceOpt = Device.auto,
    precision: opt.PrecisionOpt = Precision.fp32,
    batch_size: opt.BatchSize = opt.BATCH_SIZE,
    workers: opt.Workers = 0,
    max_items: opt.MaxItems = None,
    seed: opt.Seed = opt.SEED,
    label_column: opt.LabelColumn = opt.LABEL_COLUMN,
    image_size: opt.ImageSize = None,
    mean: opt.Mean = None,
    std: opt.Std = None,
    standardize: opt.Standardize = None,
    transform: opt.Transform = None,
    per_class: bool = typer.Option(False, "--per-class", help="Also show which classes drive each gap."),
    json_out: opt.Json = False,
    markdown: opt.Markdown = False,
    workdir: opt.Workdir = opt.WORKDIR,
    predictions: Path | None = typer.Option(None, "--predictions", readable=False, help="Read saved predictions (DIR/<split>.parquet with label and pred columns) instead of running a model."),
    log: Path | None = typer.Option(None, "--log", readable=False, help="The training log of MODEL (CSV, JSON lines, TensorBoard, ...): warn when its last validation accuracy or loss disagrees with what is measured here."),
    log_split: str = typer.Option("train_dev", "--log-split", help="The split the log's validation set corresponds to: train_dev, or dev."),
    force_verdict: bool = typer.Option(False, "--force-verdict", help="Show the verdict and its prescriptions even when the model is no better than always predicting the most frequent class, or its inputs look unlike what it was trained on (then withheld, exit code 4)."),
    full_digest: bool = typer.Option(False, "--full-digest", help="Record a full sha256 of the model, split and predictions files in the manifest (default: a sampled fingerprint, milliseconds per file)."),
) -> None:
    from diagnose import api
    from diagnose.render import print_json, stdout_console
    from diagnose.render.gaps import per_class_json, render_markdown, render_rich

    opt.one_format(json_out, markdown)
    from diagnose.core.gaps import check_human_error
    from diagnose.io.settings import parse_arch_kwargs, resolve

    # Options not typed come from DATA/diagnose.toml, then [tool.diagnose] in pyproject.toml.
    settings = resolve(
        data if predictions is None else None, trust_settings=trust_settings, arch=arch, arch_kwargs=parse_arch_kwargs(arch_kwargs),
        mean=parse_floats(mean, "--mean"), std=parse_floats(std, "--std"), image_size=parse_image_size(image_size),
        label_column=label_column, human_error=human_error, human_error_target=human_error_target,
        standardize=standardize, transform=transform,
    )
    human_error = check_human_error(settings.get("human_error"), metric.value, settings.source("human_error") or "--human-error")
    human_error_target = check_human_error(settings.get("human_error_target"), metric.value,
                                           settings.source("human_error_target") or "--human-error-target")
    if per_class and metric != Metric.error:
        # Checked before evaluating: per-class gaps need classes.
        raise UsageError(f"--per-class: expected --metric error, got --metric {metric.value}; per-class gaps need classes")
    if predictions is not None:
        if model is not None:
            raise UsageError("--predictions: expected no MODEL (the predictions replace running one), got "
                             f"{model}; pass either MODEL DATA or --predictions DIR")
        report = api.gaps_from_predictions(predictions, metric=metric.value, human_error=human_error,
                                           force_verdict=force_verdict)
    else:
        if model is None or data is None:
            missing = "MODEL and DATA" if model is None else "DATA"
            raise UsageError(f"diagnose gaps: expected MODEL and DATA (or --predictions DIR), got no {missing}; "
                             "run e.g. diagnose gaps model.pt data/")
        from diagnose.io.outputs import WorkdirRun

        # The run is built beside the workdir and swapped in whole once its manifest is written, under a
        # lock: an interrupted, failed or concurrent run leaves the previous one as it was.
        with WorkdirRun(workdir) as run:
            report = api.gaps(
                model, data, human_error=human_error, human_error_target=human_error_target, arch=settings.get("arch"), arch_kwargs=settings.get("arch_kwargs"),
                trust_pickle=trust_pickle, app_dir=app_dir, metric=metric.value, device=device.value,
                precision=precision.value, batch_size=batch_size, workers=workers, max_items=max_items, seed=seed,
                label_column=settings.get("label_column"), image_size=settings.get("image_size"),
                mean=settings.get("mean"), std=settings.get("std"), classes=settings.get("classes"),
                workdir=run.staged, show_progress=not (json_out or markdown), full_digest=full_digest,
                force_verdict=force_verdict, standardize=settings.get("standardize"), transform=settings.get("transform"),
            )
            if report is None:  # a torchrun rank other than 0: rank 0 prints
                return
            run.publish()
    if predictions is not None and (human_error_target is not None or "train_target" in report.splits):
        from diagnose.core.gaps import with_target

        report = with_target(report, human_error_target)
    if log is not None:
        from dataclasses import replace

        from diagnose.inputcheck import check_log
        from diagnose.io.splits import canonical_split

        warning = check_log(log, report, split=canonical_split(log_split), data_kind=_data_kind(data))
        if warning:
            from diagnose.core.gaps import LOG_DOUBT, judge

            report = judge(replace(report, warnings=report.warnings + (warning,)), doubts=(LOG_DOUBT,),
                           force=force_verdict)
    rows = report.per_class() if per_class else None
    where = settings.describe(typed=True)  # the table's header: where each setting came from
    if json_out:
        doc = report.to_json()
        if rows is not None:
            doc["per_class"] = per_class_json(report, rows)
        doc["settings"] = settings.to_json()
        print_json(doc)
    elif markdown:
        import sys

        sys.stdout.write(render_markdown(report, rows) + (f"\n_{where}_\n" if where else ""))
    else:
        console = stdout_console()
        if where:
            console.print(where, markup=False, style="dim")
        render_rich(console, report, rows)
    if report.withheld is not None:
        from diagnose.exceptions import VerdictWithheld

        raise VerdictWithheld(
            f"{model or predictions}: expected a model measurably better than always predicting the most frequent "
            f"class, on inputs like those it was trained on, got {len(report.doubts)} reason(s) to doubt it (listed "
            "above); check preprocessing, labels, class mapping and checkpoint first, or pass --force-verdict"
        )


def _data_kind(data: Path | None) -> str:
    """images, table or tensor: the words the --log warning's likely causes are given in."""
    from diagnose.io.splits import find_splits

    if data is None or not data.is_dir():
        return "images"
    found = list(find_splits(data).values())
    if any(p.is_dir() for p in found):
        return "images"
    if found and all(p.suffix.lower() in (".csv", ".parquet") for p in found):
        return "table"
    return "tensor"
