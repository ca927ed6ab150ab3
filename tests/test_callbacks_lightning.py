"""LightningCallback on real Lightning trainings on CPU: quiet on a healthy run, stops a diverging one
through `trainer.should_stop`, and its findings equal `diagnose curves` on the log it wrote."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from test_callbacks_watch import DIVERGING_LR, HEALTHY_LR, curves_findings, mlp

pl = pytest.importorskip("lightning.pytorch")

pytestmark = [
    # Lightning's own notices on a tiny CPU run: no DataLoader workers, fewer batches than the logging
    # interval, and its use of a torch pytree class torch deprecates.
    pytest.mark.filterwarnings("ignore::UserWarning:lightning.*"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*"),
]

from diagnose.callbacks import LightningCallback  # noqa: E402 - after the skip


class Classifier(pl.LightningModule):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.net = mlp()

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self.net(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        self.log("train_acc", (out.argmax(1) == y).float().mean(), on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def fit(tmp_path: Path, lr: float, seed: int = 0, **options) -> tuple[pl.Trainer, LightningCallback, str]:
    from test_callbacks_watch import _data
    from torch.utils.data import DataLoader, TensorDataset

    x, y, xv, yv = _data(seed)
    torch.manual_seed(seed)
    said = io.StringIO()
    callback = LightningCallback(tmp_path / "run.jsonl", stream=said, **options)
    trainer = pl.Trainer(
        max_epochs=8, callbacks=[callback], logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=1,
    )
    trainer.fit(Classifier(lr), DataLoader(TensorDataset(x, y), batch_size=32), DataLoader(TensorDataset(xv, yv), batch_size=128))
    return trainer, callback, said.getvalue()


def as_json(callback: LightningCallback) -> list[dict]:
    return [{"id": h.id, "severity": h.severity, "evidence": h.evidence, "advice": h.advice, "at": dict(h.at)} for h in callback.findings]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_healthy_run(tmp_path: Path, seed: int) -> None:
    trainer, callback, said = fit(tmp_path, HEALTHY_LR, seed, stop_on=("diverged",))
    assert trainer.global_step == 128 and not trainer.should_stop
    assert said == ""
    assert not [h for h in callback.findings if h.severity == "warn"]
    assert as_json(callback) == curves_findings(callback.watch.path)
    records = [json.loads(s) for s in callback.watch.path.read_text().splitlines()]
    metrics = [r for r in records if "event" not in r]
    # every step's loss and learning rate, the 8 validations (not the sanity check), train_acc per epoch
    assert sum("train_loss" in r for r in metrics) == 128 and all("lr" in r for r in metrics if "train_loss" in r)
    assert [r["step"] for r in metrics if "val_loss" in r] == [16 * k for k in range(1, 9)]
    assert [r["step"] for r in metrics if "train_acc" in r] == [16 * k for k in range(1, 9)]


@pytest.mark.slow
def test_diverging_run_is_stopped_with_the_reason(tmp_path: Path) -> None:
    trainer, callback, said = fit(tmp_path, DIVERGING_LR, stop_on=("diverged",))
    assert trainer.should_stop and trainer.global_step < 16  # within the first epoch of 16 steps
    assert callback.watch.stop_reason.startswith("diverged: train_loss is NaN")
    assert "diagnose: stopping the run (diverged requested): diverged: train_loss is NaN" in said
    assert "lower the learning rate" in said
    assert as_json(callback) == curves_findings(callback.watch.path)
