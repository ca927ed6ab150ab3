"""A sample of misclassified items as a pandas DataFrame, and the sheet a person marks by hand.

`sample_from_predictions` streams a predictions file (or folder of shards) batch by batch into the
seeded reservoir of `core.sampling`, so the predictions never have to fit in memory; only the rows
that can enter the sample become pandas rows. `ErrorSheet.to_sheet` writes them as the CSV that
`diagnose tally` counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diagnose.exceptions import ArgumentError, DataError, OverwriteRefused

COLUMNS = ("index", "id", "label", "pred", "confidence", "p_label", "loss")
BATCH_ROWS = 65536


class ErrorSheet(pd.DataFrame):
    """One row per sampled misclassified item: n (row number), split, index, id, label, pred,
    confidence, p_label, loss. Class names replace indices where known.

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


def _name(value: Any, classes: Sequence[str] | None) -> Any:
    if classes is not None and isinstance(value, (int, np.integer)) and 0 <= int(value) < len(classes):
        return classes[int(value)]
    return value.item() if isinstance(value, np.generic) else value


def stream_errors(path: Path, sampler: Any) -> None:
    """Feed every batch of a predictions file or shard folder to `sampler` (core.sampling.ErrorSampler)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from diagnose.io.predictions import iter_prediction_batches

    position = 0
    for rb in iter_prediction_batches(path, list(COLUMNS), batch_size=BATCH_ROWS):
        label, pred = rb.column("label"), rb.column("pred")
        if pa.types.is_floating(label.type) or pa.types.is_floating(pred.type):
            values = np.concatenate([c.to_numpy(zero_copy_only=False).astype(np.float64) for c in (label, pred)
                                     if pa.types.is_floating(c.type)])
            if not np.all(np.isnan(values) | (values == np.round(values))):
                raise DataError(f"{path}: expected class indices in label and pred, got fractional values (regression); "
                                "error analysis by category needs a classifier's predictions")
        mask = pc.fill_null(pc.not_equal(label, pred), False)
        sampler.count_items(rb.num_rows)
        wrong = rb.filter(mask)
        if wrong.num_rows:
            if "index" in rb.schema.names:
                index = wrong.column("index").to_numpy(zero_copy_only=False).astype(np.int64)
            else:  # no index column: the position in the stream (files in name order)
                index = np.flatnonzero(mask.to_numpy(zero_copy_only=False)).astype(np.int64) + position
            lab = wrong.column("label").to_numpy(zero_copy_only=False)
            prd = wrong.column("pred").to_numpy(zero_copy_only=False)
            lab = lab.astype(np.int64) if lab.dtype.kind == "f" else lab
            prd = prd.astype(np.int64) if prd.dtype.kind == "f" else prd
            admit = sampler.offer(index, lab, prd)
            if admit.any():
                rows = wrong.filter(pa.array(admit)).to_pandas()
                rows["index"], rows["label"], rows["pred"] = index[admit], lab[admit], prd[admit]
                sampler.admit(rows)
        position += rb.num_rows


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
    sampler = ErrorSampler(n, seed)
    stream_errors(files[canonical], sampler)
    result = sampler.result(list(COLUMNS))
    rows = result.rows
    conf = rows["confidence"].astype("float64").to_numpy() if "confidence" in rows else np.full(len(rows), np.nan)
    p_label = rows["p_label"].astype("float64").to_numpy() if "p_label" in rows else np.full(len(rows), np.nan)
    frame = ErrorSheet({
        "n": np.arange(1, len(rows) + 1),
        "split": canonical,
        "index": rows["index"].astype("int64").to_numpy(),
        "id": rows["id"].tolist() if "id" in rows else [None] * len(rows),
        "label": [_name(v, classes) for v in rows["label"].tolist()],
        "pred": [_name(v, classes) for v in rows["pred"].tolist()],
        "confidence": conf,
        "p_label": p_label,
        "loss": rows["loss"].astype("float64").to_numpy() if "loss" in rows else np.full(len(rows), np.nan),
    })
    frame.attrs.update({"items": result.items, "errors": result.errors, "seed": seed, "split": canonical})
    return frame
