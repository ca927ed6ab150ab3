"""Overhead of a `Watch` on a real training loop: the same loop with and without it.

    python bench/bench_callbacks.py [--epochs 20] [--steps 100] [--repeat 5]

A small real model (an MLP 784-256-256-10 on random images, batch 64, SGD with momentum) trains for
`epochs` x `steps` steps with an evaluation each epoch. Both loops read the loss with `.item()` each
step (any loop that prints or logs it does); the watched one also calls `watch.log` each step and at
each evaluation (writing the event log, judging with the `curves` findings). Target: the watched
loop's time per step at most 2% above the bare loop's. Printed: the end-to-end ratio of the medians
(runs interleaved) and the time spent inside the watch's calls as a share of the bare loop's time.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package, interleaved_medians  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    compile_package()
    import torch

    from diagnose.callbacks import Watch

    torch.manual_seed(0)
    x = torch.randn(args.steps * 64, 784)
    y = torch.randint(0, 10, (len(x),))
    xv, yv = torch.randn(512, 784), torch.randint(0, 10, (512,))
    folder = Path(tempfile.mkdtemp())
    runs = [0]
    judgements = [0]
    inside = [0.0]
    spent: list[float] = []

    def train(watched: bool) -> None:
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
        )
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        runs[0] += 1
        watch = Watch(folder / f"run{runs[0]}.jsonl", stop_on=("diverged",), stream=io.StringIO()) if watched else None
        step = 0
        for epoch in range(args.epochs):
            for i in range(args.steps):
                loss = torch.nn.functional.cross_entropy(model(x[i * 64 : (i + 1) * 64]), y[i * 64 : (i + 1) * 64])
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                value = loss.item()
                if watch is not None:
                    t0 = time.perf_counter()
                    watch.log(step=step, epoch=epoch, train_loss=value, lr=0.01)
                    inside[0] += time.perf_counter() - t0
            with torch.no_grad():
                out = model(xv)
                val_loss = torch.nn.functional.cross_entropy(out, yv).item()
                val_acc = (out.argmax(1) == yv).float().mean().item()
            if watch is not None:
                t0 = time.perf_counter()
                watch.log(val_loss=val_loss, val_acc=val_acc)
                inside[0] += time.perf_counter() - t0
        if watch is not None:
            t0 = time.perf_counter()
            watch.close()
            inside[0] += time.perf_counter() - t0
            spent.append(inside[0])
            inside[0] = 0.0
            judgements[0] = watch.judgements

    times = interleaved_medians({"bare": lambda: train(False), "watched": lambda: train(True)}, repeat=args.repeat)
    steps = args.epochs * args.steps
    bare, watched = times["bare"] / steps, times["watched"] / steps
    print(f"small MLP, {steps} steps of batch 64, {args.epochs} evaluations; torch threads: {torch.get_num_threads()}")
    print(f"bare loop:    {bare * 1e3:.3f} ms/step")
    print(f"with Watch:   {watched * 1e3:.3f} ms/step ({judgements[0]} judgements per run)")
    print(f"overhead:     {(watched / bare - 1) * 100:+.2f}% end to end (target <= 2%)  ratio {watched / bare:.4f}")
    # On a shared machine the end-to-end difference carries the load's drift; the time spent inside
    # the watch's calls (log, close) is its cost itself.
    inside_share = statistics.median(spent) / times["bare"]
    print(f"inside Watch: {inside_share * 100:.2f}% of the bare loop's time (median over runs)")


if __name__ == "__main__":
    main()
