"""What the suspect mislabels of `diagnose errors` are judged against: the per-class thresholds of a
split drawn like training, and, when the model and its data can be loaded, the labels of each sampled
item's nearest items of its own split by the model's features (core.labelissues)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diagnose.core.labelissues import NEIGHBOURS, ThresholdAccumulator, nearest_neighbours
from diagnose.exceptions import DiagnoseError

# The splits drawn like training, in order of preference: train_dev is held out of training, so the
# model is as sure of it as of new items like training; train is what it fitted (surer: stricter).
REFERENCE = ("train_dev", "train")


@dataclass
class SuspectBasis:
    """thresholds: per-class thresholds (of `thresholds_split`); neighbours: index (m,) -> (m, k) labels
    of each row's k nearest items of the analysed split, or None; notes: why something was not used."""

    thresholds: ThresholdAccumulator
    thresholds_split: str
    neighbours: Callable[[np.ndarray], np.ndarray] | None = None
    k: int | None = None
    notes: list[str] = field(default_factory=list)
    reference_counts: tuple[int, int] | None = None  # (errors, items) of thresholds_split when not the analysed one


def reference_split(split: str, available: Any) -> str:
    """The split whose thresholds judge `split`: itself when it is drawn like training, else
    train_dev, else train, else itself (nothing drawn like training to compare with)."""
    if split in REFERENCE:
        return split
    return next((name for name in REFERENCE if name in available), split)


def thresholds_of(path: Path) -> tuple[ThresholdAccumulator, tuple[int, int]]:
    """Per-class mean self-confidence over a predictions file or shard folder (label, p_label), and
    its (errors, items)."""
    import pyarrow.compute as pc

    from diagnose.io.predictions import iter_prediction_batches

    acc = ThresholdAccumulator()
    errors = items = 0
    for rb in iter_prediction_batches(path, ["label", "pred", "p_label"]):
        items += rb.num_rows
        errors += int(pc.sum(pc.fill_null(pc.not_equal(rb.column("label"), rb.column("pred")), False)).as_py() or 0)
        if "p_label" not in rb.schema.names:
            continue
        labels = rb.column("label").to_numpy(zero_copy_only=False)
        acc.add(labels.astype(np.int64) if labels.dtype.kind == "f" else labels,
                rb.column("p_label").to_numpy(zero_copy_only=False))
    return acc, (errors, items)


def mismatch_note(out: SuspectBasis, split: str, errors: int, items: int) -> str | None:
    """When the neighbours were not compared and `split` errs significantly more than the split the
    thresholds come from (95% Newcombe interval of the difference above 0): a note that shifted items
    may be among the suspects, and how to compare them with similar items."""
    from diagnose.core.stats import newcombe_interval

    if out.neighbours is not None or out.reference_counts is None:
        return None
    ref_errors, ref_items = out.reference_counts
    if not items or not ref_items or newcombe_interval(ref_errors, ref_items, errors, items)[0] <= 0:
        return None
    return (
        f"{split} errs more than {out.thresholds_split} ({errors / items:.1%} against {ref_errors / ref_items:.1%}): "
        "items unlike training may be among the suspects. Pass --neighbours to flag only items whose label "
        f"none of the most similar {split} items carries (runs the model over {split} again)."
    )


def basis(split: str, own: ThresholdAccumulator, files: dict[str, Path]) -> SuspectBasis:
    """Thresholds for `split` from the predictions `files` (split -> path); `own`: the analysed split's."""
    ref = reference_split(split, files)
    if ref == split:
        out = SuspectBasis(own, split)
        if split not in REFERENCE:
            out.notes.append(
                f"Suspect thresholds come from {split} itself (no train_dev or train predictions): on a split "
                "unlike training they flag shifted items too."
            )
        return out
    acc, counts = thresholds_of(files[ref])
    if not acc.thresholds():
        return SuspectBasis(own, split, notes=[f"Suspect thresholds come from {split}: {ref} has no p_label column."])
    return SuspectBasis(acc, ref, reference_counts=counts)


def add_neighbours(out: SuspectBasis, model: Path | None, data: Path | None, split: str,
                   evaluation: dict[str, Any], k: int = NEIGHBOURS) -> None:
    """Load the model and `split` of DATA as `diagnose gaps` did, gather every item's features, and
    set `out.neighbours`; when that cannot be done, say why in `out.notes`."""
    why = _neighbours(out, model, data, split, evaluation, k)
    if why:
        out.notes.append(f"Suspects judged on the probabilities alone, not on the labels of similar items: {why}.")


def _neighbours(out: SuspectBasis, model: Path | None, data: Path | None, split: str,
                evaluation: dict[str, Any], k: int) -> str | None:
    if model is None or data is None:
        return "no model to compute features with (pass MODEL DATA, or run from a `diagnose gaps` workdir)"
    if not Path(model).exists() or not Path(data).is_dir():
        return f"{model if not Path(model).exists() else data} is not there any more"
    from diagnose.evaluate import resolve_device
    from diagnose.features import penultimate_features
    from diagnose.io.models import arch_kwargs_from_json, load_model
    from diagnose.io.splits import load_dataset

    try:
        dataset = load_dataset(data, label_column=evaluation.get("label_column") or "label",
                               image_size=evaluation.get("image_size"), mean=evaluation.get("mean"),
                               std=evaluation.get("std"))
        target = dataset.splits.get(split)
        if target is None:
            return f"{data} has no {split} split"
        device = resolve_device(evaluation.get("device") or "auto")
        module = load_model(model, arch=evaluation.get("arch"),
                            arch_kwargs=arch_kwargs_from_json(evaluation.get("arch_kwargs")),
                            trust_pickle=bool(evaluation.get("trust_pickle")), device=str(device),
                            app_dir=evaluation.get("app_dir")).module
        feats = penultimate_features(module, target, device=device, batch_size=int(evaluation.get("batch_size") or 256))
    except (DiagnoseError, OSError, RuntimeError, ValueError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        return f"the model could not be run again ({message.splitlines()[0] if message else type(exc).__name__})"
    if feats is None:
        return "the model has no single linear head to read features from, or the split is too large"
    pool, labels = feats.features, feats.labels

    def lookup(index: np.ndarray) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        inside = (index >= 0) & (index < len(pool))
        nb = nearest_neighbours(pool[np.where(inside, index, 0)], np.where(inside, index, -1), pool, k)
        nb[~inside] = -1
        return np.where(nb >= 0, labels[np.clip(nb, 0, None)], -1)

    out.neighbours, out.k = lookup, k
    return None
