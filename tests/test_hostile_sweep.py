"""A hostile sweep of the whole command surface: every command crossed with every kind of hostile input
it can meet (broken, special and unreadable files, wrong encodings, hostile settings, hostile class and
file names, options out of range, outputs aimed at inputs, pipes and folders).

Each case runs `python -m diagnose ...` in a subprocess, from a folder of its own, with stdin closed
and a 60 s limit, and must hold every guarantee of docs/guarantees.md at once: no hang, an exit code in
{0, 1, 2, 3, 4}, no traceback, one `Error:` line for a failed run, every earlier file byte-identical
(or kept as `.bak` where the command documents replacing it), no planted code run, no control
characters from the input on the terminal, no raw markup in Markdown, no hidden temporaries left.

With DIAGNOSE_SWEEP_RECORD=docs/hostile-sweep.md set, the run also writes its record there.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example"
MODEL, DATA, ARCH = EXAMPLE / "model.pt", EXAMPLE / "data", f"{EXAMPLE / 'arch.py'}:DigitsMLP"
LOG = ROOT / "fixtures" / "logs" / "val_loss_only.csv"
EXIT_CODES = {0, 1, 2, 3, 4}
# Names that would recolour the terminal, retitle its window, reverse the line, or inject markup.
HOSTILE_NAMES = ["red\x1b[31mX", "title\x1b]0;pwned\x07", "rtl\u202eabc", "a|b", "<script>alert(1)</script>",
                 "<img src=x onerror=alert(1)>", "tick`code`", "bell\x07", "nul\x01x", "del\x7fx"]
# C0 and C1 controls (bar newline and tab), and the bidirectional overrides and isolates.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
LEFTOVER = re.compile(r"^\..*\.(tmp|new-)")


class Skip(Exception):
    """The case cannot be provoked here (the reason says why)."""


@dataclass
class Case:
    id: str
    build: Callable[[Path, Base], list[object]]
    markdown: bool = False
    replaces: bool = False  # the command documents replacing a person's file (keeping a .bak)
    own: str | None = None  # a folder an earlier run of diagnose wrote, which the command documents replacing
    xfail: str | None = None


@dataclass
class Outcome:
    case: Case
    argv: list[str] = field(default_factory=list)
    rc: int | None = None
    first_line: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None


@dataclass
class Base:
    """Real inputs built once: a gaps workdir, a sheet drawn from it, a training log."""

    root: Path
    wd: Path
    sheet: Path
    marker: Path


# -- hostile files ---------------------------------------------------------------------------------

def _text_rows(slot: str) -> tuple[str, list[str]]:
    rng = np.random.default_rng(0)
    if slot == "csv":
        header = ",".join([*(f"f{i}" for i in range(8)), "label"])
        return header, [",".join(f"{v:.3f}" for v in rng.normal(size=8)) + f",{i % 3}" for i in range(60)]
    if slot == "log":
        return "epoch,val_loss", [f"{i},{1.0 / (i + 1):.4f}" for i in range(1, 40)]
    if slot == "meta":
        return "index,brightness", [f"{i},{v:.3f}" for i, v in enumerate(rng.normal(size=250))]
    raise AssertionError(slot)


def _valid(slot: str, base: Base) -> bytes:
    if slot == "model":
        return MODEL.read_bytes()
    if slot == "split":
        return (DATA / "dev.pt").read_bytes()
    if slot == "parquet":
        return (base.wd / "predictions" / "dev.parquet").read_bytes()
    if slot == "sheet":
        return base.sheet.read_bytes()
    header, rows = _text_rows(slot)
    return ("\n".join([header, *rows]) + "\n").encode()


def _latin1_late(slot: str, base: Base) -> bytes:
    """UTF-8 (with a few accents) for more than 64 KiB, then one Latin-1 byte."""
    text = _valid(slot, base).decode("utf-8-sig")
    header, *rows = text.splitlines()
    body = "\n".join(rows)
    out = header + "\n"
    while len(out.encode()) < 70_000:
        out += body + "\n"
    return out.encode() + rows[-1].encode() + b"\xe9\n"


def _cp1252(slot: str, base: Base) -> bytes:
    data = _valid(slot, base)
    head, _, tail = data.partition(b"\n")
    return head + b"\n\x81\x93quoted\x94" + tail


TEXT_SLOTS = {"csv", "log", "meta", "sheet"}


def _plant(kind: str, path: Path, slot: str, base: Base) -> Path:
    """Make `path` the hostile `kind` of file; return the path to pass."""
    if kind == "missing":
        return path
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        data = _valid(slot, base)
        path.write_bytes(data[: len(data) // 2])
    elif kind == "gzip":
        path.write_bytes(gzip.compress(_valid(slot, base)))
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling":
        os.symlink(path.parent / "gone", path)
    elif kind == "loop":
        os.symlink(path.parent / "loop-b", path)
        os.symlink(path, path.parent / "loop-b")
    elif kind == "longname":
        return path.with_name("n" * 300 + path.suffix)
    elif kind == "unreadable":
        if os.geteuid() == 0:
            raise Skip("runs as root, who reads any file: a permission error cannot be provoked")
        path.write_bytes(_valid(slot, base))
        path.chmod(0)
    elif kind == "utf16":
        path.write_bytes(_valid(slot, base).decode("utf-8-sig").encode("utf-16"))
    elif kind == "latin1-late":
        path.write_bytes(_latin1_late(slot, base))
    elif kind == "cp1252":
        path.write_bytes(_cp1252(slot, base))
    elif kind == "esc-name":
        path = path.with_name("run\x1b[31m\x1b]0;pwned\x07\u202e" + path.name)
        path.write_bytes(_valid(slot, base))
    else:
        raise AssertionError(kind)
    return path


FILE_KINDS = ["missing", "folder", "empty", "random", "truncated", "fifo", "dangling", "loop", "longname",
              "unreadable", "esc-name"]
TEXT_KINDS = ["gzip", "utf16", "latin1-late", "cp1252"]


def _data_copy(t: Path, name: str = "data") -> Path:
    folder = t / name
    shutil.copytree(DATA, folder)
    return folder


def _csv_data(t: Path) -> Path:
    folder = t / "csvdata"
    folder.mkdir()
    for split in ("train", "dev"):
        (folder / f"{split}.csv").write_bytes(_valid("csv", None))  # type: ignore[arg-type]
    return folder


def _wd_copy(t: Path, base: Base, name: str = "wd") -> Path:
    folder = t / name
    shutil.copytree(base.wd, folder)
    return folder


RUN = ["--max-items", "20"]
LR = ["--steps", "10", "--repeats", "1", "--batch-size", "16"]
SANITY = ["--only", "init_loss", "--items", "20"]

# slot name -> (kind of content, builder from (t, base, hostile-file planter) to argv)
Planter = Callable[[Path, str], Path]


def _slots() -> dict[str, tuple[str, Callable[[Path, Base, Planter], list[object]]]]:
    return {
        "gaps-model": ("model", lambda t, b, p: ["gaps", p(t / "model.pt", "model"), DATA, "--arch", ARCH,
                                                 "--workdir", t / "wd", *RUN]),
        "gaps-split": ("split", lambda t, b, p: [
            "gaps", MODEL, (_unlink(p, _data_copy(t) / "dev.pt"), t / "data")[1], "--workdir", t / "wd", *RUN]),
        "data-csv": ("csv", lambda t, b, p: ["data", (_unlink(p, _csv_data(t) / "dev.csv"), t / "csvdata")[1]]),
        "lr-find-split": ("split", lambda t, b, p: [
            "lr-find", (_unlink(p, _data_copy(t) / "train.pt"), t / "data")[1], "--arch", ARCH, *LR, "--no-plot"]),
        "tally-sheet": ("sheet", lambda t, b, p: ["tally", p(t / "sheet.csv", "sheet"), "--workdir", b.wd]),
        "curves-log": ("log", lambda t, b, p: ["curves", p(t / "train.csv", "log"), "--out", t / "c.png"]),
        "compare-predictions": ("parquet", lambda t, b, p: [
            "compare", b.wd, (_unlink(p, _wd_copy(t, b) / "predictions" / "dev.parquet"), t / "wd")[1]]),
        "report-log": ("log", lambda t, b, p: ["report", "--workdir", b.wd, "--log", p(t / "train.csv", "log"),
                                               "--out", t / "r.html"]),
        "report-sheet": ("sheet", lambda t, b, p: ["report", "--workdir", b.wd, "--sheet", p(t / "sheet.csv", "sheet"),
                                                   "--out", t / "r.html"]),
        "cohorts-meta": ("meta", lambda t, b, p: ["cohorts", b.wd, "--meta", p(t / "meta.csv", "meta"),
                                                  "--source", "meta"]),
    }


def _unlink(planter: Planter, path: Path) -> Path:
    """Replace a real file inside a copied folder by a hostile one."""
    slot = {".pt": "split", ".parquet": "parquet", ".csv": "csv"}[path.suffix]
    path.unlink()
    return planter(path, slot)


def _file_cases() -> list[Case]:
    cases = []
    for slot_name, (slot, build) in _slots().items():
        kinds = FILE_KINDS + (TEXT_KINDS if slot in TEXT_SLOTS else [])
        for kind in kinds:
            def make(t: Path, base: Base, build=build, kind=kind) -> list[object]:
                return build(t, base, lambda path, s: _plant(kind, path, s, base))
            cases.append(Case(f"{slot_name}/{kind}", make))
    return cases


# -- hostile settings ------------------------------------------------------------------------------

NETDEF = "import os\nopen({marker!r}, 'a').write(os.getcwd() + '\\n')\nclass Net:\n    pass\n"


def _settings(kind: str, t: Path, base: Base) -> Path:
    """A copy of the example data whose settings (beside it or above it) are hostile."""
    above = t / "downloaded"
    above.mkdir()
    data = _data_copy(above)
    toml = data / "diagnose.toml"
    (data / "netdef.py").write_text(NETDEF.format(marker=str(base.marker)))
    (above / "netdef.py").write_text(NETDEF.format(marker=str(base.marker)))
    if kind == "unknown-key":
        toml.write_text("humanerror = 0.01\n")
    elif kind == "wrong-type":
        toml.write_text('human_error = "low"\n')
    elif kind == "out-of-range":
        toml.write_text("image_size = 200000\n")
    elif kind == "deep-nesting":
        toml.write_text("mean = " + "[" * 2000 + "]" * 2000 + "\n")
    elif kind == "arch-beside-data":
        toml.write_text('arch = "netdef.py:Net"\n')
    elif kind == "arch-in-pyproject-above":
        toml.unlink()
        (above / "pyproject.toml").write_text('[tool.diagnose]\narch = "netdef.py:Net"\n')
    elif kind == "tool-is-a-string":
        (above / "pyproject.toml").write_text('tool = "diagnose"\n')
    elif kind == "broken-pyproject-above":
        (above / "pyproject.toml").write_text("[project\nname = \n")
    elif kind == "control-chars":
        toml.write_text('classes = ["a\\u001b[31mb", "c"]\n')
    else:
        raise AssertionError(kind)
    return data


SETTINGS_KINDS = ["unknown-key", "wrong-type", "out-of-range", "deep-nesting", "arch-beside-data",
                  "arch-in-pyproject-above", "tool-is-a-string", "broken-pyproject-above", "control-chars"]
SETTINGS_COMMANDS: dict[str, Callable[[Path], list[object]]] = {
    "gaps": lambda d: ["gaps", MODEL, d, "--workdir", "wd", *RUN],
    "errors": lambda d: ["errors", MODEL, d, "--max-items", "20", "--sample", "5", "--no-images"],
    "data": lambda d: ["data", d],
    "lr-find": lambda d: ["lr-find", d, *LR, "--no-plot"],
}


def _settings_cases() -> list[Case]:
    return [Case(f"{cmd}-settings/{kind}", lambda t, b, kind=kind, argv=argv: argv(_settings(kind, t, b)))
            for cmd, argv in SETTINGS_COMMANDS.items() for kind in SETTINGS_KINDS]


# -- hostile class names ---------------------------------------------------------------------------

def _hostile_data(t: Path) -> Path:
    data = _data_copy(t)
    (data / "classes.txt").write_text("\n".join(HOSTILE_NAMES) + "\n")
    return data


def _hostile_wd(t: Path, base: Base) -> Path:
    wd = _wd_copy(t, base, "hwd")
    manifest = json.loads((wd / "manifest.json").read_text())
    manifest["classes"] = [*HOSTILE_NAMES[:-1], "tab\tcr\rnl\nend"]
    (wd / "manifest.json").write_text(json.dumps(manifest))
    return wd


def _hostile_sheet(t: Path, base: Base) -> Path:
    text = base.sheet.read_text(encoding="utf-8-sig")
    header, *rows = text.splitlines()
    header = header.replace("blurry", "blur\x1b[31my").replace("other", "<script>x</script>|y")
    rows = [r[: -len(",,,,,")] + ",x,,,\x1b]0;pwned\x07," if r.endswith(",,,,,") else r for r in rows]
    path = t / "sheet.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _name_cases() -> list[Case]:
    def c(name: str, build: Callable[[Path, Base], list[object]], markdown: bool = False) -> Case:
        return Case(f"class-names/{name}", build, markdown=markdown)

    return [
        c("data", lambda t, b: ["data", _hostile_data(t)]),
        c("data-markdown", lambda t, b: ["data", _hostile_data(t), "--markdown"], True),
        c("gaps-per-class", lambda t, b: ["gaps", MODEL, _hostile_data(t), "--per-class", "--workdir", "wd", *RUN]),
        c("gaps-markdown", lambda t, b: ["gaps", MODEL, _hostile_data(t), "--per-class", "--markdown",
                                         "--workdir", "wd", *RUN], True),
        c("errors", lambda t, b: ["errors", MODEL, _hostile_data(t), "--max-items", "20", "--sample", "5"]),
        c("errors-workdir", lambda t, b: ["errors", "--workdir", _hostile_wd(t, b), "--sample", "5"]),
        c("compare", lambda t, b: ["compare", b.wd, _hostile_wd(t, b)]),
        c("compare-markdown", lambda t, b: ["compare", b.wd, _hostile_wd(t, b), "--markdown"], True),
        c("compare-json", lambda t, b: ["compare", b.wd, _hostile_wd(t, b), "--json"]),
        c("report", lambda t, b: ["report", "--workdir", _hostile_wd(t, b), "--out", "r.html"]),
        c("report-baseline", lambda t, b: ["report", "--workdir", b.wd, "--baseline", _hostile_wd(t, b),
                                           "--out", "r.html"]),
        c("cohorts", lambda t, b: ["cohorts", _hostile_wd(t, b)]),
        c("tally-columns", lambda t, b: ["tally", _hostile_sheet(t, b), "--workdir", b.wd]),
        c("tally-markdown", lambda t, b: ["tally", _hostile_sheet(t, b), "--workdir", b.wd, "--markdown"], True),
        c("report-sheet", lambda t, b: ["report", "--workdir", b.wd, "--sheet", _hostile_sheet(t, b),
                                        "--out", "r.html"]),
    ]


# -- options out of range --------------------------------------------------------------------------

OPTIONS: dict[str, Callable[[str], list[object]]] = {
    "gaps--human-error": lambda v: ["gaps", MODEL, DATA, "--human-error", v, "--workdir", "gwd", *RUN],
    "gaps--batch-size": lambda v: ["gaps", MODEL, DATA, "--batch-size", v, "--workdir", "gwd", *RUN],
    "gaps--max-items": lambda v: ["gaps", MODEL, DATA, "--max-items", v, "--workdir", "gwd"],
    "errors--sample": lambda v: ["errors", MODEL, DATA, "--sample", v, "--max-items", "20", "--no-images"],
    "tally--error": lambda v: ["tally", "sheet.csv", "--error", v],
    "curves--smooth": lambda v: ["curves", LOG, "--smooth", v, "--out", "c.png"],
    "curves--classes": lambda v: ["curves", LOG, "--classes", v, "--out", "c.png"],
    "lr-find--start": lambda v: ["lr-find", DATA, "--arch", ARCH, "--start", v, *LR, "--no-plot"],
    "lr-find--end": lambda v: ["lr-find", DATA, "--arch", ARCH, "--end", v, *LR, "--no-plot"],
    "lr-find--weight-decay": lambda v: ["lr-find", DATA, "--arch", ARCH, "--weight-decay", v, *LR, "--no-plot"],
    "compare--human-error": lambda v: ["compare", "wd", "wd", "--human-error", v],
    "data--error-rate": lambda v: ["data", DATA, "--error-rate", v],
    "sanity--lr": lambda v: ["sanity", MODEL, DATA, "--lr", v, "--only", "overfit_batch", "--steps", "5"],
    "report--smooth": lambda v: ["report", "--workdir", "wd", "--smooth", v, "--log", LOG, "--out", "r.html"],
    "cohorts--min-support": lambda v: ["cohorts", "wd", "--min-support", v],
}
VALUES = {"negative": "-1", "zero": "0", "nan": "nan", "inf": "inf"}


def _option_cases() -> list[Case]:
    def make(t: Path, base: Base, argv: Callable[[str], list[object]], value: str) -> list[object]:
        shutil.copytree(base.wd, t / "wd")
        shutil.copy(base.sheet, t / "sheet.csv")
        return argv(value)

    return [Case(f"{name}/{label}", lambda t, b, argv=argv, v=v: make(t, b, argv, v))
            for name, argv in OPTIONS.items() for label, v in VALUES.items()]


# -- outputs aimed at inputs, pipes and folders ----------------------------------------------------

def _out_cases() -> list[Case]:
    def at_input(t: Path, base: Base, cmd: str) -> list[object]:
        log = t / "train.csv"
        shutil.copy(LOG, log)
        shutil.copy(base.sheet, t / "sheet.csv")
        return {
            "curves": ["curves", log, "--out", log],
            "errors": ["errors", "--workdir", base.wd, "--out", t / "sheet.csv", "--sample", "5"],
            "lr-find": ["lr-find", _data_copy(t), "--arch", ARCH, *LR, "--out", t / "data" / "dev.pt"],
            "report": ["report", "--workdir", base.wd, "--log", log, "--out", log],
            "errors-model": ["errors", shutil.copy(MODEL, t / "model.pt"), DATA, "--max-items", "20",
                             "--out", t / "model.pt", "--no-images"],
        }[cmd]

    def special(t: Path, base: Base, cmd: str, kind: str) -> list[object]:
        out = t / ("out.png" if cmd in ("curves", "lr-find") else "out.html" if cmd == "report" else "out.csv")
        if kind == "fifo":
            os.mkfifo(out)
        else:
            out.mkdir()
            (out / "keep.txt").write_text("a person's file inside\n")
        return {
            "curves": ["curves", LOG, "--out", out],
            "errors": ["errors", "--workdir", base.wd, "--out", out, "--sample", "5"],
            "lr-find": ["lr-find", DATA, "--arch", ARCH, *LR, "--out", out],
            "report": ["report", "--workdir", base.wd, "--out", out],
        }[cmd]

    def person(t: Path, base: Base, cmd: str) -> list[object]:
        """An output name already taken by a file diagnose did not write."""
        (t / "c.png").write_bytes(b"a person's picture")
        (t / "r.html").write_text("<p>a person's page</p>")
        (t / "sheet.csv").write_text("my,own\nsheet,here\n")
        return {
            "curves": ["curves", LOG, "--out", "c.png"],
            "report": ["report", "--workdir", base.wd, "--out", "r.html"],
            "report-force": ["report", "--workdir", base.wd, "--out", "r.html", "--force"],
            "errors": ["errors", "--workdir", base.wd, "--out", "sheet.csv", "--sample", "5"],
            "errors-force": ["errors", "--workdir", base.wd, "--out", "sheet.csv", "--sample", "5", "--force"],
            "lr-find": ["lr-find", DATA, "--arch", ARCH, *LR, "--out", "c.png"],
        }[cmd]

    def rerun(t: Path, base: Base, cmd: str) -> list[object]:
        """The workdir of an earlier run, and its figure, met again."""
        shutil.copytree(base.wd, t / "wd")
        return {
            "gaps": ["gaps", MODEL, DATA, "--workdir", "wd", *RUN, "--seed", "1"],
            "errors-twice": ["errors", "--workdir", "wd", "--out", "wd/manifest.json", "--sample", "5"],
        }[cmd]

    cases = [Case(f"out-at-input/{c}", lambda t, b, c=c: at_input(t, b, c))
             for c in ("curves", "errors", "lr-find", "report", "errors-model")]
    cases += [Case(f"out-{k}/{c}", lambda t, b, c=c, k=k: special(t, b, c, k))
              for c in ("curves", "errors", "lr-find", "report") for k in ("fifo", "folder")]
    cases += [Case(f"out-persons-file/{c}", lambda t, b, c=c: person(t, b, c), replaces=c.endswith("force") or c in ("curves", "lr-find"))
              for c in ("curves", "report", "report-force", "errors", "errors-force", "lr-find")]
    cases += [Case(f"rerun/{c}", lambda t, b, c=c: rerun(t, b, c), own="wd" if c == "gaps" else None)
              for c in ("gaps", "errors-twice")]
    return cases


CASES = _file_cases() + _settings_cases() + _name_cases() + _option_cases() + _out_cases()
# Known failures, each with its reason: a case here that passes fails the sweep. None are known.
XFAIL: dict[str, str] = {}
for _case in CASES:
    _case.xfail = XFAIL.get(_case.id)


# -- running and judging ---------------------------------------------------------------------------

def _snapshot(root: Path) -> dict[Path, bytes]:
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_size < 50_000_000 and st.st_mode & 0o444:
                found[path] = path.read_bytes()
    return found


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="120", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")
    return env


def _judge(outcome: Outcome, t: Path, before: dict[Path, bytes], out: str, err: str, base: Base) -> list[str]:
    problems = []
    rc = outcome.rc
    if rc is None:
        return ["hung past 60 s"]
    if rc not in EXIT_CODES:
        problems.append(f"exit code {rc}")
    if "Traceback" in err:
        problems.append("traceback on stderr")
    if rc in (1, 2):
        errors = [line for line in err.splitlines() if line.startswith("Error: ")]
        if len(errors) != 1:
            problems.append(f"{len(errors)} `Error:` lines on a failed run")
        if any(line.startswith("Error: unexpected ") for line in errors):
            problems.append("an unexpected exception, caught only by the last resort")
    for name, text in (("stdout", out), ("stderr", err)):
        bad = sorted(set(CONTROL.findall(text)))
        if bad:
            problems.append(f"control characters on {name}: {bad!r}")
    if outcome.case.markdown:
        for raw in re.findall(r"(?<!\\)(<script|<img|a\|b)", out):
            problems.append(f"raw {raw!r} in Markdown")
    after = _snapshot(t)
    for path, data in before.items():
        if after.get(path) == data or (outcome.case.own and path.is_relative_to(t / outcome.case.own)):
            continue
        backups = [p for p in after if p.parent == path.parent and p.name.startswith(path.name) and ".bak" in p.name]
        if not (outcome.case.replaces and any(after[p] == data for p in backups)):
            problems.append(f"{path.relative_to(t)} changed or lost")
    for _folder, dirs, files in os.walk(t):
        for name in dirs + files:
            if LEFTOVER.match(name):
                problems.append(f"leftover temporary {name}")
    if base.marker.exists() and str(t) in base.marker.read_text().splitlines():
        problems.append("planted code ran")
    return problems


def _run(case: Case, base: Base, index: int) -> Outcome:
    outcome = Outcome(case)
    t = base.root / "cases" / f"{index:03d}"
    t.mkdir(parents=True)
    (t / "notes.txt").write_text("a person's notes, beside the outputs\n")
    try:
        argv = [str(a) for a in case.build(t, base)]
    except Skip as reason:
        outcome.skipped = str(reason)
        return outcome
    outcome.argv = argv
    before = _snapshot(t)
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "diagnose", *argv], cwd=t, env=_env(), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60)
        outcome.rc = done.returncode
        out, err = done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        out = err = ""
    outcome.seconds = time.monotonic() - start
    outcome.first_line = err.splitlines()[0] if err.strip() else ""
    outcome.problems = _judge(outcome, t, before, out, err, base)
    return outcome


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = tmp_path_factory.mktemp("sweep")
    env = _env()
    seed = root / "seed"
    seed.mkdir()
    for argv in (["gaps", MODEL, DATA, "--workdir", "wd", *RUN],
                 ["errors", "--workdir", "wd", "--out", "sheet.csv", "--sample", "5", "--no-images"]):
        subprocess.run([sys.executable, "-m", "diagnose", *map(str, argv)], cwd=seed, env=env, check=True,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    return Base(root, seed / "wd", seed / "sheet.csv", root / "PLANTED_CODE_RAN")


def _shown(text: str) -> str:
    """A cell of the record: control characters spelled out, pipes escaped."""
    text = CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}",
                       text)
    return text.replace("|", "\\|")[:160]


RECORD_HEAD = """# Hostile sweep

