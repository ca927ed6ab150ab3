"""The truth test of `diagnose lr-find`: is the suggested rate really a good one?

For each architecture and optimizer, train for real at every rate of a log grid (a short budget of
200 or 400 steps, constant rate, three seeds, the best of the checkpoints taken every 20 steps) and at the
suggested rate, and compare: the suggestion must lie within one step of the half-decade grid of the grid's
best rate and below the first rate where training falls apart, and its validation loss must come within a
measured bound of the grid's best (10%, or what docs/testing.md measured for a task whose optimum is a knife
edge). The training loop here is plain torch.optim, independent of the sweep's own update code.
docs/commands/lr-find.md reports the numbers this prints (-s).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from diagnose.io.splits import load_dataset
from diagnose.lrfind import load_pool, lr_find, starting_weights

# Mini-batches of 64 per training run. The shapes CNN gets 400: at 200 it is still far from trained at
# every rate but one (0.03 -> 0.49, 0.1 -> 0.16, 0.115 -> 0.22, 0.14 -> 0.30 with SGD), a spike no
# reading of a range test can hit within 10%; at 400, 0.06 -> 0.081 and 0.1 -> 0.067.
BUDGETS = {"digits_mlp": 200, "shapes_cnn": 400}
SEEDS = (0, 1, 2)
# A run's validation loss: its best checkpoint, evaluated every 20 steps - retrospective checkpoint
# selection, as the Deep Learning Tuning Playbook recommends. (The last checkpoints of a constant
# high rate bounce by +-15% from seed to seed, more than the 10% the test allows.)
EVERY = 20
GRIDS = {"sgd": 10 ** np.arange(-3.0, 0.51, 0.5), "adam": 10 ** np.arange(-4.0, -0.49, 0.5)}
# The CNN's grid leaves out the ends where, at 200 steps, nothing was learned (1e-3, 3.2e-3) or
# everything diverged (1, 3.2): each CNN run costs ten MLP runs.
CNN_GRIDS = {"sgd": 10 ** np.arange(-2.5, 0.01, 0.5), "adam": 10 ** np.arange(-3.5, -0.99, 0.5)}
# The suggestion's loss over the grid's best (means of the three runs). SGD on the shapes CNN has its
# optimum on the edge of stability (0.1; at 0.13 one run in five fails) and a flat floor below it: at
# 0.05-0.1 the five-run means lie within 2-16% of each other, while single runs differ by 30-50%, so a mean
# of three moves the ratio from 0.83 to 1.43 with the runs chosen (docs/testing.md). 1.6 holds that worst
# case with room; the rate criteria below say what a practitioner needs there.
LOSS_BOUND = {("shapes_cnn", "sgd"): 1.6}
# Within one step of the half-decade grid of the best rate, and below the edge: the first grid rate above
# the best whose loss is more than twice the best.
RATE_FACTOR = 10**0.5
EDGE = 2.0


def _val_loss(make: Callable[[int], nn.Module], data: tuple, optimizer: str, lr: float, seed: int, budget: int) -> float:
    xt, yt, xv, yv = data
    torch.manual_seed(seed)
    model = make(seed)
    params = model.parameters()
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9) if optimizer == "sgd" else torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    order, pos, seen = torch.randperm(len(yt), generator=g), 0, []
    for step in range(1, budget + 1):
        if pos + 64 > len(yt):
            order, pos = torch.randperm(len(yt), generator=g), 0
        idx = order[pos : pos + 64]
        pos += 64
        loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
        if not torch.isfinite(loss):
            break  # diverged: the checkpoints before stay
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % EVERY == 0:
            with torch.no_grad():
                value = float(nn.functional.cross_entropy(model(xv), yv))
            seen.append(value if math.isfinite(value) else math.inf)
    return min(seen, default=math.inf)


def _case(root: Path, arch: str, optimizer: str, budget: int, grid: np.ndarray) -> dict:
    ds = load_dataset(root)
    make, _ = starting_weights(None, fresh=True, arch=arch)  # type: ignore[arg-type]
    xt, yt = load_pool(ds.splits["train"], 10**9, seed=0)
    xv, yv = load_pool(ds.splits["dev"], 10**9, seed=0)
    data = (xt, torch.from_numpy(yt), xv, torch.from_numpy(yv))
    res = lr_find(make, ds.splits["train"], optimizer=optimizer)
    assert res.suggested_lr is not None, res.notes

    def score(lr: float) -> float:
        return float(np.mean([_val_loss(make, data, optimizer, lr, s, budget) for s in SEEDS]))

    scores = {float(lr): score(float(lr)) for lr in grid}
    return {"suggested": res.suggested_lr, "at_suggested": score(res.suggested_lr), "grid": scores,
            "rules": {k: r.lr for k, r in res.rules.items()}}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    from fixtures.make_shapes import write_shapes

    return write_shapes(tmp_path_factory.mktemp("shapes"))


pytestmark = pytest.mark.slow  # about 650 s of training at a load of 15 on 2 cores; CI runs it

@pytest.mark.parametrize(
    ("task", "optimizer"),
    [
        ("digits_mlp", "sgd"),
        ("digits_mlp", "adam"),
        ("shapes_cnn", "sgd"),
        ("shapes_cnn", "adam"),
    ],
)
def test_suggestion_trains_near_the_grid_best(task, optimizer, example_data, example_arch, shapes) -> None:
    cnn = f"{Path(__file__).resolve().parents[1] / 'fixtures' / 'make_shapes.py'}:ShapesCNN"
    root, arch = (example_data, example_arch) if task == "digits_mlp" else (shapes, cnn)
    grid = (GRIDS if task == "digits_mlp" else CNN_GRIDS)[optimizer]
    out = _case(root, arch, optimizer, BUDGETS[task], grid)
    best_lr, best = min(out["grid"].items(), key=lambda kv: kv[1])
    print(f"\n{task} {optimizer}: suggested {out['suggested']:.3g} -> {out['at_suggested']:.3f}; "
          f"grid best {best_lr:.3g} -> {best:.3f}; rules {out['rules']}; grid "
          + ", ".join(f"{lr:.2g}: {v:.3f}" for lr, v in out["grid"].items()))
    edge = min((lr for lr, v in out["grid"].items() if lr > best_lr and v > EDGE * best), default=math.inf)
    assert best_lr / RATE_FACTOR <= out["suggested"] <= best_lr * RATE_FACTOR, out
    assert out["suggested"] < edge, out
    assert out["at_suggested"] <= LOSS_BOUND.get((task, optimizer), 1.10) * best, out
