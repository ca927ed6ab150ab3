"""Every Python example of docs/callbacks.md runs as written, finishes, and writes a log that
`diagnose curves` reads."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "callbacks.md"
EXAMPLES = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)
NEEDS = {"lightning": "lightning", "transformers": "transformers", "keras": "keras"}


def test_the_page_has_an_example_per_framework() -> None:
    names = [re.search(r'\w+Callback|Watch(?=\()', e).group(0) for e in EXAMPLES]
    assert names == ["Watch", "LightningCallback", "HFCallback", "KerasCallback"]


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=["plain", "lightning", "hf", "keras"])
def test_example_runs(tmp_path: Path, example: str) -> None:
    for module, package in NEEDS.items():
        if f"import {module}" in example and importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "KERAS_BACKEND": "torch"}
    res = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1].startswith("[(")
    log = next((tmp_path / "runs").glob("*.jsonl"))
    from diagnose.io.logs import parse_log

    assert "train_loss" in parse_log(log).series
