"""Plain console logs: `key=value`, `key: value`, `key value`, Keras `Epoch 3/10 ... - loss: 0.31` lines.

The layout of the lines is learned from a sample (the order of the keys on a line), each layout is
turned into one regular expression, and pyarrow applies it to every line at once in C++. Lines that
fit no learned layout go through the per-line parser. Progress bars (`\\r`, `\\b`) keep their last state.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from diagnose.io import arrownp

_SPLIT_WORDS = r"train|training|val|valid|validation|eval|evaluation|test|dev"
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|NaN|NAN|inf|Inf|INF|infinity|Infinity)"
# `Epoch 3/10`, `Epoch [3/50]`, `step 120/1000`: the counter, whatever its total.
_FRAC = re.compile(r"(?<![\w])(epoch|step|iter|iteration|batch)\s*[:=]?\s*\[?\s*(\d+)\s*/\s*(\d+)\s*\]?", re.I)
# `Epoch [3][50/500]` (mmcv), `Epoch(train) [3][50/500]` (mmengine): the epoch in brackets, its position
# inside the next ones.
_EPOCH_BRACKET = re.compile(
    r"(?<![\w])(epoch(?:\(\s*(?:" + _SPLIT_WORDS + r")\s*\))?)\s*[:=]?\s*\[\s*(\d+)\s*\](?=\s*\[)", re.I
)
# A position inside the epoch after the epoch counter: `[50/500]`, `[1280/60000 (2%)]`,
# `200/2983 batches`: read as `batch_pos` and `batch_total` (the fractional epoch is built from them).
_POS = re.compile(
    r"\[\s*(\d+)\s*/\s*(\d+)\s*(?:\(\s*\d+(?:\.\d*)?%\s*\)\s*)?\]"
    r"|(?<![\w/.])(\d+)\s*/\s*(\d+)\s+(?:batches|batch|iters|iterations|its|steps|samples|images)\b",
    re.I,
)
# darknet / YOLOv3 training lines: `123: 2.51, 2.74 avg loss, 0.001000 rate, 3.1 seconds, 64 images`
# (older builds print `avg` for `avg loss`).
_DARKNET = re.compile(
    r"^\s*(\d+):\s*(" + _NUM + r"),\s*(" + _NUM + r")\s+avg(?: loss)?,\s*(" + _NUM + r")\s+rate\b"
)
_DARKNET_PIECES = (
    r"^\s*(?P<{g}>\d+):", r":\s*(?P<{g}>" + _NUM + r"),", r",\s*(?P<{g}>" + _NUM + r")\s+avg",
    r"avg(?: loss)?,\s*(?P<{g}>" + _NUM + r")\s+rate",
)
_SPLIT = _SPLIT_WORDS
# `key: value` / `key=value` (the key may have up to three words), `'key': value` (a Python or JSON dict
# printed in a line: the Hugging Face Trainer's `{'loss': 0.51, ...}`), or `key value` (one word, or
# a split and a word: `val loss 2.46`).
_PAIR = re.compile(
    r"(?<![\w.\-/@])"
    r"(?:['\"](?P<quoted>[A-Za-z][\w./\-@ ]{0,80})['\"]\s*:\s*"
    r"|(?P<named>[A-Za-z][\w./\-@\[\]()]*(?: [A-Za-z][\w./\-@]*){0,2})\s*[:=]\s*"
    r"|(?P<word>(?:(?i:" + _SPLIT + r")[ \t]+)?[A-Za-z][\w./\-@]*)[ \t]+)"
    r"(?P<num>" + _NUM + r")(?P<pct>%?)(?![\w.]|,\d)"
)
_SPLIT_WORD = re.compile(r"(?<![A-Za-z])(" + _SPLIT + r")(?![A-Za-z])", re.I)
# Keys that take the split of the pair before them on the line (`Validation loss: 0.3, acc: 91%`).
_METRIC_WORD = re.compile(r"loss|acc|ppl|perplexity|top\d|f1|precision|recall|map|iou|err", re.I)
# A name that cannot be a metric: brackets that do not pair up (`Linear(in_features`, `GPU)`), a file
# name (`launch.py`).
_FILE_NAME = re.compile(r"\.(?:py|sh|c|cc|cpp|cu|h|txt|json|ya?ml|log|csv|pt|pth|bin|ckpt)$", re.I)


# Words that come before a number in prose (`No improvement for 3 epochs`, `saved to 2 files`): never
# a metric's name when they stand alone.
_PROSE = frozenset({
    "a", "an", "and", "or", "the", "for", "to", "in", "on", "at", "of", "by", "from", "with", "after", "before",
    "than", "over", "under", "about", "around", "since", "is", "was", "are", "were", "be", "has", "have", "had",
    "next", "just", "only", "all", "per", "each", "every", "up", "down", "into", "out", "no", "not",
})


def plausible_name(key: str) -> bool:
    """Whether `key` looks like a metric's name rather than code or a path caught beside a number."""
    if ("(" in key or ")" in key or "[" in key or "]" in key) and (
        key.count("(") != key.count(")") or key.count("[") != key.count("]")
    ):
        return False
    if key.lower() in _PROSE:
        return False
    return "." not in key or not _FILE_NAME.search(key)


