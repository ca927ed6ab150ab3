"""Streaming evaluation of a model over a split: per-batch outputs to a Parquet writer, counts in memory.

Memory stays at a few batches plus the split's labels: logits are reduced per batch to per-item
rows (prediction, confidence, loss, top-5) that go straight to disk, and to SplitCounts (counts, sums,
a C x C confusion matrix). Tensor data is sliced in batches, never collated item by item (a
DataLoader's per-item collation costs more than a small model's forward pass).

`predict_batch` is the whole per-batch computation (forward_logits, check_finite, item_statistics);
`evaluate_split` runs it over a split or an explicit `indices` array, so a distributed runner can give
each rank its share and merge the rows, with the statistics taken over chunks of several batches.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from diagnose.core.gaps import Metric, SplitCounts
from diagnose.defaults import BATCH_SIZE, DEVICE, PRECISION, SEED
from diagnose.exceptions import ArgumentError, DataError, DiagnoseError, EvaluationError
from diagnose.io.models import describe_input, image_channels
from diagnose.io.predictions import TOPK, PredictionWriter
from diagnose.io.splits import Dataset, Split
from diagnose.measuring import measuring
from diagnose.progress import progress_bar

Precision = Literal["fp32", "bf16", "fp16"]
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """auto -> cuda, else mps, else cpu. An unavailable device is a usage error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ArgumentError("device", "expected a CUDA GPU, got none visible to torch; use device cpu", "cuda")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ArgumentError("device", "expected Apple's Metal backend, got none available; use device cpu", "mps")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise ArgumentError("device", f"expected auto, cpu, cuda or mps, got {name!r}; pick one of those", name)
    return torch.device(name)


def match_image_channels(dataset: Dataset, module: torch.nn.Module) -> Dataset:
    """Decode image folders as grayscale or RGB to match what the model's first layer takes.

    Image files are read as stored (the first image's mode) until a model says otherwise: a Conv's
    in_channels, or a Linear's in_features = C x H x W. Other splits are returned as they are.
    """
    images = [s for s in dataset.splits.values() if s.format == "images"]
    if not images:
        return dataset
    channels, height, width = images[0].input_shape
    wanted = image_channels(module, (int(height), int(width)))
    if wanted is None or wanted == channels:
        return dataset
    return dataset.with_image_channels(wanted)


def subsample(n: int, max_items: int | None, *, seed: int, salt: int = 0) -> np.ndarray | None:
    """A seeded uniform sample of min(n, max_items) positions, sorted; None when the split is whole."""
    if max_items is None or max_items >= n:
        return None
    if max_items <= 0:
        raise ArgumentError("max_items", f"expected a positive number, got {max_items}; pass e.g. 1000")
    rng = np.random.default_rng([seed, salt])
    return np.sort(rng.choice(n, size=max_items, replace=False)).astype(np.int64)


def _autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def extract_logits(raw: object, batch: int | None = None) -> torch.Tensor:
    """The logits from whatever forward returned: a tensor, a tuple/list (first), or a dict ('logits').
    With `batch` (the number of items fed), outputs no classifier or regressor gives are refused."""
    out: torch.Tensor | None = None
    if isinstance(raw, torch.Tensor):
        out = raw
    elif isinstance(raw, (tuple, list)) and raw and isinstance(raw[0], torch.Tensor):
        out = raw[0]
    elif isinstance(raw, dict):
        for key in ("logits", "output", "out", "y"):
            if isinstance(raw.get(key), torch.Tensor):
                out = raw[key]
                break
    if out is not None:
        if batch is not None:
            check_outputs(out, batch)
        return out
    raise EvaluationError(
        f"model: expected forward() to return a tensor of logits, got {type(raw).__name__}; wrap the model so it returns logits"
    )


