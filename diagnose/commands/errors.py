"""`diagnose errors`: a seeded sample of misclassified items as a sheet to mark (+ a contact sheet).

Predictions come from `.diagnose/` (the last `diagnose gaps`), from `--predictions DIR` (Parquet
written by any framework, a file or a folder of shards) or from evaluating MODEL DATA. They are
streamed batch by batch into a reservoir, so the prediction set never has to fit in memory. torch is
imported only to evaluate a model or to draw tiles from tensor data.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from diagnose import options as opt
from diagnose.exceptions import DataError, DiagnoseError, OverwriteRefused, UsageError
from diagnose.options import parse_floats, parse_image_size

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from diagnose.core.sampling import ErrorSample

NAME = "errors"
HELP = (
    "Sample misclassified items into a sheet to mark by hand (error_analysis.csv), with a contact "
    "sheet of the images; then count it with `diagnose tally`."
)
COLUMNS = ("index", "id", "label", "pred", "confidence", "p_label", "loss")
# The saved top-k classes and probabilities: confident learning judges the sampled rows on them.
TOP_COLUMNS = tuple(f"top{k}" for k in range(1, 6)) + tuple(f"top{k}_p" for k in range(1, 6))
BATCH_ROWS = 65536


def _parse_categories(text: str | None) -> tuple[str, ...]:
    from diagnose.io.sheet import DEFAULT_CATEGORIES, is_reserved

    if text is None:
        return DEFAULT_CATEGORIES
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise UsageError(f"--categories: expected comma-separated names, got {text!r}; pass e.g. blurry,mislabeled")
    reserved = [c for c in names if is_reserved(c)]
    if reserved:
        raise UsageError(
            f"--categories: expected names other than the sheet's own columns, got {', '.join(reserved)}; rename them"
        )
    dupes = sorted({c for c in names if [x.lower() for x in names].count(c.lower()) > 1})
    if dupes:
        raise UsageError(f"--categories: expected distinct names, got {', '.join(dupes)} twice; drop the repeats")
    return tuple(names)


def _split_file(directory: Path, split: str) -> Path:
    from diagnose.io.predictions import prediction_files

    files = prediction_files(directory)
    if split not in files:
        raise DataError(
            f"{directory}: expected predictions for the {split} split, got {', '.join(files)}; "
            f"pass --split {next(iter(files))}" + ("" if split in ("dev", "test") else " or run diagnose gaps on it")
        )
    return files[split]


def _classes(manifest: dict[str, Any] | None, *folders: Path | None) -> list[str] | None:
    from diagnose.io.splits import read_classes

    if manifest and isinstance(manifest.get("classes"), list):
        return [str(c) for c in manifest["classes"]]
    for folder in folders:
        names = read_classes(folder) if folder is not None else None
        if names:
            return names
    return None


def _stream(path: Path, sampler: Any, thresholds: Any = None) -> None:
    """Feed every batch of a predictions file or shard folder to the sampler; only the few rows that
    can enter the reservoir become pandas rows. `thresholds` (a ThresholdAccumulator) gets every
    row's label and p_label: the per-class thresholds of confident learning."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from diagnose.io.predictions import iter_prediction_batches
    from diagnose.progress import progress_bar

    position = 0
    seen: list[np.ndarray] = []
    with progress_bar("sampling misclassified items", None) as advance:
        for rb in iter_prediction_batches(path, [*COLUMNS, *TOP_COLUMNS], batch_size=BATCH_ROWS):
            n = rb.num_rows
            label, pred = rb.column("label"), rb.column("pred")
            for col, name in ((label, "label"), (pred, "pred")):
                if pa.types.is_floating(col.type):
                    values = col.to_numpy(zero_copy_only=False)
                    if not np.all(np.isnan(values) | (values == np.round(values))):
                        raise DataError(
                            f"{path}: expected class indices in {name!r}, got fractional values (regression); "
                            "error analysis by category needs a classifier's predictions"
                        )
            for col, name in ((label, "label"), (pred, "pred")):
                # An empty or NaN cell would count as correct: `diagnose gaps` refuses it, so does errors.
                missing = col.null_count + (int(pc.sum(pc.is_nan(col)).as_py() or 0) if pa.types.is_floating(col.type) else 0)
                if missing:
                    raise DataError(
                        f"{path}: expected a class in every {name!r} cell, got {missing} empty or NaN; "
                        "fill them or drop those rows"
                    )
            if "index" in rb.schema.names:
                seen.append(rb.column("index").to_numpy(zero_copy_only=False).astype(np.int64))
            numeric = pa.types.is_integer(label.type) or pa.types.is_floating(label.type)
            if numeric != (pa.types.is_integer(pred.type) or pa.types.is_floating(pred.type)):
                raise DataError(
                    f"{path}: expected label and pred of one kind, got {label.type} and {pred.type}; "
                    "write both as class indices or both as class names"
                )
            if thresholds is not None and "p_label" in rb.schema.names:
                lab_all = label.to_numpy(zero_copy_only=False)
                thresholds.add(lab_all.astype(np.int64) if lab_all.dtype.kind == "f" else lab_all,
                               rb.column("p_label").to_numpy(zero_copy_only=False))
            mask = pc.fill_null(pc.not_equal(label, pred), False)
            sampler.count_items(n)
            wrong = rb.filter(mask)
            if wrong.num_rows:
                if "index" in rb.schema.names:
                    index = wrong.column("index").to_numpy(zero_copy_only=False).astype(np.int64)
                else:  # no index column: the position in the stream (files in name order)
                    index = np.flatnonzero(mask.to_numpy(zero_copy_only=False)).astype(np.int64) + position
                lab = wrong.column("label").to_numpy(zero_copy_only=False)
                prd = wrong.column("pred").to_numpy(zero_copy_only=False)
                # Whole-number floats (Spark writes doubles) are class indices.
                lab = lab.astype(np.int64) if lab.dtype.kind == "f" else lab
                prd = prd.astype(np.int64) if prd.dtype.kind == "f" else prd
                admit = sampler.offer(index, lab, prd)
                if admit.any():
                    rows = wrong.filter(pa.array(admit)).to_pandas()
                    rows["index"], rows["label"], rows["pred"] = index[admit], lab[admit], prd[admit]
                    sampler.admit(rows)
            position += n
            advance(n)
    if seen:
        index_all = np.sort(np.concatenate(seen))
        dup = index_all[1:][index_all[1:] == index_all[:-1]]
        if len(dup):
            # Tied sample keys: the draw would no longer be uniform, and rows could not be told apart.
            raise DataError(
                f"{path}: expected one row per item (distinct 'index' values), got index {int(dup[0])} more than once "
                f"({len(np.unique(dup))} repeated values); shards that number their rows from 0 each need a global "
                "index (or drop the column to number rows by position)"
            )


