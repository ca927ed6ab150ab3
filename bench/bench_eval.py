"""Evaluation speed and memory: `diagnose gaps` against a bare `for xb in batches: model(xb)` loop.

Run: python bench/bench_eval.py [--items 200000] [--cnn-items 20000] [--repeat 3] [--memory-items 1000000]

Prints, for an MLP on 784 features and a small CNN on 3x32x32:
- the evaluation stage (diagnose.evaluate.evaluate_split over a memory-mapped split, writing the
  per-item Parquet rows) against the bare loop over the same pre-loaded tensor: target <= 1.05x;
- the whole command (`diagnose gaps ... --json` in a fresh process) against the bare loop plus
  a fresh process's `import torch`: target <= 1.15x;
and the peak memory of evaluating a memory-mapped split of 1,000,000 items against a process that
only imports torch and loads the model: target about 32 bytes per item beyond it.
Times are medians of --repeat runs, measured in this run (the machine is shared: trust ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package, interleaved_medians  # noqa: E402

BATCH = 256


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def make_case(root: Path, name: str, model: nn.Module, shape: tuple[int, ...], n: int) -> tuple[Path, Path]:
    """A TorchScript model file and a DATA folder with one `dev.pt` split of n random items."""
    torch.manual_seed(0)
    model.eval()
    model_path = root / f"{name}.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, *shape)), model_path)
    data = root / f"{name}-data"
    data.mkdir()
    g = torch.Generator().manual_seed(1)
    torch.save({"x": torch.randn(n, *shape, generator=g), "y": torch.randint(0, 10, (n,), generator=g)}, data / "dev.pt")
    return model_path, data


def bare_loop(model: nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        for i in range(0, len(x), BATCH):
            model(x[i : i + BATCH])


def evaluation_stage(module: nn.Module, split: object, workdir: Path) -> None:
    """What `diagnose gaps` does per split once the model and the split are open: evaluate_split with
    its per-item statistics and the Parquet rows, reading the memory-mapped file batch by batch."""
    from diagnose.evaluate import evaluate_split
    from diagnose.io.predictions import PredictionWriter, predictions_path

    with PredictionWriter(predictions_path(workdir, "dev"), regression=False, topk=5) as writer:
        evaluate_split(module, split, batch_size=BATCH, writer=writer, num_classes=10, show_progress=False)


def whole_command(model_path: Path, data: Path, workdir: Path) -> None:
    exe = Path(sys.executable).with_name("diagnose")
    subprocess.run([str(exe), "gaps", str(model_path), str(data), "--json", "--workdir", str(workdir)],
                   check=True, stdout=subprocess.DEVNULL)


def import_torch() -> None:
    subprocess.run([sys.executable, "-c", "import torch"], check=True)


def speed(root: Path, name: str, model: nn.Module, shape: tuple[int, ...], n: int, repeat: int) -> dict:
    model_path, data = make_case(root, name, model, shape, n)
    from diagnose.io.models import load_model
    from diagnose.io.splits import load_dataset

    x = torch.load(data / "dev.pt", weights_only=True)["x"]  # pre-loaded in memory, for the bare loop
    module = load_model(model_path).module  # one module for both loops: the same TorchScript warm-up
    split = load_dataset(data).splits["dev"]  # memory-mapped
    t = interleaved_medians({
        "bare": lambda: bare_loop(module, x),
        "stage": lambda: evaluation_stage(module, split, root / "wd"),
        "startup": import_torch,
        "whole": lambda: whole_command(model_path, data, root / "wd"),
    }, repeat)
    bare, stage, startup, whole = t["bare"], t["stage"], t["startup"], t["whole"]
    return {"case": name, "items": n, "bare_s": bare, "stage_s": stage, "stage_ratio": stage / bare,
            "import_torch_s": startup, "command_s": whole, "command_ratio": whole / (bare + startup)}


MEMORY_PROBE = r"""
import resource, sys, threading, time
from pathlib import Path

def rss_anon():
    for line in open('/proc/self/status'):
        if line.startswith('RssAnon:'):
            return int(line.split()[1]) * 1024
    return 0

