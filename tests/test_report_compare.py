"""`diagnose report --baseline OLD`: the compare section, against an exact binomial test and a hand count."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest


def test_compare_section_of_a_run_that_fixed_twenty_dev_items(
    cli, tmp_path: Path, example_model: Path, example_data: Path
) -> None:
    from scipy.stats import binomtest

    old = tmp_path / "old"
    assert cli("gaps", example_model, example_data, "--workdir", old, "--human-error", 0.01).exit_code == 0
    # The "new model": the same predictions, except that it gets 20 of the old dev errors right.
    new = tmp_path / "new"
    new.mkdir()
    for f in (old / "predictions").glob("*.parquet"):
        shutil.copy(f, new / f.name)
    dev = pd.read_parquet(new / "dev.parquet")
    wrong = dev.index[dev["label"] != dev["pred"]][:20]
    dev.loc[wrong, "pred"] = dev.loc[wrong, "label"]
    dev.to_parquet(new / "dev.parquet")
    out = tmp_path / "r.html"
    r = cli("report", "--workdir", new, "--baseline", old, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)["compare"]
    assert doc["paired"] is True and doc["baseline"] == str(old)
    d = doc["splits"]["dev"]
    n = len(dev)
    assert d["old"]["n"] == d["new"]["n"] == n
    assert d["change"] == pytest.approx(-20 / n)
    assert d["test"] == "mcnemar_exact"
    assert d["p_value"] == pytest.approx(binomtest(0, 20, 0.5).pvalue)  # 20 fixed, none broken
    assert doc["splits"]["train"]["change"] == 0.0
    page = out.read_text(encoding="utf-8")
    assert 'id="compare"' in page and "Compared with the baseline" in page
    assert f"{-20 / n * 100:+.1f} pts" in page
    assert "Method: paired: exact McNemar test" in page
    assert "`" not in page.split("</style>", 1)[1]
