"""Predictions made elsewhere: `diagnose gaps/errors --predictions` on Parquet shards, against a bare scan.

Run: python bench/bench_predictions.py [--shards 20] [--rows 1000000] [--repeat 3]

Writes SHARDS x ROWS predictions (1,000 classes, 10% errors) as `dev/part-*.parquet`, then times, in
turn: a bare pyarrow dataset scan counting errors (the baseline: the least any reader must do),
`diagnose gaps --predictions` (streamed counts and a confusion matrix) and `diagnose errors
--predictions --sample 100` (a seeded reservoir over the misclassified rows), each in a fresh process,
with its peak RSS. Memory must not grow with the number of rows: rerun with --shards 100 to see.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package, interleaved_medians  # noqa: E402

BARE_SCAN = r"""
import sys, pyarrow.dataset as ds, pyarrow.compute as pc
n = errors = 0
for b in ds.dataset(sys.argv[1], format="parquet").to_batches(columns=["label", "pred"]):
    n += b.num_rows
    errors += pc.sum(pc.not_equal(b.column(0), b.column(1))).as_py() or 0
print(n, errors)
"""


def write_shards(out: Path, shards: int, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for s in range(shards):
        label = rng.integers(0, 1000, rows)
        pred = np.where(rng.random(rows) < 0.1, (label + rng.integers(1, 1000, rows)) % 1000, label)
        conf = rng.random(rows).astype(np.float32)
        pq.write_table(pa.table({
            "index": np.arange(s * rows, (s + 1) * rows), "label": label, "pred": pred, "confidence": conf,
            "p_label": (conf * rng.random(rows)).astype(np.float32), "loss": rng.random(rows).astype(np.float32),
        }), out / f"part-{s:05d}.parquet")


def _run(args: list[str]) -> None:
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


PEAK_OF_CHILD = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mib(args: list[str]) -> float:
    """Peak RSS of `args` run alone under a small wrapper process (its only child)."""
    out = subprocess.run([sys.executable, "-c", PEAK_OF_CHILD, *args], check=True, capture_output=True, text=True)
    return int(out.stdout) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=20)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    compile_package()
    exe = str(Path(sys.executable).with_name("diagnose"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_shards(root / "preds" / "dev", args.shards, args.rows)
        cmds = {
            "bare scan": [sys.executable, "-c", BARE_SCAN, str(root / "preds" / "dev")],
            "gaps --predictions": [exe, "gaps", "--predictions", str(root / "preds"), "--json"],
            "errors --predictions": [exe, "errors", "--predictions", str(root / "preds"), "--sample", "100",
                                     "--out", str(root / "sheet.csv"), "--force", "--json"],
        }
        t = interleaved_medians({k: (lambda c=c: _run(c)) for k, c in cmds.items()}, args.repeat)
        rss = {k: peak_rss_mib(c) for k, c in cmds.items()}
    n = args.shards * args.rows
    print(f"{n:,} predictions in {args.shards} Parquet shards (1,000 classes, 10% errors)")
    print(f"{'reader':<22} {'median s':>9} {'vs scan':>8} {'peak RSS':>12}")
    for k in cmds:
        print(f"{k:<22} {t[k]:>9.2f} {t[k] / t['bare scan']:>7.2f}x {rss[k]:>8.0f} MiB")
    print("each in a fresh process, start-up included")


if __name__ == "__main__":
    main()
