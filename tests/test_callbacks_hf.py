"""HFCallback on real Hugging Face Trainer runs on CPU: quiet on a healthy run, stops a diverging one
through `control.should_training_stop`, and its findings equal `diagnose curves` on the log it wrote."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_callbacks_watch import DIVERGING_LR, HEALTHY_LR, _data, curves_findings, mlp

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from diagnose.callbacks import HFCallback  # noqa: E402 - after the skip

pytestmark = [
    # transformers' and accelerate's notices on a CPU run without a GPU or a tokenizer
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


class Classifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


def accuracy(pred) -> dict[str, float]:
    return {"accuracy": float(np.mean(np.argmax(pred.predictions, axis=1) == pred.label_ids))}


def fit(tmp_path: Path, lr: float, seed: int = 0, **options):
    x, y, xv, yv = _data(seed)
    torch.manual_seed(seed)
    said = io.StringIO()
    callback = HFCallback(tmp_path / "run.jsonl", stream=said, **options)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=32, per_device_eval_batch_size=128,
        num_train_epochs=8, learning_rate=lr, optim="sgd", lr_scheduler_type="constant", weight_decay=0.0,
        logging_steps=1, eval_strategy="epoch", save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, seed=seed, dataloader_num_workers=0,
        # the Trainer logs a NaN loss as the mean of its window unless told otherwise
        logging_nan_inf_filter=False,
        max_grad_norm=0.0,  # no clipping: the plain loop and the other frameworks do not clip either
    )
    train = [{"x": a, "labels": b} for a, b in zip(x, y, strict=True)]
    val = [{"x": a, "labels": b} for a, b in zip(xv, yv, strict=True)]
    trainer = transformers.Trainer(
        model=Classifier(), args=args, train_dataset=train, eval_dataset=val, compute_metrics=accuracy, callbacks=[callback],
    )
    trainer.train()
    return trainer, callback, said.getvalue()


def as_json(callback: HFCallback) -> list[dict]:
    return [{"id": h.id, "severity": h.severity, "evidence": h.evidence, "advice": h.advice, "at": dict(h.at)} for h in callback.findings]


@pytest.mark.slow
def test_healthy_run(tmp_path: Path) -> None:
    trainer, callback, said = fit(tmp_path, HEALTHY_LR * 10, stop_on=("diverged",))
    assert trainer.state.global_step == 128
    assert said == ""
    assert not [h for h in callback.findings if h.severity == "warn"], callback.findings
    assert as_json(callback) == curves_findings(callback.watch.path)
    metrics = [r for r in map(json.loads, callback.watch.path.read_text().splitlines()) if "event" not in r]
    assert sum("train_loss" in r for r in metrics) == 128
    assert [r["step"] for r in metrics if "val_loss" in r] == [16 * k for k in range(1, 9)]
    assert all("val_acc" in r for r in metrics if "val_loss" in r)


@pytest.mark.slow
def test_diverging_run_is_stopped_with_the_reason(tmp_path: Path) -> None:
    trainer, callback, said = fit(tmp_path, DIVERGING_LR, stop_on=("diverged",))
    assert trainer.state.global_step < 16
    assert callback.watch.stop_reason.startswith("diverged: train_loss is NaN")
    assert "diagnose: stopping the run (diverged requested): diverged: train_loss is NaN" in said
    assert as_json(callback) == curves_findings(callback.watch.path)
