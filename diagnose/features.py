"""The model's penultimate-layer features of every item of a split: what `diagnose errors` compares
items by when it asks which labels the items like a suspect carry (core.labelissues.neighbour_issues)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diagnose.io.splits import Split

# Features of more values than this (items x width, float32: 2 GB) are not gathered: the suspects
# then rest on the probabilities alone.
MAX_VALUES = 500_000_000


@dataclass
class SplitFeatures:
    """features: (N, d) float32, row i the input of the model's last linear layer for item i;
    labels: (N,) int64 given labels."""

    features: np.ndarray
    labels: np.ndarray


def last_linear(module: torch.nn.Module) -> torch.nn.Linear | None:
    """The last nn.Linear registered in the module (its classification head), or None."""
    found: torch.nn.Linear | None = None
    for sub in module.modules():
        if isinstance(sub, torch.nn.Linear):
            found = sub
    return found


def penultimate_features(module: torch.nn.Module, split: Split, *, device: torch.device,
                         batch_size: int = 256) -> SplitFeatures | None:
    """Every item's input to the model's last linear layer, in split order. None when the model has
    no linear layer, when that layer does not see every item of a batch as one row, or when the
    features would exceed MAX_VALUES."""
    head = last_linear(module)
    if head is None:
        return None
    width = int(head.in_features)
    if split.n * width > MAX_VALUES:
        return None
    features = np.zeros((split.n, width), dtype=np.float32)
    labels = np.full(split.n, -1, dtype=np.int64)
    seen: list[torch.Tensor] = []

    def keep(_mod: torch.nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        seen.append(args[0].detach())

    handle = head.register_forward_hook(keep)
    try:
        with torch.inference_mode():
            for batch in split.batches(batch_size):
                seen.clear()
                module(batch.x.to(device))
                if len(seen) != 1 or seen[0].shape != (len(batch.index), width):
                    return None  # the head runs per token or more than once: no single row per item
                features[batch.index] = seen[0].float().cpu().numpy()
                labels[batch.index] = np.asarray(batch.y).astype(np.int64)
    finally:
        handle.remove()
    return SplitFeatures(features, labels)
