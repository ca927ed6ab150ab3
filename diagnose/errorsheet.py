"""A sample of misclassified items as a pandas DataFrame, and the sheet a person marks by hand.

`sample_from_predictions` streams a predictions file (or folder of shards) batch by batch into the
seeded reservoir of `core.sampling`, so the predictions never have to fit in memory; only the rows
that can enter the sample become pandas rows. `ErrorSheet.to_sheet` writes them as the CSV that
`diagnose tally` counts. `run_errors` is the whole of `diagnose errors`: predictions from a
`diagnose gaps` workdir, a folder of Parquet files, or MODEL DATA evaluated on the spot; the draw;
the sheet, the contact sheet and the confusion images written together.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from diagnose.exceptions import ArgumentError, DataError, DiagnoseError, OverwriteRefused, UsageError
from diagnose.render.errors import ErrorsSummary

if TYPE_CHECKING:
    from diagnose.core.sampling import ErrorSample
    from diagnose.io.manifest import Manifest

class ErrorSheet(pd.DataFrame):
    """One row per sampled misclassified item: n (row number), split, index, id, label, pred,
    confidence, p_label, loss, and, when the predictions carry the probabilities, suspect_mislabel
    ("yes"/"no") and label_issue_score (confident learning over the whole split). Rows are in the
    sheet's order: suspect mislabels first, most likely first. Class names replace indices where known.

    `.attrs` holds `items` (predictions read), `errors` (misclassified among them), `seed`.
    """

    @property
    def _constructor(self) -> type[ErrorSheet]:
        return ErrorSheet

    def to_sheet(self, path: str | Path, *, categories: Sequence[str] | None = None, force: bool = False) -> Path:
        """Write the sheet to mark: these columns, one empty column per category, a note column.
        A sheet that already holds marks or notes is replaced only with force=True (a .bak is kept)."""
        from diagnose.io.sheet import (
            DEFAULT_CATEGORIES,
            FIXED_COLUMNS,
            NOTE_COLUMN,
            backup,
            sheet_exists_with_work,
            write_sheet,
        )

        path = Path(path)
        cats = tuple(categories) if categories is not None else DEFAULT_CATEGORIES
        work = sheet_exists_with_work(path) if path.exists() else 0
        if work:
            if not force:
                raise OverwriteRefused(f"{path}: expected no sheet or an unmarked one, got work in it; "
                                       "pass another path, or force=True to replace it (a .bak copy is kept)")
            backup(path)
        fixed = [c for c in FIXED_COLUMNS if c in self.columns]
        rows = [[*(None if _missing(v) else v for v in row), *[None] * len(cats), None]
                for row in self[fixed].itertuples(index=False, name=None)]
        write_sheet(path, [*fixed, *cats, NOTE_COLUMN], rows)
        return path


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _class_name(value: Any, classes: Sequence[str] | None) -> Any:
    if classes is not None and isinstance(value, (int, np.integer)) and 0 <= int(value) < len(classes):
        return classes[int(value)]
    return value.item() if isinstance(value, np.generic) else value


def sample_from_predictions(
    folder: Path, *, split: str = "dev", n: int = 100, seed: int = 0, classes: Sequence[str] | None = None,
) -> ErrorSheet:
    """A seeded uniform sample of `n` misclassified items of `split` from a predictions folder
    (`<split>.parquet` or `<split>/` shards; a `diagnose gaps` workdir works too)."""
    from diagnose.core.sampling import ErrorSampler
    from diagnose.io.manifest import read_manifest
    from diagnose.io.predictions import prediction_files
    from diagnose.io.splits import ALIASES

    canonical = ALIASES.get(split.strip().lower())
    if canonical is None:
        raise ArgumentError("split", f"expected train, train_dev, dev or test, got {split!r}; pass one of them")
    folder = Path(folder)
    if (folder / "predictions").is_dir():
        folder = folder / "predictions"
    files = prediction_files(folder)
    if canonical not in files:
        raise DataError(f"{folder}: expected predictions for the {canonical} split, got {', '.join(files)}; "
                        f"pass split={next(iter(files))!r}")
    if classes is None:
        manifest = read_manifest(folder)
        classes = manifest.classes if manifest is not None else None
    from diagnose.core.labelissues import ThresholdAccumulator
    from diagnose.io.sheet import NOTE_COLUMN

    # The same sample, order and confident-learning flags as the sheet `diagnose errors` writes.
    sampler = ErrorSampler(n, seed)
    thresholds = ThresholdAccumulator()
    _stream(files[canonical], sampler, thresholds, show_progress=False)
    result = sampler.result(list(COLUMNS))
    from diagnose.suspects import basis

    judged = basis(canonical, thresholds, files)
    _, columns, rows, _, known = _sheet(result, canonical, (), list(classes) if classes is not None else None,
                                        judged.thresholds)
    frame = ErrorSheet(pd.DataFrame(rows, columns=columns).drop(columns=[NOTE_COLUMN]))
    if not known:
        frame = frame.drop(columns=["suspect_mislabel", "label_issue_score"])
    for name in ("confidence", "p_label", "loss", *(("label_issue_score",) if known else ())):
        frame[name] = frame[name].astype("float64")
    frame.attrs.update({"items": result.items, "errors": result.errors, "seed": seed, "split": canonical,
                        "suspect_thresholds_split": judged.thresholds_split if known else None})
    return frame


# --------------------------------------------------------------------------- diagnose errors


COLUMNS = ("index", "id", "label", "pred", "confidence", "p_label", "loss")
# The saved top-k classes and probabilities: confident learning judges the sampled rows on them.
TOP_COLUMNS = tuple(f"top{k}" for k in range(1, 6)) + tuple(f"top{k}_p" for k in range(1, 6))
BATCH_ROWS = 65536


def parse_categories(text: str | None) -> tuple[str, ...]:
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


def _classes(manifest: Manifest | None, *folders: Path | None) -> list[str] | None:
    from diagnose.io.splits import read_classes

    if manifest is not None and manifest.classes is not None:
        return manifest.classes
    for folder in folders:
        names = read_classes(folder) if folder is not None else None
        if names:
            return names
    return None


def _stream(path: Path, sampler: Any, thresholds: Any = None, *, show_progress: bool = True) -> None:
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
    with progress_bar("sampling misclassified items", None, enabled=show_progress) as advance:
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


def _suspects(rows: pd.DataFrame, thresholds: Any, neighbours: Any = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Confident learning on the sampled rows: (suspect mask, label_issue_score, known).

    thresholds: a ThresholdAccumulator (of train_dev or train when there is one, see `_Suspects`);
    neighbours: None, or a callable giving the (m, k) labels of each sampled row's nearest items of
    the split (class indices, -1 for none) from the rows' `index` values."""
    import numpy as np

    from diagnose.core.labelissues import flag_sample, neighbour_issues

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
    labels, preds = rows["label"].to_numpy(), rows["pred"].to_numpy()
    flags, scores = flag_sample(labels, preds, p_label, conf, limits, top_c, top_p)
    if neighbours is not None and labels.dtype.kind in "iu" and preds.dtype.kind in "iu":
        flags, _ = neighbour_issues(labels, preds, neighbours(rows["index"].to_numpy()), flags)
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
    data_root: Path | None = None, neighbours: Any = None,
) -> tuple[ErrorSample, list[str], list[list[object]], np.ndarray, bool]:
    """The sample in sheet order (suspect mislabels first, most likely first; then by index),
    columns and rows of the sheet, the suspect mask, whether the suspect hint is known."""
    import dataclasses

    import numpy as np

    from diagnose.io.sheet import FIXED_COLUMNS, NOTE_COLUMN

    suspect, score, known = _suspects(sample.rows, thresholds, neighbours)
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
    from diagnose.io.outputs import check_target
    from diagnose.io.predictions import check_writable_folder
    from diagnose.io.sheet import backup, sheet_exists_with_work

    if os.path.isdir(out):
        raise UsageError(f"--out {out}: expected a file path, got a folder; pass e.g. {out / 'error_analysis.csv'}")
    check_target(out)  # a FIFO, a loop, a name too long: refused before any work
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

    from diagnose.io.paths import open_regular

    with open_regular(path, "an image file", "remove or replace the file", DataError) as fh, Image.open(fh) as im:
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


