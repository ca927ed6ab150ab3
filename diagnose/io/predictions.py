"""Saved predictions: `.diagnose/predictions/<split>.parquet` + `.diagnose/manifest.json`.

`diagnose gaps` writes them while it evaluates (one row per item, streamed batch by batch); later
commands (`diagnose errors`) read them instead of evaluating again. `--predictions DIR` reads the
same layout written by any framework: required columns `label` and `pred`, the rest optional;
`DIR/<split>.parquet` or a folder `DIR/<split>/` of Parquet shards read as one dataset.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from diagnose.core.gaps import Metric, SplitCounts
from diagnose.exceptions import DataError
from diagnose.io import arrownp
from diagnose.io.atomic import atomic_path
from diagnose.io.manifest import MANIFEST  # noqa: F401  (defined once, in io.manifest)
from diagnose.io.splits import ALIASES, ALL_SPLITS, unreadable

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

PREDICTIONS = "predictions"
TOPK = 5
REQUIRED = ("label", "pred")


def prediction_schema(*, regression: bool, topk: int) -> pa.Schema:
    """Columns of a saved predictions file (see docs/architecture.md)."""
    import pyarrow as pa

    value = pa.float64() if regression else pa.int64()
    fields = [
        pa.field("index", pa.int64(), nullable=False),
        pa.field("id", pa.string()),
        pa.field("label", value, nullable=False),
        pa.field("pred", value, nullable=False),
        pa.field("confidence", pa.float32()),
        pa.field("p_label", pa.float32()),
        pa.field("loss", pa.float32()),
    ]
    for k in range(1, topk + 1):
        fields.append(pa.field(f"top{k}", pa.int32()))
    for k in range(1, topk + 1):
        fields.append(pa.field(f"top{k}_p", pa.float32()))
    return pa.schema(fields)


class PredictionWriter:
    """Appends batches of per-item rows to one Parquet file; it appears under its name only on close."""

    # Rows are buffered into row groups of this size: one row group per model batch (256 rows)
    # made writing 6x slower than the evaluation itself. 65,536 rows are a few MB. The buffer holds
    # the batches' numpy arrays as they come; they become Arrow columns once per row group, since
    # converting 17 small arrays per batch cost a third of a small model's forward pass.
    ROW_GROUP = 65536

    def __init__(self, path: Path, *, regression: bool, topk: int) -> None:
        self.path = Path(path)
        self.schema = prediction_schema(regression=regression, topk=topk)
        self.topk = topk
        self.rows = 0
        self._pending: dict[str, list[Any]] = {f.name: [] for f in self.schema}
        self._pending_rows = 0
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        import pyarrow.parquet as pq

        # Dictionary encoding halved the writing speed and made the file larger: per-item floats
        # rarely repeat, and zstd packs the small class columns well without it.
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression="zstd", use_dictionary=False)

    def write(self, columns: dict[str, Any]) -> None:
        """columns: name -> (B,) array (or list for `id`); missing optional columns are written null."""
        n = len(columns["index"])
        for name, parts in self._pending.items():
            v = columns.get(name)
            parts.append(n if v is None else v)  # an int stands for n nulls
        self._pending_rows += n
        self.rows += n
        if self._pending_rows >= self.ROW_GROUP:
            self._flush()

    def _column(self, parts: list[Any], type_: Any) -> Any:
        import pyarrow as pa

        # Built with io.arrownp: pa.array would import pandas (half a second) on the first batch.
        if all(isinstance(p, int) for p in parts):
            return pa.nulls(sum(parts), type_)
        if type_ == pa.string():
            return arrownp.strings([v for p in parts for v in ([None] * p if isinstance(p, int) else p)])
        if any(isinstance(p, int) for p in parts):
            return pa.concat_arrays([pa.nulls(p, type_) if isinstance(p, int) else arrownp.column(p, type_) for p in parts])
        return arrownp.column(np.concatenate(parts), type_)

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending_rows:
            arrays = [self._column(self._pending[f.name], f.type) for f in self.schema]
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema), row_group_size=self.ROW_GROUP)
            self._pending = {name: [] for name in self._pending}
            self._pending_rows = 0

    def close(self, ok: bool = True) -> None:
        if ok:
            self._flush()
        self._writer.close()
        if ok:
            self._atomic.__exit__(None, None, None)
        else:
            exc = RuntimeError("aborted")
            with contextlib.suppress(RuntimeError):
                self._atomic.__exit__(RuntimeError, exc, None)

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(ok=exc_type is None)


def check_writable_folder(folder: Path, what: str) -> None:
    """Raise a one-line error before any work when `folder` (or the nearest parent that exists) is a
    file or may not be written (io.outputs.check_folder, the one rule for every output)."""
    from diagnose.io.outputs import check_folder

    check_folder(folder, what)


def predictions_path(workdir: Path, split: str) -> Path:
    return Path(workdir) / PREDICTIONS / f"{split}.parquet"


def prediction_files(directory: Path) -> dict[str, Path]:
    """Canonical split -> `<split>.parquet` file or `<split>/` folder of shards.

    `directory` may be a workdir (holding `predictions/`) or the predictions folder itself; split
    names may use the aliases (val, train-dev, ...).
    """
    try:
        return _prediction_files(Path(directory))
    except PermissionError as exc:
        raise DataError(unreadable(exc.filename or directory, "folder")) from None


def _prediction_files(directory: Path) -> dict[str, Path]:
    from diagnose.io.paths import require_file

    if not directory.is_dir():
        raise DataError(f"{directory}: expected a folder of <split>.parquet prediction files, got nothing there; check the path")
    if (directory / PREDICTIONS).is_dir():
        directory = directory / PREDICTIONS
    found: dict[str, Path] = {}
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if not any(entry.glob("*.parquet")):
                continue
            stem = entry.name
        elif entry.suffix == ".parquet":
            stem = entry.stem
        else:
            continue
        canonical = ALIASES.get(stem.lower())
        if canonical is None:
            continue
        if not entry.is_dir():  # a FIFO, a loop or a dangling link named dev.parquet: one line
            require_file(entry, "a Parquet predictions file", "remove it or rerun diagnose gaps", DataError)
        if canonical in found:
            raise DataError(
                f"{directory}: expected one predictions file per split, got {found[canonical].name} and {entry.name}; remove one"
            )
        found[canonical] = entry
    if not found:
        present = ", ".join(sorted(p.name for p in directory.iterdir())[:8]) or "an empty folder"
        raise DataError(
            f"{directory}: expected prediction files named train, train_dev, dev or test (.parquet, or a folder of shards), "
            f"got {present}; name one file per split"
        )
    return {s: found[s] for s in ALL_SPLITS if s in found}


def _dataset(path: Path) -> Any:
    import pyarrow.dataset as ds

    try:
        return ds.dataset(str(path), format="parquet")
    except PermissionError:
        raise DataError(unreadable(path, "predictions file" if path.is_file() else "folder of prediction shards")) from None
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError subclasses for bad files
        raise DataError(f"{path}: expected Parquet, got {type(exc).__name__}: {str(exc).splitlines()[0][:160]}; write it with pyarrow or pandas.to_parquet") from None


def iter_prediction_batches(path: Path, columns: list[str] | None = None, batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
    """Stream a predictions file or shard folder as record batches (memory bounded by batch_size)."""
    data = _dataset(path)
    names = data.schema.names
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise DataError(
            f"{path}: expected columns {', '.join(REQUIRED)}, got {', '.join(names[:8]) or 'no columns'}; "
            f"add the {' and '.join(missing)} column"
        )
    cols = [c for c in columns if c in names] if columns is not None else None
    # Little read-ahead: memory stays at a few batches whatever the size of the files.
    yield from data.to_batches(columns=cols, batch_size=batch_size, batch_readahead=2, fragment_readahead=1)


def read_predictions(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """One split's predictions as a DataFrame (a file or a folder of shards); `columns` picks some."""
    import pandas as pd
    import pyarrow as pa

    batches = list(iter_prediction_batches(path, columns))
    if not batches:
        return pd.DataFrame(columns=columns or list(REQUIRED))
    return pa.Table.from_batches(batches).to_pandas()


