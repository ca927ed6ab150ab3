"""Plain console logs: `key=value`, `key: value`, `key value`, Keras `Epoch 3/10 ... - loss: 0.31` lines.

The layout of the lines is learned from a sample (the order of the keys on a line), each layout is
turned into one regular expression, and pyarrow applies it to every line at once in C++. Lines that
fit no learned layout go through the per-line parser. Progress bars (`\\r`, `\\b`) keep their last state.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|NaN|NAN|inf|Inf|INF|infinity|Infinity)"
# `Epoch 3/10`, `Epoch [3/50]`, `step 120/1000`: the counter, whatever its total.
_FRAC = re.compile(r"(?<![\w])(epoch|step|iter|iteration|batch)\s*[:=]?\s*\[?\s*(\d+)\s*/\s*\d+\s*\]?", re.I)
# `key: value` / `key=value` (the key may have up to three words) or `key value` (one word).
_PAIR = re.compile(
    r"(?<![\w.\-/])"
    r"(?:([A-Za-z][\w./\-\[\]()]*(?: [A-Za-z][\w./\-]*){0,2})\s*[:=]\s*|([A-Za-z][\w./\-]*)[ \t]+)"
    r"(" + _NUM + r")(%?)(?![\w.]|,\d)"
)
_SAMPLE_LINES = 2000
_MAX_LAYOUTS = 4
_MIN_LAYOUT_SHARE = 0.02


@dataclass
class TextRecords:
    """Numbers found in a text log: per key, the line each came from and its value."""

    lines: dict[str, list[np.ndarray]] = field(default_factory=dict)
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)
    percent: set[str] = field(default_factory=set)
    n_lines: int = 0
    bulk_lines: int = 0

    def add(self, key: str, line: np.ndarray, value: np.ndarray) -> None:
        self.lines.setdefault(key, []).append(line)
        self.values.setdefault(key, []).append(value)

    def series(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for key in self.lines:
            line = np.concatenate(self.lines[key])
            value = np.concatenate(self.values[key])
            order = np.argsort(line, kind="stable")
            out[key] = (line[order], value[order])
        return out


def clean_text(text: str) -> str:
    """CRLF -> LF; a line rewritten with `\\r` (tqdm, Keras bars) keeps its last state; `\\b` erases."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            text = re.sub(r"[^\n]*\r(?=[^\r\n])", "", text)
            text = text.replace("\r", "")
    if "\b" in text:
        text = re.sub(r"[^\n\b]\b", "", text).replace("\b", "")
    return text


def _float(token: str) -> float:
    try:
        return float(token)
    except ValueError:
        return float("nan")


def parse_line(line: str) -> list[tuple[str, float, bool, str]]:
    """(key, value, had_percent, regex piece that matches this pair) for each number on a line."""
    items: list[tuple[int, str, float, bool, str]] = []
    taken: list[tuple[int, int]] = []
    for m in _FRAC.finditer(line):
        key = m.group(1).lower()
        piece = r"(?i:" + re.escape(m.group(1)) + r")\s*[:=]?\s*\[?\s*(?P<{g}>\d+)\s*/\s*\d+\s*\]?"
        items.append((m.start(), key, float(m.group(2)), False, piece))
        taken.append(m.span())
    for m in _PAIR.finditer(line):
        if any(a <= m.start() < b for a, b in taken):
            continue
        key = m.group(1) or m.group(2)
        sep = r"\s*[:=]\s*" if m.group(1) else r"[ \t]+"
        piece = re.escape(key) + sep + r"(?P<{g}>" + _NUM + r")%?"
        items.append((m.start(), key, _float(m.group(3)), bool(m.group(4)), piece))
    items.sort(key=lambda t: t[0])
    return [(k, v, p, piece) for _, k, v, p, piece in items]


def _layout_regex(pieces: list[str]) -> str:
    body = r".*?".join(piece.replace("{g}", f"g{i}") for i, piece in enumerate(pieces))
    # Nothing but non-digits may follow the last number, so a line with extra pairs does not fit.
    return body + r"\D*$"


def parse_text(text: str) -> TextRecords:
    """All numbers with keys in a (cleaned) text log, by line."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lines = text.split("\n")
    records = TextRecords(n_lines=len(lines))
    # Learn the layouts: the key sequences of the sample lines, most common first.
    step = max(1, len(lines) // _SAMPLE_LINES)
    sample = lines[:_SAMPLE_LINES] + lines[_SAMPLE_LINES::step][:_SAMPLE_LINES]
    signatures: Counter[tuple[str, ...]] = Counter()
    pieces_of: dict[tuple[str, ...], list[str]] = {}
    keys_of: dict[tuple[str, ...], list[str]] = {}
    percent_of: dict[tuple[str, ...], list[bool]] = {}
    parsed_sample = 0
    for line in sample:
        items = parse_line(line)
        if not items:
            continue
        parsed_sample += 1
        pieces = [piece for _, _, _, piece in items]
        sig = tuple(pieces)
        signatures[sig] += 1
        pieces_of[sig] = pieces
        keys_of[sig] = [k for k, _, _, _ in items]
        percent_of[sig] = [p for _, _, p, _ in items]
    layouts = [
        sig
        for sig, count in signatures.most_common(_MAX_LAYOUTS)
        if count >= max(2, _MIN_LAYOUT_SHARE * parsed_sample) and len(set(keys_of[sig])) == len(keys_of[sig])
    ]
    arr = pa.array(lines, type=pa.string())
    index = np.arange(len(lines))
    for sig in layouts:
        if len(arr) == 0:
            break
        pattern = _layout_regex(pieces_of[sig])
        try:
            extracted = pc.extract_regex(arr, pattern)
        except pa.ArrowInvalid:
            continue
        fits = extracted.is_valid().to_numpy(zero_copy_only=False)
        if not fits.any():
            continue
        fit_idx = index[fits]
        sub = extracted.filter(pa.array(fits))
        for i, key in enumerate(keys_of[sig]):
            col = sub.field(f"g{i}")
            try:
                values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            except pa.ArrowInvalid:  # nan/inf spellings pyarrow does not read
                values = np.array([_float(s) for s in col.to_pylist()], dtype=np.float64)
            records.add(key, fit_idx, values)
            if percent_of[sig][i]:
                records.percent.add(key)
        records.bulk_lines += int(fits.sum())
        keep = ~fits
        arr = arr.filter(pa.array(keep))
        index = index[keep]
    # The rest, one line at a time; only lines with a digit can hold a number.
    if len(arr):
        has_digit = pc.match_substring_regex(arr, r"\d").to_numpy(zero_copy_only=False)
        rest_idx = index[has_digit]
        rest = arr.filter(pa.array(has_digit)).to_pylist()
        found: dict[str, tuple[list[int], list[float]]] = {}
        for i, line in zip(rest_idx.tolist(), rest, strict=False):
            for key, value, pct, _ in parse_line(line):
                ls, vs = found.setdefault(key, ([], []))
                ls.append(i)
                vs.append(value)
                if pct:
                    records.percent.add(key)
        for key, (ls, vs) in found.items():
            records.add(key, np.asarray(ls, dtype=np.int64), np.asarray(vs, dtype=np.float64))
    return records