def run_errors(
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
    neighbours: bool | None = None,
) -> ErrorsSummary:
    """Sample the misclassified items of `split`, write the sheet (and its PNGs) to `out`, and say what
    was done. Predictions come from evaluating `model` on `data`, from `predictions`, or from `workdir`.
    neighbours: compare each suspect with the most similar items by the model's features (None: only
    when `model` is given; True from saved predictions loads the model their manifest names)."""
    with contextlib.ExitStack() as stack:
        return _run_in(stack, model=model, data=data, split=split, sample=sample, seed=seed, workdir=workdir,
                       predictions=predictions, out=out, cats=cats, force=force, images=images, evaluation=evaluation,
                       neighbours=neighbours)


def _run_in(
    stack: contextlib.ExitStack, *, model: Path | None, data: Path | None, split: str, sample: int, seed: int,
    workdir: Path, predictions: Path | None, out: Path, cats: tuple[str, ...], force: bool, images: bool,
    evaluation: dict[str, Any], neighbours: bool | None = None,
) -> ErrorsSummary:
    from diagnose.core.sampling import ErrorSampler
    from diagnose.core.stats import wilson_interval
    from diagnose.io.manifest import read_manifest
    from diagnose.io.sheet import write_sheet

    data_root: Path | None = data
    fmt: str | None = None
    if model is not None:
        assert data is not None
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="diagnose-errors-")))
        manifest: Manifest | None
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
    if manifest is not None and data_root is None and manifest.data.path:
        data_root = Path(manifest.data.path)
    if manifest is not None:
        fmt = manifest.split_format(split)
    classes = _classes(manifest, data_root, predictions)
    from diagnose.io.digest import check_recorded_digest
    from diagnose.io.outputs import refuse_inputs

    check_recorded_digest(path, manifest, split)
    if out.suffix.lower() == ".png":
        raise UsageError(f"--out {out}: expected the sheet's .csv path (the contact sheet PNG goes beside it), got a .png; pass e.g. --out {out.with_suffix('.csv')}")
    refuse_inputs(out, [path, predictions, model, data])
    refuse_inputs(out.with_suffix(".png"), [path, predictions, model, data])

    from diagnose.core.labelissues import ThresholdAccumulator
    from diagnose.io.predictions import prediction_files
    from diagnose.suspects import add_neighbours, basis, mismatch_note

    sampler = ErrorSampler(sample, seed)
    thresholds = ThresholdAccumulator()
    _stream(path, sampler, thresholds)
    result = sampler.result(list(COLUMNS), top_pairs=10)
    try:
        files = prediction_files(folder)
    except DiagnoseError:
        files = {split: path}
    judged = basis(split, thresholds, files)
    if result.items == 0:
        raise DataError(f"{path}: expected at least one prediction, got 0 rows; check the file")
    pairs = tuple((_name(a, classes), _name(b, classes), c) for a, b, c in result.pairs)
    notes: list[str] = []
    report = (manifest.report or {}) if manifest is not None else {}
    if report.get("verdict_withheld"):  # the gaps run doubted its own inputs (diagnose.core.gaps.judge)
        source = "This evaluation doubts its inputs" if model is not None else "The gaps run of these predictions withheld its verdict"
        notes.append(f"{source}: " + "; ".join(map(str, report.get("doubts") or ()))
                     + ". While preprocessing is in doubt this sample is not error analysis: its errors may all be "
                     "preprocessing errors. Fix what `diagnose gaps` lists first.")
    entry = manifest.splits.get(split) if manifest is not None else None
    if entry is not None and entry.n_total is not None and entry.n_total > result.items:
        notes.append(
            f"These predictions cover a seeded sample of {result.items:,} of the {entry.n_total:,} {split} items "
            "(diagnose gaps --max-items): the counts above are of that sample."
        )
    backup = None
    png: str | None = None
    confusion: tuple[str | None, tuple[tuple[str, str, float, float, int], ...], tuple[str, ...]] = (None, (), ())
    suspect_count: int | None = None
    if result.errors:
        backup = _guard(out, force)
        # Features need the model run again: by default only when it is being run anyway (MODEL DATA);
        # reading saved predictions stays free of torch unless --neighbours asks for them.
        if judged.thresholds.thresholds() and (neighbours if neighbours is not None else model is not None):
            add_neighbours(judged, model if model is not None else _manifest_model(manifest), data_root, split, evaluation)
        result, columns, rows, suspect, known = _sheet(result, split, cats, classes, judged.thresholds, data_root,
                                                       judged.neighbours)
        suspect_count = int(suspect.sum()) if known else None
        if known:
            notes.extend(judged.notes)
            hint = mismatch_note(judged, split, result.errors, result.items)
            if hint:
                notes.append(hint)
        from diagnose.io.outputs import OutputGroup

        # The sheet and its PNG are written to temporaries and renamed together at the end: an
        # interruption or a full disk leaves the previous pair as it was.
        with OutputGroup() as group:
            staged = group.path(out)
            write_sheet(staged, columns, rows)
            if backup is None and out.is_file() and out.read_bytes() != staged.read_bytes():
                # An unmarked sheet may still hold a person's edits (a corrected label): keep it.
                kept_sheet = group.keep(out, unless_ours=False)
                backup = str(kept_sheet) if kept_sheet is not None else None
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
        thresholds={_name(k, classes): round(v, 4) for k, v in judged.thresholds.thresholds().items()} if suspect_count is not None else None,
        thresholds_split=judged.thresholds_split if suspect_count is not None else None,
        neighbours=judged.k if suspect_count is not None else None,
        source=source,
        backup=backup,
        notes=tuple(notes),
    )
    return summary


