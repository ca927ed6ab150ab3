"""How far lr-find's suggestion for the shapes CNN with SGD sits from the best rate of a grid, measured
over several range-test seeds and training seeds (tests/test_lrfind_truth.py reads one of each).

    python bench/lrfind_margin.py --out margin.json [--sweep-seeds 0 1 2 3 4] [--train-seeds 0 1 2 3 4]

Run it once per torch kernel variant (ATEN_CPU_CAPABILITY=default / avx2, OMP_NUM_THREADS=1 or not);
docs/testing.md holds the numbers. The training loop is the truth test's own (`_val_loss`): plain
torch.optim SGD with momentum 0.9, 400 mini-batches of 64 at a constant rate, the best of the
checkpoints taken every 20 steps.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diagnose.io.splits import load_dataset  # noqa: E402
from diagnose.lrfind import load_pool, lr_find, starting_weights  # noqa: E402
from fixtures.make_shapes import write_shapes  # noqa: E402

# The truth test's grid around its best rate (0.1), in quarter decades, and its far end (1.0, diverges
# at once). 3.2e-3 and 1e-2 are left out: at 400 steps they are far from trained (0.03 -> 0.2).
RATES = [float(v) for v in 10 ** np.arange(-1.5, -0.49, 0.125)] + [1.0]


def _truth_module():
    spec = importlib.util.spec_from_file_location("lrfind_truth", ROOT / "tests" / "test_lrfind_truth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sweep-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--train-seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    ap.add_argument("--rates", type=float, nargs="*", default=RATES)
    args = ap.parse_args()
    truth = _truth_module()
    root = Path(tempfile.mkdtemp()) / "shapes"
    write_shapes(root)
    ds = load_dataset(root)
    make, _ = starting_weights(None, fresh=True, arch=f"{ROOT / 'fixtures' / 'make_shapes.py'}:ShapesCNN")  # type: ignore[arg-type]
    xt, yt = load_pool(ds.splits["train"], 10**9, seed=0)
    xv, yv = load_pool(ds.splits["dev"], 10**9, seed=0)
    data = (xt, torch.from_numpy(yt), xv, torch.from_numpy(yv))
    variant = {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE")}
    variant["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    suggested = {}
    for s in args.sweep_seeds:
        res = lr_find(make, ds.splits["train"], optimizer="sgd", seed=s)
        suggested[s] = {"lr": res.suggested_lr, "rules": {k: r.lr for k, r in res.rules.items()}}
        print(f"sweep seed {s}: suggested {res.suggested_lr:.4g} rules {suggested[s]['rules']}", flush=True)
    rates = sorted(set(args.rates) | {v["lr"] for v in suggested.values() if v["lr"]}) if args.train_seeds else []
    table: dict[float, dict[int, float]] = {}
    t0 = time.time()
    for lr in rates:
        table[lr] = {s: truth._val_loss(make, data, "sgd", lr, s, truth.BUDGETS["shapes_cnn"]) for s in args.train_seeds}
        print(f"{lr:.4g}: " + " ".join(f"{v:.4f}" for v in table[lr].values()) + f"  ({time.time() - t0:.0f} s)", flush=True)
    args.out.write_text(json.dumps({"variant": variant, "suggested": suggested,
                                    "val_loss": {str(k): v for k, v in table.items()}}, indent=1) + "\n")


if __name__ == "__main__":
    main()
