"""Drawing a long per-step series: diagnose's figure (min/max envelope per pixel column + smoothed
line) against matplotlib drawing every point, same data, same figure size, PNG.

    python bench/bench_plot.py [--points 10000000] [--repeat 3]

Target: 10,000,000 points drawn in < 2 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package, median_time  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    compile_package()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diagnose.core.hints import Series
    from diagnose.plots.curves import RunCurves, draw_curves, envelope, save_figure

    n = args.points
    rng = np.random.default_rng(0)
    step = np.arange(n, dtype=np.float64)
    loss = 2.0 * np.exp(-step / (n / 5)) + 0.1 + 0.1 * rng.random(n)
    series = Series("train_loss", "loss", step, np.full(n, np.nan), loss)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        def raw() -> None:
            fig, ax = plt.subplots(figsize=(10, 3.8), dpi=100)
            ax.plot(step, loss, linewidth=0.5)
            fig.savefig(out / "raw.png", dpi=110)
            plt.close(fig)

        def ours() -> None:
            fig = draw_curves([RunCurves("bench", {"train_loss": series})])
            save_figure(fig, str(out / "ours.png"))

        def reduce_only() -> None:
            envelope(step, loss)

        t_raw = median_time(raw, args.repeat)
        t_ours = median_time(ours, args.repeat)
        t_red = median_time(reduce_only, args.repeat)
    print("| points | matplotlib raw plot + save | diagnose figure + save | the envelope alone | speed-up | target |")
    print("|---|---|---|---|---|---|")
    print(f"| {n:,} | {t_raw:.2f} s | {t_ours:.2f} s | {t_red:.3f} s | {t_raw / t_ours:.1f}x | < 2 s |")


if __name__ == "__main__":
    main()
