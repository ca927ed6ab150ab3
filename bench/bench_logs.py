"""Reading training logs: diagnose's parser against the usual readers, on the same files, same run.

    python bench/bench_logs.py [--steps 1000000] [--tb-points 200000] [--repeat 5]

Writes a 1,000,000-step log (step, epoch, loss, acc, lr) as CSV, JSON lines and plain text, and a
TensorBoard event file of 200,000 scalar points, into a temporary folder; prints medians and ratios.
Targets: CSV <= 1.5x pandas.read_csv; JSON lines <= 1.5x the faster of polars.read_ndjson and
pandas.read_json(lines=True, engine="pyarrow"); text <= 1 s; TensorBoard >= 5x faster than tbparse;
`diagnose curves` end to end on the CSV (parse, findings, PNG) <= 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    compile_package,
    interleaved_medians,
    median_time,
    synthetic_run,
    write_csv,
    write_jsonl,
    write_tensorboard,
    write_text,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--tb-points", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    compile_package()

    import pandas as pd

    from diagnose.io.logs import parse_log

    rows: list[tuple[str, str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t0 = time.perf_counter()
        run = synthetic_run(args.steps)
        write_csv(d / "run.csv", run)
        write_jsonl(d / "run.jsonl", run)
        write_text(d / "run.log", run)
        write_tensorboard(d / "tb", args.tb_points)
        print(f"inputs written in {time.perf_counter() - t0:.1f} s to {d}", file=sys.stderr)
        r = args.repeat

        # Each reader and its baseline are timed in turn (interleaved_medians): the machine's speed
        # drifts within a minute, and a ratio of two medians taken minutes apart would carry that drift.
        t = interleaved_medians({"base": lambda: pd.read_csv(d / "run.csv"), "ours": lambda: parse_log(d / "run.csv")}, r)
        rows.append((f"CSV, {args.steps:,} steps", "pandas.read_csv", t["base"], t["ours"], "<= 1.5x"))

        import polars as pl

        t = interleaved_medians({
            "polars": lambda: pl.read_ndjson(d / "run.jsonl"),
            "pandas": lambda: pd.read_json(d / "run.jsonl", lines=True, engine="pyarrow"),
            "ours": lambda: parse_log(d / "run.jsonl"),
        }, r)
        pol, pdj, ours = t["polars"], t["pandas"], t["ours"]
        best, name = (pol, "polars.read_ndjson") if pol <= pdj else (pdj, "pandas.read_json(pyarrow)")
        rows.append((f"JSON lines, {args.steps:,} steps", name, best, ours, "<= 1.5x"))
        other = f"(polars {pol:.2f} s, pandas-pyarrow {pdj:.2f} s)"

        names = ["a", "epoch", "b", "step", "c", "loss", "d", "acc", "e", "lr"]
        t = interleaved_medians({
            "known": lambda: pd.read_csv(d / "run.log", sep=" ", header=None, names=names, skiprows=1, low_memory=False),
            "ours": lambda: parse_log(d / "run.log"),
        }, r)
        rows.append((f"text, {args.steps:,} lines", "pandas.read_csv(sep=' '), layout given", t["known"], t["ours"], "<= 1 s"))

        ours = median_time(lambda: parse_log(d / "tb"), r)
        try:
            from tbparse import SummaryReader

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                base = median_time(lambda: SummaryReader(str(d / "tb")).scalars, max(1, r // 3), warmup=0)
            rows.append((f"TensorBoard, {args.tb_points:,} points", "tbparse", base, ours, ">= 5x faster"))
        except ImportError:
            rows.append((f"TensorBoard, {args.tb_points:,} points", "tbparse (not installed)", float("nan"), ours, ">= 5x faster"))

        cmd = [sys.executable, "-m", "diagnose", "curves", str(d / "run.csv"), "--out", str(d / "run.png"), "--json"]
        times: list[float] = []
        for _ in range(r + 1):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        e2e = statistics.median(times[1:])  # the first run writes the figure anew
        rows.append((f"`diagnose curves` end to end, CSV {args.steps:,} steps", "(target)", 3.0, e2e, "<= 3 s"))

    print("| input | baseline | baseline s | diagnose s | ratio | target |\n|---|---|---|---|---|---|")
    for what, base_name, base, ours, target in rows:
        ratio = ours / base if base == base else float("nan")
        shown = f"{ratio:.2f}x" if "faster" not in target else f"{base / ours:.1f}x faster"
        print(f"| {what} | {base_name} | {base:.2f} | {ours:.2f} | {shown} | {target} |")
    print(f"\nJSON lines references: {other}")


if __name__ == "__main__":
    main()
