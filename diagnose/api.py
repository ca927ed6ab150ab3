"""The Python API: what a notebook or a script calls. The commands are one caller of these functions.

Every function takes in-memory objects as well as paths, imports torch, pandas or matplotlib only
when it runs, and returns a typed result from `diagnose.core` (with `to_json`). Errors name the
arguments (`max_items: expected ...`); the command line shows its flags instead.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diagnose.arguments import RULES as _RULES
from diagnose.arguments import checked, integer, number, optional
from diagnose.defaults import BATCH_SIZE, DEVICE, LABEL_COLUMN, PRECISION, SEED
from diagnose.exceptions import ArgumentError, SheetError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from diagnose.core.checks import Check, SanityChecks
    from diagnose.core.compare import Comparison
    from diagnose.core.curves import Curves
    from diagnose.core.gaps import GapReport, Metric
    from diagnose.core.lrfind import LRFindResult
    from diagnose.core.tally import SheetTally
    from diagnose.errorsheet import ErrorSheet
    from diagnose.evaluate import Precision
    from diagnose.io.digest import FileDigest
    from diagnose.io.splits import Dataset

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- gaps


@checked
def gaps(
    model: torch.nn.Module | PathLike,
    splits: Mapping[str, Any] | PathLike,
    *,
    human_error: float | None = None,
    human_error_target: float | None = None,
    metric: Metric = "error",
    device: str = DEVICE,
    precision: Precision = PRECISION,
    batch_size: int = BATCH_SIZE,
    max_items: int | None = None,
    seed: int = SEED,
    classes: list[str] | None = None,
    workdir: PathLike | None = None,
    arch: str | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    trust_pickle: bool = False,
    app_dir: PathLike | None = None,
    label_column: str = LABEL_COLUMN,
    image_size: tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    workers: int = 0,
    show_progress: bool = False,
    full_digest: bool = False,
    force_verdict: bool = False,
    standardize: str | None = None,
    transform: Callable[[Any], Any] | str | None = None,
) -> GapReport:
    """Evaluate `model` on train / train_dev / dev / test and measure the gaps between them.

    An nn.Module is measured in eval mode (dropout off, batch norm on its running statistics) under
    `torch.inference_mode()`, whatever mode it was left in, and given back unchanged: each
    submodule's training flag, its device, its parameters and buffers (diagnose.measuring).

    model: an nn.Module, or a model file (TorchScript, torch.export, state dict with `arch`,
    safetensors, a pickled module with trust_pickle=True). splits: a DATA folder, or a dict of split
    name -> DataLoader, Dataset, (x, y) tensors or arrays, or a split file. human_error: a fraction
    in [0, 1) (default: human_error in DATA/diagnose.toml). human_error_target: the human level on the
    target (dev/test) data; with it (or a train_target split) the report holds the two-column table.
    max_items: evaluate a seeded sample of at most that many items per split. workdir: where the per-item
    predictions and manifest.json go
    (default: a temporary folder that lives as long as the report, for `sample_errors`).
    full_digest: record a full sha256 of the model, split and predictions files in the manifest, beside
    the sampled fingerprint recorded by default (io.digest).

    `.baseline` holds the error of always predicting train's most frequent class on each split. When
    the model is not significantly better than that on train, or the batch-norm input check says the
    train split is not what the model was trained on, the verdict is withheld (`.withheld` holds it,
    `.doubts` says why, `.verdict.advice` what to check first); force_verdict=True keeps it.

    mean, std: image folders are normalized as decoded (pixels in [0, 1]); tensor, array and table
    splits on their values as read, one value or one per feature (column, channel). standardize:
    "train" computes each feature's mean and std over the train split (as StandardScaler fitted on
    train). transform: a function from a batch x (B, ...) float32 tensor to the batch the model takes,
    or "module:function" / "path/to/file.py:function" from your own code (imported like `arch`),
    applied after mean/std. The manifest records the preprocessing and its values.

    Returns a GapReport: `.verdict`, `.splits["dev"].error`, `.gaps["variance"].ci`, `.to_json()`,
    `.per_class()`. Under torchrun, ranks other than 0 get None.
    """
    from diagnose.core.gaps import (
        INPUT_CHECK_DOUBT,
        check_human_error,
        compute_gaps,
        judge,
        majority_baseline,
    )
    from diagnose.evaluate import evaluate_model
    from diagnose.io.digest import digest_file
    from diagnose.io.manifest import DataRecord, Manifest, ModelRecord, SplitFile, SplitRun, write_manifest
    from diagnose.io.memory import as_dataset
    from diagnose.io.predictions import PREDICTIONS

    human_error = check_human_error(human_error, metric, "human_error")
    human_error_target = check_human_error(human_error_target, metric, "human_error_target")
    dataset = as_dataset(splits, classes=classes, batch_size=batch_size, label_column=label_column, image_size=image_size,
                         mean=list(mean) if mean is not None else None, std=list(std) if std is not None else None,
                         workers=workers, standardize=standardize, transform=transform, app_dir=app_dir)
    if classes is not None:
        dataset.classes = list(classes)
    owned = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="diagnose-")) if owned else Path(workdir)  # type: ignore[arg-type]
    hashes = _hash_files(dataset, full=full_digest) if not owned else {}
    loaded: dict[str, Any] = {}

    def load(dev: str) -> torch.nn.Module:
        from diagnose.io.models import load_model

        if isinstance(model, (str, os.PathLike)):
            loaded["model"] = load_model(Path(model), arch=arch, arch_kwargs=arch_kwargs, trust_pickle=trust_pickle,
                                         device=dev, app_dir=app_dir)
            return loaded["model"].module
        if hasattr(model, "forward") and callable(model):
            return model
        raise ArgumentError("model", f"expected an nn.Module or a model file path, got {type(model).__name__}; pass one of those")

    # A module of the caller's goes to evaluate_model itself, which measures it in eval mode and gives
    # it back as it was (diagnose.measuring); the loader is for model files.
    import torch

    source: Any = model if isinstance(model, torch.nn.Module) else load
    try:
        evaluation = evaluate_model(source, dataset, metric=metric, device=device, precision=precision,
                                    batch_size=batch_size, max_items=max_items, seed=seed, workdir=folder,
                                    show_progress=show_progress)
    except BaseException:
        if owned:  # nothing will ever read the temporary predictions of a failed run
            _remove_tree(folder)
        raise
    if evaluation is None:
        return None  # type: ignore[return-value]
    human = human_error if human_error is not None else check_human_error(
        dataset.human_error, metric, dataset.root / "diagnose.toml")
    summaries = {name: ev.tally.summary(name) for name, ev in evaluation.splits.items()}
    notes = list(evaluation.notes)
    classes_ = dataset.classes
    if classes_ is not None and evaluation.num_classes is not None and len(classes_) != evaluation.num_classes:
        notes.append(f"classes.txt names {len(classes_)} classes but the model has {evaluation.num_classes} outputs; "
                     "class names are shown by index where they do not fit")
    report = compute_gaps(summaries, human_error=human, metric=metric, human_error_target=human_error_target)
    confusions = {n: ev.tally.confusion for n, ev in evaluation.splits.items() if ev.tally.confusion is not None}
    # The preprocessing trap: is the train split what the model's batch norm saw in training?
    from diagnose.inputcheck import input_statistics_warning

    module = loaded["model"].module if "model" in loaded else model
    warning = input_statistics_warning(module, dataset.splits.get("train"), device=evaluation.device)
    baseline = majority_baseline(confusions, classes_) if metric == "error" else None
    report = replace(report, notes=tuple(notes) + report.notes, classes=classes_, confusions=confusions or None,
                     predictions=str(folder / PREDICTIONS), warnings=(warning,) if warning else (), baseline=baseline)
    report = judge(report, doubts=(INPUT_CHECK_DOUBT,) if warning else (), force=force_verdict)
    if owned:
        weakref.finalize(report, _remove_tree, folder)
        return report

    record = loaded.get("model")
    model_record = ModelRecord(
        path=str(Path(model).resolve()) if isinstance(model, (str, os.PathLike)) else None,
        sha256=record.sha256 if record is not None and full_digest else None,
        fingerprint=record.fingerprint if record is not None else None,
        format=record.format if record is not None else "module",
    )
    split_digests = {n: f.result() for n, f in hashes.items()}
    predictions = {n: digest_file(folder / PREDICTIONS / f"{n}.parquet", full=full_digest) for n in evaluation.splits}
    root = dataset.root
    on_disk = root.is_dir()
    write_manifest(folder, Manifest(
        metric=metric, model=model_record,
        data=DataRecord(
            path=str(root.resolve()) if on_disk else None,
            splits={n: SplitFile(path=_relative(s.path, root) if on_disk else None, format=s.format, n=s.n,
                                 sha256=split_digests[n].sha256 if n in split_digests else None,
                                 fingerprint=split_digests[n].fingerprint if n in split_digests else None)
                    for n, s in dataset.splits.items()},
        ),
        preprocessing=_preprocessing_record(dataset, image_size=image_size, mean=mean, std=std),
        classes=classes_, num_classes=evaluation.num_classes, human_error=human, device=evaluation.device,
        precision=precision, max_items=max_items, seed=seed, world_size=evaluation.world_size,
        splits={n: SplitRun(file=f"{PREDICTIONS}/{n}.parquet", n=ev.tally.n, n_total=ev.n_total,
                            errors=ev.tally.errors if metric == "error" else None, error=summaries[n].error,
                            seconds=round(ev.seconds, 3), sha256=predictions[n].sha256, fingerprint=predictions[n].fingerprint)
                for n, ev in evaluation.splits.items()},
        report=report.to_json(),
    ))
    return report


def _preprocessing_record(dataset: Dataset, *, image_size: tuple[int, int] | None, mean: Sequence[float] | None,
                          std: Sequence[float] | None) -> dict[str, Any]:
    """What the model was fed, for the manifest: image decoding and tensor or table preprocessing."""
    out: dict[str, Any] = {}
    if dataset.preprocessing is not None:
        out = dataset.preprocessing.to_json()
    if any(s.format == "images" for s in dataset.splits.values()):
        out["images"] = {"image_size": list(image_size) if image_size else None,
                         "mean": list(mean) if mean is not None else None, "std": list(std) if std is not None else None}
    if dataset.transform is not None:
        out["transform"] = dataset.transform
    return out if "kind" in out else {"kind": "none", **out}


def _remove_tree(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _hash_files(dataset: Dataset, *, full: bool) -> dict[str, Future[FileDigest]]:
    """The manifest's digest of each split file, read in a thread while the model loads and evaluates
    (hashlib releases the GIL). Image folders (thousands of files) are listed by path instead."""
    from concurrent.futures import ThreadPoolExecutor

    from diagnose.distributed import launched_by_torchrun
    from diagnose.io.digest import digest_file

    if launched_by_torchrun() and os.environ.get("RANK", "0") != "0":
        return {}  # rank 0 alone writes the manifest
    files = {n: s.path for n, s in dataset.splits.items() if s.path.is_file()}
    if not files:
        return {}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diagnose-digest")
    futures = {n: pool.submit(digest_file, p, full=full) for n, p in files.items()}
    pool.shutdown(wait=False)
    return futures


@checked
def gaps_from_predictions(
    predictions: PathLike, *, metric: Metric = "error", human_error: float | None = None,
    classes: list[str] | None = None, force_verdict: bool = False,
) -> GapReport:
    """The gaps of saved predictions: a folder of `<split>.parquet` files (or `<split>/` shards) with
    `label` and `pred` columns, from `diagnose gaps` or any framework. The chance baseline and the
    withheld verdict as in `gaps`."""
    from diagnose.core.gaps import check_human_error, compute_gaps, judge, majority_baseline
    from diagnose.io.manifest import read_manifest
    from diagnose.io.predictions import prediction_files, tally_predictions
    from diagnose.io.splits import read_classes, read_config

    directory = Path(predictions)
    files = prediction_files(directory)
    manifest = read_manifest(directory)
    classes = classes or (manifest.classes if manifest else None) or read_classes(directory) or read_classes(directory.parent)
    human_error = check_human_error(human_error, metric, "human_error")
    if human_error is None and manifest is not None and manifest.human_error is not None:
        human_error = check_human_error(manifest.human_error, metric, directory / "manifest.json")
    if human_error is None:
        human_error = check_human_error(read_config(directory).get("human_error"), metric, directory / "diagnose.toml")
    tallies = {name: tally_predictions(path, metric=metric, classes=classes) for name, path in files.items()}
    report = compute_gaps({n: t.summary(n) for n, t in tallies.items()}, human_error=human_error, metric=metric)
    confusions = {n: t.confusion for n, t in tallies.items() if t.confusion is not None}
    folder = directory if not (directory / "predictions").is_dir() else directory / "predictions"
    baseline = majority_baseline(confusions, classes) if metric == "error" else None
    report = replace(report, classes=classes, confusions=confusions or None, predictions=str(folder), baseline=baseline)
    return judge(report, force=force_verdict)


# --------------------------------------------------------------------------- errors and tally


@checked
def sample_errors(
    source: GapReport | PathLike, *, split: str = "dev", n: int = 100, seed: int = 0,
    classes: list[str] | None = None,
) -> ErrorSheet:
    """A seeded uniform sample of `n` misclassified items of `split`, as a DataFrame with one row per
    item (the columns of the error-analysis sheet). source: a GapReport from `gaps`, a `diagnose gaps`
    workdir, or a folder of predictions. `.to_sheet("errors.csv")` writes the sheet to mark by hand."""
    from diagnose.errorsheet import sample_from_predictions

    if n < 1:
        raise ArgumentError("n", f"expected at least 1 item, got {n}; pass e.g. n=100")
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
    elif source.predictions is not None:
        folder = Path(source.predictions)
        classes = classes or source.classes
    else:
        raise ArgumentError("source", "expected a report from diagnose.gaps or a predictions folder, got a report "
                            "read from JSON (it has no per-item predictions); pass the workdir of the run")
    return sample_from_predictions(folder, split=split, n=n, seed=seed, classes=classes)


@checked(split=optional(_RULES["split"]))
def tally(
    sheet: pd.DataFrame | PathLike, *, error: float | None = None, split: str | None = None,
    categories: Sequence[str] | None = None, skip_unmarked: bool = False, workdir: PathLike | None = None,
) -> SheetTally:
    """Count a marked error-analysis sheet (a CSV path or a DataFrame of its rows): per category the
    count, share and the ceiling on the error it explains. error: the split's error rate (fraction);
    without it, read from the manifest of `workdir` (a `diagnose gaps` work folder) or the `.diagnose/`
    beside the sheet, for `split` (default: the sheet's split column). `.context` says where each came from."""
    from diagnose.io.sheet import tally_sheet

    if error is not None and not 0.0 <= float(error) <= 1.0:
        raise ArgumentError("error", f"expected the split's error rate as a fraction in [0, 1], got {error}; write 0.12 for 12%")
    wanted = list(categories) if categories else None
    options: dict[str, Any] = {"error": error, "error_source": "error" if error is not None else None, "split": split,
                               "categories": wanted, "skip_unmarked": skip_unmarked}
    if isinstance(sheet, (str, os.PathLike)):
        return tally_sheet(Path(sheet), workdir=Path(workdir) if workdir is not None else None, **options)
    # A DataFrame: read through the same reader as the CSV, so one set of rules applies.
    with tempfile.TemporaryDirectory(prefix="diagnose-tally-") as tmp:
        path = Path(tmp) / "sheet.csv"
        sheet.to_csv(path, index=False)
        try:
            result = tally_sheet(path, workdir=Path(workdir) if workdir is not None else None, **options)
        except SheetError as exc:
            raise SheetError(exc.message.replace(str(path), "sheet (a DataFrame)")) from None
    assert result.context is not None
    return replace(result, context=replace(result.context, sheet="sheet (a DataFrame)"))


# --------------------------------------------------------------------------- compare


@checked(old=_RULES["predictions"], new=_RULES["predictions"], human_error=optional(number(0.0, 1.0, 0.01, hi_open=True)),
         allow_other_preprocessing=_RULES["show_progress"])
def compare(old: PathLike, new: PathLike, *, human_error: float | None = None,
            allow_other_preprocessing: bool = False) -> Comparison:
    """Did it help? Two runs on the same splits (two `diagnose gaps` workdirs, or two folders of
    `<split>.parquet` predictions), compared per split, per gap and per class: the change in error,
    its 95% interval and p-value (McNemar's exact test when the items pair up, else Newcombe's
    interval for two proportions). human_error: given, else the new run's, else the old run's.
    Runs of different tasks, predictions that no longer match their manifest, and empty splits are refused;
    so are runs whose manifests record other preprocessing (mean/std, standardization, a transform),
    unless allow_other_preprocessing=True."""
    from diagnose.io.compare import compare_paths

    return compare_paths(Path(old), Path(new), human_error=human_error,
                         allow_other_preprocessing=allow_other_preprocessing)


# --------------------------------------------------------------------------- checks


@checked
def check_data(
    splits: Mapping[str, Any] | PathLike, *, error_rate: float = 0.1, batch_size: int = 1024,
    classes: list[str] | None = None, label_column: str = "label", image_size: tuple[int, int] | None = None,
    mean: Sequence[float] | None = None, std: Sequence[float] | None = None, workers: int = 0,
    standardize: str | None = None,
) -> list[Check]:
    """Checks of the splits before trusting any number measured on them: sizes, class balance,
    label and input shift, leakage between splits. splits, mean, std, standardize: as for `gaps`."""
    from diagnose.io.memory import as_dataset

    dataset = as_dataset(splits, classes=classes, batch_size=batch_size, label_column=label_column, image_size=image_size,
                         mean=list(mean) if mean is not None else None, std=list(std) if std is not None else None,
                         workers=workers, standardize=standardize)
    checks, _ = data_checks(dataset, error_rate=error_rate, batch_size=batch_size)
    return checks


def data_checks(
    dataset: Dataset, *, error_rate: float = 0.1, batch_size: int = 1024, show_progress: bool = False,
) -> tuple[list[Check], list[dict[str, str]]]:
    """The checks of `check_data` on a loaded Dataset, and the verdict of each pair of splits."""
    import numpy as np

    from diagnose.core import datachecks as dc
    from diagnose.exceptions import DataError
    from diagnose.progress import progress_bar

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
    return checks, dc.pair_verdicts(list(splits), checks)


@checked
def sanity(
    model: torch.nn.Module | Callable[[], torch.nn.Module] | PathLike | None,
    train: Any,
    *,
    split: str = "train", batch: int = 16, steps: int = 500, lr: float = 3e-3, items: int = 2048,
    gradcheck_coords: int = 48, seed: int = 0, device: str = "auto", arch: str | None = None,
    arch_kwargs: dict[str, Any] | None = None, trust_pickle: bool = False, app_dir: PathLike | None = None,
    label_column: str = LABEL_COLUMN, image_size: tuple[int, int] | None = None, mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None, only: Sequence[str] | None = None, skip: Sequence[str] = (),
    show_progress: bool = False,
) -> SanityChecks:
    """The pre-training checklist on `model` with items of `train`: initial loss near chance, one
    batch overfit, gradients against finite differences, activations and gradient flow.

    model: an nn.Module, a factory that builds a fresh one (needed for the checks on fresh weights),
    a model file, or None with `arch` (a fresh model of that design). train: a DataLoader, a Dataset,
    (x, y) arrays, a split file, or a DATA folder (its `split` split). only / skip: check ids.
    Returns the checks (a list), with `.model_format` and `.split` for the title.

    Training mode on purpose: the overfit and gradient checks train copies (dropout off); the forward
    passes that measure run in eval mode. An nn.Module passed in is copied first and never changed."""
    import torch

    from diagnose import checklist as sn
    from diagnose.core.checks import SanityChecks
    from diagnose.evaluate import resolve_device
    from diagnose.io.splits import canonical_split
    from diagnose.progress import progress_bar

    sn.select_checks(only, skip)  # an unknown check id fails before any work
    dev = str(resolve_device(device))
    name = canonical_split(split)
    dataset = _training_data(train, name, label_column=label_column, image_size=image_size, mean=mean, std=std)
    torch.manual_seed(seed)
    fresh: torch.nn.Module | None = None
    eager = None
    if model is None or isinstance(model, (str, os.PathLike)):
        if model is None and arch is None:
            raise ArgumentError("model", "expected a model file or an arch, got neither; pass one")
        from diagnose.io.models import load_model

        path = Path(model) if model is not None else None
        loaded = load_model(path, arch=arch, arch_kwargs=arch_kwargs, trust_pickle=trust_pickle, device=dev,
                            app_dir=app_dir)
        module, fmt = loaded.module, loaded.format
        sn.check_arch_fits(module, fmt, arch=arch, arch_kwargs=arch_kwargs, what=path.name if path else "MODEL")
        torch.manual_seed(seed)
        fresh, source = sn.fresh_weights(module, arch=arch, arch_kwargs=arch_kwargs, fmt=fmt)
        eager = sn.eager_twin(module, arch=arch, arch_kwargs=arch_kwargs)
    elif isinstance(model, torch.nn.Module):
        # The checks run on a copy: the caller's module keeps its device, modes, weights and buffers.
        module, fmt = sn.copy_model(model).to(dev), "module"
        fresh = sn.reinitialise(model)
        source = "the module re-initialised" if fresh is not None else ""
    elif callable(model):  # a factory: the fresh model is the design itself
        module, fmt = model().to(dev), "module"
        fresh, source = model().to(dev), "a freshly built model"
    else:
        raise ArgumentError("model", f"expected an nn.Module, a factory or a model file, got {type(model).__name__}; "
                            "pass one of those")
    data = _split_for(dataset, name, module, asked=split)
    fresh = fresh.to(dev) if fresh is not None else None
    eager = eager.to(dev) if eager is not None else None
    with progress_bar("sanity checks", total=len(sn.CHECK_IDS), enabled=show_progress) as advance:
        checks = sn.run_checks(module, data, fresh=fresh, fresh_source=source, fmt=fmt, eager=eager,
                               batch=batch, steps=steps, lr=lr, items=items, gradcheck_coords=gradcheck_coords, seed=seed,
                               device=dev, advance=advance, only=only, skip=skip)
    return SanityChecks(checks, model_format=fmt, split=name)


# --------------------------------------------------------------------------- lr-find


@checked
def lr_find(
    model: torch.nn.Module | PathLike | None,
    train: Any,
    *,
    arch: str | None = None, arch_kwargs: dict[str, Any] | None = None, trust_pickle: bool = False,
    app_dir: PathLike | None = None, split: str = "train", optimizer: str = "sgd", momentum: float = 0.9,
    weight_decay: float | None = None, start: float = 1e-7, end: float = 10.0, steps: int = 100, batch_size: int = 64,
    repeats: int = 3, seed: int = 0, device: str = "auto", label_column: str = LABEL_COLUMN,
    image_size: tuple[int, int] | None = None, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
    show_progress: bool = False,
) -> LRFindResult:
    """The learning-rate range test, `repeats` sweeps from `start` to `end` over `steps` mini-batches
    of `train`, and the rate it suggests (`.suggested_lr`, `.range`, `.rules`, `.to_json()`).

    model: None with `arch` (fresh weights, a new draw per sweep), an nn.Module or a model file
    (fine-tuning from its weights; never changed: the sweeps train copies in training mode, and an
    nn.Module passed in keeps its device, modes, weights and buffers). train: a DataLoader, a Dataset, (x, y) arrays, a
    split file, or a DATA folder (its `split` split)."""
    import math

    import torch

    from diagnose.checklist import _probe, eager_twin
    from diagnose.evaluate import resolve_device
    from diagnose.io.splits import canonical_split
    from diagnose.lrfind import lr_find as sweep_rates
    from diagnose.lrfind import starting_weights
    from diagnose.progress import progress_bar

    for arg, value in (("start", start), ("end", end)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ArgumentError(arg, f"expected a finite, positive learning rate, got {value!r}; pass e.g. start=1e-7, end=10")
    if end <= start:
        raise ArgumentError("start", f"expected a rate below end {end:g}, got {start:g}; pass e.g. start=1e-7, end=10")
    name = canonical_split(split)
    dev = resolve_device(device)
    dataset = _training_data(train, name, label_column=label_column, image_size=image_size, mean=mean, std=std)
    torch.manual_seed(seed)
    if isinstance(model, torch.nn.Module):
        from diagnose.checklist import copy_model

        module, fresh = copy_model(model).to(dev), False  # a copy: the caller's module keeps its device
    elif model is None and arch is None:
        raise ArgumentError("model", "expected a model file, an nn.Module or an arch, got none of them; pass one")
    else:
        from diagnose.io.models import load_model

        path = Path(model) if model is not None else None
        loaded = load_model(path, arch=arch, arch_kwargs=arch_kwargs, trust_pickle=trust_pickle, device=str(dev),
                            app_dir=app_dir)
        if path is not None and not loaded.trainable:
            raise ArgumentError("model", f"expected weights that can be trained, got a {loaded.format} program; pass the "
                                "state dict with an arch (or the arch alone for fresh weights)", value=path)
        twin = eager_twin(loaded.module, arch=arch, arch_kwargs=arch_kwargs)  # TorchScript with an arch: train the eager twin
        module, fresh = (twin if twin is not None else loaded.module), path is None
    data = _split_for(dataset, name, module, asked=split)
    _probe(module, data, next(data.batches(8)).x.to(dev), data.labels())
    make, source = starting_weights(module, fresh=fresh, arch=arch, arch_kwargs=arch_kwargs, app_dir=app_dir)
    with progress_bar("lr-find sweeps", total=steps * repeats, enabled=show_progress) as advance:
        res = sweep_rates(make, data, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay, start=start,
                          end=end, steps=steps, batch_size=batch_size, repeats=repeats, seed=seed, device=dev,
                          advance=advance)
    res.source, res.optimizer, res.split = source, optimizer, name
    return res


def _training_data(train: Any, name: str, *, label_column: str, image_size: tuple[int, int] | None,
                   mean: Sequence[float] | None, std: Sequence[float] | None) -> Dataset:
    """The data `sanity` and `lr_find` train on: a DATA folder or a dict of splits as given; anything
    else (a DataLoader, arrays, one split file) is the split called `name`."""
    from diagnose.io.memory import as_dataset

    folder = isinstance(train, Mapping) or (isinstance(train, (str, os.PathLike)) and not Path(train).is_file())
    return as_dataset(train if folder else {name: train}, label_column=label_column, image_size=image_size,
                      mean=list(mean) if mean is not None else None, std=list(std) if std is not None else None)


def _split_for(dataset: Dataset, name: str, module: torch.nn.Module, *, asked: str) -> Any:
    """Split `name` of `dataset`, image folders decoded with the channels `module` takes."""
    from diagnose.evaluate import match_image_channels

    dataset = match_image_channels(dataset, module)
    if name not in dataset.splits:
        raise ArgumentError("split", f"expected a split the data has, got none called {name}; it has "
                            f"{', '.join(dataset.splits) or 'none'}", value=asked)
    return dataset.splits[name]


# --------------------------------------------------------------------------- curves


@checked(classes=optional(integer(2, 10)), judge=_RULES["show_progress"])
def curves(
    logs: Any, *, smooth: float | None = None, classes: int | None = None, fmt: str | None = None,
    metrics: Sequence[str] = (), judge: bool = True,
) -> Curves:
    """Read training logs and say what the curves mean.

    logs: a log file or TensorBoard folder, several of them (a list), a pandas DataFrame of one row
    per step or epoch, or a dict of column -> list of numbers. metrics: logged names to draw in panels
    of their own (each must be found in the logs). judge=False reads the runs without their findings.
    Returns a Curves result: `.findings`, `.to_json()`, `.figure()` (a matplotlib Figure, saved only
    when asked), `.save(path)`."""
    import tempfile

    from diagnose.core.curves import Curves
    from diagnose.core.hints import RunResult, find_hints
    from diagnose.runs import read_runs

    if isinstance(logs, (str, os.PathLike)):
        paths = [Path(logs)]
    elif isinstance(logs, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in logs):
        paths = [Path(p) for p in logs]
    else:
        paths = []
    with tempfile.TemporaryDirectory(prefix="diagnose-curves-") as tmp:
        if not paths:  # a DataFrame or a dict of columns: read as the CSV it would be saved as
            import pandas as pd

            try:
                frame = logs if isinstance(logs, pd.DataFrame) else pd.DataFrame(dict(logs))
            except (TypeError, ValueError) as exc:
                raise ArgumentError("logs", f"expected a log path, a list of paths, a DataFrame or a dict of "
                                    f"equal-length lists, got {type(logs).__name__} ({exc}); pass one of those") from None
            paths = [Path(tmp) / "metrics.csv"]
            frame.to_csv(paths[0], index=False)
        parsed, labels = read_runs(paths, fmt=fmt)
    for m in metrics:
        if not any(log.get(m) is not None for log in parsed):
            names = sorted({*(n for log in parsed for n in log.series), *(n for log in parsed for n in log.others)})
            raise ArgumentError("metrics", f"expected a name found in the logs, got none called that; found {', '.join(names)}",
                                value=m)
    results = [RunResult(log, find_hints(log.series, classes=classes) if judge else []) for log in parsed]
    return Curves(results, labels, smooth, tuple(metrics))