_SAMPLE_LINES = 1000
# Logs longer than this are read in two halves side by side.
_PARALLEL_LINES = 200_000
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
    dropped_last: bool = False  # an unterminated last line that fit no layout (a run still writing)

    def add(self, key: str, line: np.ndarray, value: np.ndarray) -> None:
        self.lines.setdefault(key, []).append(line)
        self.values.setdefault(key, []).append(value)

    def series(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for key in self.lines:
            lines, values = self.lines[key], self.values[key]
            line = lines[0] if len(lines) == 1 else np.concatenate(lines)
            value = values[0] if len(values) == 1 else np.concatenate(values)
            if len(line) > 1 and bool((line[1:] < line[:-1]).any()):  # read by several layouts: in line order
                order = np.argsort(line, kind="stable")
                line, value = line[order], value[order]
            out[key] = (line, value)
        return out


_TENSOR = re.compile(r"\btensor\((" + _NUM + r")(?:,[^)\n]*)?\)")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>78]")


def clean_text(text: str) -> str:
    """ANSI colour and cursor codes out; CRLF (and `\\r\\r\\n`) -> LF; a line rewritten with `\\r` (tqdm,
    Keras bars) keeps its last state; `\\b` erases; a printed scalar tensor
    (`loss=tensor(0.5234, grad_fn=<NllLossBackward0>)`) becomes its number."""
    if "(" in text and "tensor(" in text:  # a one-character search is many times faster on a long log
        text = _TENSOR.sub(r"\1", text)
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if "\r" in text:
        text = re.sub(r"\r+\n", "\n", text)
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


# `LayerNorm((768,), eps=1e-05)`, `Linear(in_features=768, out_features=2304)`, `Namespace(lr=0.1)`,
# `dict(type='SGD', lr=0.1)` (an mmcv config): a class built with keyword arguments, as a module summary or
# a config prints it. Its arguments are
# settings, not metrics, unless one of them is named like a metric (`Metrics(loss=0.52, acc=0.81)`, a
# namedtuple printed each epoch).
_CALL = re.compile(r"(?<![\w.])(?:[A-Z]\w*|dict)\(")
_ARG_NAME = re.compile(r"(\w+)\s*=")


def _call_spans(line: str) -> list[tuple[int, int]]:
    """(start, end) of each `ClassName(...)` on the line whose arguments are settings, to its matching
    parenthesis (or the end of the line)."""
    spans = []
    for m in _CALL.finditer(line):
        depth, end = 0, len(line)
        for i in range(m.end() - 1, len(line)):
            depth += {"(": 1, ")": -1}.get(line[i], 0)
            if depth == 0:
                end = i + 1
                break
        if not any(_METRIC_WORD.search(name) for name in _ARG_NAME.findall(line, m.end(), end)):
            spans.append((m.end(), end))
    return spans


