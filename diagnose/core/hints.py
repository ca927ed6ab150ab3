"""Curve findings: what a training log says about the run. Pure: arrays in, frozen dataclasses out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Series:
    """One logged quantity.

    step, epoch: (N,) float64, NaN where the log gives none; value: (N,) float64 with NaN/inf kept;
    points are in the order they were logged. `name` is canonical (train_loss, val_loss, train_acc,
    val_acc, lr) or the name as logged; `source` is the column, key or tag it was read from.
    """

    name: str
    source: str
    step: np.ndarray
    epoch: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.value)

    @property
    def has_step(self) -> bool:
        return bool(len(self.step)) and bool(np.isfinite(self.step).all())

    @property
    def has_epoch(self) -> bool:
        return bool(len(self.epoch)) and bool(np.isfinite(self.epoch).all())
