"""The command line starts without heavy imports (click's tests/test_imports.py does the same)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return set(out.split())


@pytest.mark.parametrize("heavy", ["torch", "matplotlib", "pandas", "pyarrow"])
def test_cli_import_is_light(heavy: str) -> None:
    assert heavy not in _modules_after("import diagnose.cli")


def test_help_does_not_import_torch() -> None:
    mods = _modules_after(
        "import sys\nfrom diagnose.cli import app\nfrom typer.testing import CliRunner\n"
        "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output"
    )
    assert "torch" not in mods


@pytest.mark.parametrize(
    ("name", "text"),
    [("run.csv", "step,loss,lr\n" + "".join(f"{i},{1 / i:.4f},0.1\n" for i in range(1, 300))),
     ("run.log", "Starting\n" + "".join(f"epoch 0 step {i} loss {1 / i:.4f} lr 0.1\n" for i in range(1, 300)))],
)
def test_reading_a_log_does_not_import_pandas(tmp_path, name: str, text: str) -> None:
    """pyarrow's to_numpy/pa.array import pandas (half a second) on first use: the log readers avoid them."""
    path = tmp_path / name
    path.write_text(text)
    mods = _modules_after(f"from diagnose.io.logs import parse_log\nlog = parse_log({str(path)!r})\nassert len(log.series['train_loss']) == 299")
    assert "pandas" not in mods
