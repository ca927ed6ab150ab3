"""Console tables: a header line of column names, then rows of numbers under it (Ultralytics YOLOv5/v8
training output). The names are not on the rows, so the `key value` reader cannot see them.

    Epoch    GPU_mem   box_loss   cls_loss   dfl_loss  Instances       Size
    3/50      2.61G      1.234      2.345      1.456         34        640: 100%|#####| 32/32 [00:10<00:00]
             Class     Images  Instances      Box(P          R      mAP50  mAP50-95): 100%|#####| 4/4
               all        100        250      0.512      0.456      0.478      0.301

A training row starts with `epoch/last`; its columns are training metrics (`train/box_loss`), and a
`k/n` position after the row (the progress bar) places it inside the epoch. An evaluation header starts
with `Class` and its `all` row holds the validation metrics (`metrics/mAP50`). Pure Python: such logs
have one row per epoch or per bar refresh, thousands of lines at most.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = r"[A-Za-z_][\w/@.%\-]*(?:\([\w.@%\-]*)?"
_HEAD = re.compile(r"^\s*(Epoch|epoch)\s+((?:" + _NAME + r"\s+)+" + _NAME + r")\s*:?\s*$")
_EVAL_HEAD = re.compile(r"^\s*Class\s+Images\s+(?:\w+\s+)*?(?:Box\(|P\s|mAP)", re.I)
_CELL = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?[GMK]?|nan"
_ROW = re.compile(r"^\s*(\d+)/(\d+)((?:\s+(?:" + _CELL + r"))+)\s*(?::\s*(.*))?$", re.I)
_BAR_POS = re.compile(r"\|\s*(\d+)/(\d+)\b")
_EVAL_ROW = re.compile(r"^\s*all((?:\s+(?:" + _CELL + r"))+)\s*$", re.I)
# Columns that are sizes and counts, not metrics.
_SKIP = {"gpu_mem", "instances", "labels", "size", "img_size", "targets", "images", "class"}


@dataclass
class ConsoleTable:
    """Values read from console tables, by column: line numbers and numbers; epochs (fractional when a
    bar position is given) by line; the lines used."""

    lines: dict[str, list[int]] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)
    epoch_lines: list[int] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)
    used: set[int] = field(default_factory=set)

    def add(self, name: str, line: int, value: float) -> None:
        self.lines.setdefault(name, []).append(line)
        self.values.setdefault(name, []).append(value)


def _names(header: str) -> list[str]:
    out = []
    for tok in header.split():
        tok = tok.rstrip(":").replace("Box(", "").replace("Mask(", "mask_").rstrip(")")
        out.append(tok)
    return out


def _number(cell: str) -> float:
    if cell[-1:] in "GMK" and cell[:-1]:
        cell = cell[:-1]
    try:
        return float(cell)
    except ValueError:
        return float("nan")


def read_console_tables(lines: list[str]) -> ConsoleTable | None:
    """The console tables in `lines` (already cleaned of `\\r` bars), or None when there are none."""
    table = ConsoleTable()
    train_cols: list[str] | None = None
    eval_cols: list[str] | None = None
    base: float | None = None
    for i, line in enumerate(lines):
        if not line or line.isspace():
            continue
        head = _HEAD.match(line)
        if head:
            train_cols = _names(head.group(2))
            table.used.add(i)
            continue
        if _EVAL_HEAD.match(line):
            eval_cols = _names(line.split(":")[0])[3:]  # after Class, Images, Instances/Labels
            table.used.add(i)
            continue
        if train_cols is not None:
            row = _ROW.match(line)
            if row and len(row.group(3).split()) == len(train_cols):
                epoch = float(row.group(1))
                if base is None:
                    base = 0.0 if epoch == 0 else 1.0
                pos = _BAR_POS.search(row.group(4) or "")
                done = epoch - base + (float(pos.group(1)) / float(pos.group(2)) if pos and float(pos.group(2)) > 0 else 1.0)
                for name, cell in zip(train_cols, row.group(3).split(), strict=True):
                    if name.lower() not in _SKIP:
                        table.add(f"train/{name}", i, _number(cell))
                table.epoch_lines.append(i)
                table.epochs.append(done)
                table.used.add(i)
                continue
        if eval_cols is not None:
            row = _EVAL_ROW.match(line)
            if row:
                cells = row.group(1).split()[2:]  # after the image and instance counts
                if len(cells) == len(eval_cols):
                    for name, cell in zip(eval_cols, cells, strict=True):
                        table.add(f"metrics/{name}", i, _number(cell))
                    table.used.add(i)
    return table if table.epoch_lines else None
