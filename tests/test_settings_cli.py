"""A setting written in DATA/diagnose.toml reaches the command when its option is left at the default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from diagnose.cli import app


def test_label_column_from_diagnose_toml(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 120), ("dev", 60)):
        frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"f{i}" for i in range(4)])
        frame["target"] = rng.integers(0, 3, n)
        frame.to_csv(tmp_path / f"{split}.csv", index=False)
    typed = CliRunner().invoke(app, ["data", str(tmp_path), "--json", "--label-column", "target"])
    assert typed.exit_code == 0, typed.output

    (tmp_path / "diagnose.toml").write_text('label_column = "target"\n', encoding="utf-8")
    from_file = CliRunner().invoke(app, ["data", str(tmp_path), "--json"])
    assert from_file.exit_code == 0, from_file.output
    assert json.loads(from_file.stdout)["checks"] == json.loads(typed.stdout)["checks"]
