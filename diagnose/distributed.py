"""Evaluation across processes with torch's own engine (`torchrun --nproc-per-node N -m diagnose gaps ...`).

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Every split is cut into
one contiguous block of positions per rank (contiguous, so memory-mapped and streamed splits are
read in order), each rank evaluates its block, and the per-item results are gathered on rank 0,
which alone prints and writes. The numbers are identical to one process because each item is
evaluated exactly once, by the same model, and rank 0 puts the gathered rows back in position
order and counts them the way one process would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_world(device: str = "cpu") -> World:
    """Join the process group torchrun prepared; NCCL on CUDA devices, gloo on CPUs. One process: World()."""
    if not launched_by_torchrun():
        return World()
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank, backend=backend)


def shard(indices: np.ndarray, world: World) -> np.ndarray:
    """This rank's contiguous block of `indices`; blocks differ in size by at most one item."""
    return np.array_split(indices, world.size)[world.rank] if world.active else indices


def gather_to_main(payload: Any, world: World) -> list[Any] | None:
    """Every rank's `payload` (any picklable object) as a list on rank 0, in rank order; None elsewhere."""
    if not world.active:
        return [payload]
    import torch.distributed as dist

    out: list[Any] | None = [None] * world.size if world.is_main else None
    dist.gather_object(payload, out, dst=0)
    return out


def finish(world: World) -> None:
    if world.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


class RowCollector:
    """Keeps a rank's per-item rows in memory, with the `write(columns)` of a PredictionWriter."""

    def __init__(self, topk: int) -> None:
        self.topk = topk
        self.parts: list[dict[str, Any]] = []

    def write(self, columns: dict[str, Any]) -> None:
        self.parts.append(columns)

    def columns(self) -> dict[str, Any]:
        """The collected batches as one array (or list, for `id`) per column."""
        return _concat(self.parts)


def _concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    parts = [p for p in parts if p]
    if not parts:
        return {}
    return {
        key: [v for p in parts for v in p[key]] if key == "id" else np.concatenate([p[key] for p in parts])
        for key in parts[0]
    }


def merge_rows(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows gathered from every rank, concatenated and put back in position order."""
    merged = _concat(parts)
    if not merged:
        return {}
    order = np.argsort(merged["index"], kind="stable")
    return {k: ([v[i] for i in order] if k == "id" else v[order]) for k, v in merged.items()}


def evaluate_split_sharded(
    module: Any,
    split: Any,
    *,
    world: World,
    indices: np.ndarray | None,
    writer: Any,
    metric: str,
    batch_size: int,
    num_classes: int | None,
    topk: int,
    show_progress: bool = True,
    **kwargs: Any,
) -> Any:
    """`evaluate.evaluate_split` over this rank's block; rank 0 gets the whole split's SplitEvaluation.

    Rank 0 writes the merged rows to `writer` in position order and counts them batch by batch as
    one process does; other ranks return None (their `writer` may be None). `topk`: how many top
    classes every rank keeps per item (the writer's, which only rank 0 has).
    """
    import time

    from diagnose.core.gaps import SplitCounts
    from diagnose.evaluate import SplitEvaluation, evaluate_split

    start = time.perf_counter()
    positions = np.arange(split.n, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
    mine = shard(positions, world)
    rows = RowCollector(topk=topk)
    if len(mine):
        evaluate_split(module, split, metric=metric, batch_size=batch_size, indices=mine, writer=rows,  # type: ignore[arg-type]
                       num_classes=num_classes, show_progress=show_progress and world.is_main, **kwargs)
    gathered = gather_to_main(rows.columns(), world)
    if not world.is_main:
        return None
    assert gathered is not None
    merged = merge_rows(gathered)
    tally = SplitCounts(metric=metric)  # type: ignore[arg-type]
    n = len(merged.get("index", ()))
    for lo in range(0, n, batch_size):
        chunk = {k: v[lo : lo + batch_size] for k, v in merged.items()}
        if metric == "error":
            tally.add_classes(chunk["label"], chunk["pred"], num_classes)  # type: ignore[arg-type]
        else:
            tally.add_losses(chunk["loss"])
        writer.write(chunk)
    return SplitEvaluation(split.name, tally, num_classes, split.n, time.perf_counter() - start)
