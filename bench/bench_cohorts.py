"""`diagnose cohorts` on 100,000 items with 20 metadata columns (10 of categories, 10 of numbers),
one planted slice: the wall time of the whole command (reading the predictions and the metadata
included), and the cohorts it reports.

    python bench/bench_cohorts.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main(n: int = 100_000) -> None:
    rng = np.random.default_rng(0)
    cols: dict[str, np.ndarray] = {f"cat{j}": rng.choice([f"v{i}" for i in range(8)], n) for j in range(10)}
    cols.update({f"num{j}": rng.normal(size=n) for j in range(10)})
    wrong = rng.random(n) < np.where(cols["cat3"] == "v2", 0.3, 0.1)
    label = np.arange(n) % 10
    pred = np.where(wrong, (label + 1) % 10, label)
    with tempfile.TemporaryDirectory(prefix="bench-cohorts-") as tmp:
        folder = Path(tmp) / "preds"
        folder.mkdir()
        pd.DataFrame({"index": np.arange(n), "label": label, "pred": pred}).to_parquet(folder / "dev.parquet")
        pd.DataFrame({"index": np.arange(n), **cols}).to_csv(Path(tmp) / "meta.csv", index=False)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "diagnose", "cohorts", str(folder), "--meta", str(Path(tmp) / "meta.csv"),
                              "--json"], env=env, check=True, capture_output=True, text=True).stdout
        took = time.perf_counter() - start
    doc = json.loads(out)
    print(f"{n:,} items, 20 columns: {took:.1f} s; {doc['slices_tried']:,} slices tried, "
          f"{doc['found_first_half']} passed on the first half; cohorts: {[c['description'] for c in doc['cohorts']]}")


if __name__ == "__main__":
    main()