`tests/test_hostile_sweep.py` crosses every command with every kind of hostile input it can meet and
checks, for each run, all the promises of [guarantees.md](guarantees.md) at once.

## How it is built

The cases come from tables, not from a list of remembered failures:

- **Files**: each input slot (a model, a split inside DATA, a CSV split, a sheet, a training log, saved
  predictions, a metadata table) crossed with each kind of hostile file: missing, a folder, empty,
  random bytes, truncated, a named pipe, a dangling symlink, a symlink loop, a name over 255 bytes,
  an unreadable file, a file name with ESC sequences and a bidirectional override; text slots also
  get gzip bytes under a `.csv` name, UTF-16, Latin-1 after 64 KiB of UTF-8, and cp1252 bytes
  (0x81, smart quotes).
- **Settings**: `gaps`, `errors`, `data`, `lr-find` and `sanity` on a copy of the example data whose
  `diagnose.toml` (or a `pyproject.toml` above it) has an unknown key, a wrong type, a value out of
  range, 2000 levels of nesting, an `arch` naming a planted `netdef.py` (beside the data or above
  it), `tool = "diagnose"`, a broken unrelated `pyproject.toml`, or control characters in names.
  The planted module appends its folder to a marker file when imported.
- **Class and column names** with ESC colour and window-title sequences, BEL, DEL, U+202E, `|`,
  backticks, `<script>` and `<img onerror>`, through `data`, `gaps`, `errors`, `compare`, `report`,
  `cohorts` and `tally`, as plain text, Markdown and JSON.
