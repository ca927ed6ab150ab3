"""Shared test fixtures. Other test files use these; keep the names stable.

Session-scoped (built once per test session, per xdist worker):

- `example_dir` -> Path: the bundled example, `fixtures/example/` (model.pt is TorchScript,
  arch.py has `DigitsMLP` for the weights-only formats, data/ holds train/train_dev/dev/test .pt
  files, classes.txt and diagnose.toml with human_error = 0.01). Read-only: copy before changing.
- `example_model` -> Path: `fixtures/example/model.pt`.
- `example_data` -> Path: `fixtures/example/data`.
- `example_arch` -> str: the `--arch` spec for weights-only files, `.../fixtures/example/arch.py:DigitsMLP`.
- `example_formats` -> ExampleFormats: the same model and the same data in every format, written
  under a session tmp dir:
    .models: {"torchscript", "export", "state_dict", "state_dict_legacy", "lightning", "checkpoint",
              "safetensors", "pickle"} -> (model path, extra CLI args it needs, e.g. ["--arch", spec]);
    .data:   {"pt", "npz" (aliases train-dev/val, memory-mapped), "npz_compressed" (inputs/targets),
              "csv", "parquet", "images" (PNG class folders)} -> DATA folder.
- `example_counts` -> dict[str, tuple[int, int]]: split -> (n, misclassified) of the bundled model
  on the bundled data, computed here with a plain torch loop (independent of diagnose).
- `make_fixtures` -> the fixtures/make_fixtures.py module (builders: write_model_formats,
  write_data_formats, make_splits, load_example_model, load_example_splits).

- `shapes_project` -> Path: a person's image project built by fixtures/make_project.py (mynet.py,
  data/ image folders with a shifted dev/test and flipped labels, weights.pt trained on normalized
  inputs, weights_v2.pt, full.pt, pyproject.toml with [tool.diagnose], run.csv, planted.json).
  Built once per session for all xdist workers (under a file lock). Read-only: copy it with
  `fixtures.make_project.copy_project(src, dest)` before changing (another test's in-process import
  may be writing its __pycache__).

Under pytest-xdist, OMP_NUM_THREADS defaults to 1 per worker (see below).

Function-scoped:

- `cli` -> callable(*args) -> click Result: runs `diagnose` in-process with typer's CliRunner, in a folder of its own;
  result.exit_code, result.stdout, result.stderr (the `Error:` line) are separate.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

# Under `pytest -n 2` on 2 cores, each worker's torch would start 2 OpenMP threads: 4 threads spin on
# 2 cores, and tiny ops then wait on each other (measured: 70 us -> 20 ms per softmax on a busy
# machine). One thread per worker. Set before torch is imported; an explicit setting wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


def _load_make_fixtures() -> ModuleType:
    name = "make_fixtures"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class ExampleFormats:
    models: dict[str, tuple[Path, list[str]]]
    data: dict[str, Path]


@pytest.fixture(scope="session")
def make_fixtures() -> ModuleType:
    return _load_make_fixtures()


@pytest.fixture(scope="session")
def example_dir() -> Path:
    return FIXTURES / "example"


@pytest.fixture(scope="session")
def example_model(example_dir: Path) -> Path:
    return example_dir / "model.pt"


@pytest.fixture(scope="session")
def example_data(example_dir: Path) -> Path:
    return example_dir / "data"


@pytest.fixture(scope="session")
def example_arch(example_dir: Path) -> str:
    return f"{example_dir / 'arch.py'}:DigitsMLP"


@pytest.fixture(scope="session")
def example_formats(tmp_path_factory: pytest.TempPathFactory, make_fixtures: ModuleType) -> ExampleFormats:
    root = tmp_path_factory.mktemp("example_formats")
    models = make_fixtures.write_model_formats(root / "models")
    data = make_fixtures.write_data_formats(root / "data")
    return ExampleFormats(models=models, data=data)


@pytest.fixture(scope="session")
def example_counts(example_model: Path, example_data: Path) -> dict[str, tuple[int, int]]:
    import torch

    model = torch.jit.load(str(example_model), map_location="cpu").eval()
    out = {}
    for split in ("train", "train_dev", "dev", "test"):
        obj = torch.load(example_data / f"{split}.pt", weights_only=True)
        x = obj["x"].float() / 255.0
        y = obj["y"]
        with torch.no_grad():
            wrong = 0
            for i in range(len(x)):  # one item at a time: nothing shared with diagnose's batching
                wrong += int(model(x[i : i + 1]).argmax(1).item() != int(y[i]))
        out[split] = (len(y), wrong)
    return out


@pytest.fixture
def cli(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    from typer.testing import CliRunner

    from diagnose.cli import app

    runner = CliRunner()
    # Each test runs the CLI in a folder of its own: the default --workdir (.diagnose) is relative to
    # the current folder and locked while a run writes it, so two pytest-xdist workers sharing the
    # repository's .diagnose would see each other's runs.
    cwd = tmp_path_factory.mktemp("cwd")

    def invoke(*args: object):
        with monkeypatch.context() as m:
            m.chdir(cwd)
            return runner.invoke(app, [str(a) for a in args])

    return invoke


def _session_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this test session, shared by its xdist workers (their base temp folders share a parent,
    pytest-of-USER/pytest-N). Without xdist the base temp folder itself: its parent, pytest-of-USER, holds
    every session's, of every checkout on the machine."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def shapes_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import fcntl
    import hashlib

    from fixtures.make_project import build_project

    # One build per session, shared by the xdist workers, named after the code that makes it.
    shared = _session_folder(tmp_path_factory)
    code = hashlib.sha256((FIXTURES / "make_project.py").read_bytes()).hexdigest()[:12]
    root = shared / f"shapes_project-{code}"
    with open(shared / f"shapes_project-{code}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".built").is_file():
            build_project(root)
            (root / ".built").write_text("ok\n", encoding="utf-8")
    return root
