"""Hostile inputs end in one exact `Error:` line (or the right result), never a traceback, a hang or a
silent wrong answer; and every file that was there before is byte-identical afterwards."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from diagnose.cli import app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example"
MODEL, DATA, ARCH = EXAMPLE / "model.pt", EXAMPLE / "data", f"{EXAMPLE / 'arch.py'}:DigitsMLP"


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.stat().st_size < 50_000_000}


def _pt_split(folder: Path, x: torch.Tensor, y: torch.Tensor, names: tuple[str, ...] = ("train", "dev")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        torch.save({"x": x, "y": y}, folder / f"{name}.pt")
    return folder


def _csv_split(folder: Path, header: list[str], encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in ("train", "dev"):
        rows = [",".join(f"{v:.3f}" for v in rng.normal(size=64)) + f",{rng.integers(0, 10)}" for _ in range(30)]
        (folder / f"{name}.csv").write_bytes(("\n".join([",".join(header), *rows]) + "\n").encode(encoding))
    return folder


def _arch(tmp: Path, body: str) -> str:
    (tmp / "net.py").write_text(body)
    return f"{tmp / 'net.py'}:Net"


# Each case builds its inputs in tmp and returns (argv, exit code, the exact stderr or a callable check).
Case = Callable[[Path], tuple[list[object], int, object]]


def _symlink_loop(t: Path):
    os.symlink(t / "b.pt", t / "a.pt")
    os.symlink(t / "a.pt", t / "b.pt")
    return ["gaps", t / "a.pt", DATA, "--workdir", t / "wd"], 1, f"Error: {t / 'a.pt'}: expected a model file, got a symlink loop; check the path\n"


def _dangling(t: Path):
    os.symlink(t / "gone.pt", t / "m.pt")
    return (["gaps", t / "m.pt", DATA, "--workdir", t / "wd"], 1,
            f"Error: {t / 'm.pt'}: expected a model file, got a dangling symlink to {t / 'gone.pt'}; check the path\n")


def _dir_model(t: Path):
    (t / "dev.pt").mkdir()
    return ["gaps", t / "dev.pt", DATA, "--workdir", t / "wd"], 1, f"Error: {t / 'dev.pt'}: expected a model file, got a folder; pass the file inside it\n"


def _fifo_model(t: Path):
    os.mkfifo(t / "model.pt")
    return ["gaps", t / "model.pt", DATA, "--workdir", t / "wd"], 1, f"Error: {t / 'model.pt'}: expected a model file, got a named pipe (FIFO); check the path\n"


def _fifo_log(t: Path):
    os.mkfifo(t / "run.log")
    return (["curves", t / "run.log"], 1,
            f"Error: {t / 'run.log'}: expected a training log file or TensorBoard folder, got a named pipe (FIFO); pass the log the run wrote\n")


def _dev_zero_log(t: Path):
    return (["curves", "/dev/zero", "--no-plot"], 1,
            "Error: /dev/zero: expected a training log file or TensorBoard folder, got a device; pass the log the run wrote\n")


def _fifo_sheet(t: Path):
    os.mkfifo(t / "sheet.csv")
    return (["tally", t / "sheet.csv"], 1,
            f"Error: {t / 'sheet.csv'}: expected an error-analysis sheet (a CSV file), got a named pipe (FIFO); pass the sheet diagnose errors wrote\n")


def _arch_raises(t: Path):
    spec = _arch(t, "import torch\n\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        raise ValueError('hidden width must be even, got 7')\n")
    return (["sanity", "--arch", spec, DATA], 2,
            f"Error: --arch {spec}: expected Net(...) to build a model, got ValueError: hidden width must be even, got 7 "
            "(net.py:7); fix Net\n")


def _arch_syntax(t: Path):
    spec = _arch(t, "import torch\nclass Net(torch.nn.Module:\n    pass\n")
    return (["sanity", "--arch", spec, DATA], 2,
            f"Error: --arch {spec}: expected {t / 'net.py'} to import, got SyntaxError: invalid syntax (net.py:2); fix the file\n")


def _arch_import(t: Path):
    spec = _arch(t, "import torch\nraise RuntimeError('needs CUDA 12')\n")
    return (["sanity", "--arch", spec, DATA], 2,
            f"Error: --arch {spec}: expected {t / 'net.py'} to import, got RuntimeError: needs CUDA 12 (net.py:2); fix the file\n")


def _safetensors_header(t: Path):
    (t / "m.safetensors").write_bytes(struct.pack("<Q", 10**6) + b'{"w": 1}')
    return ["gaps", t / "m.safetensors", DATA, "--arch", ARCH, "--workdir", t / "wd"], 1, lambda err: "unexpected" not in err


def _seed(t: Path):
    return ["errors", "--seed", "-1"], 2, lambda err: "'--seed'" in err and "greater than or equal to 0" in err


def _std_zero(t: Path):
    return (["gaps", MODEL, DATA, "--std", "0", "--workdir", t / "wd"], 2,
            "Error: --std: expected standard deviations > 0 (the inputs are divided by them), got '0'; pass e.g. --std 0.229,0.224,0.225\n")


def _mean_on_tensors(t: Path):
    return (["gaps", MODEL, DATA, "--mean", "0.5,0.5", "--workdir", t / "wd"], 2,
            f"Error: --mean: expected 1 value or one per channel (dimension 1 of the items: 1 in "
            f"{DATA / 'train.pt'}), got 2; pass one value, or 1 separated by commas\n")


def _manifest_list(t: Path):
    (t / "wd").mkdir()
    (t / "wd" / "manifest.json").write_text("[1, 2]")
    return ["report", "--workdir", t / "wd", "--out", t / "r.html"], 1, f"Error: {t / 'wd' / 'manifest.json'}: expected a JSON object (a manifest), got a JSON array; rerun diagnose gaps\n"


def _deep_json_log(t: Path):
    (t / "run.json").write_text("[" * 100_000)
    return ["curves", t / "run.json", "--no-plot"], 1, f"Error: {t / 'run.json'}: expected a training log, got JSON nested too deep to read; pass the log the run wrote\n"


def _long_line_log(t: Path):
    (t / "run.log").write_bytes(b"loss " + b"x" * (17 << 20) + b"\n")
    return ["curves", t / "run.log", "--no-plot"], 1, lambda err: err.startswith(f"Error: {t / 'run.log'}: expected ")


def _dup_loss_columns(t: Path):
    (t / "m.csv").write_text("epoch,loss,loss\n" + "".join(f"{i},{1 / (i + 1)},{2 / (i + 1)}\n" for i in range(30)))
    return ["curves", t / "m.csv", "--no-plot"], 1, f"Error: {t / 'm.csv'}: expected distinct column names, got 'loss' twice; rename one of the columns\n"


def _dup_feature_columns(t: Path):
    data = _csv_split(t / "data", ["f0"] * 64 + ["label"])
    return (["gaps", MODEL, data, "--workdir", t / "wd"], 1,
            f"Error: {data / 'train.csv'}: expected distinct column names, got 'f0' more than once; rename the columns (e.g. f0, f1, ...)\n")


def _cp1252_header(t: Path):
    data = _csv_split(t / "data", [f"f{i}" for i in range(63)] + ["caf\u00e9", "label"], encoding="cp1252")
    return ["gaps", MODEL, data, "--workdir", t / "wd", "--json", "--force-verdict"], 0, ""


def _negative_label(t: Path):
    y = torch.zeros(20, dtype=torch.long)
    y[3] = -1
    data = _pt_split(t / "data", torch.rand(20, 64), y)
    return (["data", data], 1,
            f"Error: {data / 'train.pt'}: expected class indices >= 0, got -1 (1 of 20 items); -1 often marks unlabeled "
            "items: drop them or give them a class\n")


def _sys_exit(t: Path):
    spec = _arch(t, "import sys\nimport torch\n\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.fc = torch.nn.Linear(64, 10)\n\n    def forward(self, x):\n        sys.exit(7)\n")
    return (["sanity", "--arch", spec, DATA], 1,
            "Error: expected the model's code to return, got sys.exit(7) from it; remove the exit call (rerun with --debug to see where)\n")


def _nan_input(t: Path):
    x = torch.rand(20, 64)
    x[2, 5] = float("nan")
    data = _pt_split(t / "data", x, torch.zeros(20, dtype=torch.long))
    return (["gaps", MODEL, data, "--workdir", t / "wd"], 1,
            f"Error: {data / 'train.pt'}: expected finite inputs, got NaN or inf in 1 of 20 items in a batch (first: item 2 of "
            "the split); fill or drop the missing values in the data\n")


def _nan_pred(t: Path):
    (t / "p").mkdir()
    pq.write_table(pa.table({"label": [0.0, 1.0, 2.0], "pred": [1.0, float("nan"), 2.0]}), t / "p" / "dev.parquet")
    return (["errors", "--predictions", t / "p", "--out", t / "s.csv"], 1,
            f"Error: {t / 'p' / 'dev.parquet'}: expected a class in every 'pred' cell, got 1 empty or NaN; fill them or drop those rows\n")


def _dup_index(t: Path):
    (t / "p" / "dev").mkdir(parents=True)
    for k in range(2):
        pq.write_table(pa.table({"index": [0, 1, 2], "label": [0, 1, 2], "pred": [1, 1, 0]}), t / "p" / "dev" / f"part-{k}.parquet")
    return (["errors", "--predictions", t / "p", "--out", t / "s.csv"], 1,
            f"Error: {t / 'p' / 'dev'}: expected one row per item (distinct 'index' values), got index 0 more than once "
            "(3 repeated values); shards that number their rows from 0 each need a global index (or drop the column to "
            "number rows by position)\n")


def _decompression_bomb(t: Path):
    import struct as st
    import zlib

    from PIL import Image

    def chunk(kind: bytes, data: bytes) -> bytes:
        return st.pack(">I", len(data)) + kind + data + st.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    for split in ("train", "dev"):
        for c in ("a", "b"):
            (t / "data" / split / c).mkdir(parents=True)
            Image.new("L", (8, 8)).save(t / "data" / split / c / "ok.png")
    # A 40000x40000 PNG header: Pillow refuses it at open, before any pixel is decoded.
    big = t / "data" / "dev" / "a" / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", st.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return (["data", t / "data"], 1,
            f"Error: {big}: expected an image of at most {limit:,} pixels, got 1,600,000,000 pixels (a decompression "
            "bomb?); remove the file or shrink it\n")


class _Unusable(torch.nn.Module):
    """A model whose outputs no classifier gives."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x.reshape(x.shape[0], -1))
        if self.kind == "3d":
            return y.unsqueeze(-1).repeat(1, 1, 3)
        if self.kind == "empty":
            return y[:, :0]
        if self.kind == "int":
            return y.argmax(1)
        return y.mean(0, keepdim=True)


