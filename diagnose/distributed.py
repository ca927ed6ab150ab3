"""Evaluation across processes with torch's own engine (`torchrun --nproc-per-node N -m diagnose gaps ...`).

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Every split is sharded by a
stride over its item positions (rank r takes positions r, r + N, r + 2N, ...), each rank evaluates
its shard, and the per-item results are gathered on rank 0, which alone prints and writes. The
numbers are identical to one process because each item is evaluated exactly once, by the same
model, and rank 0 reorders the gathered rows by position before anything is counted.
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
    """This rank's share of `indices`: a stride, so shards differ in size by at most one item."""
    return indices[world.rank :: world.size] if world.active else indices


def gather_to_main(payload: Any, world: World) -> list[Any] | None:
    """Every rank's `payload` (any picklable object) as a list on rank 0, in rank order; None elsewhere."""
    if not world.active:
        return [payload]
    import torch.distributed as dist

    out: list[Any] | None = [None] * world.size if world.is_main else None
    dist.gather_object(payload, out, dst=0)
    return out


def broadcast_from_main(payload: Any, world: World) -> Any:
    """Rank 0's `payload` on every rank (for an error raised on rank 0 only, say)."""
    if not world.active:
        return payload
    import torch.distributed as dist

    box = [payload]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.active:
        import torch.distributed as dist

        dist.barrier()


def finish(world: World) -> None:
    if world.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
