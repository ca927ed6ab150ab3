"""Read a DATA folder of splits (train, train_dev, dev, test) in any supported format, in batches.

Each split is one of:
- `<split>.pt`: a dict of tensors, `x`/`y` or `inputs`/`targets`, optional `ids` (list of str);
  read with `torch.load(weights_only=True, mmap=True)`, so only the batches in use are paged in;
- `<split>.npz`: arrays with the same keys; uncompressed members (`np.savez`) are memory-mapped
  through their offset in the zip, compressed ones (`np.savez_compressed`) are read whole;
- `<split>.csv` / `<split>.parquet`: numeric feature columns plus a label column (`label` unless
  `label_column`) and an optional `id` column; features are streamed in record batches, only the
  label column is held in memory;
- `<split>/<class>/*.png|jpg|...`: an image folder; classes sorted by name; decoded with Pillow in a
  torch DataLoader (`workers` processes), pixels scaled to [0, 1], channels first.

uint8 inputs in .pt / .npz / tables are 8-bit pixels and are scaled to [0, 1] as images are.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from diagnose.core.gaps import ALL_SPLITS, SPLITS  # noqa: F401  (the levels' order, defined once; re-exported)
from diagnose.exceptions import DataError, UsageError

if TYPE_CHECKING:
    import torch

ALIASES: dict[str, str] = {
    "train": "train",
    "train_dev": "train_dev",
    "train-dev": "train_dev",
    "traindev": "train_dev",
    "dev": "dev",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "test": "test",
    # Target-distribution items that were in training (the two-column table of `diagnose gaps`).
    "train_target": "train_target",
    "train-target": "train_target",
    "traintarget": "train_target",
}
FILE_FORMATS: dict[str, str] = {".pt": "pt", ".pth": "pt", ".npz": "npz", ".csv": "csv", ".parquet": "parquet"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_X_KEYS = ("x", "inputs")
_Y_KEYS = ("y", "targets")
_ID_COLUMN = "id"
# CSV text per block. The streaming reader keeps dozens of blocks in flight: 1 MiB blocks hold it
# near 40 MB whatever the file size (4 MiB blocks: about 150 MB).
_CSV_BLOCK = 1 << 20


@dataclass
class Batch:
    """index: (B,) int64 positions in the split; x: (B, *input_shape) float32; y: (B,) labels."""

    index: np.ndarray
    x: torch.Tensor
    y: np.ndarray


class Split:
    """One split. Subclasses differ only in how they produce batches of x."""

    format: str = ""

    def __init__(self, name: str, path: Path, labels: np.ndarray, input_shape: tuple[int, ...]) -> None:
        self.name = name
        self.path = path
        self._labels = labels
        self.n = int(len(labels))
        self.input_shape = tuple(int(d) for d in input_shape)
        self._ids: list[str] | None = None

    def labels(self) -> np.ndarray:
        """(N,) int64 class indices, or float regression targets."""
        return self._labels

    def ids(self) -> list[str] | None:
        return self._ids

    def batches(self, batch_size: int, indices: np.ndarray | None = None) -> Iterator[Batch]:
        """Batches in order of position; `indices` (any order) restricts to those positions, sorted."""
        raise NotImplementedError

    def _order(self, indices: np.ndarray | None) -> np.ndarray | None:
        if indices is None:
            return None
        idx = np.unique(np.asarray(indices, dtype=np.int64))
        if len(idx) and (idx[0] < 0 or idx[-1] >= self.n):
            raise ValueError(f"indices out of range for split {self.name} of {self.n} items")
        return idx

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.path}, n={self.n}, input_shape={self.input_shape})"


def _as_float_batch(arr: Any) -> torch.Tensor:
    """A (B, ...) block as float32; uint8 pixels are scaled to [0, 1]."""
    import torch

    if isinstance(arr, torch.Tensor):
        t = arr
    else:
        arr = np.ascontiguousarray(arr)
        if not arr.flags.writeable:  # a memory-mapped slice: copy this batch only
            arr = arr.copy()
        t = torch.from_numpy(arr)
    if t.dtype == torch.uint8:
        return t.to(torch.float32).div_(255.0)
    if t.dtype != torch.float32:
        return t.to(torch.float32)
    return t


class TensorSplit(Split):
    """x held as a (possibly memory-mapped) tensor or array; batches are slices, not collated items."""

    def __init__(self, name: str, path: Path, fmt: str, x: Any, labels: np.ndarray, ids: list[str] | None) -> None:
        super().__init__(name, path, labels, tuple(x.shape[1:]))
        self.format = fmt
        self._x = x
        self._ids = ids

    def batches(self, batch_size: int, indices: np.ndarray | None = None) -> Iterator[Batch]:
        import torch

        idx = self._order(indices)
        if idx is None:
            for start in range(0, self.n, batch_size):
                stop = min(start + batch_size, self.n)
                yield Batch(np.arange(start, stop, dtype=np.int64), _as_float_batch(self._x[start:stop]), self._labels[start:stop])
            return
        for start in range(0, len(idx), batch_size):
            part = idx[start : start + batch_size]
            block: torch.Tensor | np.ndarray
            if isinstance(self._x, torch.Tensor):
                block = self._x.index_select(0, torch.from_numpy(part))
            else:
                block = np.asarray(self._x[part])
            yield Batch(part, _as_float_batch(block), self._labels[part])


    def take(self, indices: np.ndarray) -> np.ndarray:
        """(len(indices), *input_shape) float32 items at these positions, as batches give them (uint8
        scaled to [0, 1]); numpy in, numpy out, so a memory-mapped .npz split is read without torch."""
        idx = np.asarray(indices, dtype=np.int64)
        if isinstance(self._x, np.ndarray):
            block = np.asarray(self._x[idx])
        else:  # a torch tensor (.pt)
            import torch

            block = self._x.index_select(0, torch.from_numpy(idx)).numpy()
        if block.dtype == np.uint8:
            return block.astype(np.float32) / np.float32(255.0)
        return block.astype(np.float32, copy=False)


class TableSplit(Split):
    """CSV or Parquet: features streamed in record batches; only labels (and ids) kept in memory."""

    def __init__(
        self, name: str, path: Path, fmt: str, labels: np.ndarray, features: list[str], ids: list[str] | None
    ) -> None:
        super().__init__(name, path, labels, (len(features),))
        self.format = fmt
        self.features = features
        self._ids = ids

    def _record_batches(self, rows: int) -> Iterator[np.ndarray]:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            # pre_buffer (the default) reads ahead every row group asked for: the whole file.
            with pq.ParquetFile(self.path, pre_buffer=False) as pf:
                for rb in pf.iter_batches(batch_size=rows, columns=self.features):
                    yield _table_to_numpy(rb, self.path)
        else:
            import pyarrow as pa
            import pyarrow.csv as pcsv

            # Every feature is parsed as float64: types inferred per block could differ between blocks.
            try:
                reader = pcsv.open_csv(
                    self.path,
                    read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK, encoding=_csv_encoding(self.path)),
                    convert_options=pcsv.ConvertOptions(
                        include_columns=self.features, column_types=dict.fromkeys(self.features, pa.float64())
                    ),
                )
                while True:
                    try:
                        rb = reader.read_next_batch()
                    except StopIteration:
                        break
                    yield _table_to_numpy(rb, self.path)
            except pa.ArrowInvalid as exc:
                detail = str(exc).strip().splitlines()[0][:160]
                raise DataError(
                    f"{self.path}: expected numeric feature columns, got {detail}; "
                    "drop that column, or name the label column with --label-column"
                ) from None

    def batches(self, batch_size: int, indices: np.ndarray | None = None) -> Iterator[Batch]:
        idx = self._order(indices)
        pending_x: list[np.ndarray] = []
        pending_i: list[np.ndarray] = []
        held = 0
        offset = 0
        cursor = 0  # position in idx
        for block in self._record_batches(max(batch_size, 1024)):
            rows = len(block)
            if idx is None:
                pos = np.arange(offset, offset + rows, dtype=np.int64)
                take = block
            else:
                end = int(np.searchsorted(idx, offset + rows, side="left"))
                pos = idx[cursor:end]
                cursor = end
                take = block[pos - offset]
            offset += rows
            if len(pos):
                pending_x.append(take)
                pending_i.append(pos)
                held += len(pos)
            while held >= batch_size:
                xs, ps = np.concatenate(pending_x), np.concatenate(pending_i)
                yield Batch(ps[:batch_size], _as_float_batch(xs[:batch_size]), self._labels[ps[:batch_size]])
                pending_x, pending_i = [xs[batch_size:]], [ps[batch_size:]]
                held -= batch_size
        if held:
            xs, ps = np.concatenate(pending_x), np.concatenate(pending_i)
            yield Batch(ps, _as_float_batch(xs), self._labels[ps])


def _table_to_numpy(rb: Any, path: Path) -> np.ndarray:
    cols = []
    for name, col in zip(rb.schema.names, rb.columns, strict=True):
        arr = col.to_numpy(zero_copy_only=False)
        if arr.dtype.kind not in "biuf":
            raise DataError(
                f"{path}: expected numeric feature columns, got column {name!r} of type {col.type}; "
                "drop it, or name the label column with --label-column"
            )
        cols.append(arr)
    out = np.stack(cols, axis=1) if cols else np.zeros((rb.num_rows, 0))
    if out.dtype != np.uint8:
        out = out.astype(np.float32, copy=False)
    return out


@dataclass
class ImageSpec:
    """How image files become tensors: size (H, W) or None for as stored, channels 1 or 3."""

    size: tuple[int, int] | None
    channels: int
    mean: list[float] | None
    std: list[float] | None


def _check_norm(folder: Path, spec: ImageSpec) -> None:
    """--mean / --std give one value, or one per channel of the images as decoded."""
    c = spec.channels
    wanted = "1 value" if c == 1 else f"1 or {c} values"
    for what, vals in (("--mean", spec.mean), ("--std", spec.std)):
        if vals is not None and len(vals) not in (1, c):
            raise UsageError(
                f"{what}: expected {wanted} for the {c}-channel images of {folder}, got {len(vals)}; pass one per channel"
            )


class _ImageBatches:
    """A map-style dataset whose item is a whole batch (a list of positions): no per-item collation."""

    def __init__(self, root: Path, ids: list[str], spec: ImageSpec, expect_hw: tuple[int, int]) -> None:
        self.root = root
        self.ids = ids
        self.spec = spec
        self.expect_hw = expect_hw

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, positions: list[int]) -> tuple[np.ndarray, np.ndarray | None, str | None]:
        out = np.empty((len(positions), self.spec.channels, *self.expect_hw), dtype=np.float32)
        for row, i in enumerate(positions):
            problem = _decode_into(self.root / self.ids[i], self.spec, self.expect_hw, out[row])
            if problem:
                # Raised in the main process: DataLoader would wrap a worker's exception in a traceback.
                return np.asarray(positions), None, problem
        return np.asarray(positions), out, None


def _bomb_size(exc: Exception) -> str:
    """'1,600,000,000 pixels (a decompression bomb?)' from Pillow's DecompressionBombError."""
    m = re.search(r"\((\d+) pixels\)", str(exc))
    return f"{int(m.group(1)):,} pixels (a decompression bomb?)" if m else "a decompression bomb"