def check_outputs(out: torch.Tensor, batch: int) -> None:
    """Refuse outputs that are not one row of scores per item: (N, C) logits, (N, 1) or (N,)."""
    shape = tuple(out.shape)
    fix = "return one row of logits per item, shape (N, C), or (N,) / (N, 1) for one output"
    if out.dim() == 0 or shape[0] != batch:
        raise EvaluationError(
            f"model: expected one output row per item ({batch} for a batch of {batch}), got outputs of shape {shape}; "
            f"the model reduces over the batch: {fix}"
        )
    if not (out.is_floating_point() or out.is_complex()):
        raise EvaluationError(
            f"model: expected floating-point scores (logits), got {str(out.dtype).replace('torch.', '')} outputs of shape "
            f"{shape} (class indices?); return the logits before argmax"
        )
    if out.dim() > 2:
        raise EvaluationError(f"model: expected outputs of shape (N, C), got {shape}; {fix} (e.g. pool or flatten the rest)")
    if out.dim() == 2 and shape[1] == 0:
        raise EvaluationError(f"model: expected at least one output column, got outputs of shape {shape}; {fix}")


def predict_batch(
    module: torch.nn.Module,
    x: torch.Tensor,
    y: np.ndarray,
    *,
    metric: Metric,
    device: torch.device,
    precision: Precision = "fp32",
    index: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Run one batch. x: (B, ...) float32 on CPU; y: (B,) labels; index: (B,) positions in the split,
    to name the first bad item in an error. Returns per-item numpy arrays.

    Classification: pred, confidence, p_label, loss (cross-entropy), topk (B, k), topk_p (B, k),
    num_classes (0-d). Regression: pred (float64) and loss (squared or absolute error).
    Raises EvaluationError when an output is NaN or inf.
    """
    out = forward_logits(module, x, device=device, precision=precision)
    check_finite(out, x, index)
    return item_statistics(out, y, metric=metric)


def forward_logits(module: torch.nn.Module, x: torch.Tensor, *, device: torch.device, precision: Precision = "fp32") -> torch.Tensor:
    """The model's outputs for one batch, as float32 on `device`."""
    if device.type == "cuda":
        x = x.pin_memory().to(device, non_blocking=True)
    elif device.type != "cpu":
        x = x.to(device)
    with _autocast(device, precision):
        out = extract_logits(module(x))
    return out.float()


def check_finite(out: torch.Tensor, x: torch.Tensor, index: np.ndarray | None) -> None:
    """Raise EvaluationError naming the first item whose output (or input) is NaN or inf."""
    # One reduction on the happy path: the sum of finite logits is finite unless it overflows, and any
    # NaN or inf makes it non-finite. Only then is each item checked (a per-item isfinite().all() cost
    # 4% of a small MLP's evaluation).
    finite = None if bool(torch.isfinite(out.sum())) else (
        torch.isfinite(out.reshape(len(out), -1)).all(dim=1) if out.dim() else torch.isfinite(out))
    if finite is not None and not bool(finite.all()):
        bad = int((~finite).sum())
        first = int(torch.nonzero(~finite)[0, 0])
        where = f"item {int(index[first])} of the split" if index is not None else f"item {first} of the batch"
        x_cpu = x.detach().float().reshape(len(x), -1) if torch.is_tensor(x) and x.is_floating_point() else None
        if x_cpu is not None and not bool(torch.isfinite(x_cpu).all()):
            bad_in = int((~torch.isfinite(x_cpu).all(dim=1)).sum())
            first_in = int(torch.nonzero(~torch.isfinite(x_cpu).all(dim=1))[0, 0])
            at = f"item {int(index[first_in])} of the split" if index is not None else f"item {first_in} of the batch"
            raise EvaluationError(
                f"expected finite inputs, got NaN or inf in {bad_in} of {len(x)} items in a batch (first: {at}); "
                "fill or drop the missing values in the data"
            )
        raise EvaluationError(
            f"expected finite model outputs, got NaN or inf for {bad} of {len(out)} items in a batch (first: {where}); "
            "check the weights for NaN and that the inputs are scaled as in training (--mean/--std)"
        )


def item_statistics(out: torch.Tensor, y: np.ndarray, *, metric: Metric) -> dict[str, np.ndarray]:
    """Per-item numpy arrays from finite outputs `out` of any number of items (see predict_batch)."""
    if metric != "error":
        if not (out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1)):
            raise EvaluationError(
                f"expected one output per item for --metric {metric}, got outputs of shape {tuple(out.shape)}; "
                "use the default --metric error for classifiers"
            )
        pred = out.reshape(-1).double().cpu().numpy()
        target = np.asarray(y, dtype=np.float64)
        diff = pred - target
        loss = np.square(diff) if metric == "mse" else np.abs(diff)
        return {"pred": pred, "loss": loss.astype(np.float32)}

    labels = torch.as_tensor(np.asarray(y, dtype=np.int64), device=out.device)
    # Everything comes from one pass of log-probabilities: the loss is -log p(label) (the same
    # number cross_entropy and binary_cross_entropy_with_logits give), the probabilities are exp of
    # the few values kept. A softmax plus a separate cross-entropy cost a second pass per batch.
    if out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1):
        # One logit: a binary classifier, p(class 1) = sigmoid(z).
        z = out.reshape(-1)
        logp = torch.stack([torch.nn.functional.logsigmoid(-z), torch.nn.functional.logsigmoid(z)], dim=1)
    elif out.dim() == 2:
        logp = torch.log_softmax(out, dim=1)
    else:
        raise EvaluationError(
            f"expected logits of shape (N, C) or (N,), got {tuple(out.shape)}; make forward() return one row of class scores per item"
        )
    k = min(TOPK, logp.shape[1])
    top_lp, top_i = logp.topk(k, dim=1)
    label_lp = logp.gather(1, labels[:, None])[:, 0]
    return {
        "pred": top_i[:, 0].cpu().numpy().astype(np.int64),
        "confidence": top_lp[:, 0].exp().cpu().numpy(),
        "p_label": label_lp.exp().cpu().numpy(),
        "loss": (-label_lp).cpu().numpy().astype(np.float32),
        "topk": top_i.cpu().numpy().astype(np.int32),
        "topk_p": top_lp.exp().cpu().numpy(),
        "num_classes": np.asarray(logp.shape[1]),
    }