def parse_line(line: str) -> list[tuple[str, float, bool, str]]:
    """(key, value, had_percent, regex piece that matches this pair) for each number on a line."""
    items: list[tuple[int, str, float, bool, str]] = []
    taken: list[tuple[int, int]] = []
    d = _DARKNET.match(line)
    if d is not None:  # darknet: `123: 2.51, 2.74 avg loss, 0.001000 rate, ...`
        keys = ("iteration", "loss", "avg_loss", "lr")
        return [(k, float(d.group(i + 1)), False, _DARKNET_PIECES[i]) for i, k in enumerate(keys)]
    epoch_line = "poch" in line and _EPOCH_WORD.search(line) is not None
    # `[Eval][Epoch 3][Iter: 0/20]`, `Epoch(val) [3][12/12]`: the position counts the evaluation pass,
    # which comes after the epoch's training; the line belongs at the end of the epoch, not inside it.
    first_split = _SPLIT_WORD.search(line) if epoch_line else None
    eval_from = len(line) + 1  # where a position would count an evaluation pass: after its split word
    if first_split is not None and first_split.group(1).lower() not in ("train", "training"):
        eval_from = first_split.start()
    for m in _FRAC.finditer(line):
        key = m.group(1).lower()
        word = r"(?i:" + re.escape(m.group(1)) + r")\s*[:=]?\s*\[?\s*"
        of = float(m.group(3))
        if key != "epoch" and m.start() > eval_from:
            taken.append(m.span())
            continue
        if key != "epoch" and epoch_line and of > 0:
            # `[Epoch 3/10][Iter: 50/98]`, `epoch: 3/300, iter: 50/112`: a counter with its total on a line
            # that names the epoch counts inside the epoch (it starts again each epoch): a position in
            # the epoch, not a step of the run, so it never reads as a run starting again.
            items.append((m.start(), "batch_pos", float(m.group(2)), False, word + r"(?P<{g}>\d+)"))
            items.append((m.start() + 1, "batch_total", of, False, r"/\s*(?P<{g}>\d+)"))
        else:
            piece = word + r"(?P<{g}>\d+)\s*/\s*\d+\s*\]?"
            items.append((m.start(), key, float(m.group(2)), False, piece))
        taken.append(m.span())
    for m in _EPOCH_BRACKET.finditer(line) if "[" in line else ():
        if any(a <= m.start() < b for a, b in taken):
            continue
        piece = r"(?i:" + re.escape(m.group(1)) + r")\s*[:=]?\s*\[\s*(?P<{g}>\d+)\s*\]"
        items.append((m.start(), "epoch", float(m.group(2)), False, piece))
        taken.append(m.span())
    if "/" in line and (items or _EPOCH_WORD.search(line)):
        for m in _POS.finditer(line):
            if any(a <= m.start() < b for a, b in taken):
                continue
            if m.start() > eval_from:
                taken.append(m.span())
                continue
            pos, total = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
            if float(total) <= 0:
                continue
            items.append((m.start(), "batch_pos", float(pos), False, r"(?P<{g}>\d+)\s*/"))
            items.append((m.start() + 1, "batch_total", float(total), False, r"/\s*(?P<{g}>\d+)"))
            taken.append(m.span())
    pairs = []
    calls = _call_spans(line) if "(" in line else []
    for m in _PAIR.finditer(line):
        if any(a <= m.start() < b for a, b in taken) or any(a <= m.start("num") < b for a, b in calls):
            continue
        key = written = m.group("quoted") or m.group("named") or m.group("word")
        if not m.group("quoted") and key.count("(") > key.count(")"):
            # `Train(loss=0.52, ...)`, `Metrics(loss=0.52, ...)`: the name is what follows the parenthesis
            before, _, tail = key.rpartition("(")
            key = f"{before} {tail}" if _SPLIT_WORD.fullmatch(before) else tail
        if not plausible_name(key):
            continue
        if m.group("quoted"):
            q = line[m.start()]
            sep = re.escape(q) + r"\s*:\s*"
            head = re.escape(q + key)
        else:
            sep = r"\s*[:=]\s*" if m.group("named") else r"[ \t]+"
            head = re.escape(written)
        piece = head + sep + r"(?P<{g}>" + _NUM + r")%?"
        pairs.append((m.start(), m.end(), key, _float(m.group("num")), bool(m.group("pct")), piece))
    # A metric without a split of its own takes the split named just before it on the line:
    # `Validation loss: 0.3, acc: 91%`, `Test set: Average loss: 5.0`, `Train Loss 0.5 Acc 0.8 | Val Loss ...`.
    split = ""
    prev_end = 0
    if not _SPLIT_WORD.search(line):
        pairs_only = [(start, key, value, pct, piece) for start, _, key, value, pct, piece in pairs]
        items.extend(pairs_only)
        pairs = []
    for start, end, key, value, pct, piece in pairs:
        own = _SPLIT_WORD.search(key)
        gap = _SPLIT_WORD.findall(line[prev_end:start])
        if own:
            split = own.group(1)
        elif gap:
            split = gap[-1]
        if not own and split and _METRIC_WORD.search(key) and not _EPOCH_WORD.fullmatch(key):
            key = f"{split} {key}"
        items.append((start, key, value, pct, piece))
        prev_end = end
    items.sort(key=lambda t: t[0])
    return [(k, v, p, piece) for _, k, v, p, piece in items]