- **Options** out of range (negative, zero, NaN, infinity) for every numeric option that bounds a run.
- **Outputs** aimed at an input, at a named pipe, at a folder, at a file a person made (with and
  without `--force`), and a rerun over an earlier workdir.

Each case runs `python -m diagnose ...` in a subprocess from a fresh folder of its own (holding a
person's `notes.txt`), with stdin closed and a 60 s limit, two at a time. A case passes when all hold:

1. it ends within 60 s; its exit code is 0, 1, 2, 3 or 4;
2. stderr holds no `Traceback`; exit codes 1 and 2 print exactly one line starting `Error: `;
3. no C0/C1 control character or bidirectional override reaches stdout or stderr, and Markdown
   output holds no raw `<script>`, `<img` or unescaped `a|b`;
4. every file in the case's folder before the run is byte-identical after it, unless the command
   documents replacing it and a `.bak` holding the old bytes exists;
5. the planted code never ran, and no hidden temporary (`.*.tmp*`, `.*.new-*`) is left.

Cases that cannot be provoked where the sweep runs are skipped with their reason (a permission error
cannot be provoked as root). A known failure would be marked as an expected failure with its reason;
one that then passes fails the sweep.

## How to run it

```
python -m pytest -m slow tests/test_hostile_sweep.py -n 2
DIAGNOSE_SWEEP_RECORD=docs/hostile-sweep.md python -m pytest -m slow tests/test_hostile_sweep.py
```

The second line rewrites this page with the outcome of the run.

## Outcome

`$SWEEP` stands for the sweep's temporary folder; case N runs in `$SWEEP/cases/N`.
"""


def _write_record(path: Path, outcomes: list[Outcome], root: Path) -> None:
    ran = [o for o in outcomes if o.skipped is None]
    passed = [o for o in ran if not o.problems]
    lines = [RECORD_HEAD,
             f"{len(outcomes)} cases: {len(ran)} run, {len(passed)} passed, "
             f"{sum(o.case.xfail is not None for o in ran)} expected failures, "
             f"{len(outcomes) - len(ran)} skipped; {sum(o.seconds for o in ran):.0f} s of runs in all.\n",
             "| case | exit | first line of stderr | s | outcome |", "|---|---|---|---|---|"]
    for o in outcomes:
        verdict = (f"skipped: {o.skipped}" if o.skipped else
                   "; ".join(o.problems) if o.problems else "pass")
        if o.case.xfail:
            verdict = f"expected failure ({o.case.xfail}): {verdict}"
        rc = "hang" if o.rc is None and not o.skipped else "" if o.rc is None else str(o.rc)
        first = o.first_line.replace(str(root), "$SWEEP")
        lines.append(f"| `{o.case.id}` | {rc} | {_shown(first)} | {o.seconds:.1f} | {_shown(verdict)} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_hostile_sweep(base: Base) -> None:
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)
    only = re.compile(os.environ.get("DIAGNOSE_SWEEP_ONLY", ""))
    cases = [c for c in CASES if only.search(c.id)]
    before = _snapshot(base.root / "seed")
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda ic: _run(ic[1], base, ic[0]), enumerate(cases)))
    if record := os.environ.get("DIAGNOSE_SWEEP_RECORD"):
        _write_record(ROOT / record, outcomes, base.root)
    assert _snapshot(base.root / "seed") == before, "a shared input changed"
    failed = [f"{o.case.id}: {'; '.join(o.problems)} [{' '.join(o.argv)!r} -> {o.rc}: {o.first_line!r}]"
              for o in outcomes if o.problems and not o.case.xfail]
    passed_xfail = [o.case.id for o in outcomes if o.case.xfail and o.skipped is None and not o.problems]
    assert not failed, "\n".join(failed)
    assert not passed_xfail, f"expected to fail but passed: {passed_xfail}"
