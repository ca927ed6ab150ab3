"""`HFCallback`: a Hugging Face `TrainerCallback` over a `Watch`. Imports transformers;
`diagnose.callbacks` imports this module only when the name is first used."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from transformers import TrainerCallback

from diagnose.callbacks.names import to_canonical
from diagnose.callbacks.watch import Watch


class HFCallback(TrainerCallback):
    """Findings while a Hugging Face Trainer trains (`Trainer(..., callbacks=[HFCallback("run.jsonl")])`).

    Reads the records the Trainer logs (`on_log`: `loss` and `learning_rate` every `logging_steps`,
    `eval_loss` and `eval_<metric>` at each evaluation); the closing run summary is left out. A
    finding in `stop_on` sets `control.should_training_stop`; nothing else is touched. The Trainer
    replaces a NaN or inf loss by the average of its logging window unless `logging_nan_inf_filter`
    is False: with the filter on, a divergence shows as a climbing loss rather than as NaN."""

    def __init__(
        self, log_path: str | os.PathLike[str], stop_on: Iterable[str] = (), **options: Any
    ) -> None:
        self.watch = Watch(log_path, stop_on, **options)

    @property
    def findings(self) -> list[Any]:
        return self.watch.findings

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or "train_runtime" in logs:
            return  # the run summary: a run-average loss, not a point of the curve
        values = to_canonical(logs)
        if values:
            self.watch.record(values, step=state.global_step, epoch=logs.get("epoch", state.epoch))
        if self.watch.should_stop:
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.watch.close()
