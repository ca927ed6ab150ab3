"""KerasCallback on real Keras 3 trainings (torch backend) on CPU: quiet on a healthy run, stops a
diverging one through `model.stop_training`, and its findings equal `diagnose curves` on its log."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from test_callbacks_watch import DIVERGING_LR, HEALTHY_LR, _data, curves_findings

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("keras runs on another backend in this process", allow_module_level=True)

from diagnose.callbacks import KerasCallback  # noqa: E402 - after the skip

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def fit(tmp_path: Path, lr: float, seed: int = 0, **options):
    x, y, xv, yv = (t.numpy() for t in _data(seed))
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((10,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(3),
    ])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
    )
    said = io.StringIO()
    callback = KerasCallback(tmp_path / "run.jsonl", stream=said, **options)
    history = model.fit(x, y, batch_size=32, epochs=8, validation_data=(xv, yv), shuffle=False, verbose=0, callbacks=[callback])
    return model, history, callback, said.getvalue()


def as_json(callback: KerasCallback) -> list[dict]:
    return [{"id": h.id, "severity": h.severity, "evidence": h.evidence, "advice": h.advice, "at": dict(h.at)} for h in callback.findings]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_healthy_run(tmp_path: Path, seed: int) -> None:
    model, history, callback, said = fit(tmp_path, HEALTHY_LR, seed, stop_on=("diverged",))
    assert len(history.epoch) == 8 and not model.stop_training
    assert said == ""
    assert not [h for h in callback.findings if h.severity == "warn"], callback.findings
    assert as_json(callback) == curves_findings(callback.watch.path)
    metrics = [r for r in map(json.loads, callback.watch.path.read_text().splitlines()) if "event" not in r]
    # each batch's loss, and the epoch logs at each epoch end with Keras' names mapped
    losses = [r for r in metrics if "train_loss" in r]
    assert [r["step"] for r in losses] == list(range(1, 129))
    # the batch losses recovered from Keras' running means average to the epoch's loss
    means = [sum(r["train_loss"] for r in losses if r["epoch"] == e) / 16 for e in range(8)]
    assert means == pytest.approx(history.history["loss"], rel=1e-4)
    ends = [r for r in metrics if "val_loss" in r]
    assert [r["step"] for r in ends] == [16 * k for k in range(1, 9)]
    assert all(set(r) == {"step", "epoch", "train_acc", "val_loss", "val_acc", "lr"} for r in ends), ends[0]
    assert [r["val_loss"] for r in ends] == pytest.approx(history.history["val_loss"])


@pytest.mark.slow
def test_diverging_run_is_stopped_with_the_reason(tmp_path: Path) -> None:
    model, history, callback, said = fit(tmp_path, DIVERGING_LR, stop_on=("diverged",))
    assert model.stop_training and len(history.epoch) == 1  # stopped within the first epoch
    assert callback.watch.stop_reason.startswith("diverged: train_loss is NaN")
    assert "diagnose: stopping the run (diverged requested): diverged: train_loss is NaN" in said
    assert as_json(callback) == curves_findings(callback.watch.path)