def _name(value: Any, classes: list[str] | None) -> str:
    if classes is not None and isinstance(value, (int,)) and 0 <= value < len(classes):
        return classes[value]
    return str(value)


def _float_column(rows: pd.DataFrame, name: str) -> np.ndarray:
    import numpy as np

    if name not in rows.columns:
        return np.full(len(rows), np.nan)
    return rows[name].astype("float64").to_numpy()


def _suspects(rows: pd.DataFrame, thresholds: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Confident learning on the sampled rows: (suspect mask, label_issue_score, known)."""
    import numpy as np

    from diagnose.core.labelissues import flag_sample

    conf, p_label = _float_column(rows, "confidence"), _float_column(rows, "p_label")
    limits = thresholds.thresholds() if thresholds is not None else {}
    known = "p_label" in rows.columns and ("confidence" in rows.columns or "top1" in rows.columns) and bool(limits)
    if not known or not len(rows):
        return np.zeros(len(rows), dtype=bool), np.full(len(rows), np.nan), False
    top_c = top_p = None
    tops = [c for c in TOP_COLUMNS if c in rows.columns]
    if len(tops) == len(TOP_COLUMNS):
        top_c = rows[list(TOP_COLUMNS[:5])].fillna(-1).to_numpy(dtype=np.int64)
        top_p = rows[list(TOP_COLUMNS[5:])].astype("float64").to_numpy()
    flags, scores = flag_sample(rows["label"].to_numpy(), rows["pred"].to_numpy(), p_label, conf, limits, top_c, top_p)
    return flags, scores, True


def openable_id(value: object, data_root: Path | None, cwd: Path | None = None) -> str | None:
    """An item id as a path the person can open from where they ran the command: relative to the
    current folder when the file is inside it, absolute otherwise. Ids that are not files under DATA
    (a database key, a foreign id) are kept as they are."""
    import os

    if not isinstance(value, str):
        return None
    if data_root is None or not value or os.path.isabs(value):
        return value
    target = Path(data_root) / value
    if not target.is_file():
        return value
    here = (cwd or Path.cwd()).resolve()
    full = target.resolve()
    return os.path.relpath(full, here) if full.is_relative_to(here) else str(full)


def _sheet(
    sample: ErrorSample, split: str, categories: tuple[str, ...], classes: list[str] | None, thresholds: Any = None,
    data_root: Path | None = None,
) -> tuple[ErrorSample, list[str], list[list[object]], np.ndarray, bool]:
    """The sample in sheet order (suspect mislabels first, most likely first; then by index),
    columns and rows of the sheet, the suspect mask, whether the suspect hint is known."""
    import dataclasses

    import numpy as np

    from diagnose.io.sheet import FIXED_COLUMNS, NOTE_COLUMN

    suspect, score, known = _suspects(sample.rows, thresholds)
    order = np.lexsort((sample.rows["index"].to_numpy(), np.where(suspect, -score, np.inf)))
    rows = sample.rows.iloc[order].reset_index(drop=True)
    suspect, score = suspect[order], score[order]
    sample = dataclasses.replace(sample, rows=rows)
    conf, p_label, loss = (_float_column(rows, c) for c in ("confidence", "p_label", "loss"))
    ids = rows["id"].tolist() if "id" in rows.columns else [None] * len(rows)
    out: list[list[object]] = []
    for k, (index, label, pred) in enumerate(
        zip(rows["index"].tolist(), rows["label"].tolist(), rows["pred"].tolist(), strict=True)
    ):
        out.append(
            [
                k + 1,
                split,
                int(index),
                openable_id(ids[k], data_root),
                _name(label, classes),
                _name(pred, classes),
                float(conf[k]),
                float(p_label[k]),
                float(loss[k]),
                ("yes" if suspect[k] else "no") if known else None,
                float(score[k]) if known else None,
                *[None] * len(categories),
                None,
            ]
        )
    return sample, [*FIXED_COLUMNS, *categories, NOTE_COLUMN], out, suspect, known


def _guard(out: Path, force: bool) -> str | None:
    """Refuse to replace a sheet holding a person's work unless --force; with --force keep a .bak."""
    from diagnose.io.predictions import check_writable_folder
    from diagnose.io.sheet import backup, sheet_exists_with_work

    if out.exists() and out.is_dir():
        raise UsageError(f"--out {out}: expected a file path, got a folder; pass e.g. {out / 'error_analysis.csv'}")
    check_writable_folder(out.parent, f"--out {out}")
    work = sheet_exists_with_work(out)
    if work == 0:
        return None
    if not force:
        found = "a file that is not an error-analysis sheet" if work < 0 else f"{work} filled category or note cells"
        raise OverwriteRefused(
            f"{out}: expected no sheet or an unmarked one, got {found}; pass --out another.csv, "
            "or --force to replace it (a .bak copy is kept)"
        )
    return str(backup(out))


def _read_image(path: Path) -> np.ndarray:
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _images_from_data(root: Path, split: str, rows: pd.DataFrame, fmt: str | None) -> tuple[list[Any] | None, str | None]:
    """Tiles for the sampled rows from DATA: image files, or tensors shaped like images. (images, note)."""
    import numpy as np

    from diagnose.io.splits import TensorSplit, load_dataset

    if fmt in ("csv", "parquet"):
        return None, None  # feature tables: nothing to look at
    if not root.is_dir():
        return None, f"No contact sheet: the data folder {root} is not there any more."
    try:
        dataset = load_dataset(root)
    except DiagnoseError as exc:
        return None, f"No contact sheet: {exc.message}"
    data = dataset.splits.get(split)
    if data is None:
        return None, f"No contact sheet: {root} has no {split} split."
    index = rows["index"].to_numpy().astype(np.int64)
    if len(index) and (index.min() < 0 or index.max() >= data.n):
        return None, (
            f"No contact sheet: the predictions index items up to {int(index.max())}, but {data.path} has "
            f"{data.n}; the data changed since the predictions were made (rerun diagnose gaps)."
        )
    if data.format == "images":
        ids = data.ids() or []
        return [_read_image(root / ids[i]) for i in index], None
    shape = tuple(data.input_shape)
    if not (len(shape) == 2 or (len(shape) == 3 and shape[0] in (1, 3))):
        return None, None  # not image-shaped (features, sequences)
    if isinstance(data, TensorSplit):
        tiles = list(data.take(index))  # numpy: an .npz split is read without torch
    else:
        got: dict[int, np.ndarray] = {}
        for batch in data.batches(256, indices=index):
            for pos, item in zip(batch.index.tolist(), batch.x.numpy(), strict=True):
                got[int(pos)] = item
        tiles = [got[int(i)] for i in index]
    # One intensity scale for the whole sheet (not per tile), so a faint item looks faint.
    lo = float(min(t.min() for t in tiles))
    hi = float(max(t.max() for t in tiles))
    from diagnose.plots.contact import to_rgb8

    return [to_rgb8(t, lo, hi) for t in tiles], None


def _images_from_ids(rows: pd.DataFrame, *bases: Path) -> list[Any] | None:
    """Foreign predictions whose `id` column holds image file paths (absolute or relative to a base)."""
    from diagnose.io.splits import IMAGE_SUFFIXES

    if "id" not in rows.columns or not len(rows):
        return None
    paths = []
    for value in rows["id"].tolist():
        if not isinstance(value, str) or not value.lower().endswith(IMAGE_SUFFIXES):
            return None
        found = next((b / value for b in bases if (b / value).is_file()), None)
        if found is None:
            return None
        paths.append(found)
    return [_read_image(p) for p in paths]


def command(
    model: Path | None = typer.Argument(None, readable=False, metavar="MODEL", help="A model to evaluate now (with DATA) instead of reading saved predictions."),
    data: Path | None = typer.Argument(None, readable=False, metavar="DATA", help="The DATA folder of splits, with MODEL."),
    split: str = typer.Option("dev", "--split", help="Which split's errors to sample: train, train_dev, dev, test."),
    sample: int = typer.Option(100, "--sample", min=1, help="Rows in the sheet: misclassified items drawn uniformly."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the draw: the same seed gives the same sheet."),
    workdir: Path = typer.Option(Path(".diagnose"), "--workdir", readable=False, help="Where `diagnose gaps` saved its predictions."),
    predictions: Path | None = typer.Option(
        None, "--predictions", readable=False, help="A folder of <split>.parquet files or <split>/ shard folders written by any framework."
    ),
    out: Path = typer.Option(Path("error_analysis.csv"), "--out", readable=False, help="The sheet to write (the PNG goes beside it)."),
    categories: str | None = typer.Option(
        None, "--categories", help="Comma-separated category columns; default blurry,confusable,mislabeled,other."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a sheet that holds marks or notes (keeps a .bak copy)."),
    images: bool = typer.Option(True, "--images/--no-images", help="Draw the contact sheet PNG for image data."),
    batch_size: opt.BatchSize = opt.BATCH_SIZE,
    device: opt.DeviceOpt = opt.Device.auto,
    precision: opt.PrecisionOpt = opt.Precision.fp32,
    max_items: opt.MaxItems = None,
    arch: str | None = typer.Option(
        None, "--arch", help="With MODEL: 'pkg.module:factory' or 'file.py:Class' for a weights-only file."
    ),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="With MODEL: allow loading a pickled module."),
    arch_kwargs: str | None = typer.Option(None, "--arch-kwargs", help="With MODEL: JSON object of keyword arguments for --arch."),
    label_column: str = typer.Option("label", "--label-column", help="With MODEL DATA: label column in CSV / Parquet splits."),
    image_size: str | None = typer.Option(None, "--image-size", help="With MODEL DATA: resize images to H,W (or one number for square)."),
    mean: str | None = typer.Option(None, "--mean", help="With MODEL DATA: per-channel mean subtracted from image pixels in [0, 1]."),
    std: str | None = typer.Option(None, "--std", help="With MODEL DATA: per-channel standard deviation pixels are divided by."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the summary."),
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown instead of the summary."),
) -> None:
    if as_json and markdown:
        raise UsageError("--json and --markdown: expected one output format, got both; pass one of them")
    if (model is None) != (data is None):
        raise UsageError("expected MODEL and DATA together, got only MODEL; pass both, or neither to read saved predictions")
    if model is not None and predictions is not None:
        raise UsageError("expected MODEL DATA or --predictions DIR, got both; pass one source of predictions")
    from diagnose.io.splits import canonical_split

    split = canonical_split(split)
    cats = _parse_categories(categories)
    out = Path(out)
    # How MODEL is loaded and DATA read: the same options as `diagnose gaps`, so the sheet's
    # predictions are the ones gaps counted.
    evaluation = {
        "device": device.value, "precision": precision.value, "max_items": max_items, "seed": seed,
        "batch_size": batch_size, "arch": arch, "arch_kwargs": arch_kwargs, "trust_pickle": trust_pickle,
        "label_column": label_column, "image_size": parse_image_size(image_size),
        "mean": parse_floats(mean, "--mean"), "std": parse_floats(std, "--std"),
    }

    with contextlib.ExitStack() as stack:
        _run(
            stack, model=model, data=data, split=split, sample=sample, seed=seed, workdir=workdir,
            predictions=predictions, out=out, cats=cats, force=force, images=images, evaluation=evaluation,
            as_json=as_json, markdown=markdown,
        )


def _run(
    stack: contextlib.ExitStack,
    *,
    model: Path | None,
    data: Path | None,
    split: str,
    sample: int,
    seed: int,
    workdir: Path,
    predictions: Path | None,
    out: Path,
    cats: tuple[str, ...],
    force: bool,
    images: bool,
    evaluation: dict[str, Any],
    as_json: bool,
    markdown: bool,
) -> None:
    from diagnose.core.sampling import ErrorSampler
    from diagnose.core.stats import wilson_interval
    from diagnose.io.predictions import read_manifest
    from diagnose.io.sheet import write_sheet
    from diagnose.render import print_json, stdout_console
    from diagnose.render.errors import ErrorsSummary, render_table, to_json, to_markdown

    data_root: Path | None = data
    fmt: str | None = None
    if model is not None:
        assert data is not None
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="diagnose-errors-")))
        path, manifest = _evaluate(model, data, split, tmp, **evaluation)
        source = f"evaluating {model} on {data}"
        folder = tmp
    elif predictions is not None:
        path, manifest = _split_file(predictions, split), read_manifest(predictions)
        source = str(path)
        folder = predictions
    else:
        if not workdir.is_dir():
            raise DataError(
                f"{workdir}: expected the predictions saved by `diagnose gaps`, got no such folder; "
                "run `diagnose gaps MODEL DATA` first, or pass MODEL DATA, or --predictions DIR"
            )
        path, manifest = _split_file(workdir, split), read_manifest(workdir)
        source = str(path)
        folder = workdir
    if manifest and data_root is None and isinstance(manifest.get("data"), dict) and manifest["data"].get("path"):
        data_root = Path(manifest["data"]["path"])
    if manifest and isinstance(manifest.get("data"), dict):
        fmt = ((manifest["data"].get("splits") or {}).get(split) or {}).get("format")
    classes = _classes(manifest, data_root, predictions)
    from diagnose.io.digest import check_recorded_digest
    from diagnose.io.outputs import refuse_inputs

    check_recorded_digest(path, manifest, split)
    if out.suffix.lower() == ".png":
        raise UsageError(f"--out {out}: expected the sheet's .csv path (the contact sheet PNG goes beside it), got a .png; pass e.g. --out {out.with_suffix('.csv')}")
    refuse_inputs(out, [path, predictions, model, data])
    refuse_inputs(out.with_suffix(".png"), [path, predictions, model, data])

    from diagnose.core.labelissues import ThresholdAccumulator

    sampler = ErrorSampler(sample, seed)
    thresholds = ThresholdAccumulator()
    _stream(path, sampler, thresholds)
    result = sampler.result(list(COLUMNS), top_pairs=10)
    if result.items == 0:
        raise DataError(f"{path}: expected at least one prediction, got 0 rows; check the file")
    pairs = tuple((_name(a, classes), _name(b, classes), c) for a, b, c in result.pairs)
    notes: list[str] = []
    entry = ((manifest or {}).get("splits") or {}).get(split)
    if isinstance(entry, dict) and isinstance(entry.get("n_total"), int) and entry["n_total"] > result.items:
        notes.append(
            f"These predictions cover a seeded sample of {result.items:,} of the {entry['n_total']:,} {split} items "
            "(diagnose gaps --max-items): the counts above are of that sample."
        )
    backup = None
    png: str | None = None
    confusion: tuple[str | None, tuple[tuple[str, str, float, float, int], ...], tuple[str, ...]] = (None, (), ())
    suspect_count: int | None = None
    if result.errors:
        backup = _guard(out, force)
        result, columns, rows, suspect, known = _sheet(result, split, cats, classes, thresholds, data_root)
        suspect_count = int(suspect.sum()) if known else None
        from diagnose.io.outputs import OutputGroup

        # The sheet and its PNG are written to temporaries and renamed together at the end: an
        # interruption or a full disk leaves the previous pair as it was.
        with OutputGroup() as group:
            staged = group.path(out)
            write_sheet(staged, columns, rows)
            if backup is None and out.is_file() and out.read_bytes() != staged.read_bytes():
                # An unmarked sheet may still hold a person's edits (a corrected label): keep it.
                from diagnose.io.outputs import backup as keep_copy

                backup = str(keep_copy(out))
            if images:
                confusion = _confusion_png(folder, split, classes, out, group)
                png, note = _contact_sheet(result, rows, suspect, out, data_root, fmt, split, predictions, group)
                if note:
                    notes.append(note)
    summary = ErrorsSummary(
        split=split,
        items=result.items,
        errors=result.errors,
        error_ci=wilson_interval(result.errors, result.items),
        sample=len(result.rows),
        asked=sample,
        seed=seed,
        sheet=str(out),
        contact_sheet=png,
        confusion_png=confusion[0],
        grown=confusion[1],
        confusion_splits=confusion[2],
        categories=cats,
        pairs=pairs,
        suspect=suspect_count,
        thresholds={_name(k, classes): round(v, 4) for k, v in thresholds.thresholds().items()} if suspect_count is not None else None,
        source=source,
        backup=backup,
        notes=tuple(notes),
    )
    if as_json:
        print_json(to_json(summary))
    elif markdown:
        typer.echo(to_markdown(summary), nl=False)
    else:
        render_table(stdout_console(), summary)


