"""`diagnose cohorts`: the items of a split joined with their metadata and their image statistics,
and the cohorts of core.cohorts found among them. The predictions come from a `diagnose gaps` workdir
(or any folder of predictions); the metadata from a CSV or Parquet file with an `id` or `index`
column; the images from DATA."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diagnose.core.cohorts import CohortSearch, find_cohorts
from diagnose.exceptions import DataError, UsageError

SOURCES = ("meta", "image", "features")


def run_cohorts(workdir: Path, *, meta: Path | None, split: str = "dev", sources: tuple[str, ...] = (),
                seed: int = 0, min_support: int | None = None, data: Path | None = None) -> CohortSearch:
    """Cohorts of `split` over the columns of `meta` and the image statistics of DATA's items.
    sources: which kinds to search (default: all that apply: meta with a file, image when DATA holds
    images); `data`: the DATA folder (default: the one the workdir's manifest records)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from diagnose.io.manifest import read_manifest
    from diagnose.io.predictions import iter_prediction_batches, prediction_files

    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise UsageError(f"--source: expected meta, image or features, got {unknown[0]!r}; pass e.g. --source meta")
    if "features" in sources:
        raise UsageError("--source features: expected meta or image, got a source that is not searched yet; "
                         "pass --source meta or --source image")
    workdir = Path(workdir)
    if data is None:
        manifest = read_manifest(workdir) if workdir.exists() else None
        recorded = manifest.data.path if manifest is not None and manifest.data is not None else None
        data = Path(recorded) if recorded else None
    wanted = sources or tuple(s for s, ok in (("meta", meta is not None), ("image", data is not None)) if ok)
    if not wanted:
        raise UsageError("--meta: expected a CSV or Parquet file of per-item columns (with an id or index column), "
                         "got none; pass --meta items.csv")
    if "meta" in wanted and meta is None:
        raise UsageError("--meta: expected a CSV or Parquet file of per-item columns (with an id or index column), "
                         "got none; pass --meta items.csv")
    if "image" in wanted and data is None:
        raise UsageError("--data: expected the DATA folder whose images to measure, got none (the workdir records "
                         "none); pass --data DIR")
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
    columns: dict[str, np.ndarray] = {}
    if "meta" in wanted:
        assert meta is not None
        columns.update(_join(read_meta(meta), index, ids, meta))
    if "image" in wanted:
        assert data is not None
        stats = image_statistics(data, split, explicit="image" in sources)
        for name, values in stats.items():
            inside = (index >= 0) & (index < len(values))
            col = np.full(len(index), np.nan)
            col[inside] = values[index[inside]]
            columns.setdefault(name, col)
    return find_cohorts(wrong, columns, split=split, seed=seed, min_support=min_support)


def image_statistics(data: Path, split: str, *, explicit: bool = True) -> dict[str, np.ndarray]:
    """Per item of `split` in DATA, in split order: brightness (mean intensity in [0, 1], over every
    pixel and channel), contrast (the standard deviation of the intensity) and, for image files,
    width and height in pixels. Image files are read with Pillow, .npz arrays with numpy. Empty when
    the split holds no images and `explicit` is False (the source was not asked for by name)."""
    from diagnose.io.splits import ImageSplit, TensorSplit, load_dataset

    try:
        target = load_dataset(Path(data)).splits.get(split)
    except DataError:
        if explicit:
            raise
        return {}
    if target is None:
        if explicit:
            raise DataError(f"{data}: expected a {split} split to measure images of, got none; pass --data with it")
        return {}
    if isinstance(target, ImageSplit):
        from PIL import Image

        out = {name: np.zeros(target.n) for name in ("brightness", "contrast", "width", "height")}
        for i, ident in enumerate(target.ids() or []):
            with Image.open(target.root / ident) as im:
                pixels = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
                out["width"][i], out["height"][i] = im.size
            out["brightness"][i], out["contrast"][i] = pixels.mean(), pixels.std()
        return out
    shape = tuple(target.input_shape)
    if isinstance(target, TensorSplit) and (len(shape) == 2 or (len(shape) == 3 and shape[0] in (1, 3))):
        bright, contrast = np.zeros(target.n), np.zeros(target.n)
        for start in range(0, target.n, 4096):
            block = target.take(np.arange(start, min(start + 4096, target.n))).reshape(-1, int(np.prod(shape)))
            bright[start : start + len(block)] = block.mean(axis=1)
            contrast[start : start + len(block)] = block.std(axis=1)
        return {"brightness": bright, "contrast": contrast}
    if explicit:
        raise DataError(f"{data}: expected image files or image-shaped arrays in the {split} split, got "
                        f"{target.format} items of shape {shape}; pass --source meta with --meta FILE")
    return {}


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

            from diagnose.io.paths import text_encoding

            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            encoding = text_encoding(path, what="a CSV table")  # every byte judged, not a sample
            table = pcsv.read_csv(path, read_options=pcsv.ReadOptions(encoding="utf8" if encoding == "utf-8" else encoding),
                                  parse_options=pcsv.ParseOptions(delimiter=delimiter))
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
