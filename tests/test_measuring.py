"""A caller's module left in training mode is measured in eval mode and given back unchanged.

The model has dropout and batch norm, is trained a little and left in `.train()` (as every training
loop leaves it), with one batch-norm layer frozen in eval inside it. Every API function that runs it
must count exactly what a plain eval-mode loop counts, every time, and leave its parameters,
buffers (num_batches_tracked included), device and each submodule's training flag as they were.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import diagnose
from diagnose.inputcheck import first_norm_stats
from diagnose.io.memory import as_dataset
from diagnose.measuring import measuring

SPLITS = ("train", "train_dev", "dev", "test")


def _data(seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, 8, generator=g) * 1.2
    out = {}
    for i, name in enumerate(SPLITS):
        n = 600 if name == "train" else 300
        y = torch.randint(0, 3, (n,), generator=g)
        x = centers[y] + torch.randn(n, 8, generator=g) * (1.0 + 0.15 * i)
        out[name] = (x * 5.0 + 3.0, y)  # raw scale: batch norm has something to learn
    return out


def _model(seed: int, data: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.BatchNorm1d(8), nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = data["train"]
    model.train()
    for _ in range(8):  # a little training: batch norm's running statistics still far from settled
        for i in range(0, len(x), 100):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i:i + 100]), y[i:i + 100]).backward()
            opt.step()
    model[6].eval()  # a batch-norm layer frozen in eval inside a train-mode model
    return model


def _eval_errors(model: nn.Module, data: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, int]:
    """The independent count: a deep copy in eval mode, a plain loop."""
    import copy

    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        return {n: int((ref(x).argmax(1) != y).sum()) for n, (x, y) in data.items()}


def _snapshot(model: nn.Module) -> tuple[dict[str, torch.Tensor], list[tuple[str, bool]]]:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return state, [(n, m.training) for n, m in model.named_modules()]


def _assert_unchanged(model: nn.Module, before: tuple[dict[str, torch.Tensor], list[tuple[str, bool]]], what: str) -> None:
    state, modes = before
    after = model.state_dict()
    assert set(after) == set(state)
    assert "2.num_batches_tracked" in state
    changed = [k for k, v in state.items() if not torch.equal(after[k], v)]
    assert not changed, f"{what} changed {changed}"
    assert [(n, m.training) for n, m in model.named_modules()] == modes, f"{what} left other training flags"


@pytest.fixture(scope="module")
def _trained_once() -> tuple[nn.Sequential, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    data = _data(0)
    return _model(0, data), data


@pytest.fixture
def trained(_trained_once: tuple) -> tuple[nn.Sequential, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """A copy per test: what one test does to the module cannot hide what another does."""
    import copy

    model, data = _trained_once
    return copy.deepcopy(model), data


def test_the_model_is_one_where_train_mode_changes_the_counts(trained: tuple) -> None:
    """The fixture can tell the two modes apart: in train mode the counts differ from eval's."""
    model, data = trained
    assert model.training and not model[6].training
    import copy

    twin = copy.deepcopy(model)
    torch.manual_seed(1)
    with torch.no_grad():
        train_mode = {n: int((twin(x).argmax(1) != y).sum()) for n, (x, y) in data.items()}
    assert train_mode != _eval_errors(model, data)


def test_gaps_counts_equal_an_eval_mode_loop_twice_and_the_module_is_unchanged(trained: tuple, tmp_path: Path) -> None:
    model, data = trained
    expected = _eval_errors(model, data)
    before = _snapshot(model)
    for i in range(2):
        report = diagnose.gaps(model, data, batch_size=64, workdir=tmp_path / f"run{i}")
        assert {n: report.splits[n].errors for n in SPLITS} == expected, f"call {i + 1}"
        _assert_unchanged(model, before, f"gaps call {i + 1}")
    report = diagnose.gaps(model, data, batch_size=64)  # the temporary-workdir path too
    assert {n: report.splits[n].errors for n in SPLITS} == expected
    sheet = diagnose.sample_errors(report, split="dev", n=5)
    assert len(sheet) == 5
    _assert_unchanged(model, before, "gaps and sample_errors")


def test_sanity_lr_find_and_check_data_leave_the_module_unchanged(trained: tuple) -> None:
    model, data = trained
    before = _snapshot(model)
    checks = diagnose.sanity(model, data["train"], steps=20, items=256, only=["overfit_batch", "activations",
                                                                            "gradient_flow", "gradcheck"])
    assert {c.id for c in checks if c.status != "skip"} == {"overfit_batch", "activations", "gradient_flow", "gradcheck"}
    _assert_unchanged(model, before, "sanity")
    diagnose.lr_find(model, data["train"], steps=8, repeats=1, batch_size=32)
    _assert_unchanged(model, before, "lr_find")
    diagnose.check_data(data)
    _assert_unchanged(model, before, "check_data")


def test_the_input_check_runs_in_eval_mode_and_leaves_batch_norm_alone(trained: tuple) -> None:
    model, data = trained
    before = _snapshot(model)
    dataset = as_dataset(data)
    stats = first_norm_stats(model, dataset.splits["train"])
    assert stats is not None and stats.layer == "0"
    _assert_unchanged(model, before, "first_norm_stats")


def test_measuring_restores_each_flag_and_runs_in_inference_mode() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.BatchNorm1d(2), nn.Dropout()))
    model.train()
    model[1][0].eval()
    flags = [m.training for m in model.modules()]
    with measuring(model) as m:
        assert m is model
        assert not any(sub.training for sub in model.modules())
        assert torch.is_inference_mode_enabled()
    assert [m.training for m in model.modules()] == flags
    with pytest.raises(RuntimeError, match="boom"), measuring(model):
        raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == flags
    # Parameters stay trainable after a measurement.
    model(torch.randn(4, 2)).sum().backward()
    assert model[0].weight.grad is not None and np.isfinite(model[0].weight.grad.numpy()).all()