def _contact_sheet(
    result: ErrorSample,
    rows: list[list[object]],
    suspect: np.ndarray,
    out: Path,
    data_root: Path | None,
    fmt: str | None,
    split: str,
    predictions: Path | None,
    group: Any,
) -> tuple[str | None, str | None]:
    """Write `<out>.png` when the items are images, through `group` (io.outputs.OutputGroup).
    (png path or None, a note for the summary)."""
    from diagnose.plots.contact import caption, contact_sheet, save_contact_sheet

    tiles, note = None, None
    bases = [Path.cwd()] + ([predictions] if predictions else []) + ([data_root] if data_root else [])
    try:
        tiles = _images_from_ids(result.rows, *bases)
        if tiles is None and data_root is not None:
            tiles, note = _images_from_data(data_root, split, result.rows, fmt)
    except OSError as exc:  # an unreadable or truncated image file: the sheet is still written
        name = getattr(exc, "filename", None) or ""
        return None, f"No contact sheet: {name} {exc.strerror or exc}".replace("  ", " ")
    if tiles is None:
        return None, note
    captions = [caption(str(r[4]), str(r[5]), r[6] if isinstance(r[6], float) else None) for r in rows]
    title = (
        f"{split}: {len(rows)} of {result.errors} misclassified items, seed {result.seed}. "
        "Tile number = row n of the sheet; caption true \u2192 predicted (confidence); red: suspect mislabel"
    )
    fig = contact_sheet(tiles, captions, [int(r[0]) for r in rows], suspect=suspect.tolist(), title=title)
    png = out.with_suffix(".png")
    from diagnose.io.outputs import keep_or_backup

    kept = keep_or_backup(png)  # a PNG diagnose did not write (a person's sheet.png) is kept as .bak
    if kept is not None:
        note = ((note + " ") if note else "") + f"Kept the previous {png.name} as {kept}."
    save_contact_sheet(fig, group.path(png), tiles=len(tiles))
    return str(png), note


