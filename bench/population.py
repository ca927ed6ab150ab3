"""A population of small training runs, each really trained on CPU with a known condition, to measure
how well `diagnose curves`' findings generalize.

    python bench/population.py            # train (or load from the cache) every run, print a count
    python bench/population.py --report   # the detection table on the families not used for calibration
    python bench/population.py --report --all   # the same on every family (calibration included)

Each run is an MLP on one of scikit-learn's bundled sets (digits, wine, breast_cancer, iris), a small
CNN on synthetic 8x8 images, or a GRU on synthetic sequences, trained with SGD, SGD with momentum, Adam
or AdamW under a constant, step, cosine or warm-up schedule, logged per step or per epoch, and labelled
by how it was made (`CONDITIONS`). A run's curves are cached under bench/.population-cache/, keyed by
everything that made it, so a second pass costs no training. Calibration uses the digits and wine
families; the report covers the others, so every figure is out of family.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CACHE = Path(__file__).resolve().parent / ".population-cache"
CALIBRATION = ("digits", "wine")
FAMILIES = ("digits", "wine", "breast_cancer", "iris", "images", "sequences")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "warmup")

# condition -> the warning ids that count as detecting it (empty: the run must get no warning)
CONDITIONS: dict[str, tuple[str, ...]] = {
    "healthy": (),
    "resumed": (),
    "unstable": ("lr_too_high", "diverged"),
    "divergent": ("diverged", "lr_too_high"),
    "too_low": ("lr_too_low", "not_learning"),
    "chance": ("not_learning",),
    "shuffled": ("memorizing",),
    "overfit": ("overfitting",),
    "underfit": ("underfitting",),
    "noisy_val": ("noisy",),
    "nan_start": ("diverged",),
}
# A width-1 bottleneck cannot hold 2 or 3 classes back (one number separates them); the condition is
# made only where it limits the fit.
UNDERFIT_FAMILIES = ("digits", "images", "sequences")
# The learning rate each optimizer trains well with on these tasks, and the factors that make the
# conditions: too low divides it, unstable multiplies it (at a constant rate), divergent much more.
GOOD_LR = {"sgd": 0.1, "momentum": 0.03, "adam": 3e-3, "adamw": 3e-3}
TOO_LOW = 1 / 60
UNSTABLE = {"sgd": 12.0, "momentum": 15.0, "adam": 30.0, "adamw": 30.0}
DIVERGENT = {"sgd": 400.0, "momentum": 600.0, "adam": 3000.0, "adamw": 3000.0}


@dataclass(frozen=True)
class Spec:
    """How one run is made."""

    family: str
    condition: str
    optimizer: str
    schedule: str
    logging: str  # "step" | "epoch"
    seed: int
    fmt: str  # how the log is written and read back: "direct", "keras_csv", "lightning_csv", "jsonl"

    @property
    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def held_out(self) -> bool:
        return self.family not in CALIBRATION


@dataclass
class Run:
    """A trained run: its curves per logged name (x arrays and values) and what is known about it."""

    spec: Spec
    curves: dict[str, dict[str, np.ndarray]]  # name -> {"step", "epoch", "value"}
    classes: int
    onset: int | None = None  # overfit: the epoch of the validation-loss minimum
    extra: dict[str, Any] = field(default_factory=dict)


# --- data ----------------------------------------------------------------------------------------


def _standardize(x: np.ndarray) -> np.ndarray:
    mu, sd = x.mean(axis=0), x.std(axis=0)
    return (x - mu) / np.where(sd > 0, sd, 1.0)


def _images(rng: np.random.Generator, n: int, classes: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """8x8 one-channel images of `classes` stroke patterns at random offsets, with pixel noise."""
    y = rng.integers(0, classes, n)
    x = np.zeros((n, 1, 8, 8), dtype=np.float32)
    for i, c in enumerate(y):
        r, s = rng.integers(1, 6, 2)
        img = x[i, 0]
        if c == 0:
            img[r, 1:7] = 1
        elif c == 1:
            img[1:7, s] = 1
        elif c == 2:
            np.fill_diagonal(img, 1)
        elif c == 3:
            np.fill_diagonal(np.fliplr(img), 1)
        elif c == 4:
            img[r - 1 : r + 2, s - 1 : s + 2] = 1
        else:
            img[r, 1:7] = 1
            img[1:7, s] = 1
    x += rng.normal(0, 0.3, x.shape).astype(np.float32)
    return x, y


def _sequences(rng: np.random.Generator, n: int, classes: int = 4, length: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine sequences (length, 1) whose frequency is the class."""
    y = rng.integers(0, classes, n)
    t = np.arange(length)
    phase = rng.uniform(0, 2 * np.pi, n)
    freq = 0.25 + 0.22 * y
    x = np.sin(freq[:, None] * t[None, :] + phase[:, None]) + rng.normal(0, 0.3, (n, length))
    return x[:, :, None].astype(np.float32), y


