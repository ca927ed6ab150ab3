"""`LightningCallback`: a Lightning `Callback` over a `Watch`. Imports Lightning (`lightning.pytorch`,
or `pytorch_lightning` when only that is installed); `diagnose.callbacks` imports this module only
when the name is first used."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

try:
    import lightning.pytorch as pl
except ModuleNotFoundError:  # the older package name
    import pytorch_lightning as pl  # type: ignore[no-redef]

from diagnose.callbacks.names import as_float, to_canonical
from diagnose.callbacks.watch import Watch

_TRAIN = ("train_loss", "train_acc")
_VAL = ("val_loss", "val_acc")


class LightningCallback(pl.Callback):
    """Findings while a Lightning run trains (`Trainer(callbacks=[LightningCallback("run.jsonl")])`).

    Reads what the module logs (`trainer.callback_metrics`): training metrics at each training batch
    end (the loss `training_step` returns when no training loss is logged), validation metrics at
    each validation end, and the first optimizer's learning rate. A finding in `stop_on` sets
    `trainer.should_stop` (agreed across processes under distributed training). `watch` is the Watch
    underneath (its `findings`, `path`, `stop_reason`)."""

    def __init__(
        self, log_path: str | os.PathLike[str], stop_on: Iterable[str] = (), **options: Any
    ) -> None:
        super().__init__()
        self.watch = Watch(log_path, stop_on, **options)
        self._seen: dict[str, Any] = {}
        self._per_step: set[str] = set()
        self._epoch_end: tuple[int, int] | None = None

    @property
    def findings(self) -> list[Any]:
        return self.watch.findings

    def _fresh(self, trainer: Any, keep: tuple[str, ...]) -> dict[str, float]:
        """The metrics in `keep` logged since the last look: callback_metrics keeps every value until
        it is logged again, and a value logged again is a new tensor."""
        fresh = {}
        for name, value in trainer.callback_metrics.items():
            if to_canonical({name: 0.0}, keep) and self._seen.get(name) is not value:
                self._seen[name] = value
                fresh[name] = value
        return to_canonical(fresh, keep)

    def _record(self, trainer: Any, values: dict[str, float]) -> None:
        if values:
            self.watch.record(values, step=trainer.global_step, epoch=trainer.current_epoch)
        stop = self.watch.should_stop
        if trainer.world_size > 1:
            stop = bool(trainer.strategy.reduce_boolean_decision(stop, all=False))
        if stop:
            trainer.should_stop = True

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        values = self._fresh(trainer, _TRAIN)
        if "train_loss" not in values:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            number = as_float(loss) if loss is not None else None
            if number is not None:
                values["train_loss"] = number
        if values and trainer.optimizers:
            values["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self._per_step.update(values)
        self._record(trainer, values)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._epoch_end = (trainer.global_step, trainer.current_epoch)

    def _epoch_metrics(self, trainer: Any) -> None:
        """Training metrics logged per epoch only (on_step=False) reach callback_metrics after the
        epoch-end hooks: read at the next epoch's start (or the run's end), at the epoch's end
        position. Those also logged per step are not logged twice."""
        if self._epoch_end is None:
            return
        values = {k: v for k, v in self._fresh(trainer, _TRAIN).items() if k not in self._per_step}
        if values:
            self.watch.record(values, step=self._epoch_end[0], epoch=self._epoch_end[1])
        self._epoch_end = None
        self._record(trainer, {})

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._epoch_metrics(trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        values = self._fresh(trainer, _VAL)
        if trainer.sanity_checking:
            return  # the sanity check's few batches are not an evaluation of the run
        self._record(trainer, values)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._epoch_metrics(trainer)
        self.watch.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.watch.close()