def _manifest_model(manifest: Manifest | None) -> Path | None:
    """The model file `diagnose gaps` evaluated, as its manifest records it."""
    record = getattr(manifest, "model", None) if manifest is not None else None
    path = getattr(record, "path", None)
    return Path(path) if path else None


def _contact_sheet(
    result: ErrorSample,
    rows: list[list[Any]],
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
    numbers = [int(r[0]) for r in rows]  # the sheet's row number, an int
    fig = contact_sheet(tiles, captions, numbers, suspect=suspect.tolist(), title=title)
    png = out.with_suffix(".png")
    kept = group.keep(png)  # a PNG diagnose did not write (a person's sheet.png) is kept as .bak
    if kept is not None:
        note = ((note + " ") if note else "") + f"Kept the previous {png.name} as {kept}."
    save_contact_sheet(fig, group.path(png), tiles=len(tiles))
    return str(png), note


def _confusion_png(
    folder: Path, split: str, classes: list[str] | None, out: Path, group: Any
) -> tuple[str | None, tuple[tuple[str, str, float, float, int], ...], tuple[str, ...]]:
    """Write `<out stem>_confusion.png`: train_dev and `split` side by side, the grown cells marked.
    (png path or None, grown cells as (true, pred, before, after, count), the splits drawn)."""
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
    group.keep(png)
    save_png(fig, group.path(png))
    named = tuple((_name(g.true, classes), _name(g.pred, classes), g.before, g.after, g.count) for g in grown)
    return str(png), named, tuple(names)


def _evaluate(
    model: Path, data: Path, split: str, tmp: Path, *, batch_size: int, arch: str | None, arch_kwargs: str | None,
    trust_pickle: bool, label_column: str, image_size: tuple[int, int] | None, mean: list[float] | None,
    std: list[float] | None, app_dir: Path | None = None, device: str = "auto", precision: str = "fp32",
    max_items: int | None = None, seed: int = 0,
) -> tuple[Path, Manifest]:
    """Evaluate MODEL on DATA's split into a temporary predictions file (the saved ones of
    `diagnose gaps` are left alone), through the evaluation of `diagnose gaps` (same device, precision,
    --max-items sample). Returns that file and a Manifest of what the sheet needs (classes, data, n_total)."""
    from diagnose.evaluate import evaluate_model
    from diagnose.io.manifest import DataRecord, Manifest, SplitFile, SplitRun
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

    from diagnose.evaluate import resolve_device
    from diagnose.suspects import reference_split

    # The split drawn like training as well: the suspects' thresholds come from it.
    reference = reference_split(split, dataset.splits)
    splits = [split] if reference == split else [split, reference]
    dev = resolve_device(device)
    module = load(str(dev))
    evaluate_model(module, dataset, device=device, precision=precision, batch_size=batch_size,  # type: ignore[arg-type]
                   max_items=max_items, seed=seed, splits=splits, workdir=tmp)
    doubts = _doubts(module, dataset, predictions_path(tmp, reference), reference, device=dev)
    target = dataset.splits[split]
    manifest = Manifest(
        classes=dataset.classes,
        data=DataRecord(path=str(Path(data).resolve()), splits={split: SplitFile(format=target.format)}),
        splits={split: SplitRun(n_total=target.n)},
        report={"verdict_withheld": True, "doubts": doubts} if doubts else None,
    )
    return predictions_path(tmp, split), manifest


def _doubts(module: Any, dataset: Any, predictions: Path, reference: str, *, device: Any) -> list[str]:
    """Why the errors of this evaluation may all be preprocessing errors, as `diagnose gaps` judges it:
    the batch-norm input check on train, and the model against always predicting train's most frequent
    class, on the split drawn like training (one-sided exact McNemar on its items)."""
    import numpy as np
    import pyarrow.parquet as pq

    from diagnose.core.gaps import BASELINE_ALPHA
    from diagnose.core.stats import mcnemar_one_sided
    from diagnose.inputcheck import input_statistics_warning

    found: list[str] = []
    train = dataset.splits.get("train")
    warning = input_statistics_warning(module, train, device=device)
    if warning:
        found.append(warning)
    if train is None or not predictions.is_file():
        return found
    labels = np.asarray(train.labels())
    if not np.issubdtype(labels.dtype, np.integer) or labels.size == 0 or labels.min() < 0:
        return found  # regression, or no classes to count
    majority = int(np.bincount(labels).argmax())
    table = pq.read_table(predictions, columns=["label", "pred"])
    y, pred = (np.asarray(table.column(c).to_numpy(zero_copy_only=False)) for c in ("label", "pred"))
    if not np.issubdtype(y.dtype, np.integer):
        return found
    model_right, base_right = pred == y, y == majority
    p = mcnemar_one_sided(int((model_right & ~base_right).sum()), int((~model_right & base_right).sum()))
    if p >= BASELINE_ALPHA:
        found.append(f"the model is not significantly better on {reference} than always predicting train's most "
                     f"frequent class {majority}: {1 - model_right.mean():.1%} error against {1 - base_right.mean():.1%} "
                     f"(one-sided exact McNemar test, p = {p:.2g}, needs < {BASELINE_ALPHA:g})")
    return found