_EPOCH_WORD = re.compile(r"epoch", re.I)


def _layout_regex(pieces: list[str]) -> str:
    body = r".*?".join(piece.replace("{g}", f"g{i}") for i, piece in enumerate(pieces))
    # Nothing but non-digits may follow the last number, so a line with extra pairs does not fit.
    return body + r"\D*$"

_NUM_IN_TOKEN = re.compile(_NUM)


@dataclass(frozen=True)
class _TokenLayout:
    """A line layout as space-separated tokens: the regex a line must match, and where each value is."""

    pattern: str
    columns: tuple[tuple[str, int, int, int], ...]  # (key, token index, prefix length, suffix length)


def _token_layout(line: str, items: list[tuple[str, float, bool, str]]) -> _TokenLayout | None:
    """Map each (key, value) on a sample line to the space-separated token holding it.

    Tokens without digits must repeat exactly; tokens with digits vary (`[^ ]+`), and the ones that
    hold a value keep the text around the number (`loss=`, `,`, `%`, `/50]`) fixed.
    """
    tokens = line.split(" ")
    parts = []
    columns = []
    it = 0
    for ti, tok in enumerate(tokens):
        if not any(ch.isdigit() for ch in tok):
            # a literal, unless it is the nan/inf value of the next item
            spelled = tok.strip(",;%|()[]:").lower().lstrip("+-") in ("nan", "inf", "infinity")
            if not (spelled and it < len(items) and not math.isfinite(items[it][1])):
                parts.append(re.escape(tok))
                continue
        placed = False
        if it < len(items):
            key, value, _, _ = items[it]
            for m in _NUM_IN_TOKEN.finditer(tok):
                try:
                    v = float(m.group(0))
                except ValueError:
                    continue
                if v == value or (math.isnan(v) and math.isnan(value)) or (math.isinf(v) and v == value):
                    prefix, suffix = tok[: m.start()], tok[m.end() :]
                    if any(ch.isdigit() for ch in prefix):
                        return None  # a number before ours in the same token: too irregular
                    suffix_pat = re.escape(suffix) if not any(ch.isdigit() for ch in suffix) else r"[^ ]*"
                    if suffix_pat == r"[^ ]*" and suffix and not re.fullmatch(r"/\d+\]?[,:;]?", suffix):
                        return None
                    if suffix_pat == r"[^ ]*":  # `3/10`, `[1/50],`: the total is fixed within a run
                        suffix_pat = re.escape(suffix)
                    parts.append(re.escape(prefix) + r"[-+0-9.eEnaNifIFty]+" + suffix_pat)
                    columns.append((key, ti, len(prefix), len(suffix)))
                    it += 1
                    placed = True
                    break
        if not placed:
            parts.append(r"[^ ]+")
    if it != len(items) or len({c[0] for c in columns}) != len(columns):
        return None
    return _TokenLayout("^" + " ".join(parts) + "$", tuple(columns))


def _lines_array(text: str, utf8: bytes | None = None) -> Any:
    """The lines of `text` as a pyarrow string array, split at "\n" in C++ over the bytes, with no
    copy of them first (a million lines: 0.05 s, against 0.16 s through pyarrow's CSV reader). A
    final newline ends the last line; it does not start an empty one. `utf8`: `text` encoded, when
    the caller has it already."""
    import pyarrow as pa
    import pyarrow.compute as pc

    data = text.encode() if utf8 is None else utf8
    end = len(data) - 1 if data.endswith(b"\n") else len(data)  # the buffer is shared, not sliced (a copy)
    large = end >= 2**31 - 1
    one = pa.Array.from_buffers(
        pa.large_string() if large else pa.string(), 1,
        [None, pa.py_buffer(np.array([0, end], dtype=np.int64 if large else np.int32)), pa.py_buffer(data)],
    )
    return pc.split_pattern(one, "\n")[0].values


