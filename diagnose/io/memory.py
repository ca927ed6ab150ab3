"""Splits from Python objects: what a notebook holds in memory, read as the files of a DATA folder are.

`as_dataset` turns a folder path, or a mapping of split name -> one of
- `(x, y)`: tensors or numpy arrays, x (N, ...) and y (N,), sliced in batches like a `.pt` split;
- a torch `DataLoader` yielding `(x, y)` (or dicts with x/inputs/image and y/label/labels/targets);
- a map-style torch `Dataset` of `(x, y)` items, read through a DataLoader;
- a path to one split file (.pt, .npz, .csv, .parquet) or an image folder,
into the `Dataset` that evaluation takes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from diagnose.exceptions import ArgumentError, DataError
from diagnose.io.splits import (
    ALIASES,
    ALL_SPLITS,
    FILE_FORMATS,
    Batch,
    Dataset,
    Split,
    TensorSplit,
    _as_float_batch,
    _labels_array,
    load_dataset,
)

_X_KEYS = ("x", "inputs", "input", "image", "images", "pixel_values")
_Y_KEYS = ("y", "label", "labels", "target", "targets")


def _numpy_labels(y: Any, where: str) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    return _labels_array(np.asarray(y), Path(where))


def _unpack(batch: Any, where: str) -> tuple[Any, Any]:
    """(x, y) from what a DataLoader yields: a tuple / list, or a dict."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        x = next((batch[k] for k in _X_KEYS if k in batch), None)
        y = next((batch[k] for k in _Y_KEYS if k in batch), None)
        if x is not None and y is not None:
            return x, y
        keys = ", ".join(map(str, batch))
        raise DataError(f"{where}: expected batches with inputs and labels, got a dict with keys {keys}; "
                        "name them x and y (or inputs and labels)")
    raise DataError(f"{where}: expected batches of (inputs, labels), got {type(batch).__name__}; "
                    "make the DataLoader yield (x, y) pairs")


class LoaderSplit(Split):
    """A split read through a torch DataLoader, one pass per evaluation, in the loader's order.

    Labels are known only once the loader has been read through (the first evaluation); until then
    `labels_known` is False and evaluation checks each batch's labels as it comes.
    """

    format = "dataloader"

    def __init__(self, name: str, loader: Any) -> None:
        where = f"splits[{name!r}]"
        try:
            n = len(loader.dataset)
        except TypeError:
            raise ArgumentError(
                "splits", f"expected a DataLoader over a dataset with a length, got an iterable dataset for {name!r}; "
                "pass (x, y) tensors or a map-style Dataset"
            ) from None
        first = next(iter(loader), None)
        if first is None:
            raise DataError(f"{where}: expected at least one item in the {name} split, got 0; remove the split or fill it")
        x, _ = _unpack(first, where)
        super().__init__(name, Path(f"<{name}>"), np.zeros(0, dtype=np.int64), tuple(x.shape[1:]))
        self.n = int(n)
        self._loader = loader
        self.labels_known = False

    def labels(self) -> np.ndarray:
        if not self.labels_known:
            self._labels = np.concatenate([_numpy_labels(_unpack(b, str(self.path))[1], str(self.path)) for b in self._loader])
            self.labels_known = True
        return self._labels

    def batches(self, batch_size: int, indices: np.ndarray | None = None) -> Iterator[Batch]:
        """The loader's own batches (its batch size wins); `indices` keeps only those positions."""
        idx = self._order(indices)
        keep = None if idx is None else np.zeros(self.n, dtype=bool)
        if keep is not None:
            keep[idx] = True
        start = 0
        seen: list[np.ndarray] = []
        for raw in self._loader:
            x, y = _unpack(raw, str(self.path))
            y = _numpy_labels(y, str(self.path))
            seen.append(y)
            pos = np.arange(start, start + len(y), dtype=np.int64)
            start += len(y)
            if keep is None:
                yield Batch(pos, _as_float_batch(x), y)
                continue
            valid = pos < self.n
            mask = np.zeros(len(pos), dtype=bool)
            mask[valid] = keep[pos[valid]]
            if mask.any():
                import torch

                sel = np.flatnonzero(mask)
                yield Batch(pos[sel], _as_float_batch(x).index_select(0, torch.from_numpy(sel)), y[sel])
        if start != self.n:
            raise DataError(f"{self.path}: expected {self.n} items (the length of the loader's dataset), "
                            f"got {start}; pass a DataLoader with drop_last=False and no sampler that skips items")
        if not self.labels_known:
            self._labels = np.concatenate(seen) if seen else np.zeros(0, dtype=np.int64)
            self.labels_known = True


