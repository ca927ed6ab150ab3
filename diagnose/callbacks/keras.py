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

    Records the epoch logs (`loss`, `accuracy`, `val_loss`, `val_accuracy`, `learning_rate`) at each
    epoch end, at the step count so far; within an epoch Keras reports a running mean, so a batch is
    recorded only when its loss turns NaN or inf (judged at once). A finding in `stop_on` sets
    `model.stop_training`, which Keras checks after each batch."""

    def __init__(
        self, log_path: str | os.PathLike[str], stop_on: Iterable[str] = (), **options: Any
    ) -> None:
        super().__init__()
        self.watch = Watch(log_path, stop_on, **options)
        self._step = 0
        self._epoch = 0

    @property
    def findings(self) -> list[Any]:
        return self.watch.findings

    def _stop(self) -> None:
        if self.watch.should_stop:
            self.model.stop_training = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._step += 1
        loss = as_float((logs or {}).get("loss"))
        if loss is not None and not math.isfinite(loss):
            self.watch.record({"train_loss": loss}, step=self._step, epoch=self._epoch)
            self._stop()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = to_canonical(logs or {})
        if values:
            self.watch.record(values, step=self._step, epoch=epoch)
        self._stop()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.watch.close()
