"""Training logs -> one tidy set of series: train_loss, val_loss, train_acc, val_acc, lr and the rest.

Reads CSV/TSV with a header (Keras CSVLogger, Lightning metrics.csv, Ultralytics results.csv, W&B and
MLflow exports), JSON lines (mode/phase-tagged too), JSON documents (Hugging Face trainer_state.json,
a Keras History dict), TensorBoard event files or folders, and plain console logs. The format is
detected from the content; never imports torch.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from diagnose.core.hints import Series
from diagnose.exceptions import LogParseError, UsageError
from diagnose.io import arrownp

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("csv", "tsv", "jsonl", "json", "tensorboard", "mlflow", "text")
CANONICAL = ("train_loss", "val_loss", "train_acc", "val_acc", "lr")

_HEAD_BYTES = 65536

# Names (lower case, spaces and dashes as `_`) that are the x axis, not a metric.
_STEP_NAMES = ("step", "global_step", "iteration", "iter", "it", "_step", "trainer/global_step", "steps", "batch")
_EPOCH_NAMES = ("epoch", "epochs", "trainer/epoch", "_epoch")
# Bookkeeping columns: timings, sizes, ids. Kept out of the metrics.
_IGNORED = {
    "time", "data_time", "eta_seconds", "rank_data_time", "_runtime", "_timestamp", "timestamp", "wall_time",
    "n_parameters", "total_flos", "memory", "v_num", "eta", "runtime", "created_at", "relative_time",
    "train_runtime", "train_samples_per_second", "train_steps_per_second", "eval_runtime",
    "eval_samples_per_second", "eval_steps_per_second", "hp_metric", "num_input_tokens_seen",
    "batch_cost", "reader_cost", "ips", "iter_time", "mem",
}
_MODE_COLUMNS = ("mode", "phase", "split", "stage", "subset")
_VAL_PREFIXES = ("validation_", "validation/", "valid_", "valid/", "val_", "val/", "eval_", "eval/", "v_")
_TRAIN_PREFIXES = ("training_", "training/", "train_", "train/", "trn_", "tr_")
_LOSS_NAMES = {
    "loss", "total_loss", "loss_total", "totalloss", "objective", "avg_loss", "mean_loss", "ce_loss", "average_loss",
    "epoch_loss", "loss_avg", "lm_loss", "nll", "nll_loss", "cross_entropy", "xent",
}
# Perplexity: the exponential of the (cross-entropy) loss; read as loss = ln(ppl).
_PPL_NAMES = {"ppl", "perplexity"}
_ACC_NAMES = {
    "acc", "accuracy", "top1", "acc1", "top1_acc", "acc_top1", "accuracy_top1", "top1_accuracy",
    "categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy", "acc@1", "prec@1",
    "accuracy_top_1", "top_1", "top_1_acc", "top_1_accuracy", "acc_top_1", "overall_accuracy", "token_acc",
    "token_accuracy", "mean_token_accuracy", "avg_acc", "average_accuracy", "acc@top1", "accuracy/top1",
}
_LR_NAMES = {"lr", "learning_rate", "learningrate", "lr_0", "lr/pg0", "lr_pg0", "lr0"}


@dataclass(frozen=True)
class MappedName:
    """How one logged name was read: `target` is the series it became ('' when ignored)."""

    source: str
    target: str
    points: int
    note: str = ""


@dataclass
class ParsedLog:
    """One run's log, parsed. `series`: canonical name -> Series; `others`: every other metric."""

    path: Path
    format: str
    series: dict[str, Series]
    others: dict[str, Series]
    mapping: list[MappedName]
    notes: list[str] = field(default_factory=list)
    run: int = 1  # which run of the file this is, from 1
    runs: int = 1  # how many runs the file holds
    run_name: str = ""  # the run's own name when the file gives one (W&B exports)

    def get(self, name: str) -> Series | None:
        return self.series.get(name) or self.others.get(name)

    @property
    def label(self) -> str:
        """The file name, with `run k` when the file holds several runs."""
        if self.run_name:
            return f"{self.path.name} {self.run_name}"
        return self.path.name + (f" run {self.run}" if self.runs > 1 else "")


@dataclass
class _Raw:
    """A metric as read, before naming: positions in the log (`order`), x values and numbers."""

    name: str
    order: np.ndarray
    value: np.ndarray
    step: np.ndarray | None = None
    epoch: np.ndarray | None = None
    percent: bool = False
    run: str = ""  # the run it belongs to when the file names its runs (W&B exports: `<run> - <metric>`)


@dataclass
class _Reading:
    raws: list[_Raw]
    step_track: tuple[np.ndarray, np.ndarray] | None = None  # (order, step)
    epoch_track: tuple[np.ndarray, np.ndarray] | None = None  # (order, epoch)
    notes: list[str] = field(default_factory=list)
    seen: str = ""  # what was found, for the error when nothing is a metric
    files: int = 1


# ---------------------------------------------------------------------------------------------------
# Names


