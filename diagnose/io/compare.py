"""Read two runs for `diagnose compare`: a `diagnose gaps` workdir or a folder of prediction files each.

Only the columns that pair and score items are read (index, id, label, pred), so a run of millions
of items costs a few int64 arrays, never its probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from diagnose.core.compare import Comparison, SplitItems, compare_runs
from diagnose.exceptions import DataError, UsageError


@dataclass(frozen=True)
class Run:
    path: Path
    splits: dict[str, SplitItems]
    classes: list[str] | None
    human_error: float | None
    metric: str
    num_classes: int | None  # recorded by the run (manifest or class names); None when unknown
    preprocessing: dict[str, Any] | None = None  # what the model was fed, as the manifest records it

    @property
    def seen_classes(self) -> int:
        """The class count the labels and predictions imply: the largest index + 1."""
        return max((int(max(s.labels.max(initial=-1), s.preds.max(initial=-1))) for s in self.splits.values()),
                   default=-1) + 1


def _column_or_none(table: object, name: str) -> np.ndarray | None:
    import pyarrow as pa

    assert isinstance(table, pa.Table)
    if name not in table.column_names:
        return None
    col = table.column(name)
    if col.null_count:  # an id or index missing on some rows cannot pair them
        return None
    values = col.to_numpy(zero_copy_only=False)
    return values.astype(str) if name == "id" else values.astype(np.int64)


def load_run(path: Path) -> Run:
    """A workdir (holding predictions/ and manifest.json) or a folder of <split>.parquet files."""
    import pyarrow as pa

    from diagnose.io.digest import check_recorded_digest
    from diagnose.io.manifest import read_manifest
    from diagnose.io.predictions import _class_codes, iter_prediction_batches, prediction_files
    from diagnose.io.splits import read_classes, read_config

    path = Path(path)
    files = prediction_files(path)
    manifest = read_manifest(path)
    metric = (manifest.metric if manifest is not None else None) or "error"
    if metric != "error":
        raise UsageError(f"{path}: expected classification predictions (metric error), got metric {metric}; "
                         "compare regression runs with diagnose gaps --predictions on each")
    classes = (manifest.classes if manifest is not None else None) or read_classes(path) or read_classes(path.parent)
    human = manifest.human_error if manifest is not None else None
    if human is None:
        raw = read_config(path).get("human_error")
        human = float(raw) if isinstance(raw, (int, float)) else None
    lookup = {c: i for i, c in enumerate(classes)} if classes else None
    splits: dict[str, SplitItems] = {}
    for split, file in files.items():
        check_recorded_digest(file, manifest, split)  # another run's file beside this manifest, or a changed one
        batches = list(iter_prediction_batches(file, ["index", "id", "label", "pred"]))
        table = pa.Table.from_batches(batches) if batches else None
        if table is None or table.num_rows == 0:
            raise DataError(f"{file}: expected at least one prediction, got 0 rows; remove the file or fill it")
        labels = _class_codes(table.column("label").combine_chunks(), lookup, file, "label")
        preds = _class_codes(table.column("pred").combine_chunks(), lookup, file, "pred")
        splits[split] = SplitItems(labels=labels, preds=preds, ids=_column_or_none(table, "id"),
                                   index=_column_or_none(table, "index"))
    known = manifest.num_classes if manifest is not None and manifest.num_classes else None
    return Run(path=path, splits=splits, classes=classes, human_error=human, metric=metric,
               num_classes=known or (len(classes) if classes else None),
               preprocessing=manifest.preprocessing if manifest is not None else None)


def _preprocessing_words(record: dict[str, Any]) -> str:
    """A short description of a manifest's preprocessing record: its kind and what it set."""
    kind = str(record.get("kind", "none"))
    parts = [kind] + [key for key in ("transform", "images") if record.get(key)]
    return " + ".join(parts)


def _same_preprocessing(a: Run, b: Run, old: Path, new: Path) -> None:
    """Refuse two runs whose models were fed differently: their errors measure the preprocessing too."""
    if a.preprocessing is None or b.preprocessing is None or a.preprocessing == b.preprocessing:
        return
    what_a, what_b = _preprocessing_words(a.preprocessing), _preprocessing_words(b.preprocessing)
    detail = f"{what_b} against {what_a}" if what_a != what_b else f"{what_b} with other values"
    raise DataError(f"{new}: expected the preprocessing of {old}, got {detail}; rerun one of them the same "
                    "way, or pass --allow-other-preprocessing to compare them anyway")


# Without a recorded class count, a run whose labels reach classes the other run cannot have is of
# another task only when those items are more than this share of its labels (a sample of the same
# task may miss a rare class, never a tenth of its items).
_FOREIGN_SHARE = 0.10


def _same_task(a: Run, b: Run, old: Path, new: Path) -> None:
    """Refuse two runs of different tasks: other class counts, or labels the other run cannot have."""
    if a.num_classes is not None and b.num_classes is not None and a.num_classes != b.num_classes:
        raise DataError(f"{new}: expected a run with the {a.num_classes} classes of {old}, got {b.num_classes} "
                        "classes; compare runs of the same task")
    for run, other, where in ((a, b, old), (b, a, new)):
        limit = other.num_classes if other.num_classes is not None else other.seen_classes
        labels = np.concatenate([s.labels for s in run.splits.values()])
        foreign = float(np.mean(labels >= limit)) if len(labels) else 0.0
        if foreign > (0.0 if other.num_classes is not None else _FOREIGN_SHARE):
            raise DataError(f"{where}: expected labels of the same classes as the other run ({limit} classes), "
                            f"got {foreign:.0%} of its items labelled with a class index >= {limit}; "
                            "compare runs of the same task")


def compare_paths(old: Path, new: Path, *, human_error: float | None = None,
                  allow_other_preprocessing: bool = False) -> Comparison:
    """Load both runs and compare them (human_error: given, else the new run's, else the old run's).
    Runs whose manifests record different preprocessing are refused unless allow_other_preprocessing."""
    a, b = load_run(old), load_run(new)
    if not allow_other_preprocessing:
        _same_preprocessing(a, b, old, new)
    if a.classes and b.classes and a.classes != b.classes:
        raise DataError(f"{new}: expected the same classes as {old}, got {len(b.classes)} classes "
                        f"({', '.join(b.classes[:4])}...) against {len(a.classes)}; compare runs of the same task")
    _same_task(a, b, old, new)
    common = [s for s in a.splits if s in b.splits]
    if not common:
        raise DataError(f"{new}: expected a split that {old} also has ({', '.join(a.splits)}), got "
                        f"{', '.join(b.splits)}; compare runs on the same splits")
    human = human_error if human_error is not None else (b.human_error if b.human_error is not None else a.human_error)
    return compare_runs(a.splits, b.splits, human_error=human, classes=b.classes or a.classes)
