"""`KerasCallback`: a Keras 3 `Callback` over a `Watch`. Imports keras (any backend; the tests run the
torch one); `diagnose.callbacks` imports this module only when the name is first used."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import keras  # type: ignore[import-untyped]  # ships no annotations

from diagnose.callbacks.names import as_float, to_canonical
from diagnose.callbacks.watch import Watch


class KerasCallback(keras.callbacks.Callback):
    """Findings while `model.fit` trains (`model.fit(..., callbacks=[KerasCallback("run.jsonl")])`).

    Records each batch's training loss and, at each epoch end, the epoch logs (`accuracy`, `val_loss`,
    `val_accuracy`, `learning_rate`). Within an epoch Keras reports the running mean m_k of the first
    k batches; the batch's own loss is k m_k - (k - 1) m_(k-1) (exact for equal batches; the last,
    smaller batch of an epoch is weighted as a full one). A finding in `stop_on` sets
    `model.stop_training`, which Keras checks after each batch."""

    def __init__(self, log_path: str | os.PathLike[str], stop_on: Iterable[str] = (), **options: Any) -> None:
        super().__init__()
        self.watch = Watch(log_path, stop_on, **options)
        self._step = 0
        self._epoch = 0
        self._mean = 0.0

    @property
    def findings(self) -> list[Any]:
        return self.watch.findings

    def _stop(self) -> None:
        if self.watch.should_stop:
            self.model.stop_training = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._mean = 0.0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._step += 1
        mean = as_float((logs or {}).get("loss"))
        if mean is None:
            return
        k = batch + 1
        loss = k * mean - (k - 1) * self._mean if k > 1 and math.isfinite(self._mean) else mean
        self._mean = mean
        self.watch.record({"train_loss": loss}, step=self._step, epoch=self._epoch)
        self._stop()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = to_canonical(logs or {})
        values.pop("train_loss", None)  # the epoch's mean of the batch losses recorded above
        if "lr" not in values:
            values.update(self._learning_rate())
        if values:
            self.watch.record(values, step=self._step, epoch=epoch)
        self._stop()

    def _learning_rate(self) -> dict[str, float]:
        rate = getattr(getattr(self.model, "optimizer", None), "learning_rate", None)
        try:
            number = float(keras.ops.convert_to_numpy(rate)) if rate is not None else None
        except (TypeError, ValueError):
            number = None  # a schedule object rather than a value
        return {} if number is None else {"lr": number}

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.watch.close()