def _layout_columns(fit: Any, layout: _TokenLayout) -> dict[str, np.ndarray] | None:
    """Read the value columns of lines that all match `layout`: joined and parsed as space-separated CSV."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    n_tokens = layout.pattern.count(" ") + 1
    # One list of all the lines, joined by newlines (buffers built by hand: pa.array and pa.scalar
    # would import pandas, see io/arrownp.py).
    offsets = pa.py_buffer(np.array([0, len(fit)], dtype=np.int32))
    one_list = pa.Array.from_buffers(pa.list_(fit.type), 1, [None, offsets], children=[fit])
    newline = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(np.array([0, 1], dtype=np.int32)), pa.py_buffer(b"\n")])
    joined = pc.binary_join(one_list, newline)[0]
    names = [f"t{i}" for i in range(n_tokens)]
    wanted = {f"t{ti}": (key, pre, suf) for key, ti, pre, suf in layout.columns}
    types = {name: (pa.float64() if not (pre or suf) else pa.string()) for name, (_, pre, suf) in wanted.items()}
    try:
        table = pacsv.read_csv(
            pa.BufferReader(joined.as_buffer()),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=" ", quote_char=False, escape_char=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(include_columns=list(wanted), column_types=types),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if table.num_rows != len(fit):
        return None
    out = {}
    for name, (key, pre, suf) in wanted.items():
        col = table.column(name).combine_chunks()
        out[key] = _numbers(col, pre, suf) if pre or suf else arrownp.floats(col)
    return out


def _read_layout(arr: Any, layout: _TokenLayout) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(which lines fit `layout`, the value columns of those lines): a match-only regex finds them,
    then a split by spaces and a cast per column read them, all in pyarrow's C++."""
    import pyarrow.compute as pc

    matched = pc.match_substring_regex(arr, layout.pattern)
    fits = arrownp.to_numpy(matched)
    if not fits.any():
        return fits, {key: np.empty(0) for key, _, _, _ in layout.columns}
    fit_arr = arr if bool(fits.all()) else arr.filter(matched)
    columns = _layout_columns(fit_arr, layout)
    if columns is None:
        tokens = pc.split_pattern(fit_arr, " ")
        columns = {key: _numbers(pc.list_element(tokens, ti), pre, suf) for key, ti, pre, suf in layout.columns}
    return fits, columns


def _read_layout_in_parts(arr: Any, layout: _TokenLayout) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`_read_layout` on the two halves of a long log at once: pyarrow's kernels release the GIL, so two
    threads use two cores (a million lines: 0.6 s -> 0.35 s on two cores)."""
    if len(arr) < _PARALLEL_LINES or (os.cpu_count() or 1) < 2:
        return _read_layout(arr, layout)
    from concurrent.futures import ThreadPoolExecutor

    half = len(arr) // 2
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda part: _read_layout(part, layout), [arr.slice(0, half), arr.slice(half)])
    fits = np.concatenate([first[0], second[0]])
    return fits, {key: np.concatenate([first[1][key], second[1][key]]) for key in first[1]}


def _numbers(col: Any, prefix: int = 0, suffix: int = 0) -> np.ndarray:
    """A string column as float64, `prefix` and `suffix` characters cut off each cell first; cells
    pyarrow does not read (nan/inf spellings) go through float() one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if prefix or suffix:
        col = pc.utf8_slice_codeunits(col, prefix, -suffix if suffix else 1 << 30)
    try:
        return arrownp.floats(pc.cast(col, pa.float64()))
    except pa.ArrowInvalid:
        return np.array([_float(x) for x in col.to_pylist()], dtype=np.float64)


def _add_fits(records: TextRecords, keys: list[str], percent: list[bool], fit_idx: np.ndarray,
              columns: list[np.ndarray]) -> None:
    """Record the values read from the lines `fit_idx` of one layout (one column per key)."""
    for key, pct, values in zip(keys, percent, columns, strict=True):
        records.add(key, fit_idx, values)
        if pct:
            records.percent.add(key)
    records.bulk_lines += len(fit_idx)


