"""lr-find on inputs that cannot give a learning rate: each ends in one line naming what is wrong,
never a rate read from a sweep that could not mean anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import diagnose
from diagnose.exceptions import ArgumentError, DataError, DiagnoseError

SWEEP = {"steps": 10, "repeats": 1, "batch_size": 16, "device": "cpu"}


def _data(n: int = 200, d: int = 8, c: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, c, (n,), generator=g)


def _mlp(d: int = 8, c: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, c))


@pytest.mark.parametrize(("start", "end", "argument"), [
    (1e-7, float("inf"), "end"), (1e-7, float("nan"), "end"), (float("nan"), 10.0, "start"),
    (0.0, 10.0, "start"), (-1.0, 10.0, "start"), (1.0, 0.1, "start"), (1e-3, 1e-3, "start"),
])
def test_rates_must_be_finite_positive_and_ordered(start: float, end: float, argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        diagnose.lr_find(_mlp(), _data(), start=start, end=end, **SWEEP)
    assert err.value.argument == argument


def test_nan_inputs_are_named_as_such() -> None:
    x, y = _data()
    x[::4, 2] = float("nan")
    x[1::4, 0] = float("inf")
    # The sweep reads a seeded pool of steps x batch_size items (160 of 200): the count is of those.
    with pytest.raises(DataError, match=r"expected finite inputs, got \d+ NaN or infinite values in the 160 items read"):
        diagnose.lr_find(_mlp(), (x, y), **SWEEP)


def test_a_model_with_nan_weights_is_named_not_called_diverged() -> None:
    model = _mlp()
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(DiagnoseError, match="expected a finite loss on the first batch, before any update, got nan"):
        diagnose.lr_find(model, _data(), **SWEEP)


def test_a_split_smaller_than_one_batch_gets_no_rate() -> None:
    with pytest.raises(ArgumentError, match="expected at most the 10 items of the train split, got 16") as err:
        diagnose.lr_find(_mlp(), _data(n=10), **SWEEP)
    assert err.value.argument == "batch_size"


def test_a_model_with_nothing_to_train_is_refused() -> None:
    model = _mlp()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ArgumentError, match="expected trainable parameters, got none") as err:
        diagnose.lr_find(model, _data(), **SWEEP)
    assert err.value.argument == "model"


def test_fractional_labels_for_a_classifier_are_refused() -> None:
    x, _ = _data()
    y = torch.rand(len(x))  # regression targets fed to a 3-class model
    with pytest.raises(DiagnoseError, match="expected class indices|expected integer|labels"):
        diagnose.lr_find(_mlp(), (x, y), **SWEEP)


class Breaks(nn.Module):
    """Trains for a few steps, then raises: a shape that only some batches have, a bug mid-training."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _mlp()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 4 and self.training:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (16x8 and 9x16)")
        return self.net(x)


def test_a_model_that_raises_mid_sweep_is_one_line() -> None:
    with pytest.raises(DiagnoseError, match=r"got an error at step \d+ of the sweep .*RuntimeError: mat1 and mat2"):
        diagnose.lr_find(Breaks(), _data(), **SWEEP)


def test_the_command_names_its_flags(cli, example_model: Path, example_data: Path, example_arch: str) -> None:
    for flags, head in ((["--end", "inf"], "Error: --end: expected a finite, positive learning rate, got inf"),
                        (["--start", "0"], "Error: --start: expected a finite, positive learning rate, got 0.0"),
                        (["--start", "1", "--end", "0.1"], "Error: --start: expected a rate below --end 0.1, got 1"),
                        (["--batch-size", "100000"], "Error: --batch-size: expected at most the")):
        r = cli("lr-find", example_model, example_data, "--arch", example_arch, "--no-plot", "--steps", "10",
                "--repeats", "1", *flags)
        assert r.exit_code == 2, (flags, r.stderr)
        assert r.stderr.startswith(head) and r.stderr.count("\n") == 1, r.stderr
