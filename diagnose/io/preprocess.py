"""Preprocessing of tensor and table splits: (x - mean) / std per feature, on the values as read.

Image folders are normalized as they are decoded (io.splits); `.pt`, `.npz`, `.csv` and `.parquet`
splits are wrapped here. A "feature" is a position along the items' first axis: a column of a
table, a channel of a signal (N, C, L) or of an image tensor (N, C, H, W), an entry of a vector
(N, F). Values are taken as diagnose reads them: floats as stored, uint8 scaled to [0, 1].

`--standardize train` computes each feature's mean and standard deviation over the train split,
streamed (Chan, Golub and LeVeque's pairwise update, in float64), the way scikit-learn's
StandardScaler fitted on train does: population standard deviation, and 1 for a constant feature.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from diagnose.exceptions import UsageError
from diagnose.io.splits import Batch, Split

STANDARDIZE_FROM = ("train",)


@dataclass(frozen=True)
class Preprocessing:
    """What was done to the stored values before the model saw them (recorded in the manifest).

    kind: "mean/std" (given) or "standardize train" (computed); mean, std: one value, or one per
    feature; features: the table's column names, where there are columns.
    """

    kind: str
    mean: list[float]
    std: list[float]
    features: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "mean": self.mean, "std": self.std}
        if self.features is not None:
            out["features"] = self.features
        return out


def feature_count(split: Split) -> int:
    """Positions along the items' first axis (1 for scalar items)."""
    return int(split.input_shape[0]) if split.input_shape else 1


def describe_features(split: Split) -> str:
    """The data's own word for what one value per feature means."""
    k = feature_count(split)
    features = getattr(split, "features", None)
    if features is not None:
        shown = ", ".join(features[:6]) + (", ..." if len(features) > 6 else "")
        return f"one per column of {split.path} ({k}: {shown})"
    if len(split.input_shape) >= 2:
        return f"one per channel (dimension 1 of the items: {k} in {split.path})"
    return f"one per feature of {split.path} ({k})"


def _vector(values: list[float], split: Split, flag: str) -> np.ndarray:
    k = feature_count(split)
    arr = np.asarray(values, dtype=np.float32)
    if arr.size not in (1, k):
        raise UsageError(f"{flag}: expected 1 value or {describe_features(split)}, got {arr.size}; "
                         f"pass one value, or {k} separated by commas")
    return arr