@dataclass
class SplitEvaluation:
    """One split's evaluation: the tally (counts, confusion) and what was evaluated."""

    name: str
    tally: SplitCounts
    num_classes: int | None
    n_total: int
    seconds: float


def _class_labels(split: Split, indices: np.ndarray | None) -> np.ndarray:
    y = split.labels()
    if indices is not None:
        y = y[indices]
    return _class_labels_of(split, y)


def _class_labels_of(split: Split, y: np.ndarray) -> np.ndarray:
    if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or not np.all(y == np.round(y))):
        raise DataError(
            f"{split.path}: expected class indices as labels, got fractional values like {y[y != np.round(y)][:1][0]:g}; "
            "pass --metric mse or --metric mae for a regression target"
        )
    return y


def check_labels(split: Split, labels: np.ndarray, num_classes: int) -> None:
    if labels.dtype.kind not in "iuf":
        return
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        worst = labels[bad]
        shown = worst.max() if worst.max() >= num_classes else worst.min()
        raise DataError(
            f"{split.path}: expected labels in 0..{num_classes - 1} (the model has {num_classes} outputs), got "
            f"{shown:g} ({int(bad.sum())} of {len(labels)} items); check that the data and the model use the same classes"
        )


_SHAPE_WORDS = ("shape", "size", "mat1", "dimension", "channels", "Expected", "expected input")
FORWARD_ERRORS = (RuntimeError, AssertionError, ValueError, TypeError, IndexError, torch.jit.Error)


