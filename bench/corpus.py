"""Score `diagnose curves` against a folder of real training logs with a practitioner's reading of each.

    python bench/corpus.py DIR [--json] [--classes]

DIR holds the logs (files, or TensorBoard folders) and `readings.json`, which maps each log's name to
its reading:

    {"run.csv": {"series": ["train_loss", "val_loss"], "need": ["overfitting"], "forbid": ["diverged"]}}

A log is right when every series of its reading is read, at least one `need` finding is raised (when
`need` is not empty), and no `forbid` finding is raised. A file holding several runs is right when the
series are read in some run, a `need` finding is raised in some run, and no run raises a `forbid` one.

The corpus is split in two halves by a fixed rule (names sorted, even positions calibrate, odd positions
are held out), so a threshold tuned on one half can be checked on the other. The findings are made as a
new user gets them: without `--classes`, unless `--classes` is passed here (then a reading's `classes`
is handed on).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

READINGS = "readings.json"


@dataclass
class Verdict:
    """How the tool read one log against its reading."""

    name: str
    half: str  # "calibration" | "held-out"
    right: bool
    runs: int = 0
    series: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    missing_series: list[str] = field(default_factory=list)
    missing_need: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    error: str = ""

    def why(self) -> str:
        parts = []
        if self.error:
            parts.append(f"error: {self.error}")
        if self.missing_series:
            parts.append(f"series not read: {', '.join(self.missing_series)}")
        if self.missing_need:
            parts.append(f"none of {', '.join(self.missing_need)} raised")
        if self.forbidden:
            parts.append(f"raised {', '.join(self.forbidden)}")
        return "; ".join(parts)


def load_readings(folder: Path) -> dict[str, dict[str, Any]]:
    doc = json.loads((folder / READINGS).read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"{folder / READINGS}: expected a JSON object of readings, got {type(doc).__name__}")
    return doc


def halves(names: Sequence[str]) -> dict[str, str]:
    """name -> 'calibration' (even position in sorted order) or 'held-out' (odd position)."""
    return {name: ("calibration" if i % 2 == 0 else "held-out") for i, name in enumerate(sorted(names))}


def read_runs(path: Path) -> list[Any]:
    """The runs `diagnose curves` reads from one log: one ParsedLog each."""
    from diagnose.io import logs

    return list(logs.parse_runs(path))


def judge(folder: Path, name: str, reading: dict[str, Any], half: str, *, use_classes: bool = False) -> Verdict:
    from diagnose.core.hints import find_hints
    from diagnose.exceptions import DiagnoseError

    verdict = Verdict(name=name, half=half, right=False)
    need = list(reading.get("need") or [])
    forbid = list(reading.get("forbid") or [])
    want = list(reading.get("series") or [])
    classes = reading.get("classes") if use_classes else None
    try:
        runs = read_runs(folder / name)
    except DiagnoseError as exc:
        verdict.error = str(exc)
        verdict.missing_series = want
        verdict.missing_need = need
        return verdict
    verdict.runs = len(runs)
    seen: set[str] = set()
    raised: list[str] = []
    for run in runs:
        seen.update(run.series)
        for hint in find_hints(run.series, classes=classes if isinstance(classes, int) and classes >= 2 else None):
            if hint.id not in raised:
                raised.append(hint.id)
    verdict.series = [s for s in ("train_loss", "val_loss", "train_acc", "val_acc", "lr") if s in seen]
    verdict.findings = raised
    verdict.missing_series = [s for s in want if s not in seen]
    if need and not any(h in raised for h in need):
        verdict.missing_need = need
    verdict.forbidden = [h for h in forbid if h in raised]
    verdict.right = not (verdict.missing_series or verdict.missing_need or verdict.forbidden)
    return verdict


def score(folder: Path, *, use_classes: bool = False) -> list[Verdict]:
    readings = load_readings(folder)
    split = halves(list(readings))
    return [judge(folder, name, readings[name], split[name], use_classes=use_classes) for name in sorted(readings)]


def summary(verdicts: Sequence[Verdict]) -> str:
    def part(label: str, vs: Sequence[Verdict]) -> str:
        return f"{label} {sum(v.right for v in vs)}/{len(vs)}"

    cal = [v for v in verdicts if v.half == "calibration"]
    held = [v for v in verdicts if v.half == "held-out"]
    return f"{part('all', verdicts)}, {part('calibration', cal)}, {part('held-out', held)}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("folder", type=Path, help="folder with the logs and readings.json")
    ap.add_argument("--json", action="store_true", help="one JSON object per log, then the totals")
    ap.add_argument("--classes", action="store_true", help="hand each reading's class count to the findings")
    args = ap.parse_args(argv)
    verdicts = score(args.folder, use_classes=args.classes)
    if args.json:
        print(json.dumps({"logs": [asdict(v) for v in verdicts], "summary": summary(verdicts)}, indent=1))
        return 0
    width = max((len(v.name) for v in verdicts), default=0)
    for v in verdicts:
        mark = "right" if v.right else "WRONG"
        runs = f" ({v.runs} runs)" if v.runs > 1 else ""
        print(f"{mark:5}  {'cal ' if v.half == 'calibration' else 'held'}  {v.name:<{width}}  "
              f"[{', '.join(v.findings)}]{runs}" + (f"  <- {v.why()}" if not v.right else ""))
    print(summary(verdicts))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