peak = [0]
def watch():
    while True:
        peak[0] = max(peak[0], rss_anon()); time.sleep(0.005)
threading.Thread(target=watch, daemon=True).start()
import torch
mode, model_path, data, workdir = sys.argv[1:5]
from diagnose.io.models import load_model
module = load_model(Path(model_path)).module
if mode == 'evaluate':
    sys.argv = ['diagnose', 'gaps', model_path, data, '--json', '--workdir', workdir]
    import contextlib, io
    from diagnose.cli import main
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main()
        except SystemExit as e:
            assert not e.code, e.code
time.sleep(0.05)
peak[0] = max(peak[0], rss_anon())
print(peak[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _peak(mode: str, model_path: Path, data: Path, workdir: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", MEMORY_PROBE, mode, str(model_path), str(data), str(workdir)],
                         check=True, capture_output=True, text=True)
    anon, rss = (int(v) for v in res.stdout.split())
    return {"peak_anon_bytes": anon, "peak_rss_bytes": rss}


def memory(root: Path, n: int) -> dict:
    """Peak anonymous memory evaluating n and n/4 memory-mapped items, against import torch + model.

    The file's pages are mapped, not copied: they count in total RSS as page cache, which the kernel
    drops under pressure, so the figure compared is the anonymous (heap) part. Two sizes separate the
    fixed cost (pyarrow, thread pools, a few batches) from what grows with the split (bytes per item).
    """
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    model_path, big = make_case(root, "mem", model, (64,), n)
    _, small = make_case(root, "mem-small", model, (64,), n // 4)
    base = _peak("baseline", model_path, big, root / "wdm")
    peak_small = _peak("evaluate", model_path, small, root / "wdm")
    peak_big = _peak("evaluate", model_path, big, root / "wdm")
    per_item = (peak_big["peak_anon_bytes"] - peak_small["peak_anon_bytes"]) / (n - n // 4)
    fixed = peak_big["peak_anon_bytes"] - base["peak_anon_bytes"] - per_item * n
    return {"items": n, "split_file_mib": os.path.getsize(big / "dev.pt") / 2**20, "baseline": base,
            "evaluate_quarter": peak_small, "evaluate": peak_big, "bytes_per_item": per_item, "fixed_mib": fixed / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--cnn-items", type=int, default=20_000,
                    help="CNN items (a small CNN runs ~1.6k items/s on 2 cores: 200,000 would take minutes per pass)")
    ap.add_argument("--memory-items", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    compile_package()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = [speed(root, "mlp-784", mlp(), (784,), args.items, args.repeat),
                speed(root, "cnn-3x32x32", cnn(), (3, 32, 32), args.cnn_items, args.repeat)]
        mem = memory(root, args.memory_items)
    if args.json:
        print(json.dumps({"speed": rows, "memory": mem}, indent=2))
        return
    print(f"{'case':<12} {'items':>8} {'bare loop':>10} {'eval stage':>11} {'ratio':>6} {'import torch':>13} {'command':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['case']:<12} {r['items']:>8,} {r['bare_s']:>9.2f}s {r['stage_s']:>10.2f}s {r['stage_ratio']:>5.2f}x "
              f"{r['import_torch_s']:>12.2f}s {r['command_s']:>7.2f}s {r['command_ratio']:>5.2f}x")
    print("targets: eval stage <= 1.05x the bare loop; command <= 1.15x (bare loop + import torch)")
    b, e = mem["baseline"], mem["evaluate"]
    mib = 2**20
    print(f"memory, {mem['items']:,} items memory-mapped ({mem['split_file_mib']:.0f} MiB file): peak heap "
          f"{e['peak_anon_bytes'] / mib:.0f} MiB vs {b['peak_anon_bytes'] / mib:.0f} MiB for import torch + model; "
          f"growth with the split {mem['bytes_per_item']:.1f} bytes/item (target ~32), fixed {mem['fixed_mib']:.0f} MiB "
          f"(pyarrow, thread pools, batches); total RSS incl. mapped file pages {e['peak_rss_bytes'] / mib:.0f} MiB")


if __name__ == "__main__":
    main()
