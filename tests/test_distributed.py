"""`torchrun --nproc-per-node 2 -m diagnose gaps` gives the numbers and files of one process (gloo on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diagnose.distributed import World, merge_rows, shard


def test_shards_cover_every_position_once() -> None:
    positions = np.arange(1003)
    blocks = [shard(positions, World(rank=r, size=4)) for r in range(4)]
    assert sorted(len(b) for b in blocks) == [250, 251, 251, 251]
    assert np.array_equal(np.concatenate(blocks), positions)  # contiguous, in rank order
    assert np.array_equal(shard(positions, World()), positions)


def test_merge_rows_restores_position_order() -> None:
    parts = [
        {"index": np.array([4, 5]), "pred": np.array([1, 0]), "id": ["e", "f"]},
        {},
        {"index": np.array([0, 2]), "pred": np.array([3, 2]), "id": ["a", "c"]},
    ]
    merged = merge_rows(parts)
    assert merged["index"].tolist() == [0, 2, 4, 5]
    assert merged["pred"].tolist() == [3, 2, 1, 0]
    assert merged["id"] == ["a", "c", "e", "f"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path: Path, example_model: Path, example_data: Path) -> None:
    import pyarrow.parquet as pq

    common = ["gaps", str(example_model), str(example_data), "--json", "--batch-size", "64"]
    single = _run([sys.executable, "-m", "diagnose", *common, "--workdir", str(tmp_path / "one")], tmp_path)
    assert single.returncode == 0, single.stderr
    multi = _run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "diagnose", *common, "--workdir", str(tmp_path / "two")],
        tmp_path,
    )
    assert multi.returncode == 0, multi.stderr
    one, two = json.loads(single.stdout), json.loads(multi.stdout)  # rank 0 alone printed: one document
    assert two["splits"] == one["splits"]
    assert two["gaps"] == one["gaps"]
    assert two["verdict"] == one["verdict"]
    for split in one["splits"]:
        a = pq.read_table(tmp_path / "one" / "predictions" / f"{split}.parquet")
        b = pq.read_table(tmp_path / "two" / "predictions" / f"{split}.parquet")
        assert a.column_names == b.column_names
        for name in ("index", "label", "pred", "top1", "top2"):
            assert a.column(name).to_pylist() == b.column(name).to_pylist(), (split, name)
        np.testing.assert_allclose(a.column("loss").to_numpy(), b.column("loss").to_numpy(), rtol=1e-5, atol=1e-6)
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["world_size"] == 2