def _unusable(kind: str, phrase: str) -> Case:
    def case(t: Path):
        torch.jit.save(torch.jit.script(_Unusable(kind)), str(t / "m.pt"))
        return ["sanity", t / "m.pt", DATA], 1, lambda err: err.startswith(f"Error: model: expected {phrase}") and err.count("\n") == 1

    return case


def _huge_values_log(t: Path):
    values = [1.0, 1e308, -1e308, 0.5, 0.4, 1e308, 0.3, 0.2] * 5
    (t / "m.csv").write_text("epoch,loss\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    return ["curves", t / "m.csv", "--out", t / "fig.png"], 0, ""


CASES: dict[str, Case] = {
    "symlink loop": _symlink_loop, "dangling symlink": _dangling, "folder named dev.pt": _dir_model,
    "FIFO model": _fifo_model, "FIFO log": _fifo_log, "/dev/zero log": _dev_zero_log, "FIFO sheet": _fifo_sheet,
    "arch raises in __init__": _arch_raises, "arch syntax error": _arch_syntax, "arch fails to import": _arch_import,
    "safetensors header longer than the file": _safetensors_header, "--seed -1": _seed, "--std 0": _std_zero,
    "--mean on tensor splits": _mean_on_tensors, "manifest not an object": _manifest_list,
    "100,000 nested [": _deep_json_log, "a 17 MB line": _long_line_log, "two loss columns": _dup_loss_columns,
    "64 features named f0": _dup_feature_columns, "cp1252 CSV header": _cp1252_header, "negative label": _negative_label,
    "model calls sys.exit(7)": _sys_exit, "NaN input": _nan_input, "NaN pred": _nan_pred,
    "outputs (N, 10, 3)": _unusable("3d", "outputs of shape (N, C), got ("),
    "outputs (N, 0)": _unusable("empty", "at least one output column"),
    "integer outputs": _unusable("int", "floating-point scores (logits), got int64"),
    "one output row per batch": _unusable("batch", "one output row per item"),
    "per-shard index": _dup_index, "1e308 in a log": _huge_values_log, "40000x40000 PNG": _decompression_bomb,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_leaves_files_alone(name: str, tmp_path: Path) -> None:
    args, code, want = CASES[name](tmp_path)
    before = _snapshot(tmp_path)
    r = _run(*args)
    assert r.exit_code == code, (r.stdout[-500:], r.stderr)
    if callable(want):  # typer's own usage errors are framed when run in-process (one line from `diagnose`)
        assert want(r.stderr), r.stderr
        assert "unexpected" not in r.stderr and "Traceback" not in r.stderr
    elif code:
        assert r.stderr == want
    else:
        assert "Error" not in r.stderr and "Warning" not in r.stderr, r.stderr
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not [k for k in after if ".tmp" in k or ".new-" in k]


@pytest.mark.parametrize("args", [["curves", "{log}", "--json", "--no-plot"], ["tally", "{sheet}", "--json"],
                                  ["curves", "{log}", "--no-plot"], ["tally", "{sheet}"]],
                         ids=["curves", "tally", "curves-table", "tally-table"])
def test_closed_stdout_exits_quietly(args: list[str], tmp_path: Path) -> None:
    sheet = tmp_path / "s.csv"
    sheet.write_text("n,label,pred,blurry\n1,cat,dog,x\n2,dog,cat,\n")
    argv = [a.format(log=ROOT / "fixtures" / "runs" / "healthy.keras.csv", sheet=sheet) for a in args]
    code = "import sys\nfrom diagnose.cli import main\nsys.argv = ['diagnose', *sys.argv[1:]]\nmain()\n"
    # `diagnose ... --json | head -0`: the reader is gone before the first write, so every write fails.
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err and "Error" not in err, err
    assert proc.returncode == 0


@pytest.mark.parametrize("args", [["curves", "{log}", "--json", "-o", "{out}"], ["tally", "{sheet}"]], ids=["curves", "tally"])
def test_no_stdout_at_all_is_quiet(args: list[str], tmp_path: Path) -> None:
    # `diagnose ... >&-`: started with file descriptor 1 closed (Python's sys.stdout is None)
    sheet = tmp_path / "s.csv"
    sheet.write_text("n,label,pred,blurry\n1,cat,dog,x\n2,dog,cat,\n")
    out = tmp_path / "fig.png"
    argv = [a.format(log=ROOT / "fixtures" / "runs" / "healthy.keras.csv", sheet=sheet, out=out) for a in args]
    code = "import sys\nfrom diagnose.cli import main\nsys.argv = ['diagnose', *sys.argv[1:]]\nmain()\n"
    done = subprocess.run([sys.executable, "-c", code, *argv], stderr=subprocess.PIPE, text=True, timeout=120,
                          preexec_fn=lambda: os.close(1))  # noqa: PLW1509 - only closes a descriptor in the child
    assert done.returncode == 0 and "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr
    if args[0] == "curves":
        assert out.read_bytes().startswith(b"\x89PNG")