def parse_text(text: str, utf8: bytes | None = None) -> TextRecords:
    """All numbers with keys in a (cleaned) text log, by line. `utf8`: `text` encoded, if at hand."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _lines_array(text, utf8)
    n = len(arr)
    records = TextRecords(n_lines=n)
    # Learn the layouts from a sample (the start, and lines spread over the rest): the key sequences
    # of the lines, most common first.
    spread = np.unique(np.linspace(min(n, _SAMPLE_LINES), max(n - 1, 0), num=min(_SAMPLE_LINES, max(n - _SAMPLE_LINES, 0))).astype(np.int64))
    sample = arr.slice(0, _SAMPLE_LINES).to_pylist() + (arr.take(arrownp.from_numpy(spread)).to_pylist() if len(spread) else [])
    signatures: Counter[tuple[str, ...]] = Counter()
    pieces_of: dict[tuple[str, ...], list[str]] = {}
    keys_of: dict[tuple[str, ...], list[str]] = {}
    percent_of: dict[tuple[str, ...], list[bool]] = {}
    token_of: dict[tuple[str, ...], _TokenLayout | None] = {}
    parsed_sample = 0

    def _learn(line: str) -> None:
        nonlocal parsed_sample
        items = parse_line(line)
        if not items:
            return
        parsed_sample += 1
        pieces = [piece for _, _, _, piece in items]
        sig = tuple(pieces)
        signatures[sig] += 1
        if sig not in token_of:
            token_of[sig] = layout = _token_layout(line, items)
            if layout is not None and len(known) < 16:
                known.append((re.compile(layout.pattern), sig))
        pieces_of[sig] = pieces
        keys_of[sig] = [k for k, _, _, _ in items]
        percent_of[sig] = [p for _, _, p, _ in items]

    # A sample line that fits a layout already learned counts for it without being parsed again (the
    # same token pattern decides which lines a layout reads below).
    known: list[tuple[re.Pattern[str], tuple[str, ...]]] = []
    for line in sample:
        for rx, seen in known:
            if rx.match(line):
                signatures[seen] += 1
                parsed_sample += 1
                break
        else:
            _learn(line)
    layouts = [
        sig
        for sig, count in signatures.most_common(_MAX_LAYOUTS)
        if count >= max(2, _MIN_LAYOUT_SHARE * parsed_sample) and len(set(keys_of[sig])) == len(keys_of[sig])
    ]
    index = np.arange(n)
    for sig in layouts:
        if len(arr) == 0:
            break
        layout = token_of.get(sig)
        if layout is not None:
            # Fast path: a match-only regex finds the lines of this layout, then a split by spaces
            # and a cast per column read them, all in pyarrow's C++.
            fits, columns = _read_layout_in_parts(arr, layout)
            if fits.any():
                fit_idx = index if bool(fits.all()) else index[fits]
                keys = [key for key, _, _, _ in layout.columns]
                _add_fits(records, keys, percent_of[sig], fit_idx, [columns[key] for key in keys])
                keep = ~fits
                arr = arr.filter(arrownp.from_numpy(keep))
                index = index[keep]
            if len(arr) == 0:
                break
        pattern = _layout_regex(pieces_of[sig])
        try:
            extracted = pc.extract_regex(arr, pattern)
        except pa.ArrowInvalid:
            continue
        fits = arrownp.valid(extracted)
        if not fits.any():
            continue
        sub = extracted.filter(arrownp.from_numpy(fits))
        groups = [_numbers(sub.field(f"g{i}")) for i in range(len(keys_of[sig]))]
        _add_fits(records, keys_of[sig], percent_of[sig], index[fits], groups)
        keep = ~fits
        arr = arr.filter(arrownp.from_numpy(keep))
        index = index[keep]
    # The rest, one line at a time; only lines with a digit can hold a number.
    if len(arr):
        has_digit = arrownp.to_numpy(pc.match_substring_regex(arr, r"\d"))
        rest_idx = index[has_digit]
        rest = arr.filter(arrownp.from_numpy(has_digit)).to_pylist()
        found: dict[str, tuple[list[int], list[float]]] = {}
        if not text.endswith("\n") and layouts and len(rest_idx) and rest_idx[-1] == n - 1:
            # The last line has no newline and does not fit the layout of the others: cut short.
            rest_idx, rest = rest_idx[:-1], rest[:-1]
            records.dropped_last = True
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