def _decode_into(file: Path, spec: ImageSpec, expect_hw: tuple[int, int], dest: np.ndarray) -> str | None:
    from PIL import Image, UnidentifiedImageError

    from diagnose.io.paths import open_regular

    try:
        with open_regular(file, "a readable image", "remove or replace the file", DataError) as fh, Image.open(fh) as opened:
            img = opened.convert("L" if spec.channels == 1 else "RGB")
            if spec.size is not None and (img.height, img.width) != spec.size:
                img = img.resize((spec.size[1], spec.size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
    except DataError as exc:  # not a regular file, a loop, a dangling link, permission denied
        return exc.message
    except Image.DecompressionBombError as exc:
        return f"{file}: expected an image of at most {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels, got {_bomb_size(exc)}; remove the file or shrink it"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return f"{file}: expected an image Pillow can decode, got {type(exc).__name__}: {exc}; remove or replace the file"
    if pixels.shape[:2] != expect_hw:
        return (
            f"{file}: expected {expect_hw[0]}x{expect_hw[1]} pixels like the split's first image, got "
            f"{pixels.shape[0]}x{pixels.shape[1]}; pass --image-size H,W to resize"
        )
    chw = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    np.divide(chw, np.float32(255.0), out=dest, dtype=np.float32)
    if spec.mean is not None or spec.std is not None:
        mean = np.asarray(spec.mean or [0.0], dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(spec.std or [1.0], dtype=np.float32).reshape(-1, 1, 1)
        dest -= mean
        dest /= std
    return None


class ImageSplit(Split):
    """Image files kept as their paths relative to DATA (`ids`, one str each): a Path object per file
    would cost about four times the memory, and be pickled to every DataLoader worker."""

    format = "images"

    def __init__(
        self, name: str, path: Path, root: Path, labels: np.ndarray, ids: list[str], spec: ImageSpec,
        hw: tuple[int, int], workers: int,
    ) -> None:
        super().__init__(name, path, labels, (spec.channels, *hw))
        self.root = root
        self.spec = spec
        self.hw = hw
        self.workers = workers
        self._ids = ids

    def with_channels(self, channels: int) -> ImageSplit:
        """The same files decoded as `channels` (1: grayscale, 3: RGB), e.g. to match a model."""
        from dataclasses import replace

        spec = replace(self.spec, channels=channels)
        _check_norm(self.path, spec)
        return ImageSplit(self.name, self.path, self.root, self._labels, self._ids or [], spec, self.hw, self.workers)

    def batches(self, batch_size: int, indices: np.ndarray | None = None) -> Iterator[Batch]:
        import torch
        from torch.utils.data import DataLoader

        _check_norm(self.path, self.spec)
        idx = self._order(indices)
        order = np.arange(self.n, dtype=np.int64) if idx is None else idx
        chunks = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
        # _ImageBatches is a map-style dataset by duck typing (no torch import at module level).
        loader: DataLoader[Any] = DataLoader(
            _ImageBatches(self.root, self._ids or [], self.spec, self.hw),  # type: ignore[arg-type]
            sampler=chunks,
            batch_size=None,
            num_workers=self.workers,
            persistent_workers=False,
        )
        for positions, x, problem in loader:
            if problem:
                raise DataError(problem)
            pos = np.asarray(positions, dtype=np.int64)
            xt = x if isinstance(x, torch.Tensor) else torch.from_numpy(x)
            yield Batch(pos, xt, self._labels[pos])


@dataclass
class Dataset:
    root: Path
    splits: dict[str, Split]
    classes: list[str] | None
    human_error: float | None
    config: dict[str, Any] = field(default_factory=dict)
    # What was done to tensor and table splits' values (io.preprocess.Preprocessing), or None.
    preprocessing: Any = None
    transform: str | None = None  # the --transform function every batch went through, by name

    def with_image_channels(self, channels: int) -> Dataset:
        """Image-folder splits decoded as `channels` (1 or 3); other splits as they are. No file is re-listed."""
        splits = {n: s.with_channels(channels) if isinstance(s, ImageSplit) else s for n, s in self.splits.items()}
        return Dataset(self.root, splits, self.classes, self.human_error, self.config, self.preprocessing, self.transform)


# --------------------------------------------------------------------------- discovery


def unreadable(path: Path | str, what: str) -> str:
    """The message for a file or folder this user may not read (permission denied)."""
    return f"{path}: expected a readable {what}, got permission denied; check its permissions (ls -l {path})"


def _check_readable(path: Path) -> None:
    """The door of every split file: a regular file this user may read (a FIFO named dev.pt would
    block, a loop or a dangling link would fail late), else one line naming it."""
    from diagnose.io.paths import open_regular

    with open_regular(path, "a readable split file", "remove it or replace it with a file", DataError):
        pass


def canonical_split(name: str) -> str:
    """A --split value as its canonical name (aliases: train-dev, val, valid, ...); a usage error otherwise."""
    canonical = ALIASES.get(name.strip().lower())
    if canonical is None:
        raise UsageError(f"--split: expected train, train_dev, dev or test, got {name!r}; pass one of them")
    return canonical


def missing_split(data: Path, split: str, purpose: str) -> DataError:
    """The one-line error for DATA without the split a command was asked to use (`purpose`: what for)."""
    have = list(find_splits(data)) if data.is_dir() else []
    return DataError(f"{data}: expected a {canonical_split(split)} split {purpose}, got {', '.join(have) or 'none'}; "
                     f"pass --split {next(iter(have), 'train')}")


def find_splits(root: Path) -> dict[str, Path]:
    """Canonical split name -> file or folder, by the names and aliases above."""
    found: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            stem, ok = entry.name, True
        else:
            stem, ok = entry.stem, entry.suffix.lower() in FILE_FORMATS
        canonical = ALIASES.get(stem.lower())
        if canonical is None or not ok:
            continue
        if canonical in found:
            raise DataError(
                f"{root}: expected one file or folder per split, got {found[canonical].name} and {entry.name} "
                f"for {canonical}; remove or rename one"
            )
        found[canonical] = entry
    return {s: found[s] for s in ALL_SPLITS if s in found}


def read_config(root: Path) -> dict[str, Any]:
    """DATA/diagnose.toml checked against the settings schema ({} when absent)."""
    from diagnose.io.settings import read_data_settings

    return read_data_settings(root)


def read_classes(root: Path) -> list[str] | None:
    path = root / "classes.txt"
    if not os.path.lexists(path):
        return None
    from diagnose.io.paths import open_regular

    with open_regular(path, "a text file of class names", "remove it or replace it with a file", DataError) as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: expected UTF-8 text, one class name a line, got undecodable bytes; save it as UTF-8") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return names or None


def load_dataset(
    root: Path,
    *,
    label_column: str = "label",
    image_size: tuple[int, int] | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    channels: int | None = None,
    workers: int = 0,
    standardize: str | None = None,
) -> Dataset:
    """Every split found under `root`. channels: 1 or 3 for image folders (None: as the first image).

    mean, std: image folders are normalized as decoded (pixels in [0, 1]); tensor and table splits
    on their values as read (io.preprocess), one value or one per feature. standardize: "train" for
    each feature's mean and std over the train split (tensor and table splits)."""
    root = Path(root)
    from diagnose.io.paths import describe

    missing = describe(root)  # nothing there, a loop, a name too long, ...
    if missing is not None:
        raise DataError(f"{root}: expected a data folder with train/train_dev/dev/test splits, got {missing}; check the path")
    if not root.is_dir():
        raise DataError(f"{root}: expected a data folder with train/train_dev/dev/test splits, got a file; pass the folder that holds it")
    try:
        dataset = _load_found(root, find_splits(root), label_column, image_size, mean, std, channels, workers)
    except PermissionError as exc:  # a folder that cannot be listed, classes.txt, diagnose.toml
        where = Path(exc.filename or root)
        raise DataError(unreadable(where, "folder" if where.is_dir() else "file")) from None
    from diagnose.io.preprocess import preprocess_splits

    try:
        dataset.splits, dataset.preprocessing = preprocess_splits(dataset.splits, mean=mean, std=std,
                                                                  standardize=standardize)
        return dataset
    except PermissionError as exc:  # a folder that cannot be listed, classes.txt, diagnose.toml
        where = Path(exc.filename or root)
        raise DataError(unreadable(where, "folder" if where.is_dir() else "file")) from None


def _load_found(
    root: Path, found: dict[str, Path], label_column: str, image_size: tuple[int, int] | None,
    mean: list[float] | None, std: list[float] | None, channels: int | None, workers: int,
) -> Dataset:
    if not found:
        present = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))[:8]
        raise DataError(
            f"{root}: expected splits named train, train_dev, dev or test (.pt, .npz, .csv, .parquet or an image folder), "
            f"got {', '.join(present) if present else 'an empty folder'}; rename the files (aliases: train-dev, val, valid, validation)"
        )
    config = read_config(root)
    classes = read_classes(root)
    human_error = config.get("human_error")
    if human_error is not None:
        human_error = _check_human_error(human_error, root / "diagnose.toml")

    # Image folders share one class list: classes.txt, else the union of class folders, sorted.
    image_classes = classes
    if classes is None:
        names = sorted({d.name for p in found.values() if p.is_dir() for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")})
        image_classes = names or None
    splits: dict[str, Split] = {}
    string_labels: dict[str, np.ndarray] = {}
    for name, path in found.items():
        if path.is_dir():
            splits[name] = _load_images(name, path, root, image_classes or [], image_size, mean, std, channels, workers)
        else:
            _check_readable(path)
            fmt = FILE_FORMATS[path.suffix.lower()]
            split = {"pt": _load_pt, "npz": _load_npz, "csv": _load_table, "parquet": _load_table}[fmt](
                name, path, fmt, label_column
            )
            if split.labels().dtype.kind in "OUS":
                string_labels[name] = split.labels()
            splits[name] = split
        if splits[name].n == 0:
            raise DataError(f"{path}: expected at least one item in the {name} split, got 0; remove the split or fill it")
    if any(p.is_dir() for p in found.values()) and classes is None:
        classes = image_classes
    if string_labels:
        names = classes or sorted({str(v) for arr in string_labels.values() for v in arr})
        lookup = {c: i for i, c in enumerate(names)}
        for name, raw in string_labels.items():
            unknown = sorted({str(v) for v in raw} - set(lookup))
            if unknown:
                raise DataError(
                    f"{splits[name].path}: expected labels among the classes in classes.txt, got {unknown[0]!r}"
                    f"{f' and {len(unknown) - 1} more' if len(unknown) > 1 else ''}; add them to classes.txt"
                )
            splits[name]._labels = np.fromiter((lookup[str(v)] for v in raw), dtype=np.int64, count=len(raw))
        classes = names
    return Dataset(root=root, splits=splits, classes=classes, human_error=human_error, config=config)


def _check_human_error(value: Any, where: Path | str) -> float:
    """A number >= 0. Its range depends on the metric (a fraction for error, any mean loss for
    mse / mae), which only the command knows: `diagnose gaps` checks that."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0.0):
        raise UsageError(f"{where}: expected human_error as a number >= 0, got {value!r}; write human_error = 0.01 for 1%")
    return number


def _labels_array(raw: Any, path: Path) -> np.ndarray:
    # A torch tensor (.pt) or a numpy array (.npz, tables): torch is not imported for the latter.
    arr = raw if isinstance(raw, np.ndarray) else raw.numpy() if hasattr(raw, "numpy") else np.asarray(raw)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(
            f"{path}: expected labels of shape (N,), got {tuple(arr.shape)}; store class indices, not one-hot rows"
        )
    if arr.dtype.kind in "biu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        missing = ~np.isfinite(arr)
    else:
        arr = arr.astype(object)
        missing = np.fromiter((v is None or v != v for v in arr), dtype=bool, count=len(arr))
    if missing.any():
        # An empty CSV / Parquet cell reads as NaN or null: not a class, and not a regression target.
        raise DataError(
            f"{path}: expected a label for every item, got {int(missing.sum())} empty or NaN "
            f"(first at item {int(np.argmax(missing))}); fill or drop those rows"
        )
    # float: regression targets, or class indices stored as floats (evaluation decides by the metric).
    return arr.astype(np.float64) if arr.dtype.kind == "f" else arr


def _pick(obj: dict, keys: tuple[str, ...], path: Path, what: str) -> Any:
    for k in keys:
        if k in obj:
            return obj[k]
    raise DataError(
        f"{path}: expected {what} under {' or '.join(repr(k) for k in keys)}, got keys {', '.join(map(str, obj))}; "
        "save a dict like {'x': inputs, 'y': labels}"
    )


def _ids_list(raw: Any, n: int, path: Path) -> list[str] | None:
    if raw is None:
        return None
    ids = [str(v) for v in (raw.tolist() if hasattr(raw, "tolist") else raw)]
    if len(ids) != n:
        raise DataError(f"{path}: expected one id per item ({n}), got {len(ids)}; fix 'ids'")
    return ids


def _load_pt(name: str, path: Path, fmt: str, label_column: str) -> Split:
    import pickle

    import torch

    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) files
    except pickle.UnpicklingError:
        raise DataError(
            f"{path}: expected a dict of tensors (weights_only=True), got objects that need code to load; "
            "save torch tensors (torch.from_numpy) or use .npz"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise DataError(f"{path}: expected a complete torch.save file, got {(str(exc).splitlines() or [type(exc).__name__])[0][:160]}; save it again") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict with 'x' and 'y', got {type(obj).__name__}; save {{'x': inputs, 'y': labels}}")
    x = _pick(obj, _X_KEYS, path, "inputs")
    y = _pick(obj, _Y_KEYS, path, "labels")
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{path}: expected inputs as a tensor, got {type(x).__name__}; save torch.as_tensor(inputs)")
    labels = _labels_array(y, path)
    if x.shape[0] != len(labels):
        raise DataError(f"{path}: expected as many labels as inputs ({x.shape[0]}), got {len(labels)}; fix 'y'")
    return TensorSplit(name, path, fmt, x, labels, _ids_list(obj.get("ids"), len(labels), path))


def _npz_member(zf: zipfile.ZipFile, path: Path, key: str) -> np.ndarray:
    """Memory-map an uncompressed .npy member of a zip; read a compressed one whole."""
    info = zf.getinfo(f"{key}.npy")
    if info.compress_type == zipfile.ZIP_STORED:
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
            start = info.header_offset + 30 + name_len + extra_len
            fh.seek(start)
            version = np.lib.format.read_magic(fh)
            reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version in reader:
                shape, fortran, dtype = reader[version](fh)
                if not dtype.hasobject and not fortran:
                    return np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape)
    with zf.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _load_npz(name: str, path: Path, fmt: str, label_column: str) -> Split:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise DataError(f"{path}: expected an .npz archive (np.savez), got a file that is not a zip; save it with np.savez") from None
    with zf:
        keys = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        xk = next((k for k in _X_KEYS if k in keys), None)
        yk = next((k for k in _Y_KEYS if k in keys), None)
        if xk is None or yk is None:
            raise DataError(
                f"{path}: expected arrays 'x' and 'y' (or 'inputs' and 'targets'), got {', '.join(sorted(keys))}; "
                "save np.savez(path, x=inputs, y=labels)"
            )
        try:
            x = _npz_member(zf, path, xk)
            y = _npz_member(zf, path, yk)
            ids = _npz_member(zf, path, "ids") if "ids" in keys else None
        except ValueError as exc:
            raise DataError(f"{path}: expected plain numeric arrays, got {exc}; save without object arrays") from None
    labels = _labels_array(np.asarray(y), path)
    if x.shape[0] != len(labels):
        raise DataError(f"{path}: expected as many labels as inputs ({x.shape[0]}), got {len(labels)}; fix 'y'")
    return TensorSplit(name, path, fmt, x, labels, _ids_list(ids, len(labels), path))


def _csv_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), else Windows-1252: what Excel's plain "CSV" saves."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the end of the sample
            _check_cp1252(path)
            return "cp1252"
    return "utf8"


def _check_cp1252(path: Path) -> None:
    """The Windows-1252 guess judged on the whole file: five bytes (0x81, 0x8d, 0x8f, 0x90, 0x9d) are
    not characters in it, and a decode error met inside the table reader would not be one line."""
    import codecs

    decoder = codecs.getincrementaldecoder("cp1252")()
    offset = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}: expected UTF-8 or Windows-1252 text, got byte 0x{chunk[exc.start]:02x} at offset "
                    f"{offset + exc.start}, which is neither; save the file as UTF-8"
                ) from None
            offset += len(chunk)


def _load_table(name: str, path: Path, fmt: str, label_column: str) -> Split:
    import pyarrow as pa

    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            schema_names = pq.read_schema(path).names
        else:
            import pyarrow.csv as pcsv

            with pcsv.open_csv(path, read_options=pcsv.ReadOptions(encoding=_csv_encoding(path))) as reader:
                schema_names = reader.schema.names
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: expected a readable {fmt.upper()} table, got {(str(exc).splitlines() or [type(exc).__name__])[0][:160]}; check the file") from None
    dupes = sorted({n for n in schema_names if schema_names.count(n) > 1})
    if dupes:
        # Read by name, every copy would be the first column (64 features named f0 read as one).
        raise DataError(
            f"{path}: expected distinct column names, got {', '.join(map(repr, dupes[:5]))} more than once; "
            "rename the columns (e.g. f0, f1, ...)"
        )
    if label_column not in schema_names:
        shown = ", ".join(schema_names[:4]) + (f" .. {schema_names[-1]}" if len(schema_names) > 5 else "")
        raise DataError(
            f"{path}: expected a label column named {label_column!r}, got columns {shown}; pass --label-column NAME"
        )
    keep = [label_column] + ([_ID_COLUMN] if _ID_COLUMN in schema_names else [])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=keep)
        label_values = table.column(label_column).to_numpy(zero_copy_only=False)
        id_values = table.column(_ID_COLUMN).to_pylist() if _ID_COLUMN in keep else None
    else:
        import pyarrow.csv as pcsv

        # Streamed: read_csv would hold the whole file's text in memory to pick one column.
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK, encoding=_csv_encoding(path)),
            convert_options=pcsv.ConvertOptions(
                include_columns=keep, column_types={_ID_COLUMN: pa.string()} if len(keep) > 1 else None
            ),
        )
        parts, id_parts = [], []
        for rb in reader:
            parts.append(rb.column(0).to_numpy(zero_copy_only=False))
            if len(keep) > 1:
                id_parts.extend(rb.column(1).to_pylist())
        label_values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        id_values = id_parts if len(keep) > 1 else None
    labels = _labels_array(label_values, path)
    ids = [str(v) for v in id_values] if id_values is not None else None
    features = [c for c in schema_names if c not in (label_column, _ID_COLUMN)]
    return TableSplit(name, path, fmt, labels, features, ids)


def _load_images(
    name: str, folder: Path, root: Path, classes: list[str], image_size: tuple[int, int] | None,
    mean: list[float] | None, std: list[float] | None, channels: int | None, workers: int,
) -> Split:
    from PIL import Image, UnidentifiedImageError

    lookup = {c: i for i, c in enumerate(classes)}
    ids: list[str] = []
    labels: list[int] = []
    for class_dir in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        if class_dir.name not in lookup:
            raise DataError(
                f"{class_dir}: expected a class folder named in classes.txt, got {class_dir.name!r}; add it to classes.txt"
            )
        prefix = class_dir.relative_to(root).as_posix() + "/"
        names = sorted(f.name for f in class_dir.iterdir())
        keep = [n for n in names if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith(".")]
        ids.extend(prefix + n for n in keep)
        labels.extend([lookup[class_dir.name]] * len(keep))
    if not ids:
        raise DataError(
            f"{folder}: expected images in class folders ({folder.name}/<class>/*.png), got none; "
            "put each image in the folder of its class"
        )
    first_file = root / ids[0]
    from diagnose.io.paths import open_regular

    try:
        with open_regular(first_file, "a readable image", "remove or replace the file", DataError) as fh, Image.open(fh) as first:
            hw = (first.height, first.width)
            natural = 1 if first.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"{first_file}: expected an image of at most {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels, got {_bomb_size(exc)}; "
            "remove the file or shrink it"
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{first_file}: expected an image Pillow can decode, got {type(exc).__name__}; remove or replace the file") from None
    c = channels or natural
    if c not in (1, 3):
        raise UsageError(f"{folder}: expected 1 or 3 image channels for the model, got {c}; only grayscale and RGB are read")
    spec = ImageSpec(size=image_size, channels=c, mean=mean, std=std)
    if channels is not None:
        # Otherwise checked once the channels are settled (a model may ask RGB of grayscale files).
        _check_norm(folder, spec)
    shape_hw = image_size or hw
    return ImageSplit(name, folder, root, np.asarray(labels, dtype=np.int64), ids, spec, shape_hw, workers)
