"""Without torch (`pip install diagnose`, no `[torch]` extra): the torch-free commands work, the others say
in one line what to install.

torch is hidden from a fresh interpreter by a meta-path finder that refuses it, as a machine without
the package would; the CLI then runs exactly as the console script does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "fixtures" / "example"
RUNS = ROOT / "fixtures" / "runs"

BLOCK_TORCH = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoTorch())
sys.argv = ["diagnose", *sys.argv[1:]]
from diagnose.cli import main
try:
    main()
finally:
    assert "torch" not in sys.modules
"""


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _needs(name: str) -> str:
    return f"Error: diagnose {name} needs PyTorch; pip install 'diagnose[torch]'\n"


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("gaps", [EXAMPLE / "model.pt", EXAMPLE / "data", "--workdir", "wd"]),
        ("errors", [EXAMPLE / "model.pt", EXAMPLE / "data", "--out", "sheet.csv"]),
        ("sanity", [EXAMPLE / "model.pt", EXAMPLE / "data", "--arch", EXAMPLE / "arch.py:DigitsMLP"]),
        ("data", [EXAMPLE / "data"]),
    ],
)
def test_torch_commands_name_the_extra(tmp_path: Path, name: str, args: list[str | Path]) -> None:
    result = _run(name, *args, cwd=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (1, _needs(name), "")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing half-written


def test_curves_and_tally_run_without_torch(tmp_path: Path) -> None:
    curves = _run("curves", RUNS / "overfitting.trainer_state.json", "--no-plot", "--json", cwd=tmp_path)
    assert curves.returncode == 0, curves.stderr
    assert '"id": "overfitting"' in curves.stdout

    sheet = tmp_path / "sheet.csv"
    sheet.write_text("n,split,label,pred,blurry,other,note\n1,dev,1,8,x,,\n2,dev,3,8,x,,\n3,dev,5,8,,x,\n", encoding="utf-8")
    tally = _run("tally", sheet, "--error", "0.2", "--json", cwd=tmp_path)
    assert tally.returncode == 0, tally.stderr
    assert '"first": "blurry"' in tally.stdout


def test_gaps_on_saved_predictions_runs_without_torch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    preds = tmp_path / "preds"
    preds.mkdir()
    for split, n in (("train", 400), ("dev", 200)):
        label = rng.integers(0, 3, n)
        pred = np.where(rng.random(n) < 0.2, (label + 1) % 3, label)
        pd.DataFrame({"label": label, "pred": pred}).to_parquet(preds / f"{split}.parquet")
    result = _run("gaps", "--predictions", preds, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"train"' in result.stdout and '"dev"' in result.stdout