def as_split(name: str, obj: Any, *, batch_size: int = 256, label_column: str = "label") -> Split:
    """One split from a Python object (see the module docstring)."""
    where = f"splits[{name!r}]"
    if isinstance(obj, (str, Path)):
        path = Path(obj)
        fmt = FILE_FORMATS.get(path.suffix.lower())
        if path.is_file() and fmt is not None:
            from diagnose.io import splits as sp

            loader = {"pt": sp._load_pt, "npz": sp._load_npz, "csv": sp._load_table, "parquet": sp._load_table}[fmt]
            return loader(name, path, fmt, label_column)
        raise ArgumentError("splits", f"expected a split file (.pt, .npz, .csv, .parquet) for {name!r}, got {path}; "
                            "pass a whole DATA folder as splits instead of a mapping for image folders")
    if isinstance(obj, tuple) and len(obj) == 2:
        x, y = obj
        if not hasattr(x, "shape") or len(x.shape) < 1:
            raise ArgumentError("splits", f"expected (x, y) with x an array or tensor of shape (N, ...) for {name!r}, "
                                f"got {type(x).__name__}; pass numpy arrays or torch tensors")
        if hasattr(x, "detach"):
            x = x.detach().cpu()
        elif not isinstance(x, np.ndarray):
            x = np.asarray(x)
        labels = _numpy_labels(y, where)
        if len(labels) != x.shape[0]:
            raise DataError(f"{where}: expected as many labels as inputs ({x.shape[0]}), got {len(labels)}; fix y")
        if len(labels) == 0:
            raise DataError(f"{where}: expected at least one item in the {name} split, got 0; remove the split or fill it")
        return TensorSplit(name, Path(f"<{name}>"), "memory", x, labels, None)
    if hasattr(obj, "dataset") and hasattr(obj, "batch_size") and hasattr(obj, "__iter__"):
        return LoaderSplit(name, obj)
    if hasattr(obj, "__getitem__") and hasattr(obj, "__len__"):
        from torch.utils.data import DataLoader

        return LoaderSplit(name, DataLoader(obj, batch_size=batch_size, shuffle=False))
    raise ArgumentError("splits", f"expected a DataLoader, a Dataset, (x, y) arrays or a file path for {name!r}, "
                        f"got {type(obj).__name__}; pass one of those")


def as_dataset(
    splits: Any, *, classes: list[str] | None = None, human_error: float | None = None, batch_size: int = 256,
    label_column: str = "label", image_size: tuple[int, int] | None = None, mean: list[float] | None = None,
    std: list[float] | None = None, workers: int = 0, standardize: str | None = None, transform: Any = None,
    app_dir: Any = None,
) -> Dataset:
    """A Dataset from a DATA folder path or a mapping of split name -> object. Names may be aliases
    (val, valid, train-dev); they come back canonical, in level order. mean / std / standardize:
    the preprocessing of io.preprocess, for in-memory splits as for files; transform: a function
    from a batch to a batch (or its "module:function" spec, imported with app_dir), applied after."""
    if isinstance(splits, (str, Path)):
        dataset = load_dataset(Path(splits), label_column=label_column, image_size=image_size, mean=mean, std=std,
                               workers=workers, standardize=standardize)
        if transform is not None:
            from diagnose.io.preprocess import transform_splits

            dataset.splits, dataset.transform = transform_splits(dataset.splits, transform, app_dir=app_dir)
        return dataset
    if not isinstance(splits, Mapping) or not splits:
        raise ArgumentError("splits", f"expected a DATA folder or a dict of split name -> data, got {type(splits).__name__}; "
                            "pass e.g. {'train': train_loader, 'dev': (x_dev, y_dev)}")
    out: dict[str, Split] = {}
    for raw_name, obj in splits.items():
        name = ALIASES.get(str(raw_name).strip().lower())
        if name is None:
            raise ArgumentError("splits", f"expected split names train, train_dev, dev or test, got {raw_name!r}; rename it")
        if name in out:
            raise ArgumentError("splits", f"expected one entry per split, got two for {name}; drop one")
        out[name] = as_split(name, obj, batch_size=batch_size, label_column=label_column)
    ordered = {s: out[s] for s in ALL_SPLITS if s in out}
    from diagnose.io.preprocess import preprocess_splits, transform_splits

    ordered, preprocessing = preprocess_splits(ordered, mean=mean, std=std, standardize=standardize)
    ordered, name = transform_splits(ordered, transform, app_dir=app_dir)
    return Dataset(root=Path("<memory>"), splits=ordered, classes=classes, human_error=human_error,
                   preprocessing=preprocessing, transform=name)
