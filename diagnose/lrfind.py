"""`diagnose lr-find`: the learning-rate range test run on a real model and its training split.

Each sweep trains its own in-memory copy of the starting weights (fresh from the architecture, or
the model's own weights when fine-tuning), so nothing the user has, in memory or on disk, changes:
torch-lr-finder and Lightning restore the model after the sweep, and their trackers show how that
goes wrong (davidtvs/pytorch-lr-finder #11, Lightning-AI/pytorch-lightning #6675, fastai #3013).
The reading of the curves is in `diagnose.core.lrfind`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from diagnose.checklist import _no_dropout, _target, compute_loss, infer_task
from diagnose.core.lrfind import LRFindResult, StopRule, exp_rates
from diagnose.evaluate import FORWARD_ERRORS, extract_logits
from diagnose.exceptions import ArgumentError, DataError, DiagnoseError

OPTIMIZERS = ("sgd", "adam", "adamw")
# The items one sweep may draw are read into memory once; a pool larger than this is cut down
# (the sweep then reuses items more often) rather than filling the machine's memory.
POOL_BYTES = 512 << 20


class Optimizer:
    """SGD (with momentum), Adam or AdamW, the update rules of torch.optim written out.

    torch.optim's first use imports torch._dynamo (5.4 s on a loaded 2-core machine, several times
    the three sweeps of a small model); these few lines apply the same updates (tests/test_lrfind.py checks them step for
    step against torch.optim.SGD / Adam / AdamW). `momentum` is SGD's momentum, or Adam's beta1 (as
    fastai reads it). weight_decay None: the optimizer's own default (0, 0, and 0.01 for AdamW)."""

    def __init__(self, name: str, params: list[torch.Tensor], *, momentum: float = 0.9, weight_decay: float | None = None) -> None:
        if name not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {name!r}")
        self.name, self.params, self.momentum = name, params, momentum
        self.weight_decay = weight_decay if weight_decay is not None else (0.01 if name == "adamw" else 0.0)
        self.beta2, self.eps, self.t = 0.999, 1e-8, 0
        self.buf: list[torch.Tensor | None] = [None] * len(params)
        self.sq: list[torch.Tensor | None] = [None] * len(params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        self.t += 1
        wd, mom = self.weight_decay, self.momentum
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.name == "sgd":
                if wd:
                    g = g.add(p, alpha=wd)
                if mom:
                    buf = self.buf[i]
                    if buf is None:
                        buf = self.buf[i] = g.clone()
                    else:
                        buf.mul_(mom).add_(g)
                    g = buf
                p.add_(g, alpha=-lr)
                continue
            if self.name == "adamw":
                p.mul_(1 - lr * wd)
            elif wd:
                g = g.add(p, alpha=wd)
            m, v = self.buf[i], self.sq[i]
            if m is None or v is None:
                m = self.buf[i] = torch.zeros_like(p)
                v = self.sq[i] = torch.zeros_like(p)
            m.lerp_(g, 1 - mom)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            bc1, bc2 = 1 - mom**self.t, 1 - self.beta2**self.t
            denom = (v.sqrt() / math.sqrt(bc2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-lr / bc1)


def load_pool(split: Any, items: int, *, seed: int, device: str | torch.device = "cpu") -> tuple[torch.Tensor, np.ndarray]:
    """A seeded sample of at most `items` items of the split, read once: (x on device, labels)."""
    n = int(split.n)
    per_item = 4 * max(1, int(np.prod(split.input_shape)))
    cap = max(1, min(n, items, POOL_BYTES // per_item))
    idx = np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False)) if cap < n else np.arange(n)
    xs, ys = [], []
    for b in split.batches(1024, indices=idx):
        xs.append(b.x)
        ys.append(np.asarray(b.y))
    return torch.cat(xs).to(device), np.concatenate(ys)


def sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: np.ndarray,
    lrs: np.ndarray,
    *,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float | None = None,
    batch_size: int = 64,
    seed: int = 0,
    advance: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int | None]:
    """Train `model` (changed in place: pass a copy) for len(lrs) mini-batches, the rate set to lrs[k]
    before step k, in a seeded order over (x, y). Returns the loss of each step (NaN after the stop)
    and the step at which the loss diverged (None if it never did)."""
    steps = len(lrs)
    losses = np.full(steps, np.nan)
    params: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    opt = Optimizer(optimizer, params, momentum=momentum, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    n = len(y)
    order = rng.permutation(n)
    pos = 0
    stop = StopRule()
    _no_dropout(model)  # dropout's noise would blur the curve; batch norm trains as it would
    task = ""
    target_all: torch.Tensor | None = None
    for k in range(steps):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos : pos + min(batch_size, n)]
        pos += len(idx)
        try:
            out = extract_logits(model(x[torch.from_numpy(idx).to(x.device)]))
            if not task:
                y = _class_labels(y, out)
                task = infer_task(out, y)
                target_all = _target(y, task, x.device)
            assert target_all is not None
            loss = compute_loss(out, target_all[torch.from_numpy(idx).to(x.device)], task)
        except FORWARD_ERRORS as exc:
            raise _raised(exc, k, float(lrs[k])) from None
        value = float(loss.detach())
        if k == 0 and not math.isfinite(value):
            raise DataError(f"MODEL: expected a finite loss on the first batch, before any update, got {value}; "
                            "the model's weights or outputs hold NaN or inf: check the checkpoint")
        if advance is not None:
            advance(1)
        if stop.update(value):
            if math.isfinite(value):
                losses[k] = value
            return losses, k
        losses[k] = value
        opt.zero_grad()
        try:
            loss.backward()
        except FORWARD_ERRORS as exc:
            raise _raised(exc, k, float(lrs[k])) from None
        opt.step(float(lrs[k]))
    return losses, None


def _class_labels(y: np.ndarray, out: torch.Tensor) -> np.ndarray:
    """Labels for a model with C >= 2 outputs are class indices: whole numbers stored as floats are
    taken as such; fractional ones are refused (a regression target for a classifier)."""
    if out.ndim != 2 or out.shape[1] < 2 or np.issubdtype(y.dtype, np.integer):
        return y
    whole = np.isfinite(y) & (y == np.round(y))
    if not whole.all():
        bad = y[~whole][:1]
        raise DataError(f"train: expected class indices for a model with {out.shape[1]} outputs, got "
                        f"fractional or non-finite labels such as {bad[0]:g}; pass integer labels")
    return y.astype(np.int64)


def _raised(exc: BaseException, step: int, lr: float) -> DiagnoseError:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    detail = lines[0][:160] if lines else type(exc).__name__
    return DiagnoseError(f"MODEL: expected a model that trains, got an error at step {step} of the sweep "
                         f"(learning rate {lr:.3g}): {type(exc).__name__}: {detail}; run `diagnose sanity` on it")


def lr_find(
    make_model: Callable[[int], nn.Module],
    split: Any,
    *,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float | None = None,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    batch_size: int = 64,
    repeats: int = 3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    advance: Callable[[int], None] | None = None,
) -> LRFindResult:
    """The range test, `repeats` times: sweep r starts from make_model(seed + r) (a new copy each
    time) and reads the batches in its own seeded order. Returns the sweeps and their reading."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    lrs = exp_rates(start, end, steps)
    if int(split.n) < batch_size:
        raise ArgumentError("batch_size", f"expected at most the {int(split.n)} items of the {split.name} split, got "
                            f"{batch_size}; pass a smaller batch_size (a sweep needs whole mini-batches)")
    x, y = load_pool(split, steps * batch_size, seed=seed, device=device)
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise DataError(f"{split.path}: expected finite inputs, got {bad:,} NaN or infinite values in the "
                        f"{len(y):,} items read; clean or impute them before training")
    losses = np.full((repeats, steps), np.nan)
    stopped: list[int | None] = []
    for r in range(repeats):
        torch.manual_seed(seed + r)
        model = make_model(seed + r).to(device)
        if not any(p.requires_grad for p in model.parameters()):
            raise ArgumentError("model", "expected trainable parameters, got none (no parameters, or all frozen); "
                                "a sweep has nothing to train")
        with torch.enable_grad():
            losses[r], s = sweep(
                model, x, y, lrs, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay,
                batch_size=batch_size, seed=seed + r, advance=advance,
            )
        stopped.append(s)
        if advance is not None and s is not None:
            advance(steps - s - 1)
    return LRFindResult(lrs, losses, stopped)


def starting_weights(
    model: nn.Module, *, fresh: bool, arch: str | None = None, arch_kwargs: dict | None = None, app_dir: Any = None
) -> tuple[Callable[[int], nn.Module], str]:
    """A factory of independent starting models for the sweeps, and words for where they come from.

    fresh with --arch: the factory itself, seeded per sweep (its own init code runs, as in training).
    fresh without: a copy with reset_parameters() on every submodule. Otherwise: a deep copy of the
    model's weights (fine-tuning); the loaded model itself is never trained."""
    if fresh and arch is not None:
        from diagnose.io.models import build_arch

        def build(seed: int) -> nn.Module:
            torch.manual_seed(seed)
            return build_arch(arch, arch_kwargs, app_dir=app_dir)

        return build, f"fresh weights built by --arch {arch}, a new draw per sweep"
    if fresh:
        from diagnose.checklist import reinitialise

        def reset(seed: int) -> nn.Module:
            torch.manual_seed(seed)
            m = reinitialise(model)
            if m is None:
                raise ValueError("no submodule has reset_parameters()")
            return m

        return reset, "fresh weights (reset_parameters() on a copy), a new draw per sweep"
    from diagnose.checklist import copy_model

    return (lambda seed: copy_model(model)), "the model's own weights (a copy per sweep: fine-tuning)"