def _norm(name: str) -> str:
    """Lower case, spaces and dashes as `_`, camelCase split (`ValLoss` -> `val_loss`)."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[\s\-]+", "_", name.lower())


def _x_kind(name: str) -> str | None:
    n = _norm(name)
    for p in _TRAIN_PREFIXES:  # `Train Epoch: 3`
        if n.startswith(p) and n[len(p):] in _EPOCH_NAMES:
            n = n[len(p):]
    if n in _STEP_NAMES:
        return "step"
    if n in _EPOCH_NAMES:
        return "epoch"
    return None


def canonical_name(name: str) -> tuple[str | None, int]:
    """The canonical series a logged name stands for, and a rank (lower wins when several do)."""
    n = _norm(name)
    rank = 0
    if n.startswith("x/"):  # YOLOv5 results.csv: x/lr0, x/lr1, x/lr2
        n = n[2:]
    if n.startswith("metrics/"):  # Ultralytics: metrics/* are validation metrics
        n = "val_" + n[len("metrics/") :]
    if n.endswith("_step"):
        n, rank = n[:-5], 0
    elif n.endswith("_epoch"):
        n, rank = n[:-6], 1
    if n in _LR_NAMES or n.startswith(("lr_", "lr/", "lr@", "lr(")) or n in {"train_lr", "train/lr"}:
        return "lr", rank + (0 if n in _LR_NAMES or n in {"train_lr", "train/lr", "lr_adam"} else 2)
    split = "train"
    for p in _VAL_PREFIXES:
        if n.startswith(p):
            split, n = "val", n[len(p) :]
            break
    else:
        for p in _TRAIN_PREFIXES:
            if n.startswith(p):
                n = n[len(p) :]
                break
        else:
            if "/" in n:  # loss/train, accuracy/val
                head, _, tail = n.partition("/")
                if tail in {"val", "valid", "validation", "eval"}:
                    split, n = "val", head
                elif tail in {"train", "training"}:
                    n = head
    if n in _LR_NAMES:  # val_lr: the same learning rate, logged again with the validation record
        return "lr", rank + 3
    if n.startswith("epoch_"):  # Keras' TensorBoard callback: epoch_loss, epoch_accuracy
        n, rank = n[6:], rank + 1
    if n.startswith("test") or split == "train" and n.startswith(("val", "eval")):
        return None, 0
    if n in _LOSS_NAMES:
        return f"{split}_loss", rank + (1 if n != "loss" else 0)
    if n in _PPL_NAMES:  # ranked after a logged loss
        return f"{split}_loss", rank + 4
    if n in _ACC_NAMES:
        return f"{split}_acc", rank + (1 if n not in {"acc", "accuracy"} else 0)
    return None, 0


_TWIN_PREFIXES = ("val_", "valid_", "validation_", "eval_", "test_")


def _twin_name(name: str, norms: set[str]) -> tuple[str | None, int]:
    """A name of no series of its own, read through its validation twin: `model_acc` beside `val_acc`
    (or `val_model_acc`, `eval_acc`, `test_acc`) is the training accuracy whatever its own prefix, and
    `val_model_acc` beside `model_acc` the validation one. Ranked after the names read directly."""
    n = _norm(name)
    split = "train"
    for p in _TWIN_PREFIXES[:4]:
        if n.startswith(p) and n[len(p):] in norms:
            split, n = "val", n[len(p):]
            break
    for i, ch in enumerate(n):
        if ch != "_" or i == 0:
            continue
        stem = n[i + 1:]
        target, _ = canonical_name(stem)
        if target not in ("train_loss", "train_acc") or stem in _LR_NAMES:
            continue
        # One name of its split ends in this metric (not `box_loss` beside `cls_loss`: parts, not the loss).
        own = [m for m in norms if m.endswith("_" + stem)
               and (m.startswith(_TWIN_PREFIXES[:4]) if split == "val" else not m.startswith(_TWIN_PREFIXES))]
        if len(own) == 1 and (split == "val" or any(p + n in norms or p + stem in norms for p in _TWIN_PREFIXES)):
            return f"{split}_{target[6:]}", 5
    return None, 0


def _test_as_val(name: str) -> tuple[str | None, int]:
    """`test_loss`, `Test set: Average loss` -> the validation series they would stand for."""
    n = _norm(name)
    for p in ("test_set_", "test_", "test/", "testing_"):
        if n.startswith(p):
            target, rank = canonical_name("val_" + n[len(p):])
            return (target, rank) if target in ("val_loss", "val_acc") else (None, 0)
    return None, 0


def _is_accuracy_like(name: str) -> bool:
    n = _norm(name)
    return bool(re.search(r"acc|top\d|precision|recall|map|f1|iou|dice", n))


# ---------------------------------------------------------------------------------------------------
# Reading each format


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LogParseError(f"{path}: expected a readable log file, got {exc.strerror or exc}; check the path") from None


# A line longer than this is no log record (a progress bar never ended by a newline, a dump): it is cut
# out before the text is read, so memory follows what is read, not the file.
_MAX_LINE = 1 << 20
_BLOCK = 1 << 24


def _long_line_spans(path: Path) -> list[tuple[int, int]]:
    """(start, end) file offsets of the lines longer than _MAX_LINE, end at their newline (or the end of
    the file). The file is mapped, not read: one backward search per _MAX_LINE bytes finds the last
    newline of each window, so short lines cost nothing each and touch one page per window; the end
    of a long line is sought a block at a time, each block let go once searched."""
    import mmap

    size = path.stat().st_size
    spans: list[tuple[int, int]] = []
    if size <= _MAX_LINE:
        return spans
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        pos = 0
        while size - pos > _MAX_LINE:
            j = mm.rfind(b"\n", pos, pos + _MAX_LINE + 1)
            if j >= 0:
                pos = j + 1
                continue
            end, a = size, pos + _MAX_LINE
            while a < size:
                b = min(a + _BLOCK, size)
                k = mm.find(b"\n", a, b)
                if hasattr(mmap, "MADV_DONTNEED"):  # the pages searched leave the resident set
                    page = a - a % mmap.PAGESIZE
                    mm.madvise(mmap.MADV_DONTNEED, page, b - page)
                if k >= 0:
                    end = k
                    break
                a = b
            spans.append((pos, end))
            pos = end + 1
    return spans


def _last_state(tail: bytes) -> bytes | None:
    """The last state of a line rewritten in place (`\r` progress bars, Keras' `\b`), from the line's
    last bytes; None when they hold no complete state."""
    t = tail.rstrip(b"\r")
    k = max(t.rfind(b"\r"), t.rfind(b"\b"))
    state = t[k + 1 :] if k >= 0 else b""
    return state if state.strip() else None


def _read_bounded(path: Path, notes: list[str]) -> bytes:
    """The file's bytes without its lines longer than _MAX_LINE: a line rewritten in place keeps its
    last state, as the text reader would read it; any other is skipped, with a note. Only the bytes
    kept are read into memory."""
    try:
        spans = _long_line_spans(path)
        if not spans:
            return _read_bytes(path)
        pieces, prev, kept = [], 0, 0
        with open(path, "rb") as f:
            for start, end in spans:
                f.seek(prev)
                pieces.append(f.read(start - prev))
                f.seek(max(start, end - _MAX_LINE))
                state = _last_state(f.read(end - max(start, end - _MAX_LINE)))
                if state is not None:
                    pieces.append(state + b"\n")
                    kept += 1
                prev = end + 1
            f.seek(prev)
            pieces.append(f.read())
    except OSError as exc:
        raise LogParseError(f"{path}: expected a readable log file, got {exc.strerror or exc}; check the path") from None
    mib = _MAX_LINE >> 20
    if len(spans) > kept:
        notes.append(f"{len(spans) - kept} line(s) longer than {mib} MiB were skipped (not log records)")
    if kept:
        notes.append(f"{kept} line(s) longer than {mib} MiB, rewritten in place (\\r, \\b), were read at their last state")
    return b"".join(pieces)


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(_HEAD_BYTES)
    except OSError as exc:
        raise LogParseError(f"{path}: expected a readable log file, got {exc.strerror or exc}; check the path") from None


def _content_end(data: bytes) -> int:
    """The length of `data` without trailing whitespace, found without copying it."""
    end = len(data)
    while end and data[end - 1] in b" \t\r\n":
        end -= 1
    return end


def _decode(data: bytes) -> tuple[str, bool]:
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), True


@dataclass
class _NotUtf8(Exception):
    """pyarrow met bytes that are not UTF-8 in a text cell: decode with replacement and read again."""


@dataclass
class _Col:
    """One column of a table: numbers with a mask of the cells that hold one, or text (`present` None)."""

    values: np.ndarray | None
    present: np.ndarray | None
    text: np.ndarray | None = None


def _df_columns(df: pd.DataFrame) -> dict[str, _Col]:
    cols = {}
    names = [str(c).strip() for c in df.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:  # read by name, one copy would silently replace the other
        raise LogParseError(f"expected distinct column names, got {dupes[0]!r} twice; rename one of the columns")
    for c in df.columns:
        values, present = _numeric(df[c])
        text = df[c].astype(str).to_numpy() if present is None else None
        cols[str(c).strip()] = _Col(values if present is not None else None, present, text)
    return cols


def _arrow_columns(table: Any) -> dict[str, _Col]:
    """pyarrow columns -> _Col without going through pandas: nulls are 'not logged', NaN stays NaN."""
    import pyarrow as pa

    cols = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        name = str(name).strip().replace(".", "/") if "." in str(name) and "/" not in str(name) else str(name).strip()
        if name in cols:  # read by name, one copy would silently replace the other
            raise LogParseError(f"expected distinct column names, got {name!r} twice; rename one of the columns")
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            cols[name] = _Col(arrownp.floats(col), arrownp.valid(col))
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
            raise _NotUtf8  # pyarrow keeps cells that are not UTF-8 as bytes
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
            try:
                cells = col.to_pylist()
            except UnicodeDecodeError:
                raise _NotUtf8 from None
            cols[name] = _cells_col(cells)
    return cols


def _col_len(col: _Col) -> int:
    cells = col.present if col.present is not None else col.text
    return 0 if cells is None else len(cells)


def _cells_col(cells: list[Any]) -> _Col:
    """A column read as text cells (pyarrow, polars): numbers when most cells hold one, else text."""
    import pandas as pd

    series = pd.Series(cells, dtype=object)
    values, present = _numeric(series)
    return _Col(values, present, series.astype(str).to_numpy() if present is None else None)


def _frame_reading(df: pd.DataFrame | dict[str, _Col], notes: list[str], n_rows: int | None = None) -> _Reading:
    """A wide table (one row per logged record) -> raws; empty cells are 'not logged', 'nan' is NaN."""
    cols = df if isinstance(df, dict) else _df_columns(df)
    if n_rows is None:
        n_rows = len(df) if not isinstance(df, dict) else max((_col_len(c) for c in cols.values()), default=0)
    order = np.arange(n_rows, dtype=np.float64)
    names = list(cols)
    # Mode-tagged rows (mmdetection, detectron2 eval rows): one block of columns per mode.
    mode_col = next((c for c in names if _norm(c) in _MODE_COLUMNS and cols[c].text is not None), None)
    step_col = next((c for c in names if _x_kind(c) == "step" and cols[c].values is not None), None)
    epoch_col = next((c for c in names if _x_kind(c) == "epoch" and cols[c].values is not None), None)
    if step_col is None and epoch_col is None and mode_col is None:
        epoch_col = _index_epochs(cols, n_rows, notes)
    step = cols[step_col].values if step_col is not None else None
    epoch = cols[epoch_col].values if epoch_col is not None else None
    if step is not None and epoch is not None:
        step = _cumulative_steps(step, epoch, notes)
    reading = _Reading(raws=[], notes=notes)
    if step is not None:
        reading.step_track = (order, step)
    if epoch is not None:
        reading.epoch_track = (order, epoch)
    modes = None
    if mode_col is not None:
        text = cols[mode_col].text
        assert text is not None  # mode_col is a text column
        modes = np.char.lower(np.char.strip(text.astype(str)))
    for col in names:
        c = cols[col]
        if col in (step_col, epoch_col, mode_col) or _x_kind(col) is not None or c.values is None or c.present is None:
            continue
        values, present = c.values, c.present
        groups = [("", present)]
        if modes is not None:
            groups = []
            for mode in dict.fromkeys(modes[present].tolist()):
                prefix = "" if mode in ("train", "training") else ("val_" if mode in ("val", "valid", "validation", "eval") else f"{mode}_")
                groups.append((prefix, present & (modes == mode)))
        for prefix, mask in groups:
            all_rows = bool(mask.all())
            if not all_rows and not mask.any():
                continue
            reading.raws.append(
                _Raw(
                    name=prefix + col,
                    order=order if all_rows else order[mask],
                    value=values if all_rows else values[mask],
                    step=None if step is None else (step if all_rows else step[mask]),
                    epoch=None if epoch is None else (epoch if all_rows else epoch[mask]),
                )
            )
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    reading.seen = f"{n_rows} rows with columns {shown}" if names else "no columns"
    return reading


def _index_epochs(cols: dict[str, _Col], n_rows: int, notes: list[str]) -> str | None:
    """A history written by pandas without an epoch column (Keras' History as a DataFrame): the row
    index is the epoch. Uses the index column when `to_csv` wrote one, else numbers the rows from 1
    (as Keras prints epochs). Only for a dense table of at most 2,000 rows (one row per epoch)."""
    for name, col in cols.items():
        if _norm(name) in ("", "unnamed:_0", "index") and col.values is not None:
            values = col.values
            if n_rows and bool(np.array_equal(values, np.arange(n_rows))):
                cols[name] = _Col(values + 1.0, col.present)
                notes.append("no epoch column: the row index is read as the epoch (from 1)")
                return name
    present = [c.present for c in cols.values() if c.values is not None and c.present is not None]
    if not present or n_rows < 2 or n_rows > 2_000 or not all(bool(p.all()) for p in present):
        return None
    cols["epoch"] = _Col(np.arange(1, n_rows + 1, dtype=np.float64), np.ones(n_rows, dtype=bool))
    notes.append("no epoch column: row k is read as epoch k")
    return "epoch"


def _numeric(col: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """(float64 values, mask of cells that hold something); mask None when the column is not numbers."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64), np.ones(len(col), dtype=bool)
    if pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, ~np.isnan(values)
    text = col.astype("string").str.strip()
    empty = (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    lowered = text.str.lower()
    spelled_nan = lowered.isin(["nan", "-nan", "+nan", "none", "null", "na"]).to_numpy(dtype=bool, na_value=False)
    bad = ~empty & np.isnan(values) & ~spelled_nan
    filled = ~empty
    if filled.sum() == 0 or bad.sum() > 0.5 * filled.sum():
        return values, None
    values[spelled_nan] = np.nan
    return values, filled & ~bad


def _cumulative_steps(step: np.ndarray, epoch: np.ndarray, notes: list[str]) -> np.ndarray:
    """Steps counted within each epoch (mmdetection's `iter`) -> a running count across epochs."""
    if len(step) > 1 and bool(np.all(step[1:] >= step[:-1])):
        return step  # never goes back (a NaN fails the test): nothing to count across epochs
    ok = np.isfinite(step) & np.isfinite(epoch)
    s, e = step[ok], epoch[ok]
    if len(s) < 3 or bool(np.all(s[1:] >= s[:-1])):
        return step
    ds = np.diff(s)
    de = np.diff(e)
    resets = (ds < 0) & (de > 0)
    if not resets.any() or ((ds < 0) & ~(de > 0)).any():
        return step
    offsets = np.concatenate([[0.0], np.cumsum(np.where(resets, s[:-1], 0.0))])
    out = step.copy()
    out[ok] = s + offsets
    notes.append("the step counter restarts every epoch; steps are counted across epochs")
    return out


def _read_csv(data: bytes, sep: str, notes: list[str]) -> _Reading:
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        # pyarrow hands a row with the wrong field count to `skip` below as text; a row that is not UTF-8
        # fails that conversion inside pyarrow, which prints "Exception ignored" instead of raising.
        # Checking the bytes first (ASCII in 0.2 ms per MB, else a decode at ~1 ms per MB) sends such
        # files to the legacy-encoding path.
        if not data.isascii():
            codecs.decode(data, "utf-8")
    except UnicodeDecodeError:
        raise _NotUtf8 from None
    nl = data.find(b"\n")
    header = data[: nl if nl >= 0 else len(data)].decode("utf-8", errors="replace").rstrip("\r")
    n_fields = len(header.split(sep))
    end = _content_end(data)
    last_nl = data.rfind(b"\n", 0, end)
    if not data.endswith(b"\n") and last_nl >= 0 and len(data[last_nl + 1 : end].split(sep.encode())) < n_fields:
        notes.append("the last line is incomplete (a run still writing?); it was left out")
        data = data[: last_nl + 1]
    wandb = _wandb_prefix(header, sep)
    named_runs = _wandb_runs(header, sep) if wandb is None else []
    skipped = [0]

    def skip(row: Any) -> str:
        skipped[0] += 1
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),  # read in C++ with no copy; a BytesIO goes through Python for each block
            # 4 MiB blocks: read in parallel, and few enough to join (1 MiB and 16 MiB were slower).
            read_options=pacsv.ReadOptions(block_size=1 << 22),
            parse_options=pacsv.ParseOptions(delimiter=sep, invalid_row_handler=skip, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if "utf8" in str(exc).lower().replace("-", ""):
            raise _NotUtf8 from None
        raise LogParseError(f"expected a table with a header, got {(str(exc).splitlines() or [type(exc).__name__])[0]}") from None
    try:
        cols = _arrow_columns(table)
    except pa.ArrowInvalid as exc:
        if "utf8" in str(exc).lower().replace("-", ""):
            raise _NotUtf8 from None
        raise
    if skipped[0]:
        notes.append(f"{skipped[0]} rows with the wrong number of fields were skipped")
    if wandb is not None:
        cols = {
            (k[len(wandb) :] if k.startswith(wandb) else k): v
            for k, v in cols.items()
            if not k.endswith(("__MIN", "__MAX", "_step"))
        }
    if named_runs:
        reading = _frame_reading(
            {k: v for k, v in cols.items() if not k.endswith(("__MIN", "__MAX", "_step"))}, notes, n_rows=table.num_rows
        )
        for raw in reading.raws:
            for run in named_runs:
                if raw.name.startswith(run + " - "):
                    raw.name, raw.run = raw.name[len(run) + 3 :], run
                    break
        notes.append(f"the columns name {len(named_runs)} runs (`<run> - <metric>`); each is read as its own run")
        return reading
    normed = {_norm(k) for k in cols}
    if {"key", "value"} <= normed or {"metric", "value"} <= normed:  # MLflow-style long table
        import pandas as pd

        df = pd.read_csv(io.BytesIO(data), sep=sep, skipinitialspace=True)
        return _frame_reading(_pivot_long(df), notes)
    return _frame_reading(cols, notes, n_rows=table.num_rows)


def _wandb_prefix(header: str, sep: str) -> str | None:
    """W&B panel exports name columns `<run> - <metric>` (plus __MIN/__MAX); return `<run> - `."""
    cols = [c.strip().strip('"') for c in header.split(sep)]
    named = [c for c in cols if " - " in c]
    if len(named) < 1 or len(named) < len(cols) - 2:
        return None
    prefix = named[0].split(" - ", 1)[0] + " - "
    return prefix if all(c.startswith(prefix) for c in named) else None


def _wandb_runs(header: str, sep: str) -> list[str]:
    """W&B exports of a panel with several runs: `<run> - <metric>` columns for more than one run."""
    cols = [c.strip().strip('"') for c in header.split(sep)]
    named = [c for c in cols if " - " in c]
    if len(named) < 2 or len(named) < len(cols) - 2:
        return []
    runs = list(dict.fromkeys(c.split(" - ", 1)[0] for c in named))
    return runs if len(runs) > 1 else []


def _pivot_long(df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    by_norm = {_norm(str(c)): c for c in df.columns}
    key = by_norm.get("key", by_norm.get("metric"))
    step = by_norm.get("step")
    value = by_norm["value"]
    index = step if step is not None else None
    out = []
    for name, block in df.groupby(key, sort=False):
        part = pd.DataFrame({str(name): pd.to_numeric(block[value], errors="coerce").to_numpy()})
        if index is not None:
            part["step"] = block[index].to_numpy()
        out.append(part)
    return pd.concat(out, ignore_index=True) if out else df


def _records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    flat = [_flatten(r) for r in records if isinstance(r, dict)]
    return pd.DataFrame.from_records(flat)


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        elif isinstance(v, float) and v != v:
            out[f"{prefix}{k}"] = "nan"  # a logged NaN, not a missing value
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[f"{prefix}{k}"] = v
    return out


def _read_jsonl(data: bytes, text: str | None, notes: list[str]) -> _Reading:
    import pyarrow as pa
    import pyarrow.json as pj

    body = data
    end = _content_end(data)
    last_nl = data.rfind(b"\n", 0, end)
    try:
        json.loads(data[last_nl + 1 : end])
    except ValueError:
        if last_nl >= 0:
            notes.append("the last line is incomplete (a run still writing?); it was left out")
            body = data[: last_nl + 1]
    fast = _polars_columns(body)
    if fast is not None:
        return _frame_reading(fast[0], notes, n_rows=fast[1])
    try:
        # pyarrow reads NaN/Infinity as Python's json writes them; absent keys are nulls (not logged).
        table = pj.read_json(pa.BufferReader(body), read_options=pj.ReadOptions(block_size=1 << 24))
        table = table.flatten()
        while any(pa.types.is_struct(t) for t in table.schema.types):
            table = table.flatten()
        return _frame_reading(_arrow_columns(table), notes, n_rows=table.num_rows)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        # Mixed types, stray lines, bytes that are not UTF-8: the forgiving path, one line at a time.
        if text is None:
            text, replaced = _decode(body)
            if replaced:
                notes.append("some bytes are not UTF-8; they were replaced")
        else:
            text = body.decode("utf-8", errors="replace")
        df = _records_frame(_json_records(text, notes))
    return _frame_reading(df, notes)


def _polars_columns(body: bytes) -> tuple[dict[str, _Col], int] | None:
    """JSON lines through polars when it is installed (an optional extra, about 1.5x faster than
    pyarrow's reader on two cores). polars infers the schema from the first rows and drops keys it
    did not see, so the result is used only when it holds every `"key":` pair of the file; anything
    else (nested records, NaN, a type that changes, null values) goes to pyarrow."""
    try:
        import polars as pl
    except ImportError:
        return None

    try:
        df = pl.read_ndjson(body)
    except Exception:  # polars raises its own error types for anything it does not read
        return None
    if df.height == 0 or df.width == 0:
        return None
    values = sum(df.height - df[c].null_count() for c in df.columns)
    # values <= `":` pairs <= colons: where the colons (a one-byte count, three times faster) match,
    # so do the pairs; else count those.
    if body.count(b":") != values and body.count(b'":') != values:
        return None
    cols: dict[str, _Col] = {}
    for name in df.columns:
        s = df[name]
        if s.dtype.is_numeric() or s.dtype == pl.Boolean:
            present = np.broadcast_to(True, (df.height,)) if s.null_count() == 0 else s.is_not_null().to_numpy()
            cols[name] = _Col(s.cast(pl.Float64).to_numpy(), present)
        elif s.dtype == pl.String:
            cols[name] = _cells_col(s.to_list())
        else:
            return None
    return cols, df.height


def _json_records(text: str, notes: list[str]) -> list[dict[str, Any]]:
    """One json.loads per line; lines that are not JSON objects are counted and skipped."""
    records = []
    bad = 0
    lines = text.splitlines()
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if i == len(lines) - 1 and not text.endswith("\n"):
                notes.append("the last line is incomplete (a run still writing?); it was left out")
            else:
                bad += 1
            continue
        if isinstance(rec, dict):
            records.append(rec)
    if bad:
        notes.append(f"{bad} lines that are not JSON were skipped")
    return records


def _read_json_document(doc: Any, notes: list[str]) -> _Reading:
    import pandas as pd

    if isinstance(doc, dict) and isinstance(doc.get("log_history"), list):
        records = [r for r in doc["log_history"] if isinstance(r, dict)]
        # The trainer's closing record averages the loss over the whole run: not a point on the curve.
        summary = [r for r in records if "train_runtime" in r or "total_flos" in r]
        if summary:
            notes.append("the closing summary record of log_history (train_runtime, run-average loss) was left out")
        return _frame_reading(_records_frame([r for r in records if r not in summary]), notes)
    if isinstance(doc, dict) and isinstance(doc.get("history"), dict):
        doc = doc["history"]
    if _nested_results(doc):
        return _read_split_sections(doc, notes)
    lists = _numeric_lists(doc) if isinstance(doc, dict) else {}
    if lists:
        lengths = [len(v) for v in lists.values()]
        n = max(set(lengths), key=lambda k: (lengths.count(k), k))  # the common length, the longer on a tie
        kept_out = [k for k in doc if k not in lists or len(lists[k]) != n]
        if len(lists) < len(doc) and n > 1:  # a history beside metadata: the lists of one length are the epochs
            lists = {k: v for k, v in lists.items() if len(v) == n}
            shown = ", ".join(kept_out[:6]) + (", ..." if len(kept_out) > 6 else "")
            notes.append(f"{len(kept_out)} key(s) that are not lists of {n} numbers were left out ({shown})")
        n = max(len(v) for v in lists.values())
        cols = {k: [_num_or_nan(x) for x in v] + [np.nan] * (n - len(v)) for k, v in lists.items()}
        df = pd.DataFrame(cols)
        if not any(_x_kind(c) == "epoch" for c in df.columns):
            df.insert(0, "epoch", np.arange(1, n + 1, dtype=np.float64))  # Keras prints epochs from 1
        return _frame_reading(df, notes)
    if isinstance(doc, list) and any(isinstance(r, dict) for r in doc):
        return _frame_reading(_records_frame(doc), notes)
    kind = type(doc).__name__
    keys = ", ".join(list(doc)[:8]) if isinstance(doc, dict) else ""
    reading = _Reading(raws=[], notes=notes)
    reading.seen = f"a JSON {kind}" + (f" with keys {keys}" if keys else "")
    return reading


def _is_number_cell(x: Any) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) or (
        isinstance(x, str) and x.strip().lower() in ("nan", "inf", "-inf", "infinity", "-infinity"))


def _numeric_lists(doc: dict[str, Any]) -> dict[str, list[Any]]:
    """The values of `doc` that are lists of numbers (None and spelled NaN count), by key."""
    return {k: v for k, v in doc.items()
            if isinstance(v, list) and v and all(_is_number_cell(x) for x in v) and any(x is not None for x in v)}


# Section names of a nested results document (Ludwig's training_statistics.json) -> the split they hold.
_SECTION_SPLITS = {"training": "train", "train": "train", "validation": "val", "valid": "val", "val": "val",
                   "eval": "val", "evaluation": "val", "test": "test", "testing": "test"}


def _split_sections(doc: dict[str, Any]) -> list[str]:
    """The keys of `doc` that are split sections (`training`, `validation`, `test`) holding dicts."""
    keys = [k for k, v in doc.items() if _SECTION_SPLITS.get(str(k).strip().lower()) and isinstance(v, dict)]
    return keys if any(_SECTION_SPLITS[str(k).strip().lower()] != "test" for k in keys) else []


def _nested_results(doc: Any) -> bool:
    """Whether `doc` is a nested results document: split sections holding lists of numbers."""
    return isinstance(doc, dict) and any(_section_series(doc[k], ()) for k in _split_sections(doc))


def _section_series(node: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], list[Any]]]:
    """(path, list) for each list of numbers, or of `[epoch, step, value]` triples, under `node`."""
    if isinstance(node, dict):
        return [found for k, v in node.items() for found in _section_series(v, (*path, str(k)))]
    numbers = isinstance(node, list) and bool(node) and bool(path) and (
        all(_is_number_cell(x) for x in node)
        or all(isinstance(x, list) and len(x) == 3 and all(_is_number_cell(y) for y in x) for x in node)
    )
    return [(path, node)] if numbers else []


def _read_split_sections(doc: dict[str, Any], notes: list[str]) -> _Reading:
    """A nested results document, `{"training": {"<output>": {"loss": [...], "accuracy": [...]}},
    "validation": {...}, "test": {...}}` (Ludwig): each list is read by its path, the section giving the
    split. Within a split, a metric logged once keeps its plain name (`val_accuracy`); logged for several
    outputs, the `combined` one (Ludwig's total) does, the others are named with their output
    (`val_label_loss`). Lists of `[epoch, step, value]` give their own axes; plain lists are epochs 1, 2, ..."""
    found: list[tuple[str, tuple[str, ...], list[Any]]] = []
    for key in _split_sections(doc):
        split = _SECTION_SPLITS[str(key).strip().lower()]
        found += [(split, path, values) for path, values in _section_series(doc[key], ())]
    count: dict[tuple[str, str], int] = {}
    for split, path, _ in found:
        count[(split, path[-1])] = count.get((split, path[-1]), 0) + 1
    reading = _Reading(raws=[], notes=notes)
    for split, path, values in found:
        metric, owner = path[-1], "_".join(path[:-1])
        plain = count[(split, metric)] == 1 or owner == "combined"
        name = f"{split}_{metric}" if plain else f"{split}_{owner}_{metric}"
        if isinstance(values[0], list):
            table = np.array([[np.nan if y is None else float(y) for y in x] for x in values], dtype=np.float64)
            epoch, step, value = table[:, 0], table[:, 1], table[:, 2]
        else:
            value = np.array([np.nan if y is None else float(y) for y in values], dtype=np.float64)
            epoch, step = np.arange(1, len(value) + 1, dtype=np.float64), None
        reading.raws.append(_Raw(name=name, order=np.arange(len(value), dtype=np.float64), value=value,
                                 step=step, epoch=epoch))
    sections = ", ".join(_split_sections(doc))
    notes.append(f"a nested results document: the sections {sections} were read as splits, each list by its path")
    reading.seen = f"a JSON document with sections {sections} and no lists of numbers"
    return reading


def _num_or_nan(x: Any) -> float | str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return np.nan
    return "nan" if v != v else v  # a logged NaN, not a missing value


def _read_tensorboard(path: Path, notes: list[str]) -> _Reading:
    from diagnose.io import tensorboard as tb

    files = tb.event_files(path)
    if not files:
        raise LogParseError(f"{path}: expected TensorBoard event files (*tfevents*), got a folder without any; pass the run's log folder")
    tags: list[str] = []
    steps: list[int] = []
    values: list[float] = []
    for f in files:
        try:
            t, s, _, v, truncated = tb.read_scalars(f)
        except tb.EventFileError as exc:
            raise LogParseError(f"{f}: expected a TensorBoard event file, got {exc}; pass --format to read it as something else") from None
        if truncated:
            notes.append(f"{f.name}: the last record is incomplete (a run still writing?); it was left out")
        # Keras' TensorBoard callback writes train/ and validation/ folders with the same tags.
        parent = f.parent.name.lower() if f.parent != path else ""
        if parent in ("validation", "val", "eval"):
            t = [f"val_{x}" for x in t]
        tags.extend(t)
        steps.extend(s)
        values.extend(v)
    step_arr = np.asarray(steps, dtype=np.float64)
    value_arr = np.asarray(values, dtype=np.float64)
    order = np.arange(len(tags), dtype=np.float64)
    reading = _Reading(raws=[], notes=notes, files=len(files))
    reading.step_track = (order, step_arr)
    names = list(dict.fromkeys(tags))
    codes = {name: i for i, name in enumerate(names)}
    code_arr = np.fromiter((codes[t] for t in tags), dtype=np.int64, count=len(tags))
    epoch_code = next((codes[n] for n in names if _x_kind(n) == "epoch"), None)
    if epoch_code is not None:
        m = code_arr == epoch_code
        reading.epoch_track = (order[m], value_arr[m])
    for name in names:
        m = code_arr == codes[name]
        if codes[name] == epoch_code:
            continue
        reading.raws.append(_Raw(name=name, order=order[m], value=value_arr[m], step=step_arr[m]))
    reading.seen = f"{len(files)} event files with tags {', '.join(names[:12])}" if names else f"{len(files)} event files with no scalars"
    return reading


def mlflow_runs(path: Path) -> list[Path]:
    """The MLflow run folders `path` stands for: a run folder (`mlruns/<exp>/<run>/`, holding
    `metrics/`), its `metrics/` folder, or an experiment folder (one run per folder holding `metrics/`),
    oldest first. Empty when `path` is none of these."""
    if not path.is_dir():
        return []
    if path.name == "metrics" and (path.parent / "meta.yaml").is_file():
        return [path.parent]
    if (path / "metrics").is_dir():
        return [path]
    runs = [d for d in path.iterdir() if d.is_dir() and (d / "metrics").is_dir()]

    def started(run: Path) -> tuple[int, str]:
        meta = run / "meta.yaml"
        m = re.search(r"(?m)^start_time:\s*(\d+)", meta.read_text(errors="replace")) if meta.is_file() else None
        return (int(m.group(1)) if m else 0, run.name)

    return sorted(runs, key=started)


def _mlflow_run_name(run: Path) -> str:
    tag = run / "tags" / "mlflow.runName"
    if tag.is_file():
        name = tag.read_text(encoding="utf-8", errors="replace").strip()
        if name:
            return name
    meta = run / "meta.yaml"
    m = re.search(r"(?m)^run_name:\s*(\S.*)$", meta.read_text(errors="replace")) if meta.is_file() else None
    return m.group(1).strip().strip("'\"") if m else run.name


def _read_mlflow_run(run: Path, notes: list[str]) -> _Reading:
    """An MLflow run's metric files (`metrics/<name>`, `/` in a name as folders): each line is
    `timestamp value step` (`timestamp value` before MLflow 1.0) and the file name is the series' name.
    The step is the position; where every point has the same step (logged without one), the points
    are numbered in the order they were logged."""
    folder = run / "metrics"
    files = sorted(f for f in folder.rglob("*") if f.is_file())
    reading = _Reading(raws=[], notes=notes, files=len(files))
    epoch: tuple[np.ndarray, np.ndarray] | None = None
    unstepped = []
    for f in files:
        name = f.relative_to(folder).as_posix()
        cells = _read_bytes(f).split(b"\n")
        rows = [c.split() for c in cells if c.strip()]
        rows = [r for r in rows if len(r) in (2, 3)]
        try:
            value = np.array([r[1] for r in rows], dtype=np.float64)
            step = np.array([r[2] if len(r) == 3 else b"0" for r in rows], dtype=np.float64)
            stamp = np.array([r[0] for r in rows], dtype=np.float64)
        except ValueError:
            raise LogParseError(f"{f}: expected MLflow metric lines `timestamp value step`, got {rows[0][:3]!r}; "
                                "pass the run's folder (mlruns/<experiment>/<run>)") from None
        if not len(value):
            continue
        sort = np.argsort(stamp, kind="stable")  # in the order logged
        value, step = value[sort], step[sort]
        if len(step) > 1 and bool(np.all(step == step[0])):
            unstepped.append(name)
            order = np.arange(len(value), dtype=np.float64)
            reading.raws.append(_Raw(name=name, order=order, value=value, step=np.full(len(value), np.nan),
                                     epoch=np.full(len(value), np.nan)))
            continue
        if _x_kind(name) == "epoch":
            epoch = (step, value)
            continue
        reading.raws.append(_Raw(name=name, order=step, value=value, step=step))
    if epoch is not None:
        sort = np.argsort(epoch[0], kind="stable")
        reading.epoch_track = (epoch[0][sort], epoch[1][sort])
    if unstepped:
        notes.append(f"{', '.join(unstepped[:6])}: logged without steps; the points are numbered in the order logged")
    names = [r.name for r in reading.raws]
    reading.seen = f"{len(files)} metric files" + (f" ({', '.join(names[:10])})" if names else "")
    return reading


_TABLE_HINT = re.compile(r"(?m)^\s*Epoch\s+[A-Za-z_][\w]*\s+[A-Za-z_]")


def _fractional_epochs(
    track: tuple[np.ndarray, np.ndarray], pos: tuple[np.ndarray, np.ndarray], total: tuple[np.ndarray, np.ndarray],
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Lines that give a position inside the epoch (`Epoch [3][50/500]`, `200/2983 batches`) sit at the
    fractional epoch: epochs done plus the share of this one, so epoch 3 of a log counting from 1 runs
    from 2.0 to 3.0 and its closing line (`end of epoch 3`) sits at 3.0."""
    t_order, t_x = track
    p_line, p_val = pos
    tot_line, tot_val = total
    if len(p_line) != len(tot_line) or not np.array_equal(p_line, tot_line):
        return track
    finite = t_x[np.isfinite(t_x)]
    if not len(finite):
        return track
    base = 1.0 if finite.min() >= 1 else 0.0
    epoch_at = _lookup(track, p_line.astype(np.float64))
    ok = np.isfinite(epoch_at) & (tot_val > 0)
    frac = epoch_at[ok] - base + np.clip(p_val[ok] / tot_val[ok], 0.0, 1.0)
    frac_lines = p_line[ok].astype(np.float64)
    if not len(frac):
        return track
    # An epoch-level line after the batch lines of its epoch marks the end of that epoch.
    plain = ~np.isin(t_order, frac_lines)
    last_batch = _lookup((frac_lines, epoch_at[ok]), t_order)
    closing = plain & (last_batch == t_x)
    x = t_x.copy()
    x[closing] = t_x[closing] - base + 1.0
    order = np.concatenate([t_order[plain], frac_lines])
    x = np.concatenate([x[plain], frac])
    sort = np.argsort(order, kind="stable")
    notes.append("lines inside an epoch are placed at the fractional epoch (epochs done + position in the epoch)")
    return order[sort], x[sort]


# Ultralytics YOLOv3/v5 `results.txt`: no header, one space-aligned row per epoch starting with
# `epoch/last` and the GPU memory (`4.54G`). The columns are known from the number of fields.
_YOLO_ROW = re.compile(r"^\s*\d+/\d+\s+[\d.]+[GMK]?(?:\s+[-+0-9.eE]+|\s+nan)+\s*$", re.I)
# (YOLOv5: epoch, memory, box/obj/cls/total loss, labels, image size, P, R, mAP@.5, mAP@.5:.95, val
# box/obj/cls loss; YOLOv3 has GIoU for box and F1 in place of mAP@.5:.95.)
_YOLO_COLUMNS = {
    15: ("epoch", "gpu_mem", "train/box_loss", "train/obj_loss", "train/cls_loss", "train/total_loss", "labels",
         "img_size", "metrics/precision", "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95",
         "val/box_loss", "val/obj_loss", "val/cls_loss"),
}


def _yolo_results_columns(text: str) -> tuple[str, ...] | None:
    """The column names of a headerless YOLO results.txt, recognized by the shape of its rows."""
    lines = [ln for ln in text[:_HEAD_BYTES].splitlines() if ln.strip()][:20]
    if len(lines) < 2 or not all(_YOLO_ROW.match(ln) for ln in lines[:-1]):
        return None
    widths = {len(ln.split()) for ln in lines[:-1]}
    if len(widths) != 1:
        return None
    return _YOLO_COLUMNS.get(widths.pop())


def _read_yolo_results(text: str, names: tuple[str, ...], notes: list[str]) -> _Reading:
    rows = [ln.split() for ln in text.splitlines() if _YOLO_ROW.match(ln)]
    rows = [r for r in rows if len(r) == len(names)]
    n = len(rows)
    cols: dict[str, _Col] = {}
    for j, name in enumerate(names):
        if name in ("gpu_mem", "labels", "targets", "img_size"):
            continue
        cells = [r[j].split("/")[0] if j == 0 else r[j] for r in rows]
        values = np.array([float(c) if c.lower() != "nan" else np.nan for c in cells], dtype=np.float64)
        cols[name] = _Col(values, np.ones(n, dtype=bool))
    notes.append(f"a YOLO results.txt without a header: its {len(names)} columns were recognized by their shape")
    return _frame_reading(cols, notes, n_rows=n)


def _read_text(text: str, notes: list[str], utf8: bytes | None = None) -> _Reading:
    """`utf8`: the file's bytes when `text` is exactly their UTF-8 decoding (spares encoding it again)."""
    from diagnose.io.textlog import clean_text, parse_text

    cleaned = clean_text(text)
    table = None
    head = cleaned[: 4 * _HEAD_BYTES]  # the first table header comes before the first epoch ends
    if "poch " in head and _TABLE_HINT.search(head):  # Ultralytics console tables: names on a header line, numbers below
        from diagnose.io.consoletable import read_console_tables

        lines = cleaned.split("\n")
        table = read_console_tables(lines)
        if table is not None:
            for i in table.used:
                lines[i] = ""
            cleaned = "\n".join(lines)
    records = parse_text(cleaned, utf8 if cleaned is text else None)
    reading = _Reading(raws=[], notes=notes)
    if records.dropped_last:
        notes.append("the last line is incomplete (a run still writing?); it was left out")
    found = records.series()
    pos = found.pop("batch_pos", None)
    total = found.pop("batch_total", None)
    tracks: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"step": [], "epoch": []}
    for key, (line, value) in found.items():
        if _norm(key) in ("epochs", "steps", "total_epochs", "num_epochs", "max_epochs", "max_steps"):
            continue  # a total in a banner (`Epochs : 30`), not a position
        kind = _x_kind(key)
        if kind is not None:  # `epoch 3`, `Epoch: 3` and `Epoch [3/10]` are one counter
            tracks[kind].append((line.astype(np.float64), value))
        else:
            reading.raws.append(_Raw(name=key, order=line.astype(np.float64), value=value, percent=key in records.percent))
    if table is not None:
        for key in table.lines:
            line_arr = np.asarray(table.lines[key], dtype=np.float64)
            reading.raws.append(_Raw(name=key, order=line_arr, value=np.asarray(table.values[key], dtype=np.float64)))
        tracks["epoch"].append((np.asarray(table.epoch_lines, dtype=np.float64), np.asarray(table.epochs, dtype=np.float64)))
        notes.append("console tables (a header line of names, rows of numbers) were read by column; a row's epoch "
                     "counts the epochs done, with the progress bar's position inside the epoch")
    for kind, parts in tracks.items():
        if parts:
            order = np.concatenate([p[0] for p in parts])
            x = np.concatenate([p[1] for p in parts])
            sort = np.argsort(order, kind="stable")
            track = (order[sort], x[sort])
            if kind == "step":
                reading.step_track = track
            else:
                reading.epoch_track = track
    _drop_before_counters(reading)
    if pos is not None and total is not None and reading.epoch_track is not None:
        if reading.step_track is None and _counts_across_epochs(reading.epoch_track, pos):
            reading.step_track = (pos[0].astype(np.float64), pos[1])  # `Epoch 2/3 step 1200/3000`: the run's step
        else:
            reading.epoch_track = _fractional_epochs(reading.epoch_track, pos, total, notes)
    # Names logged once or twice are banner numbers (`Total params: 1,234`), not curves; an unknown name
    # that counts 0, 1, 2, ... (or from 1) is an enumeration (`Block 0:` ... `Block 11:` in a model
    # summary, `GPU 0`), not a metric.
    reading.raws = [r for r in reading.raws
                    if canonical_name(r.name)[0] is not None or (len(r.value) >= 3 and not _enumeration(r))]
    reading.seen = f"{records.n_lines} line{'s' if records.n_lines != 1 else ''}" + (f" with numbers for {', '.join(list(found)[:10])}" if found else " and no `name value` pairs")
    return reading


def _drop_before_counters(reading: _Reading) -> None:
    """A configuration or banner printed before training (`optimizer = dict(type='SGD', lr=0.1)`,
    `learning_rate : 0.1`) is not a point of the curve: where the log has an epoch or step counter, the
    values of a series printed before the counter's first line are left out when the series goes on
    after it (with more values there). They have no position on the curve anyway."""
    starts = [float(t[0][np.isfinite(t[1])].min()) for t in (reading.step_track, reading.epoch_track)
              if t is not None and bool(np.isfinite(t[1]).any())]
    if not starts:
        return
    first = min(starts)
    dropped = 0
    for i, raw in enumerate(reading.raws):
        if not len(raw.order) or raw.order[0] >= first:
            continue
        after = raw.order >= first
        n_after = int(after.sum())
        if n_after > len(raw.order) - n_after:
            dropped += len(raw.order) - n_after
            reading.raws[i] = _take(raw, after)
    if dropped:
        reading.notes.append(f"{dropped} value(s) printed before the first epoch or step (a configuration, a banner) "
                             "were left out")


def _counts_across_epochs(epoch_track: tuple[np.ndarray, np.ndarray], pos: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether a counter written with its total beside the epoch (`Epoch 2/3 step 1200/3000`) goes on
    across epochs (the run's step) rather than starting again in each one (a position in the epoch)."""
    line, value = pos
    if len(value) < 2 or not bool(np.all(np.diff(value) >= 0)):
        return False
    epochs = _lookup(epoch_track, line.astype(np.float64))
    return len(np.unique(epochs[np.isfinite(epochs)])) > 1


def _enumeration(raw: _Raw) -> bool:
    v = raw.value
    return (_x_kind(raw.name) is None and len(v) >= 3 and v[0] in (0.0, 1.0)
            and bool(np.array_equal(np.diff(v), np.ones(len(v) - 1))))


# ---------------------------------------------------------------------------------------------------
# Detection


def detect_format(path: Path, head: bytes) -> str:
    from diagnose.io import tensorboard as tb

    if path.is_dir() or "tfevents" in path.name or tb.is_event_file(head):
        return "tensorboard"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    first = stripped.split("\n", 1)[0].strip()
    if stripped.startswith("["):
        # A JSON array, unless the line is a bracketed log prefix (`[INFO|trainer.py:2128] ...`,
        # `[2026-05-01 10:00:00] ...`).
        if re.match(r"\[\s*(?:$|[{\[\"])", first):
            return "json"
        try:
            json.loads(first)
        except ValueError:
            return "text"
        return "json"
    if stripped.startswith("{"):
        try:
            doc = json.loads(first)
        except ValueError:
            # A document spread over lines, unless the line is a Python dict (`{'loss': 0.5, ...}`)
            return "text" if first.startswith("{'") else "json"
        # One line holding a whole document (a Keras History dict, trainer_state written compactly)
        if isinstance(doc, dict) and ("log_history" in doc or "history" in doc or _nested_results(doc)
                                      or any(isinstance(v, list) for v in doc.values())):
            return "json"
        return "jsonl"
    lines = [ln for ln in text.replace("\r", "\n").split("\n") if ln.strip()][:6]
    if len(lines) >= 2:
        for sep in ("\t", ",", ";"):
            header = [h.strip().strip('"') for h in lines[0].split(sep)]
            if len(header) < 2 or "=" in lines[0] or not all(_HEADER_NAME.match(h) for h in header if h):
                continue
            body = [ln.split(sep) for ln in lines[1:-1] or lines[1:]]
            if all(len(row) == len(header) for row in body) and any(
                _is_number(x.strip().strip('"')) for row in body for x in row
            ):
                return "tsv" if sep == "\t" else ("csv" if sep == "," else "csv;")
    return "text"


_HEADER_NAME = re.compile(r"^[A-Za-z_][\w/ .:()\[\]@%\-]*$")


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    sample = head[:4096]
    if not sample:
        return False
    text_chars = bytes(range(32, 127)) + b"\n\r\t\b\f\x1b"
    nontext = sum(1 for b in sample if b not in text_chars and b < 128)
    return nontext > 0.1 * len(sample)


# ---------------------------------------------------------------------------------------------------
# Assembling


def _x_axis(raw: _Raw) -> np.ndarray | None:
    """The position a series is judged on: its step when every point has one, else its epoch."""
    for x in (raw.step, raw.epoch):
        if x is not None and len(x) and bool(np.isfinite(x).all()):
            return x
    return None


def _in_order(order: np.ndarray) -> np.ndarray | slice:
    """The permutation that puts points in file order (a no-op slice when they already are)."""
    if len(order) < 2 or bool(np.all(order[1:] >= order[:-1])):
        return slice(None)
    return np.argsort(order, kind="stable")


def _restarts(x: np.ndarray) -> np.ndarray:
    """Indices where a counter returns to its start: it goes back, to within one usual increment (or 5%
    of the span so far) of the first value of the current run. A row out of order, or a resume from a
    checkpoint, goes back but not to the start."""
    if len(x) < 2 or bool(np.all(x[1:] >= x[:-1])):  # the common case, without building the differences
        return np.zeros(0, dtype=np.int64)
    back = np.flatnonzero(np.diff(x) < 0) + 1
    if not len(back):
        return back
    inc = np.diff(x)
    pos = inc[inc > 0]
    usual = float(np.median(pos)) if len(pos) else 1.0
    out = []
    start = 0
    for i in back.tolist():
        first = float(x[start])
        span = float(np.max(x[start:i])) - first
        if x[i] <= first + max(usual, 0.05 * span):
            out.append(i)
            start = i
    return np.asarray(out, dtype=np.int64)


def _run_bounds(raws: list[_Raw]) -> list[float]:
    """The positions (in file order) where a new run begins, judged series by series: the restarts of
    the longest series that restarts. Each TensorBoard tag keeps its own step axis, so a tag logged per
    epoch beside one logged per step is not a restart."""
    best: tuple[int, int] | None = None
    bounds: list[float] = []
    # The series that become curves decide; a stray number in prose (`Step 3:` in a text sample,
    # a banner) must not cut the run. Any series decides only when none is a canonical one.
    named = [raw for raw in raws if canonical_name(raw.name)[0] is not None]
    for raw in named or raws:
        x = _x_axis(raw)
        if x is None:
            continue
        sort = _in_order(raw.order)
        r = _restarts(x[sort])
        if len(r) and (best is None or (len(raw.value), len(r)) > best):
            best = (len(raw.value), len(r))
            bounds = [float(v) for v in raw.order[sort][r]]
    return bounds


def _drop_epoch_local_steps(raw: _Raw) -> None:
    """A step counted inside each epoch (`batch 50/500`) goes back whenever the epoch moves on: it is
    not a position in the run, the (fractional) epoch is."""
    if raw.step is None or raw.epoch is None or len(raw.step) < 3 or bool(np.all(raw.step[1:] >= raw.step[:-1])):
        return
    ok = np.isfinite(raw.step) & np.isfinite(raw.epoch)
    if not ok.any():
        return
    ds, de = np.diff(raw.step[ok]), np.diff(raw.epoch[ok])
    back = ds < 0
    if back.any() and bool(np.all(de[back] > 0)):
        raw.step = np.full(len(raw.value), np.nan)


def _take(raw: _Raw, keep: np.ndarray | slice) -> _Raw:
    return _Raw(
        raw.name, raw.order[keep], raw.value[keep],
        None if raw.step is None else raw.step[keep],
        None if raw.epoch is None else raw.epoch[keep], raw.percent, raw.run,
    )


def _resumed(raw: _Raw) -> tuple[_Raw, str]:
    """Within one run, a counter that goes back without returning to its start: a resume from a
    checkpoint (the later values replace those logged at the same position) or rows out of order
    (sorted). Returns the series in counter order and 'resumed', 'sorted' or '' (nothing done)."""
    x = _x_axis(raw)
    if x is None or len(x) < 2:
        return raw, ""
    sort = _in_order(raw.order)
    x = x[sort]
    if bool(np.all(x[1:] >= x[:-1])):
        return raw, ""
    raw = _take(raw, sort)
    # the last point logged at each position wins
    _, last = np.unique(x[::-1], return_index=True)
    keep = np.sort(len(x) - 1 - last)
    dropped = len(x) - len(keep)
    keep = keep[np.argsort(x[keep], kind="stable")]
    out = _take(raw, keep)
    out.order = np.sort(out.order)  # in counter order from here on
    return out, "resumed" if dropped else "sorted"


def _lookup(track: tuple[np.ndarray, np.ndarray] | None, order: np.ndarray) -> np.ndarray:
    """The track's value at each position: the last one logged at or before it (forward fill)."""
    if track is None:
        return np.full(len(order), np.nan)
    t_order, t_x = track
    ok = np.isfinite(t_x)
    if not ok.all():
        t_order, t_x = t_order[ok], t_x[ok]
    if len(t_order) == 0:
        return np.full(len(order), np.nan)
    if len(t_order) == len(order) and np.array_equal(t_order, order):
        return t_x  # logged on the same lines (text: `epoch 3 step 120 loss 0.4`)
    if len(t_order) > 1 and not bool(np.all(t_order[1:] >= t_order[:-1])):
        sort = np.argsort(t_order, kind="stable")
        t_order, t_x = t_order[sort], t_x[sort]
    idx = np.searchsorted(t_order, order, side="right") - 1
    out = np.where(idx >= 0, t_x[np.clip(idx, 0, None)], np.nan)
    return out


def _assemble_runs(path: Path, fmt: str, reading: _Reading) -> list[ParsedLog]:
    """The reading -> one ParsedLog per run the file holds (a counter returning to its start)."""
    notes = reading.notes
    raws = []
    for raw in reading.raws:
        if len(raw.value) == 0:
            continue
        if raw.step is None:
            raw.step = _lookup(reading.step_track, raw.order)
        if raw.epoch is None:
            raw.epoch = _lookup(reading.epoch_track, raw.order)
            if fmt == "tensorboard" and reading.epoch_track is not None:
                raw.epoch = _epoch_at_steps(reading, raw.step)
        _drop_epoch_local_steps(raw)
        raws.append(raw)
    names = list(dict.fromkeys(raw.run for raw in raws if raw.run))
    if names:
        out = []
        for k, name in enumerate(names, start=1):
            log = _assemble(path, fmt, [r for r in raws if r.run == name], list(notes))
            log.run, log.runs, log.run_name = k, len(names), name
            out.append(log)
        return out
    bounds = _run_bounds(raws)
    if not bounds:
        return [_assemble(path, fmt, raws, notes)]
    edges = np.asarray(bounds)
    groups: list[list[_Raw]] = [[] for _ in range(len(bounds) + 1)]
    for raw in raws:
        which = np.searchsorted(edges, raw.order, side="right")
        for k in np.unique(which).tolist():
            groups[k].append(_take(raw, which == k))
    groups = [g for g in groups if g]
    if len(groups) == 1:
        return [_assemble(path, fmt, groups[0], notes)]
    where = ", ".join(f"{b:g}" for b in bounds[:5]) + (", ..." if len(bounds) > 5 else "")
    unit = "record" if fmt == "tensorboard" else ("row" if fmt in ("csv", "tsv") else "line")
    shared = notes + [
        f"the counter returns to its start {len(groups) - 1} time(s) (at {unit}s {where}, counted from 0): "
        f"the file holds {len(groups)} runs, read as run 1 to run {len(groups)}"
    ]
    out = []
    for k, group in enumerate(groups, start=1):
        log = _assemble(path, fmt, group, list(shared))
        log.run, log.runs = k, len(groups)
        out.append(log)
    return out


def _assemble(path: Path, fmt: str, raws: list[_Raw], notes: list[str]) -> ParsedLog:
    """The series of one run -> a ParsedLog: one source per canonical series, the rest by name."""
    fixed = []
    done: dict[str, list[str]] = {"resumed": [], "sorted": []}
    for raw in raws:
        before = len(raw.value)
        if _norm(raw.name) in _IGNORED:  # timings logged by train and eval lines alike: not a resume
            fixed.append(raw)
            continue
        raw, what = _resumed(raw)
        if what:
            done[what].append(f"{raw.name} ({before - len(raw.value)})" if what == "resumed" else raw.name)
        fixed.append(raw)
    raws = fixed
    if done["resumed"]:
        notes.append(
            "positions logged twice, as a run resumed from a checkpoint logs them: the later values are kept "
            f"(dropped: {', '.join(done['resumed'][:6])}{', ...' if len(done['resumed']) > 6 else ''})"
        )
    if done["sorted"]:
        notes.append(f"rows out of order were put in order ({', '.join(done['sorted'][:6])})")
    # Choose one source per canonical series; the rest stay under their own names.
    candidates: dict[str, list[tuple[int, int, _Raw]]] = {}
    norms = {_norm(raw.name) for raw in raws}
    for i, raw in enumerate(raws):
        target, rank = canonical_name(raw.name)
        if target is None:
            target, rank = _twin_name(raw.name, norms)
        if target is not None:
            candidates.setdefault(target, []).append((rank, i, raw))
    stand_ins: set[int] = set()
    if not any(t.startswith("val_") for t in candidates) and not any(_norm(r.name).startswith(_VAL_PREFIXES) for r in raws):
        # No validation series: a test loss/accuracy logged each epoch stands in for it, and says so.
        for i, raw in enumerate(raws):
            target, rank = _test_as_val(raw.name)
            if target is not None and len(raw.value) >= 2:
                candidates.setdefault(target, []).append((rank, i, raw))
                stand_ins.add(id(raw))
    chosen: dict[str, _Raw] = {}
    for target, cands in candidates.items():
        cands.sort(key=lambda t: (t[0], -len(t[2].value), t[1]))
        chosen[target] = cands[0][2]
        if id(chosen[target]) in stand_ins:
            notes.append(f"no validation series: {chosen[target].name} (a test set) is drawn as {target.replace('_', ' ')}")
    mapping: list[MappedName] = []
    series: dict[str, Series] = {}
    others: dict[str, Series] = {}
    used = {id(r) for r in chosen.values()}
    # Losses logged as parts only (Ultralytics train/box_loss + cls_loss + dfl_loss): their sum.
    for split in ("train", "val"):
        target = f"{split}_loss"
        if target in chosen:
            continue
        parts = [r for r in raws if id(r) not in used and _is_loss_part(r.name, split)]
        if len(parts) >= 2 and all(len(p.value) == len(parts[0].value) for p in parts):
            total = np.sum([p.value for p in parts], axis=0)
            summed = _Raw(target, parts[0].order, total, parts[0].step, parts[0].epoch)
            chosen[target] = summed
            mapping.append(MappedName(" + ".join(p.name for p in parts), target, len(total), "sum of the parts"))
    for target in CANONICAL:
        picked = chosen.get(target)
        if picked is None:
            continue
        raw = picked
        value, note = _scaled(raw, target)
        series[target] = _to_series(target, raw, value)
        if raw.name != target and not any(m.target == target for m in mapping) or note:
            mapping.append(MappedName(raw.name, target, len(value), note))
    for raw in raws:
        if id(raw) in used:
            continue
        name = raw.name
        if _norm(name) in _IGNORED:
            mapping.append(MappedName(name, "", len(raw.value), "bookkeeping, ignored"))
            continue
        value = raw.value
        note = ""
        if raw.percent and _is_accuracy_like(name):
            value, note = value / 100.0, "percent -> fraction"
        target, _ = canonical_name(name)
        if target is not None:
            note = (note + "; " if note else "") + f"also {target.replace('_', ' ')}, not used for it"
        others[name] = _to_series(name, raw, value)
        mapping.append(MappedName(name, name, len(value), note))
    return ParsedLog(path=path, format=fmt, series=series, others=others, mapping=mapping, notes=notes)


def _epoch_at_steps(reading: _Reading, steps: np.ndarray) -> np.ndarray:
    """TensorBoard: the `epoch` scalar logged at the same or an earlier step."""
    assert reading.epoch_track is not None and reading.step_track is not None
    e_order, e_val = reading.epoch_track
    s_order, s_val = reading.step_track
    e_steps = s_val[e_order.astype(np.int64)]
    sort = np.argsort(e_steps, kind="stable")
    return _lookup((e_steps[sort], e_val[sort]), steps)


def _is_loss_part(name: str, split: str) -> bool:
    n = _norm(name)
    prefixes = ("train/", "train_") if split == "train" else ("val/", "val_", "valid/", "validation/")
    return n.startswith(prefixes) and n.endswith("_loss") and canonical_name(name)[0] is None


def _scaled(raw: _Raw, target: str) -> tuple[np.ndarray, str]:
    value = raw.value
    if target.endswith("_loss") and _norm(raw.name).endswith(tuple(_PPL_NAMES)):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(value), "perplexity -> loss = ln(ppl)"
    if target.endswith("_acc"):
        top = float(np.max(value, where=np.isfinite(value), initial=-np.inf))
        if raw.percent or 1.0 < top <= 100.0:
            return value / 100.0, "percent -> fraction"
    return value, ""


def _to_series(name: str, raw: _Raw, value: np.ndarray) -> Series:
    order = raw.order
    sort = slice(None) if len(order) < 2 or bool(np.all(order[1:] >= order[:-1])) else np.argsort(order, kind="stable")
    step = raw.step if raw.step is not None else np.full(len(value), np.nan)
    epoch = raw.epoch if raw.epoch is not None else np.full(len(value), np.nan)
    return Series(
        name=name,
        source=raw.name,
        step=np.asarray(step, dtype=np.float64)[sort],
        epoch=np.asarray(epoch, dtype=np.float64)[sort],
        value=np.asarray(value, dtype=np.float64)[sort],
    )


# ---------------------------------------------------------------------------------------------------
# Entry point


def parse_log(path: str | os.PathLike[str], *, fmt: str | None = None) -> ParsedLog:
    """Read one training log (file or TensorBoard folder) as one run. `fmt` forces the format (see
    FORMATS). A file holding several runs gives its last one, with a note saying so; `parse_runs`
    gives them all."""
    runs = parse_runs(path, fmt=fmt)
    last = runs[-1]
    if len(runs) > 1:
        last.notes.append(f"only run {last.run} of {last.runs} is used here")
    return last


def parse_runs(path: str | os.PathLike[str], *, fmt: str | None = None) -> list[ParsedLog]:
    """Every run one log holds (a step or epoch counter returning to its start begins a new one), in
    the order they were written. `fmt` forces the format (see FORMATS)."""
    try:
        return _parse_runs(path, fmt=fmt)
    except RecursionError:
        raise LogParseError(
            f"{path}: expected a training log, got JSON nested too deep to read; pass the log the run wrote"
        ) from None
    except Exception as exc:  # pyarrow's errors (not importable at module level): one line, not a crash
        if type(exc).__name__ not in ("ArrowInvalid", "ArrowCapacityError"):
            raise
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        if "straddl" in detail or "block" in detail:
            detail = "a line longer than the reader's 16 MB block"
        raise LogParseError(f"{path}: expected the lines of a training log, got {detail}; pass the log the run wrote") from None


def _parse_mlflow(path: Path, runs: list[Path]) -> list[ParsedLog]:
    """An MLflow run folder (one run) or experiment folder (one run per run folder, oldest first)."""
    out = []
    for k, run in enumerate(runs, start=1):
        notes: list[str] = []
        reading = _read_mlflow_run(run, notes)
        for raw in reading.raws:
            if raw.epoch is None:  # at the `epoch` metric logged at the same or an earlier step
                raw.epoch = _lookup(reading.epoch_track, raw.order)
        # An MLflow run is one run, whatever its steps do.
        log = _assemble(path, "mlflow", reading.raws, notes)
        log.run, log.runs = k, len(runs)
        log.run_name = _mlflow_run_name(run) if len(runs) > 1 else ""
        out.append(log)
    if not any(log.series or log.others for log in out):
        raise LogParseError(f"{path}: expected MLflow metric files under metrics/, got none with values; "
                            "pass the run's folder (mlruns/<experiment>/<run>) or the experiment's")
    return out


def _parse_runs(path: str | os.PathLike[str], *, fmt: str | None = None) -> list[ParsedLog]:
    path = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}; pick one of those")
    if not path.exists():
        raise LogParseError(f"{path}: expected a training log, got no such file or folder; check the path")
    if not path.is_dir():
        from diagnose.io.paths import require_file

        # A FIFO or /dev/zero would block or fill the memory: only regular files are read.
        require_file(path, "a training log file", "pass the log file the run wrote", LogParseError)
    notes: list[str] = []
    if path.is_dir() and fmt in (None, "mlflow") and (mlflow := mlflow_runs(path)):
        return _parse_mlflow(path, mlflow)
    if fmt == "mlflow":
        raise LogParseError(f"{path}: expected an MLflow run folder (holding metrics/) or an experiment folder, "
                            "got none; pass mlruns/<experiment>/<run> or mlruns/<experiment>")
    if path.is_dir():
        if fmt not in (None, "tensorboard"):
            raise LogParseError(f"{path}: expected a {fmt} file, got a folder; pass the file inside it")
        reading = _read_tensorboard(path, notes)
        fmt = "tensorboard"
    else:
        head = _read_head(path)
        if fmt in ("text", "jsonl") or (fmt is None and head[:2] not in (b"\xff\xfe", b"\xfe\xff") and head.strip()
                                        and detect_format(path, head) in ("text", "jsonl")):
            data = _read_bounded(path, notes)
        else:
            data = _read_bytes(path)
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16, as PowerShell's `>` writes console output
            data = data.decode("utf-16", errors="replace").encode("utf-8")
            notes.append("the file is UTF-16; it was read as such")
        head = data[:_HEAD_BYTES]
        if fmt is None:
            if not head.strip():
                raise LogParseError(f"{path}: expected a training log, got an empty file; point at the log the run wrote")
            detected = detect_format(path, head)
            if detected != "tensorboard" and _looks_binary(head):
                raise LogParseError(
                    f"{path}: expected a text log or a TensorBoard event file, got binary data; "
                    "pass the log file the run wrote (or --format to force one)"
                )
            fmt = detected
        if fmt == "tensorboard":
            reading = _read_tensorboard(path, notes)
        else:
            if data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
            if _content_end(data[:_HEAD_BYTES]) == 0 and (len(data) <= _HEAD_BYTES or not data.strip()):
                raise LogParseError(f"{path}: expected a training log, got an empty file; point at the log the run wrote")
            if fmt in ("csv", "tsv", "csv;", "jsonl"):
                # pyarrow reads the bytes; the text is decoded only if a slower path needs it.
                try:
                    if fmt == "jsonl":
                        reading = _read_jsonl(data, None, notes)
                    else:
                        sep = {"csv": ",", "tsv": "\t", "csv;": ";"}[fmt]
                        fmt = "csv" if fmt == "csv;" else fmt
                        reading = _read_csv(data, sep, notes)
                except (_NotUtf8, UnicodeDecodeError):  # a byte that is not UTF-8, wherever a reader found it
                    text, _ = _decode(data)
                    notes.append("some bytes are not UTF-8; they were replaced")
                    data = text.encode()
                    reading = _read_jsonl(data, text, notes) if fmt == "jsonl" else _read_csv(data, sep, notes)
                except LogParseError as exc:
                    raise LogParseError(f"{path}: {exc.message}") from None
            else:
                text, replaced = _decode(data)
                if replaced:
                    notes.append("some bytes are not UTF-8; they were replaced")
            if fmt == "json":
                try:
                    doc = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise LogParseError(
                        f"{path}: expected a JSON document, got invalid JSON ({exc.msg} at line {exc.lineno}); "
                        "if the run is still writing, wait for it to finish"
                    ) from None
                reading = _read_json_document(doc, notes)
            elif fmt == "text":
                yolo = _yolo_results_columns(text)
                reading = _read_yolo_results(text, yolo, notes) if yolo else _read_text(text, notes, None if replaced else data)
    try:
        runs = _assemble_runs(path, fmt, reading)
    except LogParseError as exc:
        raise LogParseError(f"{path}: {exc.message}") from None
    if not any(run.series or run.others for run in runs):
        raise LogParseError(
            f"{path}: expected metrics such as loss or accuracy, got {reading.seen or 'nothing recognizable'}; "
            "pass --format if the format was guessed wrong"
        )
    return runs
