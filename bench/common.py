"""Shared helpers for the benchmarks: median timing, and the big synthetic logs they read."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def compile_package() -> None:
    """Write diagnose's bytecode (__pycache__), as installing the package does. With
    PYTHONDONTWRITEBYTECODE set, or a source file changed since, every command would compile the
    changed modules again (a twentieth of a second for io/logs.py alone) and the timings would carry it."""
    import compileall

    import diagnose

    compileall.compile_dir(str(Path(diagnose.__file__).parent), quiet=1)


def median_time(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` in seconds over `repeat` runs, after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median wall time of each function, the runs taken in turn (a, b, a, b, ...).

    On a shared machine the load drifts over a minute: interleaving gives each contender the same
    share of quiet and busy moments, so their ratio is fair even when the absolute times are not.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def synthetic_run(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A per-step training run: step, epoch, loss (decaying + noise), acc, lr (step schedule)."""
    rng = np.random.default_rng(seed)
    step = np.arange(1, n + 1)
    epoch = step // max(1, n // 100)
    loss = 2.3 * np.exp(-step / (n / 5)) + 0.1 + 0.05 * rng.random(n)
    acc = np.clip(1 - loss / 2.5 + 0.02 * rng.standard_normal(n), 0, 1)
    lr = 0.1 * 0.1 ** (step // (n // 3 + 1))
    return {"step": step, "epoch": epoch, "loss": loss, "acc": acc, "lr": lr}


def write_csv(path: Path, run: dict[str, np.ndarray]) -> None:
    import pandas as pd

    pd.DataFrame(run).to_csv(path, index=False, float_format="%.6g")


def write_jsonl(path: Path, run: dict[str, np.ndarray]) -> None:
    import pandas as pd

    pd.DataFrame(run).to_json(path, orient="records", lines=True, double_precision=6)


def write_text(path: Path, run: dict[str, np.ndarray]) -> None:
    import pandas as pd

    df = pd.DataFrame(
        {
            "a": "epoch", "epoch": run["epoch"], "b": "step", "step": run["step"], "c": "loss",
            "loss": np.round(run["loss"], 5), "d": "acc", "acc": np.round(run["acc"], 4), "e": "lr", "lr": run["lr"],
        }
    )
    with open(path, "w") as fh:
        fh.write("Starting training\n")
        df.to_csv(fh, sep=" ", header=False, index=False)
        fh.write("Training finished\n")


def write_tensorboard(path: Path, n_points: int) -> None:
    """`n_points` scalars, one per event as torch's SummaryWriter writes them: train_loss every step
    and lr every 10th step."""
    from diagnose.io import tensorboard as tb

    n_steps = n_points * 10 // 11
    run = synthetic_run(n_steps)
    records = [tb.file_version_record(0.0)]
    written = 0
    for s, loss, lr in zip(run["step"].tolist(), run["loss"].tolist(), run["lr"].tolist(), strict=True):
        records.append(tb.frame_record(tb.encode_event(s, float(s), [("train_loss", loss)])))
        written += 1
        if s % 10 == 0 and written < n_points:
            records.append(tb.frame_record(tb.encode_event(s, float(s), [("lr", lr)])))
            written += 1
    path.mkdir(parents=True, exist_ok=True)
    (path / "events.out.tfevents.0.bench").write_bytes(b"".join(records))
