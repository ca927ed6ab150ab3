"""`Watch`: judge a run while it trains with the same findings `diagnose curves` gives afterwards.

The watch keeps the metrics it is given as the series `diagnose curves` would read from its log,
writes each record to one JSON-lines event log as it comes (append-only, flushed per record), and
re-judges with `find_hints` on evaluation records, on a non-finite loss, and every so many records.
A finding that starts or ends becomes an event line in the same log; the log reader keeps the
metric records and skips the event lines (they hold text only).

Record shapes (one JSON object per line):

    {"event": "watch", "writer": "diagnose 0.1.0", "started": "2026-01-01T00:00:00+00:00"}
    {"step": 120, "epoch": 2, "train_loss": 0.41, "lr": 0.001}
    {"event": "finding", "state": "start", "id": "diverged", "severity": "warn",
     "evidence": "...", "advice": "...", "at": "step 118", "step": 120, "epoch": 2}
    {"event": "stop", "reason": "diverged: ...", "step": 120, "epoch": 2}

`state` is "start" when a finding holds at `confirm` judgements in a row, "end" when a later judgement
no longer gives it, and "final" for each finding the last judgement gives when the watch closes.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np

from diagnose.core import hints as _hints
from diagnose.core.hints import Hint, Series, find_hints
from diagnose.exceptions import ArgumentError

CANONICAL = ("train_loss", "val_loss", "train_acc", "val_acc", "lr")
_EVAL = ("val_loss", "val_acc")
# Re-judge at least every JUDGE_EVERY records, and otherwise only when the run has grown by
# JUDGE_GROWTH of its length since the last judgement: the total cost of judging a run of N records
# stays a small multiple of one judgement of N points.
JUDGE_EVERY = 50
JUDGE_GROWTH = 0.05
# ... and only while the judging so far took at most this share of the run's time (a judgement of a
# few thousand points takes tens of milliseconds); a judgement over the budget waits for a later record.
# A non-finite loss is judged at once, whatever the budget.
BUDGET = 0.01
# A finding starts (is printed, logged as started, may stop the run) once CONFIRM judgements in a row
# give it: a finding judged on a prefix of a run can hold for one judgement and not the next (a curve
# that looks straight over its first epochs), and alarms that come and go are the ones people learn
# to ignore. A loss that stays NaN is judged at each record, so it is confirmed one record later.
CONFIRM = 2
# Findings that are not a problem: recorded in `findings`, never printed or logged as events.
_QUIET = frozenset({"healthy"})


class TrainingStopped(Exception):
    """Raised by `Watch.log` with `raise_on_stop=True` when a finding in `stop_on` starts."""

    def __init__(self, reason: str, finding: Hint) -> None:
        super().__init__(reason)
        self.reason = reason
        self.finding = finding


def known_ids() -> frozenset[str]:
    """The finding ids `stop_on` accepts: those `find_hints` gives (its advice table) and the gradient
    findings (diagnose.callbacks.gradients)."""
    from diagnose.callbacks.gradients import GRADIENT_ADVICE

    table = getattr(_hints, "ADVICE", None)
    return (frozenset(table) if isinstance(table, Mapping) else frozenset()) | frozenset(GRADIENT_ADVICE)


def process_rank() -> int:
    """This process's rank under torch.distributed when a process group is initialized, else 0.
    Never imports torch: a run that uses it has imported it already."""
    torch = sys.modules.get("torch")
    dist = getattr(torch, "distributed", None) if torch is not None else None
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return int(dist.get_rank())
    except (RuntimeError, AttributeError):
        return 0
    return 0


def _number(value: Any) -> float:
    """A metric value (float, int, numpy or 0-d torch scalar) -> float."""
    if hasattr(value, "item"):
        value = value.item()
    return float(value)


def _json_number(x: float) -> int | float:
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def _json_text(x: float, position: bool = False) -> str:
    """A float as json.dumps writes it (NaN, Infinity, -Infinity); a whole step or epoch (`position`)
    without its point."""
    if x != x:
        return "NaN"
    if x in (math.inf, -math.inf):
        return "Infinity" if x > 0 else "-Infinity"
    if position and x.is_integer() and abs(x) < 2**53:
        return str(int(x))
    return repr(x)


def _where(at: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {int(v) if float(v).is_integer() else v}" for k, v in at.items())


def free_path(path: Path) -> Path:
    """`path` when nothing is there, else the first free `<stem>.<k><suffix>` beside it."""
    if not os.path.lexists(path):
        return path
    k = 1
    while True:
        candidate = path.with_name(f"{path.stem}.{k}{path.suffix}")
        if not os.path.lexists(candidate):
            return candidate
        k += 1


class Watch:
    """Findings on a run as it trains, for a hand-written loop.

        watch = Watch("runs/exp1.jsonl", stop_on=("diverged",))
        for step, batch in enumerate(loader):
            ...
            watch.log(step=step, epoch=epoch, train_loss=loss, lr=opt.param_groups[0]["lr"])
            if watch.should_stop:
                break
        watch.close()

    log_path: the event log to write; an existing file is never overwritten (the log goes to the first
    free `<stem>.<k><suffix>` and `path` says where). stop_on: finding ids (`diverged`, `overfitting`, ...)
    that set `should_stop`; with raise_on_stop=True, `log` raises TrainingStopped instead of returning.
    classes: the number of classes, for the chance level (as `diagnose curves --classes`).
    judge_every: judge at least every this many records (and at each evaluation record).
    grad_every: with `gradients(model, ...)` called after each backward pass, measure the gradients every
    this many calls (0: off): the first/last layer gradient ratio and, given a loss and the batch, the
    gradient noise scale; their findings are in `gradient_findings` (batch_size: the training batch size
    the noise scale is compared with).
    confirm: a finding starts when this many judgements in a row give it.
    budget: the share of the run's wall time judging may take (a non-finite loss is judged regardless);
    None: no limit (each judgement when due).
    stream: where the one-line messages go (stderr by default); only rank zero prints and writes.
    """

    def __init__(
        self,
        log_path: str | os.PathLike[str],
        stop_on: Iterable[str] = (),
        *,
        classes: int | None = None,
        judge_every: int = JUDGE_EVERY,
        confirm: int = CONFIRM,
        budget: float | None = BUDGET,
        grad_every: int = 0,
        batch_size: int | None = None,
        raise_on_stop: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        if isinstance(stop_on, str):
            stop_on = (stop_on,)
        self.stop_on = tuple(stop_on)
        known = self.known_ids()
        unknown = [s for s in self.stop_on if known and s not in known]
        if unknown:
            raise ArgumentError(
                "stop_on", f"expected finding ids such as {', '.join(sorted(known)[:8])}, ...; got {unknown[0]!r}; "
                "use the ids `diagnose curves --json` reports", None,
            )
        if judge_every < 1:
            raise ArgumentError("judge_every", f"expected a count of records >= 1, got {judge_every}; pass 1 or more")
        self.requested_path = Path(log_path)
        self.path = self.requested_path
        self.classes = classes
        self.judge_every = judge_every
        if confirm < 1:
            raise ArgumentError("confirm", f"expected a count of judgements >= 1, got {confirm}; pass 1 or more")
        self.confirm = confirm
        if budget is not None and not 0 < budget <= 1:
            raise ArgumentError("budget", f"expected a share of the run's time in (0, 1], got {budget}; pass 0.01 for 1%")
        self.budget = budget
        self.raise_on_stop = raise_on_stop
        self.stream = stream
        if grad_every < 0:
            raise ArgumentError("grad_every", f"expected a count of steps >= 0 (0: off), got {grad_every}; pass 0 or more")
        self.grad_every = grad_every
        self.batch_size = batch_size
        self.gradient_findings: list[Hint] = []
        self._grad_calls = 0
        self._grad_streak: dict[str, int] = {}
        self._noise: Any = None
        self.should_stop = False
        self.stop_reason = ""
        self.judgements = 0
        self._file: BinaryIO | None = None
        self._opened = False
        self._closed = False
        self._records = 0
        self._judged_at = 0
        self._step: float | None = None
        self._epoch: float | None = None
        self._counting = False
        self._pending = False
        self._judge_seconds = 0.0
        self._judge_cost = 0.0
        self._judge_records = 0
        self._started = time.perf_counter()
        self._points: dict[str, tuple[list[float], list[float], list[float]]] = {}
        self._hints: list[Hint] = []
        self._active: dict[str, Hint] = {}
        self._streak: dict[str, int] = {}
        self._printed: set[str] = set()

    # --- public ------------------------------------------------------------------------------------

    def known_ids(self) -> frozenset[str]:
        return known_ids()

    def log(
        self,
        *,
        step: float | None = None,
        epoch: float | None = None,
        train_loss: Any = None,
        val_loss: Any = None,
        train_acc: Any = None,
        val_acc: Any = None,
        lr: Any = None,
    ) -> None:
        """Record one set of metrics (any subset) at `step` and/or `epoch`. A missing step or epoch is
        the last one given; with neither ever given, the record's position (from 1) is the step."""
        metrics = {"train_loss": train_loss, "val_loss": val_loss, "train_acc": train_acc, "val_acc": val_acc, "lr": lr}
        self.record({k: v for k, v in metrics.items() if v is not None}, step=step, epoch=epoch)

    def record(self, metrics: Mapping[str, Any], *, step: float | None = None, epoch: float | None = None) -> None:
        """`log` with the metrics as a mapping of canonical names (train_loss, val_loss, train_acc,
        val_acc, lr) to values; the adapters call this."""
        if self._closed:
            raise RuntimeError(f"{self.path}: the watch is closed; make a new Watch for a new run")
        values = {}
        for name, value in metrics.items():
            if name not in CANONICAL:
                raise ArgumentError(name, f"expected one of {', '.join(CANONICAL)}, got {name!r}; rename the metric")
            values[name] = _number(value)
        if not values:
            return
        self._records += 1
        if step is not None or epoch is not None:
            self._counting = False
        if step is not None:
            self._step = _number(step)
        if epoch is not None:
            self._epoch = _number(epoch)
        if self._counting or (self._step is None and self._epoch is None):
            self._counting = True  # no position given yet: the record's position is the step
            self._step = float(self._records)
        s = self._step if self._step is not None else math.nan
        e = self._epoch if self._epoch is not None else math.nan
        for name, v in values.items():
            xs = self._points.setdefault(name, ([], [], []))
            xs[0].append(s)
            xs[1].append(e)
            xs[2].append(v)
        # The record as json.dumps writes it (NaN and Infinity included), without its overhead.
        parts = []
        if self._step is not None:
            parts.append(f'"step": {_json_text(self._step, True)}')
        if self._epoch is not None:
            parts.append(f'"epoch": {_json_text(self._epoch, True)}')
        parts.extend(f'"{name}": {_json_text(v)}' for name, v in values.items())
        self._write_text("{" + ", ".join(parts) + "}\n")
        if self._due(values):
            self._judge()

    def gradients(self, model: Any, loss_fn: Any = None, x: Any = None, y: Any = None) -> None:
        """Call after `loss.backward()`, before the gradients are zeroed. Every `grad_every` calls: the
        RMS gradient per layer (first/last ratio) and, with `loss_fn(model, x, y)` and the batch, two
        half-batch gradients for the noise scale (one more forward and backward pass). Logged as a
        `gradients` record; findings start after `confirm` measurements in a row."""
        from diagnose.callbacks import gradients as gr

        self._grad_calls += 1
        if not self.grad_every or (self._grad_calls - 1) % self.grad_every:
            return
        layers = gr.layer_gradient_rms(model)
        line: dict[str, Any] = {"event": "gradients"}
        line.update(self._position())
        if len(layers) >= 2 and layers[-1][1] > 0:
            line["grad_flow"] = layers[0][1] / layers[-1][1]
        if loss_fn is not None and x is not None:
            if self._noise is None:
                self._noise = gr.NoiseScale()
            self._noise.update(gr.half_batch_norms(model, loss_fn, x, y))
            if self._noise.value is not None:
                line["noise_scale"] = self._noise.value
        self._write(line)
        now = {i: Hint(i, sev, ev, gr.GRADIENT_ADVICE[i], self._at())
               for i, sev, ev in gr.judge_gradients(layers, self._noise, self.batch_size or (len(x) if x is not None else None))}
        self._grad_streak = {i: self._grad_streak.get(i, 0) + 1 for i in now}
        held = {h.id: h for h in self.gradient_findings}
        for i, hint in held.items():
            if i not in now:
                self._write(self._event(hint, "end"))
        started = [h for i, h in now.items() if i not in held and self._grad_streak[i] >= self.confirm]
        self.gradient_findings = [h for i, h in now.items() if i in held or self._grad_streak[i] >= self.confirm]
        self._announce(started)

    def _at(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._position().items()}

    @property
    def findings(self) -> list[Hint]:
        """The findings on everything logged so far: the same list `diagnose curves` gives on the log
        (each with id, severity, evidence, advice, at)."""
        if self._judged_at != self._records:
            self._judge()
        return list(self._hints)

    @property
    def active(self) -> dict[str, Hint]:
        """The findings that hold at the last judgement, by id (healthy left out)."""
        return dict(self._active)

    def close(self) -> None:
        """Judge everything logged, write a `final` event per finding that still holds, close the log."""
        if self._closed:
            return
        if self._records:
            for hint in self.findings + self.gradient_findings:  # a judgement on the whole run
                if hint.id not in _QUIET:
                    self._write(self._event(hint, "final"))
        self._closed = True
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- judging -----------------------------------------------------------------------------------

    def _due(self, values: Mapping[str, float]) -> bool:
        if any(name.endswith("_loss") and not math.isfinite(v) for name, v in values.items()):
            return True  # a NaN loss: judged at once, so a diverged run stops at its first NaN
        since = self._records - self._judged_at
        if any(name in values for name in _EVAL) or since >= max(self.judge_every, JUDGE_GROWTH * self._records):
            self._pending = True
        if not self._pending:
            return False
        if self.budget is None:
            return True
        # Within the budget: the time spent judging, with this judgement's (the last one's, scaled to
        # the points there are now), stays below `budget` of the time since the first record; a
        # judgement over it waits for a later record.
        expected = self._judge_cost * self._records / max(self._judge_records, 1)
        return self._judge_seconds + expected <= self.budget * (time.perf_counter() - self._started)

    def series(self) -> dict[str, Series]:
        """What was logged, as the series `diagnose curves` reads from the log (accuracy logged in
        percent becomes a fraction, as the reader makes it)."""
        out = {}
        for name in CANONICAL:
            if name not in self._points:
                continue
            s, e, v = (np.asarray(a, dtype=np.float64) for a in self._points[name])
            if name.endswith("_acc"):
                top = float(np.max(v, where=np.isfinite(v), initial=-np.inf))
                if 1.0 < top <= 100.0:
                    v = v / 100.0
            out[name] = Series(name=name, source=name, step=s, epoch=e, value=v)
        return out

    def _judge(self) -> None:
        self._judged_at = self._records
        self._pending = False
        self.judgements += 1
        t0 = time.perf_counter()
        self._hints = find_hints(self.series(), classes=self.classes)
        self._judge_cost = time.perf_counter() - t0
        self._judge_records = self._records
        self._judge_seconds += self._judge_cost
        now = {h.id: h for h in self._hints if h.id not in _QUIET}
        self._streak = {hid: self._streak.get(hid, 0) + 1 for hid in now}
        for hid, hint in list(self._active.items()):
            if hid not in now:
                self._write(self._event(hint, "end"))
        started = [h for hid, h in now.items() if hid not in self._active and self._streak[hid] >= self.confirm]
        self._active = {hid: h for hid, h in now.items() if hid in self._active or self._streak[hid] >= self.confirm}
        self._announce(started)

    def _announce(self, started: list[Hint]) -> None:
        """Log the findings that start, print the warnings once each, and stop when one is in stop_on."""
        for hint in started:
            self._write(self._event(hint, "start"))
            if hint.severity == "warn" and hint.id not in self._printed:
                self._printed.add(hint.id)
                self._say(f"diagnose: {hint.id}: {hint.evidence}" + (f"; {hint.advice}" if hint.advice else ""))
        stopping = next((h for h in started if h.id in self.stop_on), None)
        if stopping is not None and not self.should_stop:
            self.should_stop = True
            self.stop_reason = f"{stopping.id}: {stopping.evidence}"
            line: dict[str, Any] = {"event": "stop", "reason": self.stop_reason}
            line.update(self._position())
            self._write(line)
            self._say(f"diagnose: stopping the run ({', '.join(self.stop_on)} requested): {self.stop_reason}")
            if self.raise_on_stop:
                raise TrainingStopped(self.stop_reason, stopping)

    def _event(self, hint: Hint, state: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event": "finding", "state": state, "id": hint.id, "severity": hint.severity,
            "evidence": hint.evidence, "advice": hint.advice, "at": _where(hint.at),
        }
        event.update(self._position())
        return event

    def _position(self) -> dict[str, int | float]:
        out: dict[str, int | float] = {}
        if self._step is not None:
            out["step"] = _json_number(self._step)
        if self._epoch is not None:
            out["epoch"] = _json_number(self._epoch)
        return out

    # --- output ------------------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        if process_rank() != 0:
            return
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def _open(self) -> None:
        self._opened = True
        if process_rank() != 0:
            return  # one log per run: rank zero writes it
        from diagnose.io.outputs import write_error

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            self.path = free_path(self.requested_path)
            try:
                # "x": created here or not at all, so a file that appeared meanwhile is never overwritten.
                self._file = open(self.path, "xb", buffering=0)  # noqa: SIM115 - open for the run
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise write_error(exc, self.path) from None
        if self.path != self.requested_path:
            self._say(f"diagnose: {self.requested_path} exists and is kept; the log is written to {self.path}")
        header = {
            "event": "watch",
            "writer": f"diagnose {_version()}",
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        self._file.write((json.dumps(header) + "\n").encode("utf-8"))

    def _write(self, line: Mapping[str, Any]) -> None:
        self._write_text(json.dumps(line) + "\n")

    def _write_text(self, text: str) -> None:
        """One record, handed to the OS at once (an unbuffered file: one write call, no flush)."""
        if not self._opened:
            self._open()
        if self._file is not None:
            self._file.write(text.encode("utf-8"))


def _version() -> str:
    from diagnose import __version__

    return __version__


__all__ = ["CANONICAL", "TrainingStopped", "Watch", "free_path", "known_ids", "process_rank"]
