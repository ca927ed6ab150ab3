"""`diagnose cohorts`: the items of a split joined with their metadata, and the cohorts of
core.cohorts found among them. The predictions come from a `diagnose gaps` workdir (or any folder of
predictions); the metadata from a CSV or Parquet file with an `id` or `index` column."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diagnose.core.cohorts import CohortSearch, find_cohorts
from diagnose.exceptions import DataError, UsageError

SOURCES = ("meta", "image", "features")


def run_cohorts(workdir: Path, *, meta: Path | None, split: str = "dev", sources: tuple[str, ...] = (),
                seed: int = 0, min_support: int | None = None) -> CohortSearch:
    """Cohorts of `split` over the columns of `meta`. sources: which kinds to search (default: all
    that apply); only per-item metadata (`meta`) is searched so far."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from diagnose.io.predictions import iter_prediction_batches, prediction_files

    wanted = sources or ("meta",)
    unknown = [s for s in wanted if s not in SOURCES]
    if unknown:
        raise UsageError(f"--source: expected meta, image or features, got {unknown[0]!r}; pass e.g. --source meta")
    missing = [s for s in wanted if s != "meta"]
    if missing:
        raise UsageError(
            f"--source {missing[0]}: expected meta, got a source that is not searched yet (only per-item "
            "metadata is); pass --source meta with --meta FILE"
        )
    if meta is None:
        raise UsageError("--meta: expected a CSV or Parquet file of per-item columns (with an id or index column), "
                         "got none; pass --meta items.csv")
    workdir = Path(workdir)
    if not workdir.exists():
        raise DataError(f"{workdir}: expected the predictions saved by `diagnose gaps`, got no such folder; "
                        "run `diagnose gaps MODEL DATA` first, or pass the workdir")
    files = prediction_files(workdir)
    if split not in files:
        raise DataError(f"{workdir}: expected predictions for the {split} split, got {', '.join(files) or 'none'}; "
                        f"pass --split with one of them")
    index_parts, id_parts, wrong_parts = [], [], []
    position = 0
    for rb in iter_prediction_batches(files[split], ["index", "id", "label", "pred"]):
        n = rb.num_rows
        wrong_parts.append(pc.fill_null(pc.not_equal(rb.column("label"), rb.column("pred")), False).to_numpy(zero_copy_only=False))
        if "index" in rb.schema.names:
            index_parts.append(rb.column("index").to_numpy(zero_copy_only=False).astype(np.int64))
        else:
            index_parts.append(np.arange(position, position + n, dtype=np.int64))
        if "id" in rb.schema.names:
            id_parts.append(np.asarray(rb.column("id").cast(pa.string()).to_pylist(), dtype=object))
        position += n
    wrong = np.concatenate(wrong_parts) if wrong_parts else np.zeros(0, dtype=bool)
    index = np.concatenate(index_parts) if index_parts else np.zeros(0, dtype=np.int64)
    ids = np.concatenate(id_parts) if id_parts else None
    columns = _join(read_meta(meta), index, ids, meta)
    return find_cohorts(wrong, columns, split=split, seed=seed, min_support=min_support)


def read_meta(path: Path) -> dict[str, np.ndarray]:
    """Column name -> values of a CSV or Parquet file."""
    import pyarrow as pa

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: expected a CSV or Parquet file of per-item metadata, got no such file; check the path")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif path.suffix.lower() in (".csv", ".tsv", ".txt"):
            import pyarrow.csv as pcsv

            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            table = pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter=delimiter))
        else:
            raise DataError(f"{path}: expected a .csv or .parquet file, got {path.suffix or 'no suffix'}; "
                            "save the metadata as CSV or Parquet")
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: expected a CSV or Parquet table, got one that cannot be read ({str(exc).splitlines()[0]}); "
                        "check the file") from None
    out: dict[str, np.ndarray] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            out[name] = col.to_numpy().astype(np.float64) if col.null_count else col.to_numpy()
        elif pa.types.is_boolean(col.type):
            out[name] = np.asarray(col.to_pylist(), dtype=object) if col.null_count else col.to_numpy(zero_copy_only=False)
        else:
            out[name] = np.asarray(col.cast(pa.string()).to_pylist(), dtype=object)
    return out


def _join(meta: dict[str, np.ndarray], index: np.ndarray, ids: np.ndarray | None, path: Path) -> dict[str, np.ndarray]:
    """The metadata columns in the order of the predictions, matched on `index` or else `id`."""
    if "index" in meta:
        key = np.asarray(meta["index"])
        if key.dtype.kind == "f" and np.isnan(key).any():
            raise DataError(f"{path}: expected an item position in every 'index' cell, got empty ones; fill or drop them")
        key = key.astype(np.int64)
        lookup = {int(k): i for i, k in enumerate(key.tolist())}
        rows = np.array([lookup.get(int(i), -1) for i in index.tolist()], dtype=np.int64)
        by = "index"
    elif "id" in meta:
        if ids is None:
            raise DataError(f"{path}: expected an 'index' column, got only 'id' while the predictions carry no id; "
                            "add each item's position in the split as 'index'")
        by_id = {str(k): i for i, k in enumerate(meta["id"].tolist())}
        rows = np.array([by_id.get(str(i), -1) for i in ids.tolist()], dtype=np.int64)
        by = "id"
    else:
        raise DataError(f"{path}: expected an 'id' or 'index' column to match items with, got {', '.join(meta) or 'no columns'}; "
                        "add one")
    if not (rows >= 0).any():
        raise DataError(f"{path}: expected rows matching the items of the split by {by!r}, got none; "
                        f"check that the {by} values are those of the predictions")
    out = {}
    for name, values in meta.items():
        if name in ("index", "id"):
            continue
        col = np.asarray(values)
        if col.dtype.kind in "iub":
            col = col.astype(np.float64) if col.dtype.kind != "b" else col.astype(object)
        filler = np.nan if col.dtype.kind == "f" else None
        taken = np.empty(len(rows), dtype=col.dtype)
        taken[rows >= 0] = col[rows[rows >= 0]]
        if (rows < 0).any():
            taken[rows < 0] = filler
        out[name] = taken
    if not out:
        raise DataError(f"{path}: expected columns to search besides {by!r}, got none; add per-item columns")
    return out
