"""The population's report: each run written through a log format the reader supports and read back,
judged by `find_hints`, and the detection table (see bench/population.py)."""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.population import CONDITIONS, Run, Spec, to_series


def _fmt_value(v: float) -> str:
    return "nan" if math.isnan(v) else ("inf" if math.isinf(v) else repr(float(v)))


def write_log(run: Run, folder: Path) -> Path:
    """Write the run as its `fmt` says (Keras CSVLogger, Lightning CSVLogger, JSON lines)."""
    c = run.curves
    fmt = run.spec.fmt
    if fmt == "keras_csv":
        path = folder / "training.log"
        names = [("accuracy", "train_acc"), ("loss", "train_loss"), ("lr", "lr"), ("val_accuracy", "val_acc"),
                 ("val_loss", "val_loss")]
        lines = ["epoch," + ",".join(n for n, _ in names)]
        for i, ep in enumerate(c["val_loss"]["epoch"]):
            lines.append(f"{int(ep)}," + ",".join(_fmt_value(c[k]["value"][i]) for _, k in names))
        path.write_text("\n".join(lines) + "\n")
        return path
    rows: dict[tuple[float, float], dict[str, float]] = {}
    tags = {"train_loss": "train_loss", "train_acc": "train_acc", "val_loss": "val_loss", "val_acc": "val_acc",
            "lr": "lr-" + run.spec.optimizer.capitalize()}
    if fmt == "jsonl":
        tags = {"train_loss": "loss", "train_acc": "train/accuracy", "val_loss": "eval_loss",
                "val_acc": "eval_accuracy", "lr": "learning_rate"}
    order = []
    for name, d in c.items():
        for s, e, v in zip(d["step"], d["epoch"], d["value"], strict=True):
            key = (float(s), name.startswith("val") or name == "train_acc")
            if key not in rows:
                rows[key] = {"step": s, "epoch": e}
                order.append(key)
            rows[key][tags[name]] = v
    order.sort()
    if fmt == "jsonl":
        path = folder / "metrics.jsonl"
        with path.open("w") as fh:
            for key in order:
                r = rows[key]
                fh.write("{" + ", ".join(f'"{k}": {_fmt_value(v) if k not in ("step",) else int(v)}'
                                         for k, v in r.items()).replace("nan", "NaN").replace("inf", "Infinity") + "}\n")
        return path
    path = folder / "metrics.csv"
    cols = ["epoch", "step", *tags.values()]
    lines = [",".join(cols)]
    for key in order:
        r = rows[key]
        cells = []
        for col in cols:
            v = r.get(col)
            if v is None:
                cells.append("")
            elif col == "step":
                cells.append(str(int(v)))
            elif col == "epoch":
                cells.append(str(int(math.floor(v - 1e-9))) if run.spec.logging == "step" else str(int(v)))
            else:
                cells.append(_fmt_value(v))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def read_back(run: Run, folder: Path) -> Mapping[str, Any]:
    """The run's series as `diagnose curves` reads them from its written log (or directly)."""
    if run.spec.fmt == "direct":
        return to_series(run)
    from diagnose.io.logs import parse_log

    return parse_log(write_log(run, folder)).series


# --- the report ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    spec: Spec
    warns: list[str]
    detected: bool
    onset_true: int | None = None
    onset_found: float | None = None
    error: str = ""


def judge(run: Run, folder: Path) -> Outcome:
    from diagnose.core.hints import find_hints

    try:
        series = read_back(run, folder)
    except Exception as exc:  # a log the reader refuses counts as a miss, with the reason
        return Outcome(run.spec, [], False, error=f"{type(exc).__name__}: {exc}")
    hints = find_hints(series)
    warns = [h.id for h in hints if h.severity == "warn"]
    expect = CONDITIONS[run.spec.condition]
    detected = not warns if not expect else any(w in expect for w in warns)
    out = Outcome(run.spec, warns, detected, onset_true=run.onset)
    over = next((h for h in hints if h.id == "overfitting"), None)
    if over is not None and "epoch" in over.at:
        out.onset_found = float(over.at["epoch"])
    return out


def outcomes(runs: list[Run]) -> list[Outcome]:
    res = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, run in enumerate(runs):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            res.append(judge(run, folder))
    return res


def table(res: list[Outcome]) -> str:
    """The report: per condition, the runs, the detection rate, and the findings given."""
    lines = ["| condition | runs | detected | expected finding | findings given (warnings) |",
             "|---|---:|---:|---|---|"]
    for cond, expect in CONDITIONS.items():
        rs = [r for r in res if r.spec.condition == cond]
        if not rs:
            continue
        hit = sum(r.detected for r in rs)
        given: Counter[str] = Counter()
        for r in rs:
            for w in dict.fromkeys(r.warns) or ["(none)"]:
                given[w] += 1
        conf = ", ".join(f"{k} {v}" for k, v in given.most_common())
        want = " / ".join(expect) if expect else "no warning"
        lines.append(f"| {cond} | {len(rs)} | {hit}/{len(rs)} ({hit / len(rs):.0%}) | {want} | {conf} |")
    over = [r for r in res if r.spec.condition == "overfit"]
    if over:
        within = sum(1 for r in over if r.onset_found is not None and r.onset_true is not None
                     and abs(r.onset_found - r.onset_true) <= 1)
        lines.append("")
        lines.append(f"overfitting onset within +-1 evaluation of the validation-loss minimum: {within}/{len(over)} "
                     f"({within / len(over):.0%})")
    warned = [r for r in res if CONDITIONS[r.spec.condition]]
    clean = [r for r in res if not CONDITIONS[r.spec.condition]]
    if warned and clean:
        lines.append(f"warning conditions detected: {sum(r.detected for r in warned)}/{len(warned)}; "
                     f"healthy and resumed runs with no warning: {sum(r.detected for r in clean)}/{len(clean)}")
    errors = [r for r in res if r.error]
    if errors:
        lines.append(f"logs the reader refused: {len(errors)} ({errors[0].error[:120]})")
    return "\n".join(lines)
