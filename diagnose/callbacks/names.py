"""The metric names the frameworks log, mapped to the canonical names a `Watch` records.

Keras logs `loss`, `accuracy` (or `acc`, `sparse_categorical_accuracy`), `val_*` and `learning_rate`;
Hugging Face's Trainer logs `loss`, `learning_rate`, `eval_loss`, `eval_accuracy` and, at the end,
`train_loss` (a run average); Lightning logs whatever `self.log` names, often `train_loss`,
`val_loss`, `val_acc`, with `_step` / `_epoch` suffixes when both are logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_LOSS = {"loss", "nll", "nll_loss", "ce_loss", "cross_entropy", "total_loss"}
_ACC = {
    "acc", "accuracy", "top1", "acc1", "top1_acc", "categorical_accuracy", "sparse_categorical_accuracy",
    "binary_accuracy",
}
_LR = {"lr", "learning_rate", "lr_0", "lr-sgd", "lr-adam", "lr-adamw"}
_VAL = ("val_", "val/", "valid_", "valid/", "validation_", "validation/", "eval_", "eval/")
_TRAIN = ("train_", "train/", "training_", "training/")


def canonical(name: str) -> tuple[str | None, int]:
    """A logged name -> (canonical name or None, rank: lower is preferred when several map to one).
    A `_step` suffix ranks before none, and none before `_epoch`."""
    n = name.strip().lower().replace("-", "_") if not name.lower().startswith("lr-") else name.lower()
    rank = 1
    if n.endswith("_step"):
        n, rank = n[: -len("_step")], 0
    elif n.endswith("_epoch"):
        n, rank = n[: -len("_epoch")], 2
    if n in _LR:
        return "lr", rank
    split = "train"
    for p in _VAL:
        if n.startswith(p):
            split, n = "val", n[len(p):]
            break
    else:
        for p in _TRAIN:
            if n.startswith(p):
                n = n[len(p):]
                break
    if n in _LOSS:
        return f"{split}_loss", rank
    if n in _ACC:
        return f"{split}_acc", rank
    return None, 0


def to_canonical(logged: Mapping[str, Any], keep: tuple[str, ...] = ()) -> dict[str, float]:
    """The values of `logged` under canonical names (best-ranked name wins); values that are not
    numbers are left out. keep: only these canonical names (all when empty)."""
    best: dict[str, tuple[int, float]] = {}
    for name, value in logged.items():
        target, rank = canonical(str(name))
        if target is None or (keep and target not in keep):
            continue
        number = as_float(value)
        if number is None:
            continue
        if target not in best or rank < best[target][0]:
            best[target] = (rank, number)
    return {k: v for k, (_, v) in best.items()}


def as_float(value: Any) -> float | None:
    """A scalar (Python, numpy, a one-element torch tensor) -> float; anything else -> None."""
    try:
        if hasattr(value, "numel") and value.numel() != 1:
            return None
        if hasattr(value, "item"):
            value = value.item()
        return float(value)
    except (TypeError, ValueError):
        return None
