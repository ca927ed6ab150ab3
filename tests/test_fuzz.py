"""Property-based fuzzing of every reader: whatever the bytes, the result is a parsed value or one
DiagnoseError (the `Error:` line), never another exception, a hang or a crash.

Profiles: "ci" (the default, derandomized so CI is reproducible; examples per target in EXAMPLES),
"dev" (HYPOTHESIS_PROFILE=dev: a tenth, random), "deep" (2,000 of every target, random) and "ci-deep"
(2,000 of every target, derandomized: what .ci/run runs). Targets: the log reader (random bytes, mutations of every
bundled log, random CSV / JSON-lines shapes), the sheet reader (random sheets), the model and
split loaders (random truncations of valid files), and the settings files (random documents and bytes).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnose.exceptions import DiagnoseError

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", derandomize=True, deadline=None, database=None, suppress_health_check=_QUIET)
settings.register_profile("dev", deadline=None, suppress_health_check=_QUIET)
settings.register_profile("deep", derandomize=False, deadline=None, suppress_health_check=_QUIET)
# What .ci/run uses: 2,000 examples of every target, derandomized so a CI failure reproduces.
settings.register_profile("ci-deep", derandomize=True, deadline=None, database=None, suppress_health_check=_QUIET)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
# 2,000 examples of every target take minutes: that fuzzing belongs to the slow set (`-m slow`).
DEEP = PROFILE in ("deep", "ci-deep")
pytestmark = [pytest.mark.slow] if DEEP else []

# Examples per target in the default ("ci") run, sized so the file stays near a minute on two shared
# cores: cheap targets get 500; the log reader's table and JSON paths cost 20-70 ms an example (pandas
# per column), so they get fewer. HYPOTHESIS_PROFILE=deep (or ci-deep, as .ci/run sets) runs 2,000 of every target: about 90 s on two idle cores.
EXAMPLES = {"bytes": 500, "mutated": 120, "csv": 80, "json": 60, "sheet": 150, "sheet_bytes": 500,
            "cells": 500, "truncated": 150}


def examples(target: str) -> settings:
    n = 2000 if DEEP else EXAMPLES[target] // (10 if PROFILE == "dev" else 1)
    return settings(max_examples=n)


ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "fixtures" / "runs"
EXAMPLE = ROOT / "fixtures" / "example"
# The head of every bundled log (TensorBoard event files included): what the mutations start from.
SEEDS = sorted(p for p in RUNS.rglob("*") if p.is_file() and p.suffix != ".png")
HEADS = [p.read_bytes()[:6000] for p in SEEDS]


def _holds(fn: Callable[[], Any]) -> None:
    """The property: a result or a DiagnoseError. Warnings are the CLI boundary's business."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(DiagnoseError):
            fn()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# --- the log reader -----------------------------------------------------------------------------

NAMES = ["run.log", "metrics.csv", "history.json", "trainer_state.json", "results.txt", "events.out.tfevents.1.x"]


@examples('bytes')
@given(data=st.binary(max_size=2000), name=st.sampled_from(NAMES))
def test_log_reader_random_bytes(scratch: Path, data: bytes, name: str) -> None:
    from diagnose.io.logs import parse_runs

    path = _write(scratch, name, data)
    _holds(lambda: parse_runs(path))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    k = draw(st.integers(0, len(HEADS) - 1))
    data = bytearray(HEADS[k])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "dup"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 200))]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b"nan", b"1e308", b"-1e308", b",", b"\n", b"{", b"[", b'"', b"\x00", b"inf",
                                                b"loss", b"epoch", b"\xff\xfe", b"\r"]))
        elif op == "truncate":
            del data[at:]
        elif op == "dup":
            data[at:at] = data[at : at + 300]
    return SEEDS[k].name, bytes(data)


@examples('mutated')
@given(case=mutated())
def test_log_reader_mutated_bundled_logs(scratch: Path, case: tuple[str, bytes]) -> None:
    from diagnose.io.logs import parse_runs

    name, data = case
    path = _write(scratch, name, data)
    _holds(lambda: parse_runs(path))