def forward_error(split: Split, exc: Exception, module: torch.nn.Module, batch_shape: tuple[int, ...]) -> DiagnoseError:
    """The one-line error for a forward pass that failed on this split's inputs."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    # TorchScript wraps an exception raised inside the script: its last line is the original one.
    wrapped = isinstance(exc, torch.jit.Error) or (lines and "TorchScript interpreter" in lines[0])
    detail = (lines[-1] if wrapped else lines[0])[:160] if lines else type(exc).__name__
    if isinstance(exc, torch.OutOfMemoryError):
        return EvaluationError(
            f"{split.path}: expected a batch of {batch_shape[0]} items to fit in memory, got out of memory; "
            "pass a smaller --batch-size"
        )
    if detail.startswith("Guard failed") and "size()[0]" in detail:
        # torch.export programs exported with a fixed batch size check it on every call.
        return DataError(
            f"{split.path}: expected batches the exported program accepts ({detail}), got a batch of "
            f"{batch_shape[0]}; export with a dynamic batch dimension: "
            "dynamic_shapes={'x': {0: torch.export.Dim('batch')}}"
        )
    if not any(w in detail for w in _SHAPE_WORDS):
        return EvaluationError(
            f"{split.path}: expected the model to run on a batch of shape {batch_shape}, got "
            f"{type(exc).__name__}: {detail}; rerun with --debug for the traceback"
        )
    expected, _ = describe_input(module)
    got = "(N, " + ", ".join(str(d) for d in split.input_shape) + ")"
    hint = "reshape the data to what the model takes"
    if split.format == "images":
        hint = "pass --image-size H,W (and match the channels) to what the model was trained on"
    if expected == "an unknown shape":
        # The model's first layer does not say what it takes: torch's own message is the best clue.
        return DataError(f"{split.path}: expected inputs the model accepts ({detail}), got {got}; {hint}")
    return DataError(f"{split.path}: expected inputs of shape {expected} for the model, got {got}; {hint}")


# The per-item statistics (log-softmax, top-5, the label's probability, the counts and the Parquet
# rows) are computed over chunks of forwarded batches, not batch by batch: their twenty-odd small
# tensor and numpy operations cost about a millisecond per call whatever its size, which at batch
# 256 nearly doubled the evaluation time of a small MLP. A chunk holds up to this many items or
# output values (16 MB of float32 logits), on the model's device.
STATS_ITEMS = 8192
STATS_VALUES = 4_000_000


def evaluate_split(
    module: torch.nn.Module,
    split: Split,
    *,
    metric: Metric = "error",
    batch_size: int = 256,
    device: torch.device | None = None,
    precision: Precision = "fp32",
    indices: np.ndarray | None = None,
    writer: PredictionWriter | None = None,
    num_classes: int | None = None,
    show_progress: bool = True,
) -> SplitEvaluation:
    """Evaluate `module` on `split` (or on the positions in `indices`), streaming rows to `writer`."""
    device = device or torch.device("cpu")
    start = time.perf_counter()
    tally = SplitCounts(metric=metric)
    if metric == "error":
        if num_classes is None:
            num_classes = max(2, probe_outputs(module, split, device, precision))
        # A DataLoader's labels are known only as it is read: its batches are checked one by one.
        if getattr(split, "labels_known", True):
            check_labels(split, _class_labels(split, indices), num_classes)
    per_batch_check = metric == "error" and not getattr(split, "labels_known", True)
    ids = split.ids()
    total = split.n if indices is None else len(indices)
    pending: list[tuple[torch.Tensor, np.ndarray, np.ndarray]] = []

    def flush() -> None:
        """Per-item statistics, counts and rows of the batches forwarded since the last flush."""
        out = pending[0][0] if len(pending) == 1 else torch.cat([p[0] for p in pending])
        y = pending[0][1] if len(pending) == 1 else np.concatenate([p[1] for p in pending])
        index = pending[0][2] if len(pending) == 1 else np.concatenate([p[2] for p in pending])
        pending.clear()
        try:
            stats = item_statistics(out, y, metric=metric)
        except EvaluationError as exc:
            raise EvaluationError(f"{split.path}: {exc.message}") from None
        if metric == "error":
            tally.add_classes(y, stats["pred"], int(num_classes or 0))
        else:
            tally.add_losses(stats["loss"])
        if writer is not None:
            cols: dict[str, object] = {"index": index, "label": y, "pred": stats["pred"], "loss": stats["loss"]}
            if ids is not None:
                cols["id"] = [ids[i] for i in index]
            if metric == "error":
                cols["confidence"] = stats["confidence"]
                cols["p_label"] = stats["p_label"]
                for k in range(min(stats["topk"].shape[1], writer.topk)):
                    cols[f"top{k + 1}"] = stats["topk"][:, k]
                    cols[f"top{k + 1}_p"] = stats["topk_p"][:, k]
            writer.write(cols)

    with torch.inference_mode(), progress_bar(f"{split.name:<9}", total, enabled=show_progress) as advance:
        batches: Iterator = split.batches(batch_size, indices)
        held = values = 0
        for batch in batches:
            if per_batch_check:
                check_labels(split, _class_labels_of(split, batch.y), num_classes)  # type: ignore[arg-type]
            y = batch.y.astype(np.int64 if metric == "error" else np.float64)
            try:
                out = forward_logits(module, batch.x, device=device, precision=precision)
                check_finite(out, batch.x, batch.index)
            except EvaluationError as exc:
                raise EvaluationError(f"{split.path}: {exc.message}") from None
            except FORWARD_ERRORS as exc:
                raise forward_error(split, exc, module, tuple(batch.x.shape)) from None
            pending.append((out, y, np.asarray(batch.index)))
            held, values = held + len(y), values + out.numel()
            if held >= STATS_ITEMS or values >= STATS_VALUES:
                flush()
                held = values = 0
            advance(len(batch.index))
        if pending:
            flush()
    if tally.n == 0:
        raise DataError(f"{split.path}: expected at least one item in the {split.name} split, got 0; remove the split or fill it")
    return SplitEvaluation(split.name, tally, num_classes, split.n, time.perf_counter() - start)


def probe_outputs(module: torch.nn.Module, split: Split, device: torch.device, precision: Precision) -> int:
    """Number of output columns on one small batch (1 for a single logit / regression output)."""
    batch = next(iter(split.batches(2)))
    x = batch.x.to(device)
    if x.shape[1:] != torch.Size(split.input_shape):
        raise DataError(f"{split.path}: expected items of shape {split.input_shape}, got {tuple(x.shape[1:])}; check the file")
    with torch.inference_mode(), _autocast(device, precision):
        try:
            out = extract_logits(module(x))
        except FORWARD_ERRORS as exc:
            raise forward_error(split, exc, module, tuple(x.shape)) from None
    try:
        check_outputs(out, len(x))
    except EvaluationError as exc:
        raise EvaluationError(f"{split.path}: {exc.message}") from None
    return 1 if out.dim() == 1 else int(out.shape[1]) if out.dim() == 2 else -1


# --------------------------------------------------------------------------- the one evaluation path


@dataclass
class Evaluation:
    """A model evaluated on some splits of a dataset.

    splits: per split, its counts and timing; num_classes: outputs of a classifier (None for
    regression); device: where it ran; notes: what a reader must know (a --max-items sample);
    world_size: processes under torchrun (1 alone).
    """

    splits: dict[str, SplitEvaluation]
    num_classes: int | None
    device: str
    notes: tuple[str, ...]
    world_size: int = 1


def evaluate_model(
    model: torch.nn.Module | Callable[[str], torch.nn.Module],
    dataset: Dataset,
    *,
    metric: Metric = "error",
    device: str = DEVICE,
    precision: Precision = PRECISION,
    batch_size: int = BATCH_SIZE,
    max_items: int | None = None,
    seed: int = SEED,
    splits: Sequence[str] | None = None,
    workdir: Path | None = None,
    show_progress: bool = False,
) -> Evaluation | None:
    """Evaluate `model` on the splits of `dataset` (all, or those named in `splits`).

    model: an nn.Module, or a callable that loads it onto a device given as a string (a file is then
    read straight onto the GPU). device: auto, cpu, cuda, cuda:N or mps. max_items: evaluate a seeded
    uniform sample of at most that many items per split. workdir: when given, the per-item rows go to
    `workdir/predictions/<split>.parquet`, written in a staging folder and moved in only when every
    split is done (a failed run never leaves predictions of one run beside those of another); a split
    not evaluated loses its old file when all splits are evaluated. Under torchrun each rank
    evaluates its block of every split; rank 0 gets the Evaluation, the other ranks get None.
    """
    from diagnose.distributed import init_world
    from diagnose.io.predictions import check_writable_folder

    if workdir is not None:
        check_writable_folder(Path(workdir), f"workdir {workdir}")
    dev = resolve_device(device)
    world = init_world(str(dev))
    if world.active and dev.type == "cuda":
        dev = torch.device("cuda", world.local_rank)
    show_progress = show_progress and world.is_main
    if precision not in ("fp32", "bf16", "fp16"):
        raise ArgumentError("precision", f"expected fp32, bf16 or fp16, got {precision!r}; pick one of those")
    if precision == "fp16" and dev.type == "cpu":
        raise ArgumentError("precision", "expected a GPU device, got the CPU; use precision bf16 on a CPU", "fp16")
    # A module of the caller's (or one a loader hands back, which may be the caller's too) is measured
    # in eval mode under inference mode, and left as it was given: each submodule's mode and its device.
    loaded = model if isinstance(model, torch.nn.Module) else model(str(dev))
    with measuring(loaded, dev) as module:
        return _evaluate_module(module, dataset, metric=metric, dev=dev, world=world, precision=precision,
                                batch_size=batch_size, max_items=max_items, seed=seed, splits=splits,
                                workdir=workdir, show_progress=show_progress)


def _evaluate_module(
    module: torch.nn.Module, dataset: Dataset, *, metric: Metric, dev: torch.device, world: Any, precision: Precision,
    batch_size: int, max_items: int | None, seed: int, splits: Sequence[str] | None, workdir: Path | None,
    show_progress: bool,
) -> Evaluation | None:
    import shutil

    from diagnose.distributed import evaluate_split_sharded, finish
    from diagnose.io.predictions import PredictionWriter, predictions_path
    from diagnose.io.splits import SPLITS

    dataset = match_image_channels(dataset, module)
    names = [n for n in dataset.splits if splits is None or n in splits]
    if not names:
        found = ", ".join(dataset.splits) or "none"
        raise DataError(f"{dataset.root}: expected a {' or '.join(splits or ())} split, got {found}; pick one of those")

    first = dataset.splits[names[0]]
    num_classes = max(2, probe_outputs(module, first, dev, precision)) if metric == "error" else None
    topk = min(TOPK, num_classes or 0)
    notes: list[str] = []
    evaluations: dict[str, SplitEvaluation] = {}
    staging = Path(workdir) / f".run-{os.getpid()}" if workdir is not None else None
    try:
        for name in names:
            split = dataset.splits[name]
            # Each split's sample is seeded by its level, so a split's sample does not depend on the others.
            salt = SPLITS.index(name) if name in SPLITS else len(SPLITS)
            indices = subsample(split.n, max_items, seed=seed, salt=salt)
            if indices is not None:
                notes.append(f"{name}: evaluated a seeded sample of {len(indices):,} of {split.n:,} items (max_items)")
            with (PredictionWriter(staging / f"{name}.parquet", regression=metric != "error", topk=topk)
                  if staging is not None and world.is_main else contextlib.nullcontext()) as writer:
                if world.active:
                    evaluations[name] = evaluate_split_sharded(
                        module, split, world=world, indices=indices, writer=writer, metric=metric,
                        batch_size=batch_size, num_classes=num_classes, topk=topk, device=dev, precision=precision,
                        show_progress=show_progress,
                    )
                else:
                    evaluations[name] = evaluate_split(
                        module, split, metric=metric, batch_size=batch_size, device=dev, precision=precision,
                        indices=indices, writer=writer, num_classes=num_classes, show_progress=show_progress,
                    )
        if not world.is_main:
            finish(world)
            return None
        if staging is not None:
            from diagnose.core.gaps import ALL_SPLITS

            for name in ALL_SPLITS:
                target = predictions_path(Path(workdir), name)  # type: ignore[arg-type]
                if name in evaluations:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging / f"{name}.parquet", target)
                elif splits is None:  # a split this run did not see would mix two runs
                    target.unlink(missing_ok=True)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    finish(world)
    return Evaluation(evaluations, num_classes, str(dev), tuple(notes), world.size)