def _confusion_png(
    folder: Path, split: str, classes: list[str] | None, out: Path, group: Any
) -> tuple[str | None, tuple[tuple[str, str, float, float, int], ...], tuple[str, ...]]:
    """Write `<out stem>_confusion.png`: train_dev and `split` side by side, the grown cells marked.
    (png path or None, grown cells as (true, pred, before, after, count), the splits drawn)."""
    from diagnose.io.outputs import keep_or_backup
    from diagnose.io.predictions import prediction_files, tally_predictions
    from diagnose.plots.confusion import confusion_figure, grown_cells, panels_for, save_png

    try:
        files = prediction_files(folder)
        names = panels_for(list(files), split)
        counts = [(name, tally_predictions(files[name], metric="error", classes=classes).confusion) for name in names]
    except DiagnoseError:
        return None, (), ()  # predictions that are not class indices or names: no matrix to draw
    if any(c is None for _, c in counts):
        return None, (), ()
    panels = [(name, c) for name, c in counts if c is not None]
    grown = grown_cells(panels[0][1], panels[-1][1]) if len(panels) == 2 else []
    fig = confusion_figure(panels, classes, grown)
    png = out.with_name(out.stem + "_confusion.png")
    keep_or_backup(png)
    save_png(fig, group.path(png))
    named = tuple((_name(g.true, classes), _name(g.pred, classes), g.before, g.after, g.count) for g in grown)
    return str(png), named, tuple(names)