class NormalizedSplit(Split):
    """A tensor or table split whose batches are (x - mean) / std, broadcast over the first item axis."""

    def __init__(self, inner: Split, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__(inner.name, inner.path, inner.labels(), inner.input_shape)
        self.inner = inner
        self.format = inner.format
        self._ids = inner.ids()
        shape = (-1,) + (1,) * max(len(inner.input_shape) - 1, 0)  # broadcast over (B, k, ...)
        self._mean, self._std = mean.reshape(shape), std.reshape(shape)

    @property
    def features(self) -> list[str] | None:
        return getattr(self.inner, "features", None)

    @property
    def labels_known(self) -> bool:
        return getattr(self.inner, "labels_known", True)

    def labels(self) -> np.ndarray:
        return self.inner.labels()

    def batches(self, batch_size: int, indices: np.ndarray | None = None) -> Iterator[Batch]:
        import torch

        mean, std = torch.from_numpy(self._mean), torch.from_numpy(self._std)
        for b in self.inner.batches(batch_size, indices):
            yield Batch(b.index, (b.x - mean) / std, b.y)

    def take(self, indices: np.ndarray) -> np.ndarray:
        """The items at these positions, preprocessed, as numpy (what io.splits' TensorSplit.take gives)."""
        take = getattr(self.inner, "take", None)
        if take is None:
            raise AttributeError("take")
        return (take(indices) - self._mean) / self._std


def normalize(split: Split, mean: list[float] | None, std: list[float] | None) -> NormalizedSplit:
    """The split with (x - mean) / std; a missing mean is 0, a missing std is 1."""
    m = _vector(mean if mean is not None else [0.0], split, "--mean")
    s = _vector(std if std is not None else [1.0], split, "--std")
    return NormalizedSplit(split, m, s)


def train_statistics(split: Split, *, batch_size: int = 4096) -> tuple[list[float], list[float]]:
    """Per-feature mean and population standard deviation of `split`, streamed; std 1 where a feature
    is constant (as StandardScaler). Over every item and, for signals and images, every position."""
    k = feature_count(split)
    count = 0
    mean = np.zeros(k, dtype=np.float64)
    m2 = np.zeros(k, dtype=np.float64)
    for b in split.batches(batch_size):
        x = b.x.double().numpy()
        x = x.reshape(len(x), k, -1).transpose(1, 0, 2).reshape(k, -1)  # (features, values)
        n_b = x.shape[1]
        if n_b == 0:
            continue
        mean_b = x.mean(axis=1)
        m2_b = np.square(x - mean_b[:, None]).sum(axis=1)
        total = count + n_b
        delta = mean_b - mean
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + np.square(delta) * (count * n_b / total)
        count = total
    if count == 0:
        raise UsageError(f"--standardize: expected items in {split.path}, got none; fill the train split")
    std = np.sqrt(m2 / count)
    std[std == 0] = 1.0
    return [float(v) for v in mean], [float(v) for v in std]


def preprocess_splits(
    splits: dict[str, Split], *, mean: list[float] | None, std: list[float] | None, standardize: str | None,
) -> tuple[dict[str, Split], Preprocessing | None]:
    """Every tensor and table split preprocessed; image folders are left to their decoder.

    standardize: "train" (statistics of the train split) or None. Refuses standardize with mean/std,
    and standardize on image folders or without a train split."""
    files = {n: s for n, s in splits.items() if s.format != "images"}
    if standardize is None and mean is None and std is None:
        return splits, None
    if standardize is not None:
        if standardize not in STANDARDIZE_FROM:
            raise UsageError(f"--standardize: expected {', '.join(STANDARDIZE_FROM)}, got {standardize!r}; "
                             "pass --standardize train")
        if mean is not None or std is not None:
            raise UsageError("--standardize: expected either --standardize or --mean/--std, got both; "
                             "drop one (mean and std may come from the project settings)")
        if any(s.format == "images" for s in splits.values()):
            raise UsageError("--standardize: expected tensor or table splits, got image folders; pass "
                             "--mean/--std for images (e.g. 0.485,0.456,0.406 and 0.229,0.224,0.225)")
        if "train" not in files:
            raise UsageError(f"--standardize train: expected a train split, got {', '.join(splits) or 'none'}; "
                             "add the train split the model was trained on")
        mean, std = train_statistics(files["train"])
        kind = "standardize train"
    else:
        kind = "mean/std"
    if not files:
        return splits, None  # image folders only: normalized as decoded
    first = next(iter(files.values()))
    out = dict(splits)
    for name, split in files.items():
        if feature_count(split) != feature_count(first):
            continue  # the evaluation names the split whose shape differs
        out[name] = normalize(split, mean, std)
    record = Preprocessing(kind=kind, mean=[float(v) for v in (mean or [0.0])], std=[float(v) for v in (std or [1.0])],
                           features=getattr(first, "features", None))
    return out, record


# --------------------------------------------------------------------------- --transform


def load_transform(spec: str, *, app_dir: Any = None) -> Any:
    """The function named by "package.module:function" or "path/to/file.py:function", from the user's
    own code, imported as --arch imports an architecture (io.models.import_named). Raises UsageError
    naming --transform."""
    from diagnose.io.models import import_named, use_app_dir

    return import_named(spec, flag=f"--transform {spec}", what="the transform", example="function",
                        thing="function", app_dir=use_app_dir(app_dir))


class TransformedSplit(Split):
    """A split whose batches are `fn(x)`: x (B, *input_shape) float32 in, (B, ...) float32 out."""

    def __init__(self, inner: Split, fn: Any, name: str) -> None:
        super().__init__(inner.name, inner.path, inner.labels(), inner.input_shape)
        self.inner, self.fn, self.transform = inner, fn, name
        self.format = inner.format
        self._ids = inner.ids()
        first = next(iter(inner.batches(2)), None)
        if first is not None:
            self.input_shape = tuple(int(d) for d in self._apply(first.x, first.index).shape[1:])

    @property
    def features(self) -> list[str] | None:
        features = getattr(self.inner, "features", None)
        return features if features is not None and self.input_shape == self.inner.input_shape else None

    @property
    def labels_known(self) -> bool:
        return getattr(self.inner, "labels_known", True)

    def labels(self) -> np.ndarray:
        return self.inner.labels()

    def _apply(self, x: Any, index: np.ndarray) -> Any:
        import torch

        from diagnose.io.models import _user_error

        try:
            out = self.fn(x)
        except Exception as exc:  # the user's function failed: its own error and line
            raise UsageError(f"--transform {self.transform}: expected it to take a batch of shape {tuple(x.shape)} "
                             f"from {self.path}, got {_user_error(exc, None)}; fix the function") from None
        if not isinstance(out, torch.Tensor) or out.ndim == 0 or out.shape[0] != len(index):
            got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
            raise UsageError(f"--transform {self.transform}: expected a tensor with one row per item ({len(index)}), "
                             f"got {got}; return the transformed batch")
        return out.to(torch.float32)

    def batches(self, batch_size: int, indices: np.ndarray | None = None) -> Iterator[Batch]:
        for b in self.inner.batches(batch_size, indices):
            yield Batch(b.index, self._apply(b.x, b.index), b.y)


def transform_splits(splits: dict[str, Split], transform: Any, *, app_dir: Any = None) -> tuple[dict[str, Split], str | None]:
    """Every split's batches through `transform` (a function, or its "module:function" spec), after
    any --mean/--std; image folders included. Returns the splits and the name recorded in the manifest."""
    if transform is None:
        return splits, None
    if isinstance(transform, str):
        fn, name = load_transform(transform, app_dir=app_dir), transform
    elif callable(transform):
        fn = transform
        name = f"{getattr(transform, '__module__', '?')}:{getattr(transform, '__qualname__', type(transform).__name__)}"
    else:
        raise UsageError(f"transform: expected a function from a batch to a batch or 'module:function', got "
                         f"{type(transform).__name__}; pass one of those")
    return {n: TransformedSplit(s, fn, name) for n, s in splits.items()}, name
