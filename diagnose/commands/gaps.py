"""`diagnose gaps`: evaluate a model on train / train_dev / dev / test and say which gap holds it back."""

from __future__ import annotations

import contextlib
import enum
import math
import os
import shutil
from pathlib import Path
from typing import Any

import typer

from diagnose.exceptions import UsageError

NAME = "gaps"
HELP = (
    "Evaluate MODEL on the splits in DATA and show the bias / variance / data-mismatch table, "
    "the verdict and what to do about it."
)


class Metric(str, enum.Enum):
    error = "error"
    mse = "mse"
    mae = "mae"


class Device(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Precision(str, enum.Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def parse_floats(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise UsageError(f"{option}: expected comma-separated numbers like 0.485,0.456,0.406, got {text!r}; fix the list") from None
    if not values:
        raise UsageError(f"{option}: expected at least one number, got {text!r}; pass e.g. {option} 0.5")
    return values


def check_human_error(value: object, metric: str, where: Path | str) -> float | None:
    """Human-level error for `metric`: a fraction in [0, 1) for error, a mean loss >= 0 for mse / mae."""
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if metric == "error":
        if not 0.0 <= number < 1.0:
            raise UsageError(f"{where}: expected human-level error as a fraction in [0, 1), got {value}; write 0.01 for 1%")
    elif not (math.isfinite(number) and number >= 0.0):
        raise UsageError(
            f"{where}: expected human-level {metric} as a mean per-item loss >= 0, got {value}; "
            f"pass the {metric} a person (or the best known model) reaches"
        )
    return number


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().replace("x", ",").split(",")
    try:
        dims = [int(p) for p in parts if p.strip()]
    except ValueError:
        dims = []
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) <= 0:
        raise UsageError(f"--image-size: expected H,W or one size like 224, got {text!r}; pass e.g. --image-size 224,224")
    return dims[0], dims[1]



def command(
    model: Path | None = typer.Argument(None, readable=False, metavar="MODEL", help="Model file: TorchScript, torch.export .pt2, state dict, checkpoint, .safetensors, or a pickled module.", show_default=False),
    data: Path | None = typer.Argument(None, readable=False, metavar="DATA", help="Folder with train, train_dev, dev, test splits (.pt, .npz, .csv, .parquet or image folders).", show_default=False),
    *,
    human_error: float | None = typer.Option(None, "--human-error", help="Human-level (or best achievable) error as a fraction, e.g. 0.01. Default: human_error in DATA/diagnose.toml."),
    arch: str | None = typer.Option(None, "--arch", help="Architecture for weights-only files: package.module:factory or path/to/file.py:ClassName."),
    arch_kwargs: str | None = typer.Option(None, "--arch-kwargs", help="JSON object of keyword arguments for --arch, e.g. '{\"hidden\": 64}'."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow a whole pickled nn.Module (runs code stored in the file: only for files you trust)."),
    metric: Metric = typer.Option(Metric.error, "--metric", help="error (classification) or mse / mae (regression: gaps are differences of the mean)."),
    device: Device = typer.Option(Device.auto, "--device", help="Where the model runs: auto picks cuda, then mps, then cpu."),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="fp32, or bf16 / fp16 autocast."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Items per forward pass."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes decoding image folders (tensor and table files need none)."),
    max_items: int | None = typer.Option(None, "--max-items", min=1, help="Evaluate a seeded uniform sample of at most N items per split (intervals widen to match)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --max-items sample."),
    label_column: str = typer.Option("label", "--label-column", help="Label column in CSV / Parquet splits."),
    image_size: str | None = typer.Option(None, "--image-size", help="Resize images to H,W (or one number for square)."),
    mean: str | None = typer.Option(None, "--mean", help="Per-channel mean subtracted from image pixels in [0, 1], e.g. 0.485,0.456,0.406."),
    std: str | None = typer.Option(None, "--std", help="Per-channel standard deviation pixels are divided by, e.g. 0.229,0.224,0.225."),
    per_class: bool = typer.Option(False, "--per-class", help="Also show which classes drive each gap."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON (schema in the docs)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the report as Markdown."),
    workdir: Path = typer.Option(Path(".diagnose"), "--workdir", readable=False, help="Where per-item predictions and manifest.json are saved."),
    predictions: Path | None = typer.Option(None, "--predictions", readable=False, help="Read saved predictions (DIR/<split>.parquet with label and pred columns) instead of running a model."),
) -> None:
    from diagnose.render import print_json, stdout_console
    from diagnose.render.gaps import per_class_json, render_markdown, render_rich

    if json_out and markdown:
        raise UsageError("--json and --markdown: expected at most one output format, got both; pick one")
    human_error = check_human_error(human_error, metric.value, "--human-error")
    if per_class and metric != Metric.error:
        # Checked before evaluating: per-class gaps need classes.
        raise UsageError(f"--per-class: expected --metric error, got --metric {metric.value}; per-class gaps need classes")
    if predictions is not None:
        if model is not None:
            raise UsageError("--predictions: expected no MODEL (the predictions replace running one), got "
                             f"{model}; pass either MODEL DATA or --predictions DIR")
        report, rows = _from_predictions(predictions, metric=metric.value, human_error=human_error, per_class=per_class)
    else:
        if model is None or data is None:
            missing = "MODEL and DATA" if model is None else "DATA"
            raise UsageError(f"diagnose gaps: expected MODEL and DATA (or --predictions DIR), got no {missing}; "
                             "run e.g. diagnose gaps model.pt data/")
        report, rows = _evaluate(
            model, data, human_error=human_error, arch=arch, arch_kwargs=arch_kwargs, trust_pickle=trust_pickle,
            metric=metric.value, device=device.value, precision=precision.value, batch_size=batch_size,
            workers=workers, max_items=max_items, seed=seed, label_column=label_column,
            image_size=parse_image_size(image_size), mean=parse_floats(mean, "--mean"), std=parse_floats(std, "--std"),
            per_class=per_class, workdir=workdir, show_progress=not (json_out or markdown),
        )
        if report is None:  # a torchrun rank other than 0: rank 0 prints
            return
    if json_out:
        doc = report.to_json()
        if rows is not None:
            doc["per_class"] = per_class_json(report, rows)
        print_json(doc)
    elif markdown:
        import sys

        sys.stdout.write(render_markdown(report, rows))
    else:
        render_rich(stdout_console(), report, rows)


def _evaluate(
    model_path: Path, data: Path, *, human_error: float | None, arch: str | None, arch_kwargs: str | None,
    trust_pickle: bool, metric: str, device: str, precision: str, batch_size: int, workers: int,
    max_items: int | None, seed: int, label_column: str, image_size: tuple[int, int] | None,
    mean: list[float] | None, std: list[float] | None, per_class: bool, workdir: Path, show_progress: bool,
) -> tuple[Any, Any]:
    import torch

    from diagnose.core.gaps import class_breakdown, compute_gaps
    from diagnose.distributed import evaluate_split_sharded, finish, init_world
    from diagnose.evaluate import (
        evaluate_split,
        match_image_channels,
        probe_outputs,
        resolve_device,
        subsample,
    )
    from diagnose.io.models import arch_kwargs_from_json, load_model
    from diagnose.io.predictions import (
        PREDICTIONS,
        TOPK,
        PredictionWriter,
        check_writable_folder,
        predictions_path,
        write_manifest,
    )
    from diagnose.io.splits import SPLITS, load_dataset

    check_writable_folder(workdir, f"--workdir {workdir}")
    dev = resolve_device(device)
    # Under torchrun every rank evaluates its block of each split; rank 0 alone writes and prints.
    world = init_world(str(dev))
    if world.active and dev.type == "cuda":
        dev = torch.device("cuda", world.local_rank)
    show_progress = show_progress and world.is_main
    if precision == "fp16" and dev.type == "cpu":
        raise UsageError("--precision fp16: expected a GPU device, got the CPU; use --precision bf16 on a CPU")
    dataset = load_dataset(data, label_column=label_column, image_size=image_size, mean=mean, std=std, workers=workers)
    # The manifest's sha256 of each split file and of the model file are read in a thread while the
    # model loads and evaluates (hashlib releases the GIL): a 600 MB split took 0.35 s to hash, as long
    # as 20% of its evaluation. Rank 0 alone writes the manifest, so the other ranks hash nothing.
    from concurrent.futures import ThreadPoolExecutor

    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diagnose-sha256")
    digests = {n: hasher.submit(_split_digest, s.path) for n, s in dataset.splits.items()} if world.is_main else {}
    loaded = load_model(model_path, arch=arch, arch_kwargs=arch_kwargs_from_json(arch_kwargs),
                        trust_pickle=trust_pickle, device=str(dev))
    model_digest = hasher.submit(lambda: loaded.sha256) if world.is_main else None
    hasher.shutdown(wait=False)
    module = loaded.module
    dataset = match_image_channels(dataset, module)
    human = human_error if human_error is not None else check_human_error(
        dataset.human_error, metric, dataset.root / "diagnose.toml")

    first = next(iter(dataset.splits.values()))
    num_classes = None
    if metric == "error":
        num_classes = max(2, probe_outputs(module, first, dev, precision))  # type: ignore[arg-type]
    topk = min(TOPK, num_classes or 0)
    notes: list[str] = []
    evaluations = {}
    workdir = Path(workdir)
    # Files are written to a staging folder and moved in only when every split is done, so a failed
    # run never leaves predictions of one run beside a manifest of another.
    staging = workdir / f".run-{os.getpid()}"
    try:
        for name, split in dataset.splits.items():
            # Split names are canonical (find_splits): each split's sample is seeded by its level.
            indices = subsample(split.n, max_items, seed=seed, salt=SPLITS.index(name))
            if indices is not None:
                notes.append(f"{name}: evaluated a seeded sample of {len(indices):,} of {split.n:,} items (--max-items)")
            # One process is rank 0; under torchrun the other ranks write nothing.
            with (PredictionWriter(staging / f"{name}.parquet", regression=metric != "error", topk=topk)
                  if world.is_main else contextlib.nullcontext()) as writer:
                if world.active:
                    evaluations[name] = evaluate_split_sharded(
                        module, split, world=world, indices=indices, writer=writer, metric=metric,
                        batch_size=batch_size, num_classes=num_classes, topk=topk, device=dev, precision=precision,
                        show_progress=show_progress,
                    )
                else:
                    evaluations[name] = evaluate_split(
                        module, split, metric=metric, batch_size=batch_size, device=dev,  # type: ignore[arg-type]
                        precision=precision, indices=indices, writer=writer, num_classes=num_classes,  # type: ignore[arg-type]
                        show_progress=show_progress,
                    )
        if not world.is_main:
            finish(world)
            return None, None
        for name in SPLITS:
            target = predictions_path(workdir, name)
            if name in evaluations:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / f"{name}.parquet", target)
            else:  # a split this run did not see would mix two runs
                target.unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    summaries = {name: ev.tally.summary(name) for name, ev in evaluations.items()}
    classes = dataset.classes
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        notes.append(f"classes.txt names {len(classes)} classes but the model has {num_classes} outputs; "
                     "class names are shown by index where they do not fit")
    report = compute_gaps(summaries, human_error=human, metric=metric)  # type: ignore[arg-type]
    if notes:
        from dataclasses import replace

        report = replace(report, notes=tuple(notes) + report.notes)
    rows = None
    if per_class:
        rows = class_breakdown({n: ev.tally.confusion for n, ev in evaluations.items()}, classes)

    write_manifest(workdir, {
        "metric": metric,
        "model": {"path": str(model_path.resolve()), "sha256": model_digest.result(),  # type: ignore[union-attr]
                  "format": loaded.format},
        "data": {
            "path": str(Path(data).resolve()),
            "splits": {n: {"path": s.path.relative_to(dataset.root).as_posix() if s.path.is_relative_to(dataset.root) else str(s.path),
                           "format": s.format, "n": s.n, "sha256": digests[n].result()} for n, s in dataset.splits.items()},
        },
        "classes": classes,
        "num_classes": num_classes,
        "human_error": human,
        "device": str(dev),
        "precision": precision,
        "max_items": max_items,
        "seed": seed,
        "world_size": world.size,
        "splits": {
            n: {"file": f"{PREDICTIONS}/{n}.parquet", "n": ev.tally.n, "n_total": ev.n_total,
                **({"errors": ev.tally.errors} if metric == "error" else {}),
                "error": summaries[n].error, "seconds": round(ev.seconds, 3)}
            for n, ev in evaluations.items()
        },
        "report": report.to_json(),
    })
    finish(world)
    return report, rows


def _split_digest(path: Path) -> str | None:
    """sha256 of a split file; None for an image folder (thousands of files: listed by path instead)."""
    if path.is_file():
        from diagnose.io.digest import sha256_file

        return sha256_file(path)
    return None


def _from_predictions(directory: Path, *, metric: str, human_error: float | None, per_class: bool) -> tuple[Any, Any]:
    from diagnose.core.gaps import class_breakdown, compute_gaps
    from diagnose.io.predictions import prediction_files, read_manifest, tally_predictions
    from diagnose.io.splits import read_classes, read_config

    files = prediction_files(directory)
    manifest = read_manifest(directory) or {}
    classes = manifest.get("classes") or read_classes(directory) or read_classes(Path(directory).parent)
    if human_error is None and manifest.get("human_error") is not None:
        human_error = check_human_error(manifest["human_error"], metric, Path(directory) / "manifest.json")
    if human_error is None:
        human_error = check_human_error(read_config(Path(directory)).get("human_error"), metric,
                                        Path(directory) / "diagnose.toml")
    tallies = {name: tally_predictions(path, metric=metric, classes=classes) for name, path in files.items()}  # type: ignore[arg-type]
    report = compute_gaps({n: t.summary(n) for n, t in tallies.items()}, human_error=human_error, metric=metric)  # type: ignore[arg-type]
    rows = None
    if per_class:
        rows = class_breakdown({n: t.confusion for n, t in tallies.items()}, classes)
    return report, rows