def load_family(family: str, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(inputs, labels, classes) of a family; the synthetic ones drawn from `seed`."""
    rng = np.random.default_rng(1000 + seed)
    if family in ("digits", "wine", "breast_cancer", "iris"):
        from sklearn import datasets

        loader = {"digits": datasets.load_digits, "wine": datasets.load_wine,
                  "breast_cancer": datasets.load_breast_cancer, "iris": datasets.load_iris}[family]
        bunch = loader()
        x, y = _standardize(bunch.data.astype(np.float64)).astype(np.float32), bunch.target.astype(np.int64)
        return x, y, int(y.max()) + 1
    if family == "images":
        x, y = _images(rng, 900)
        return x, y.astype(np.int64), 6
    x, y = _sequences(rng, 900)
    return x, y.astype(np.int64), 4


# --- models and training -------------------------------------------------------------------------


def make_model(family: str, in_shape: tuple[int, ...], classes: int, *, width: int, bottleneck: int | None) -> Any:
    import torch
    from torch import nn

    narrow = [nn.Linear(width, bottleneck), nn.Linear(bottleneck, classes)] if bottleneck else [nn.Linear(width, classes)]
    if family == "images":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(8 * 16, width), nn.ReLU(), *narrow)
    if family == "sequences":

        class GRUNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.gru = nn.GRU(1, width, batch_first=True)
                self.head = nn.Sequential(*narrow)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.head(self.gru(x)[1][0])

        return GRUNet()
    return nn.Sequential(nn.Linear(in_shape[0], width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), *narrow)


def _schedule_factor(schedule: str, progress: float) -> float:
    """The learning-rate multiplier at `progress` in [0, 1] of the run."""
    if schedule == "step":
        return 0.1 if progress >= 0.6 else 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "warmup":
        return min(1.0, (progress + 1e-9) / 0.1)
    return 1.0


def train(spec: Spec) -> Run:
    """Train one run as `spec` says and record its curves."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    x, y, classes = load_family(spec.family, spec.seed)
    order = rng.permutation(len(y))
    n_val = {"digits": 400, "wine": 58, "breast_cancer": 189, "iris": 50}.get(spec.family, 300)
    c = spec.condition
    # noisy validation: each evaluation scores a fresh random draw of a few items from the validation
    # set (a capped, shuffled validation loader), so the figures swing from one epoch to the next
    n_draw = max(8, 2 * classes + 4) if c == "noisy_val" else None
    val_i, train_i = order[:n_val], order[n_val:]
    epochs, batch, width = 20, 64, 32
    if spec.family in ("wine", "iris"):
        batch = 16
    train_i = train_i[:384]
    if c == "overfit":
        train_i = train_i[: {"digits": 48, "images": 48, "sequences": 48}.get(spec.family, 30)]
        epochs, batch, width = 60, 16, 128
    if c == "shuffled":
        train_i = train_i[:96]
        epochs, batch, width = 50, 32, 128
    if c in ("too_low", "resumed"):
        epochs = 30
    xt, yt = torch.from_numpy(x[train_i]), torch.from_numpy(y[train_i])
    xv, yv = torch.from_numpy(x[val_i]), torch.from_numpy(y[val_i])
    if c == "shuffled":  # labels that do not belong to their inputs
        yt = yt[torch.from_numpy(rng.permutation(len(yt)))]
    if c == "chance":  # an input pipeline that feeds the same blank input for every item
        xt, xv = torch.zeros_like(xt), torch.zeros_like(xv)
    if c == "nan_start":  # one feature missing (NaN) in every item: a broken pipeline
        xt, xv = xt.clone(), xv.clone()
        xt.view(len(xt), -1)[:, 0] = float("nan")
        xv.view(len(xv), -1)[:, 0] = float("nan")
    bottleneck = 1 if c == "underfit" else None
    model = make_model(spec.family, tuple(x.shape[1:]), classes, width=width, bottleneck=bottleneck)
    lr = GOOD_LR[spec.optimizer]
    if spec.family == "sequences":
        lr *= 4  # the GRU needs larger Adam steps to learn the frequencies within 120 steps
    if c == "too_low":
        lr *= TOO_LOW
    elif c == "unstable":
        lr *= UNSTABLE[spec.optimizer]
    elif c == "divergent":
        lr *= DIVERGENT[spec.optimizer]
    elif c == "overfit" and spec.optimizer in ("sgd", "momentum"):
        lr *= 3  # plain SGD at the usual rate is still fitting the 48 items when the run ends
    schedule = "constant" if c in ("unstable", "divergent", "too_low") else spec.schedule
    params = model.parameters()
    opt: torch.optim.Optimizer
    if spec.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    elif spec.optimizer == "momentum":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    elif spec.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(yt) / batch)
    total = epochs * steps_per_epoch
    # healthy runs use label smoothing (Szegedy et al., 2016), as well-tuned classifiers commonly do: it keeps
    # the predictions from growing over-confident, so validation loss does not climb once training fits
    lossf = nn.CrossEntropyLoss(label_smoothing=0.1 if c in ("healthy", "resumed") else 0.0)
    rec: dict[str, list[tuple[float, float, float]]] = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr")}
    step = 0
    gen = torch.Generator().manual_seed(spec.seed)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(yt), generator=gen)
        losses, correct = [], 0
        for b in range(steps_per_epoch):
            idx = perm[b * batch : (b + 1) * batch]
            cur = lr * _schedule_factor(schedule, step / total)
            for g in opt.param_groups:
                g["lr"] = cur
            out = model(xt[idx])
            loss = lossf(out, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            lv = float(loss.detach())
            losses.append(lv)
            correct += int((out.detach().argmax(1) == yt[idx]).sum())
            if spec.logging == "step":
                rec["train_loss"].append((step, epoch + (b + 1) / steps_per_epoch, lv))
                rec["lr"].append((step, epoch + (b + 1) / steps_per_epoch, cur))
        model.eval()
        with torch.no_grad():
            xe, ye = xv, yv
            if n_draw is not None:
                pick = torch.randperm(len(yv), generator=gen)[:n_draw]
                xe, ye = xv[pick], yv[pick]
            out = model(xe)
            vl = float(lossf(out, ye))
            va = float((out.argmax(1) == ye).float().mean())
        if spec.logging == "epoch":
            rec["train_loss"].append((step, epoch, float(np.mean(losses))))
            rec["lr"].append((step, epoch, cur))
        rec["train_acc"].append((step, epoch, correct / len(yt)))
        rec["val_loss"].append((step, epoch, vl))
        rec["val_acc"].append((step, epoch, va))
    curves = {}
    first_epoch = epochs // 3 if c == "resumed" else 0  # a resumed run logs from its checkpoint on
    for name, pts in rec.items():
        arr = np.array(pts, dtype=np.float64).reshape(-1, 3)
        keep = arr[:, 1] >= first_epoch
        arr = arr[keep]
        curves[name] = {"step": arr[:, 0], "epoch": arr[:, 1], "value": arr[:, 2]}
    onset = None
    if c == "overfit":
        v = curves["val_loss"]
        onset = int(v["epoch"][int(np.nanargmin(v["value"]))])
    return Run(spec, curves, classes, onset)


# --- the population --------------------------------------------------------------------------------


def specs(repeats: int = 3) -> list[Spec]:
    """Every run of the population, in a fixed order: each condition on each family it applies to,
    with the optimizer, schedule, logging and log format varied over the repeats."""
    out = []
    fmts = ("direct", "keras_csv", "lightning_csv", "jsonl")
    cell = 0
    for family in FAMILIES:
        for condition in CONDITIONS:
            if condition == "underfit" and family not in UNDERFIT_FAMILIES:
                continue
            cell += 1
            reps = repeats * (2 if condition == "healthy" else 1)
            for seed in range(reps):
                k = seed + cell
                opt = OPTIMIZERS[k % 4]
                if family == "sequences":  # plain SGD does not train the GRU within the run's 120 steps
                    opt = ("adam", "adamw")[k % 2]
                sched = SCHEDULES[(k // 4 + seed) % 4]
                logging = "step" if (k + seed // 4) % 2 == 0 else "epoch"
                fmt = fmts[k % len(fmts)]
                if fmt == "keras_csv" and logging == "step":
                    fmt = "lightning_csv"
                out.append(Spec(family, condition, opt, sched, logging, seed, fmt))
    return out


def _save(path: Path, run: Run) -> None:
    arrays = {f"{name}/{k}": v for name, d in run.curves.items() for k, v in d.items()}
    meta = json.dumps({"classes": run.classes, "onset": run.onset})
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, __meta__=np.array(meta), **arrays)
    tmp.replace(path)


def _load(path: Path, spec: Spec) -> Run:
    with np.load(path) as z:
        meta = json.loads(str(z["__meta__"]))
        curves: dict[str, dict[str, np.ndarray]] = {}
        for key in z.files:
            if key == "__meta__":
                continue
            name, k = key.split("/")
            curves.setdefault(name, {})[k] = z[key]
    return Run(spec, curves, meta["classes"], meta["onset"])


def population(repeats: int = 3, *, families: tuple[str, ...] = FAMILIES, verbose: bool = False) -> Iterator[Run]:
    """Every run, trained or read from the cache."""
    CACHE.mkdir(exist_ok=True)
    for spec in specs(repeats):
        if spec.family not in families:
            continue
        path = CACHE / f"{spec.key}.npz"
        if path.is_file():
            yield _load(path, spec)
            continue
        t0 = time.perf_counter()
        run = train(spec)
        _save(path, run)
        if verbose:
            print(f"trained {spec.family} {spec.condition} {spec.optimizer} {spec.schedule} {spec.logging} "
                  f"seed {spec.seed} in {time.perf_counter() - t0:.2f}s", file=sys.stderr)
        yield run


# --- logs: the run's curves as the findings take them -----------------------------------------------


def to_series(run: Run) -> dict[str, Any]:
    """The run's curves as `find_hints` takes them (canonical names)."""
    from diagnose.core.hints import Series

    return {name: Series(name, name, d["step"], d["epoch"], d["value"]) for name, d in run.curves.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", action="store_true", help="print the detection table")
    ap.add_argument("--all", action="store_true", help="report on every family, calibration included")
    ap.add_argument("--calibration", action="store_true", help="report on the calibration families only")
    ap.add_argument("--repeats", type=int, default=5, help="runs per condition and family (healthy: twice)")
    ap.add_argument("--misses", action="store_true", help="list the runs the findings got wrong")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    runs = list(population(args.repeats, verbose=True))
    print(f"{len(runs)} runs ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    if not args.report:
        return 0
    if args.calibration:
        pick = [r for r in runs if not r.spec.held_out]
        scope = "calibration families: " + ", ".join(CALIBRATION)
    elif args.all:
        pick, scope = runs, "every family"
    else:
        pick = [r for r in runs if r.spec.held_out]
        scope = "held-out families: " + ", ".join(f for f in FAMILIES if f not in CALIBRATION)
    from bench.population_report import outcomes, table

    res = outcomes(pick)
    print(f"{len(pick)} runs, {scope}\n")
    print(table(res))
    if args.misses:
        for r in res:
            if not r.detected or (r.spec.condition == "overfit" and (r.onset_found is None or r.onset_true is None
                                                                       or abs(r.onset_found - r.onset_true) > 1)):
                s = r.spec
                print(f"miss: {s.family} {s.condition} {s.optimizer} {s.schedule} {s.logging} {s.fmt} seed {s.seed}: "
                      f"{r.warns} onset {r.onset_true} found {r.onset_found} {r.error}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