KEYS = ["epoch", "step", "loss", "val_loss", "train_loss", "acc", "val_acc", "accuracy", "lr", "learning_rate",
        "global_step", "eval_loss", "", "loss", "x y", "Epoch", "time"]
CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20), st.sampled_from(["", "nan", "NaN", "-", "1e308", "abc"]),
    st.text(max_size=6),
)


@examples('csv')
@given(keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=6), rows=st.lists(st.lists(CELLS, max_size=7), max_size=25),
       sep=st.sampled_from([",", "\t", ";", " "]))
def test_log_reader_random_csv(scratch: Path, keys: list[str], rows: list[list[Any]], sep: str) -> None:
    from diagnose.io.logs import parse_runs

    text = sep.join(keys) + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in rows)
    path = _write(scratch, "metrics.csv", text.encode("utf-8", "surrogatepass"))
    _holds(lambda: parse_runs(path))


SCALAR = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.integers(-(10**6), 10**6),
                   st.sampled_from(["", "nan", "0.5", "abc"]))
# Mostly flat records, as logs are; some values a list or a small object (cheap to generate).
JSON = st.one_of(SCALAR, SCALAR, SCALAR, st.lists(SCALAR, max_size=3), st.dictionaries(st.sampled_from(KEYS), SCALAR, max_size=3))


@examples('json')
@given(records=st.lists(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=5), max_size=12),
       shape=st.sampled_from(["jsonl", "array", "log_history", "nested"]))
def test_log_reader_random_json(scratch: Path, records: list[dict[str, Any]], shape: str) -> None:
    import json

    from diagnose.io.logs import parse_runs

    if shape == "jsonl":
        text, name = "".join(json.dumps(r) + "\n" for r in records), "metrics.jsonl"
    elif shape == "array":
        text, name = json.dumps(records), "history.json"
    elif shape == "log_history":
        text, name = json.dumps({"log_history": records, "global_step": 3}), "trainer_state.json"
    else:
        text, name = json.dumps({"runs": {"a": records}}), "metrics.json"
    path = _write(scratch, name, text.encode())
    _holds(lambda: parse_runs(path))


# --- the sheet reader ---------------------------------------------------------------------------

HEADERS = ["n", "split", "index", "id", "label", "pred", "blurry", "mislabeled", "note", "", "Sum", "=cmd", "-x", "N", "#"]


@examples('sheet')
@given(header=st.lists(st.sampled_from(HEADERS), min_size=1, max_size=8),
       rows=st.lists(st.lists(st.one_of(st.text(max_size=5), st.sampled_from(["x", "1", "yes", "sum", "'=a", "\u2713"])), max_size=9), max_size=15),
       sep=st.sampled_from([",", ";", "\t"]), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
       crlf=st.booleans())
def test_sheet_reader_random_sheets(
    scratch: Path, header: list[str], rows: list[list[str]], sep: str, encoding: str, crlf: bool
) -> None:
    import csv

    from diagnose.io.sheet import read_sheet

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode(encoding, errors="replace")
    path = _write(scratch, "sheet.csv", data)
    _holds(lambda: read_sheet(path))
    _holds(lambda: read_sheet(path, categories=["blurry"]))


@examples('sheet_bytes')
@given(data=st.binary(max_size=1500))
def test_sheet_reader_random_bytes(scratch: Path, data: bytes) -> None:
    from diagnose.io.sheet import read_sheet

    _holds(lambda: read_sheet(_write(scratch, "sheet.csv", data)))


@examples('cells')
@given(value=st.text(max_size=12))
def test_sheet_cells_escape_and_read_back(value: str) -> None:
    from diagnose.io.sheet import FORMULA_STARTS, _safe_text, unescape_cell

    escaped = _safe_text(value)
    assert not escaped.startswith(FORMULA_STARTS)
    assert unescape_cell(escaped) == value


# --- model and split loaders: random truncations of valid files ---------------------------------