def _evaluate(
    model: Path, data: Path, split: str, tmp: Path, *, batch_size: int, arch: str | None, arch_kwargs: str | None,
    trust_pickle: bool, label_column: str, image_size: tuple[int, int] | None, mean: list[float] | None,
    std: list[float] | None, app_dir: Path | None = None, device: str = "auto", precision: str = "fp32",
    max_items: int | None = None, seed: int = 0,
) -> tuple[Path, dict[str, Any]]:
    """Evaluate MODEL on DATA's split into a temporary predictions file (the saved ones of
    `diagnose gaps` are left alone), through the evaluation of `diagnose gaps` (same device, precision,
    --max-items sample). Returns that file and a manifest-like dict for class names."""
    from diagnose.evaluate import evaluate_model
    from diagnose.io.models import arch_kwargs_from_json, load_model
    from diagnose.io.predictions import predictions_path
    from diagnose.io.splits import load_dataset

    dataset = load_dataset(data, label_column=label_column, image_size=image_size, mean=mean, std=std)
    if split not in dataset.splits:
        found = ", ".join(dataset.splits) or "none"
        raise DataError(f"{data}: expected a {split} split, got {found}; pass --split with one of them")

    def load(dev: str) -> Any:
        return load_model(model, arch=arch, arch_kwargs=arch_kwargs_from_json(arch_kwargs), trust_pickle=trust_pickle,
                          device=dev, app_dir=app_dir).module

    evaluate_model(load, dataset, device=device, precision=precision, batch_size=batch_size,  # type: ignore[arg-type]
                   max_items=max_items, seed=seed, splits=[split], workdir=tmp)
    n_total = dataset.splits[split].n
    manifest = {
        "classes": dataset.classes,
        "data": {"path": str(Path(data).resolve()), "splits": {split: {"format": dataset.splits[split].format}}},
        "splits": {split: {"n_total": n_total}},
    }
    return predictions_path(tmp, split), manifest
