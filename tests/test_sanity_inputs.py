"""sanity's input statistics are about what the model's first layer receives: a model that scales its
inputs inside `forward` is not told to normalize them, one that does not is, in its own layer's words."""

from __future__ import annotations

import torch
from torch import nn

import diagnose

MEAN = torch.tensor([52_000.0, 41.0, 1_200.0, 30.0])  # dollars, years, a balance, months
STD = torch.tensor([15_000.0, 12.0, 800.0, 20.0])


def _raw(n: int = 600, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 4, generator=g)
    return z * STD + MEAN, (z[:, 0] + z[:, 1] > 0).long()


class ScalesInside(nn.Module):
    """Standardizes with the training statistics in forward, as many tabular models do."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", MEAN.clone())
        self.register_buffer("std", STD.clone())
        self.head = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((x - self.mean) / self.std)


def _input_check(model: nn.Module) -> object:
    checks = diagnose.sanity(model, _raw(), only=["input_stats"], device="cpu")
    return next(c for c in checks if c.id == "input_stats")


def test_a_model_that_scales_inside_forward_is_not_told_to_normalize() -> None:
    check = _input_check(ScalesInside())
    assert check.status == "pass", check.evidence
    assert check.evidence.startswith("At the input of the first layer, head.0 (Linear)")
    assert check.details["layer"] == "head.0"


def test_raw_inputs_into_a_linear_layer_are_named_at_that_layer() -> None:
    torch.manual_seed(0)
    check = _input_check(nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)))
    assert check.status == "warn"
    assert check.evidence.startswith("At the input of the first layer, 0 (Linear)") and "not zero-centred" in check.evidence


def test_a_first_batch_norm_normalizes_whatever_it_gets() -> None:
    torch.manual_seed(0)
    check = _input_check(nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)))
    assert check.status == "pass" and "normalizes its inputs itself" in check.evidence