@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A model in each format and a split in each file format, as bytes to truncate."""
    import numpy as np
    import pandas as pd
    import torch
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("valid")
    out = {"model:torchscript": (EXAMPLE / "model.pt").read_bytes()}
    sd = {k: v.detach().clone().contiguous() for k, v in torch.jit.load(str(EXAMPLE / "model.pt")).state_dict().items()}
    for name, obj in (("state_dict", sd), ("checkpoint", {"state_dict": sd, "epoch": 3})):
        torch.save(obj, root / f"{name}.pt")
        out[f"model:{name}"] = (root / f"{name}.pt").read_bytes()
    save_file(sd, str(root / "m.safetensors"))
    out["model:safetensors"] = (root / "m.safetensors").read_bytes()
    dev = torch.load(EXAMPLE / "data" / "dev.pt", weights_only=True)
    x, y = dev["x"].reshape(len(dev["y"]), -1).numpy()[:60], dev["y"].numpy()[:60]
    out["split:pt.dev.pt"] = (EXAMPLE / "data" / "dev.pt").read_bytes()
    np.savez(root / "dev.npz", x=x, y=y)
    out["split:npz.dev.npz"] = (root / "dev.npz").read_bytes()
    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])]).assign(label=y)
    table.to_csv(root / "dev.csv", index=False)
    out["split:csv.dev.csv"] = (root / "dev.csv").read_bytes()
    table.to_parquet(root / "dev.parquet")
    out["split:parquet.dev.parquet"] = (root / "dev.parquet").read_bytes()
    return out


VALID = ["model:torchscript", "model:state_dict", "model:safetensors", "model:checkpoint",
         "split:pt", "split:npz", "split:csv", "split:parquet"]


@examples('truncated')
@given(key=st.sampled_from(VALID), share=st.floats(0.0, 1.0, exclude_max=True))
def test_model_and_split_loaders_on_truncated_files(
    scratch: Path, valid_files: dict[str, bytes], key: str, share: float
) -> None:
    from diagnose.io.models import load_model
    from diagnose.io.splits import load_dataset

    key = next(k for k in valid_files if k.startswith(key + ".") or k == key) if key.startswith("split:") else key
    blob = valid_files[key]
    cut = int(share * len(blob))
    kind, _, name = key.partition(":")
    name = name.partition(".")[2] if kind == "split" else name
    if kind == "model":
        suffix = {"safetensors": ".safetensors"}.get(name, ".pt")
        path = _write(scratch, f"model{suffix}", blob[:cut])
        _holds(lambda: load_model(path, arch=f"{EXAMPLE / 'arch.py'}:DigitsMLP"))
    else:
        folder = scratch / "split"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        _write(folder, name, blob[:cut])

        def read() -> None:
            ds = load_dataset(folder)
            for split in ds.splits.values():
                for _ in split.batches(64):
                    pass

        _holds(read)


# --- the settings door ----------------------------------------------------------------------------
# DATA/diagnose.toml and [tool.diagnose]: random documents (known and unknown keys, nested values of
# every TOML kind) and random bytes. The property: normalized settings within the schema's bounds,
# or one SettingsError (exit code 2), never another exception.

EXAMPLES.setdefault("settings", 300)
KEYS_FOR_FUZZ = ("arch", "arch_kwargs", "mean", "std", "image_size", "label_column", "classes", "human_error",
                 "human_error_target")

_scalars = st.one_of(st.booleans(), st.integers(-(10**6), 10**6), st.floats(), st.text(max_size=10))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=3)),
                       max_leaves=12)


def _toml(value: Any) -> str:
    import json
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _settings_hold(folder: Path) -> None:
    from diagnose.defaults import MAX_IMAGE_SIDE
    from diagnose.exceptions import SettingsError
    from diagnose.io.settings import KEYS, load_settings, read_data_settings

    for read in (lambda: read_data_settings(folder / "data"), lambda: load_settings(folder / "data", {}, cwd=folder).values):
        try:
            got = read()
        except SettingsError as exc:
            assert "\n" not in exc.message and exc.exit_code == 2
            continue
        got = {k: getattr(v, "value", v) for k, v in got.items()}
        assert set(got) <= set(KEYS)
        if "image_size" in got:
            assert all(1 <= side <= MAX_IMAGE_SIDE for side in got["image_size"])
        for name in got.get("classes") or []:
            assert not any(ord(c) < 32 for c in name)


@examples("settings")
@given(doc=st.dictionaries(st.one_of(st.sampled_from(KEYS_FOR_FUZZ), st.text(min_size=1, max_size=8)), _values, max_size=5),
       where=st.sampled_from(["data", "pyproject"]))
def test_settings_files_give_settings_or_one_error(scratch: Path, doc: dict[str, Any], where: str) -> None:
    folder = scratch / "settings"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    text = "\n".join(f"{_toml(k)} = {_toml(v)}" for k, v in doc.items()) + "\n"
    if where == "data":
        (folder / "data" / "diagnose.toml").write_text(text, encoding="utf-8")
    else:
        (folder / "pyproject.toml").write_text("[tool.diagnose]\n" + text, encoding="utf-8")
    _settings_hold(folder)


@examples("settings")
@given(data=st.binary(max_size=400))
def test_settings_file_random_bytes(scratch: Path, data: bytes) -> None:
    folder = scratch / "settings_bytes"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "diagnose.toml").write_bytes(data)
    (folder / "pyproject.toml").write_bytes(b"[tool.diagnose]\n" + data)
    _settings_hold(folder)


# --- the text-out door ----------------------------------------------------------------------------
# Whatever text an input holds, what reaches a terminal has no control character, and what reaches
# Markdown has no raw HTML, no unescaped `|` and no line break.

EXAMPLES.setdefault("text", 500)


@examples("text")
@given(text=st.text(max_size=60))
def test_text_out_is_free_of_controls_and_markup(text: str) -> None:
    import re
    import unicodedata

    from diagnose.render import markdown_escape, safe_text

    shown = safe_text(text)
    assert safe_text(shown) == shown
    assert not any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in shown)
    assert not any(c in shown for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    one = safe_text(text, one_line=True)
    assert "\n" not in one and "\r" not in one
    md = markdown_escape(text)
    assert "\n" not in md and "\r" not in md
    assert not re.search(r"(?<!\\)[<>|&]", md.replace("\\\\", ""))


_PATH_KINDS = ["file", "empty", "folder", "fifo", "dangling", "loop", "long", "missing", "link_to_file", "link_to_folder"]
EXAMPLES.setdefault("paths", 200)


def _path_of(kind: str, folder: Path, name: str) -> Path:
    """A path of one kind in `folder`, made anew (hypothesis reuses the folder)."""
    path = folder / ("x" * 300 if kind == "long" else name)
    if kind == "long":
        return path
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    target = folder / f"{name}.target"
    if target.is_dir():
        shutil.rmtree(target)
    target.unlink(missing_ok=True)
    if kind == "file":
        path.write_bytes(b"content")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling":
        path.symlink_to(folder / "nowhere")
    elif kind == "loop":
        path.symlink_to(path)
    elif kind in ("link_to_file", "link_to_folder"):
        if kind == "link_to_file":
            target.write_bytes(b"content")
        else:
            target.mkdir()
        path.symlink_to(target)
    return path


@examples("paths")
@given(kind=st.sampled_from(_PATH_KINDS), name=st.sampled_from(["dev.pt", "x.png", "sheet.csv", "a b.log"]))
def test_path_door_opens_regular_files_and_names_everything_else(scratch: Path, kind: str, name: str) -> None:
    """Every kind of path either opens (a regular file, or a link to one) or is one DiagnoseError whose
    message names the path; nothing blocks (a FIFO is never opened for reading) and no OSError escapes."""
    from diagnose.io.paths import open_regular

    folder = scratch / "paths"
    folder.mkdir(exist_ok=True)
    path = _path_of(kind, folder, name)
    try:
        with open_regular(path, "a file to read", "pass a regular file") as fh:
            data = fh.read()
    except DiagnoseError as exc:
        assert kind not in ("file", "empty", "link_to_file"), exc
        assert str(exc).startswith(f"{path}: expected a file to read, got ") and "\n" not in str(exc)
    else:
        assert kind in ("file", "empty", "link_to_file")
        assert data == (b"" if kind == "empty" else b"content")