def _class_codes(values: Any, lookup: dict[str, int] | None, path: Path, column: str) -> np.ndarray:
    """A label or pred column as int64 class indices; strings are mapped through the class names."""
    import pyarrow as pa

    t = values.type
    if pa.types.is_integer(t):
        arr = values.to_numpy(zero_copy_only=False)
        if values.null_count:
            raise DataError(f"{path}: expected a {column} in every row, got {values.null_count} empty; fill or drop those rows")
        return arr.astype(np.int64)
    if pa.types.is_floating(t):
        arr = values.to_numpy(zero_copy_only=False)
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise DataError(
                f"{path}: expected class indices in {column!r}, got fractional values like {arr[arr != np.round(arr)][:1]}; "
                "pass --metric mse or --metric mae for regression"
            )
        return arr.astype(np.int64)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        if lookup is None:
            raise DataError(
                f"{path}: expected class indices in {column!r}, got class names and no class list; "
                "put classes.txt (one name per line) beside the predictions"
            )
        names = values.to_pylist()
        try:
            return np.fromiter((lookup[str(v)] for v in names), dtype=np.int64, count=len(names))
        except KeyError as exc:
            raise DataError(f"{path}: expected {column} among the known classes, got {exc.args[0]!r}; add it to classes.txt") from None
    raise DataError(f"{path}: expected integer or string {column!r}, got {t}; write class indices")


def tally_predictions(path: Path, *, metric: Metric, classes: list[str] | None = None) -> SplitCounts:
    """Stream one split's predictions into SplitCounts (counts and confusion matrix, never all rows)."""
    tally = SplitCounts(metric=metric)
    lookup = {c: i for i, c in enumerate(classes)} if classes else None
    size = len(classes) if classes else 0
    for rb in iter_prediction_batches(path, list(REQUIRED)):
        label, pred = rb.column("label"), rb.column("pred")
        if metric == "error":
            y = _class_codes(label, lookup, path, "label")
            p = _class_codes(pred, lookup, path, "pred")
            if len(y) and (min(y.min(), p.min()) < 0):
                raise DataError(f"{path}: expected class indices >= 0, got {min(y.min(), p.min())}; write 0-based indices")
            size = max(size, int(y.max(initial=-1)) + 1, int(p.max(initial=-1)) + 1)
            tally.add_classes(y, p, size)
        else:
            y = label.to_numpy(zero_copy_only=False).astype(np.float64)
            p = pred.to_numpy(zero_copy_only=False).astype(np.float64)
            diff = p - y
            tally.add_losses(np.square(diff) if metric == "mse" else np.abs(diff))
    if tally.n == 0:
        raise DataError(f"{path}: expected at least one prediction, got 0 rows; remove the file or fill it")
    return tally
