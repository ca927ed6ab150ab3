"""Split discovery and reading: every format yields the same inputs and labels, in bounded batches."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from diagnose.exceptions import DataError
from diagnose.io.splits import TensorSplit, find_splits, load_dataset

SPLITS = ("train", "train_dev", "dev", "test")


@pytest.fixture(scope="module")
def reference(make_fixtures):
    return make_fixtures.load_example_splits()


def _gather(split, batch_size=97, indices=None):
    xs, ys, idx = [], [], []
    for b in split.batches(batch_size, indices):
        assert b.x.dtype == torch.float32 and len(b.x) <= batch_size
        xs.append(b.x.reshape(len(b.x), -1).numpy())
        ys.append(b.y)
        idx.append(b.index)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(idx)


@pytest.mark.parametrize("fmt", ["pt", "npz", "npz_compressed", "csv", "parquet", "images"])
def test_every_format_reads_the_same_items(fmt, example_formats, reference) -> None:
    ds = load_dataset(example_formats.data[fmt])
    assert list(ds.splits) == list(SPLITS)
    assert ds.classes == [str(i) for i in range(10)]
    assert ds.human_error == 0.01
    for name, split in ds.splits.items():
        ref_x = reference[name]["x"].reshape(-1, 64).astype(np.float32) / np.float32(255)
        ref_y = reference[name]["y"]
        x, y, idx = _gather(split)
        assert split.n == len(ref_y)
        if fmt == "images":
            # Image folders list files by class, then name: map back through the ids.
            pos = [int(i.rsplit("/", 1)[1].split("_", 1)[0]) for i in split.ids()]
            ref_x, ref_y = ref_x[pos], ref_y[pos]
        else:
            assert (idx == np.arange(split.n)).all()
        assert np.array_equal(y, ref_y)
        assert np.array_equal(x, ref_x)  # bit-identical float32 inputs in every format


def test_subset_indices_in_any_order(example_formats, reference) -> None:
    for fmt in ("pt", "csv", "parquet"):
        split = load_dataset(example_formats.data[fmt]).splits["train"]
        want = np.array([2999, 5, 1500, 6, 0, 1024, 1023])
        x, y, idx = _gather(split, batch_size=3, indices=want)
        assert idx.tolist() == sorted(want.tolist())
        assert np.array_equal(y, reference["train"]["y"][idx])
        assert np.array_equal(x, reference["train"]["x"][idx].reshape(-1, 64) / np.float32(255))


def test_uncompressed_npz_is_memory_mapped(example_formats) -> None:
    split = load_dataset(example_formats.data["npz"]).splits["train"]
    assert isinstance(split, TensorSplit) and isinstance(split._x, np.memmap)
    compressed = load_dataset(example_formats.data["npz_compressed"]).splits["train"]
    assert not isinstance(compressed._x, np.memmap)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's /proc/self/maps")
def test_pt_splits_are_memory_mapped(example_data, tmp_path) -> None:
    # A copy under a unique name, so no other test's mapping of the bundled file counts.
    shutil.copy(example_data / "train.pt", tmp_path / "train.pt")
    split = load_dataset(tmp_path).splits["train"]
    maps = Path("/proc/self/maps").read_text()
    assert str(tmp_path / "train.pt") in maps  # torch.load(mmap=True): pages come from the file
    assert split.n == 3000


def test_aliases(tmp_path, example_data) -> None:
    for src, dst in (("train", "train"), ("train_dev", "traindev"), ("dev", "validation"), ("test", "test")):
        shutil.copy(example_data / f"{src}.pt", tmp_path / f"{dst}.pt")
    assert list(find_splits(tmp_path)) == list(SPLITS)
    shutil.copy(example_data / "dev.pt", tmp_path / "val.pt")
    with pytest.raises(DataError) as info:
        find_splits(tmp_path)
    assert info.value.message == (
        f"{tmp_path}: expected one file or folder per split, got val.pt and validation.pt for dev; remove or rename one"
    )


def test_label_column_and_string_labels(tmp_path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [0.5, 1.5, 2.5], "b": [1, 2, 3], "target": ["cat", "dog", "cat"]})
    frame.to_csv(tmp_path / "dev.csv", index=False)
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    assert info.value.message == (
        f"{tmp_path / 'dev.csv'}: expected a label column named 'label', got columns a, b, target; pass --label-column NAME"
    )
    (tmp_path / "classes.txt").write_text("dog\ncat\n")
    ds = load_dataset(tmp_path, label_column="target")
    split = ds.splits["dev"]
    assert split.labels().tolist() == [1, 0, 1]
    assert split.input_shape == (2,)
    x, _, _ = _gather(split)
    assert x.tolist() == [[0.5, 1.0], [1.5, 2.0], [2.5, 3.0]]


def test_empty_labels_are_named_not_taken_for_regression(tmp_path) -> None:
    # A NaN label used to read as a regression target ("pass --metric mse"), and `diagnose data`
    # then skipped class balance and label shift.
    import pandas as pd

    pd.DataFrame({"a": [0.5, 1.5, 2.5, 3.5], "label": [0, 1, None, 1]}).to_csv(tmp_path / "dev.csv", index=False)
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    assert info.value.message == (
        f"{tmp_path / 'dev.csv'}: expected a label for every item, got 1 empty or NaN (first at item 2); fill or drop those rows"
    )
    (tmp_path / "dev.csv").unlink()
    pd.DataFrame({"a": [0.5, 1.5, 2.5], "label": ["cat", None, None]}).to_parquet(tmp_path / "test.parquet")
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    assert info.value.message == (
        f"{tmp_path / 'test.parquet'}: expected a label for every item, got 2 empty or NaN (first at item 1); fill or drop those rows"
    )


def test_non_numeric_feature_column(tmp_path) -> None:
    import pandas as pd

    pd.DataFrame({"a": [1.0], "note": ["hi"], "label": [0]}).to_parquet(tmp_path / "test.parquet")
    split = load_dataset(tmp_path).splits["test"]
    with pytest.raises(DataError) as info:
        list(split.batches(8))
    # pandas writes strings as string or large_string depending on its version
    assert info.value.message.startswith(f"{tmp_path / 'test.parquet'}: expected numeric feature columns, got column 'note' of type ")
    assert info.value.message.endswith("string; drop it, or name the label column with --label-column")


def test_images_resize_rgb_and_normalize(tmp_path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "dev" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(tmp_path / "dev" / cls / f"{i}.png")
    (tmp_path / "dev" / ".ipynb_checkpoints").mkdir()  # hidden folders are not classes
    (tmp_path / "dev" / "a" / "notes.txt").write_text("not an image")
    ds = load_dataset(tmp_path, image_size=(4, 4), mean=[0.5], std=[0.25])
    split = ds.splits["dev"]
    assert ds.classes == ["a", "b"] and split.labels().tolist() == [0, 0, 0, 1, 1, 1]
    assert split.input_shape == (3, 4, 4)
    b = next(iter(split.batches(10)))
    img = Image.open(tmp_path / "dev" / "a" / "0.png").convert("RGB").resize((4, 4), Image.Resampling.BILINEAR)
    want = (np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255) - 0.5) / 0.25
    assert np.allclose(b.x[0].numpy(), want, atol=1e-6)
    gray = load_dataset(tmp_path, channels=1).splits["dev"]
    assert gray.input_shape == (1, 6, 5)
    assert next(iter(gray.batches(2))).x.shape == (2, 1, 6, 5)


def test_pt_with_numpy_inside_is_refused(tmp_path) -> None:
    torch.save({"x": np.zeros((2, 3)), "y": torch.zeros(2)}, tmp_path / "dev.pt")
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    assert info.value.message == (
        f"{tmp_path / 'dev.pt'}: expected a dict of tensors (weights_only=True), got objects that need code to load; "
        "save torch tensors (torch.from_numpy) or use .npz"
    )


def test_csv_with_text_in_a_feature_column(tmp_path) -> None:
    (tmp_path / "dev.csv").write_text("a,b,label\n1,2,0\n3,oops,1\n")
    split = load_dataset(tmp_path).splits["dev"]
    with pytest.raises(DataError) as info:
        list(split.batches(8))
    assert info.value.message.startswith(f"{tmp_path / 'dev.csv'}: expected numeric feature columns, got ")
    assert "oops" in info.value.message


_STREAM_PROBE = """
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
from pathlib import Path
root = Path(sys.argv[1])
rng = np.random.default_rng(0)
n = 120_000
table = pa.table({**{f"f{i}": rng.random(n, dtype=np.float32) for i in range(64)}, "label": rng.integers(0, 10, n)})
(root / "pq").mkdir()
pq.write_table(table, root / "pq" / "dev.parquet", row_group_size=10_000)
del table
from diagnose.io.splits import load_dataset
for fmt in ("pq",):
    pool = pa.default_memory_pool()
    split = load_dataset(root / fmt).splits["dev"]
    rows = sum(len(b.index) for b in split.batches(256))
    assert rows == n
    print(fmt, pool.max_memory())
"""


@pytest.mark.slow
def test_parquet_is_streamed_in_bounded_memory(tmp_path) -> None:
    import subprocess
    import sys

    # 120,000 rows x 64 float32 features = 31 MB of values in 12 row groups. Reading ahead every
    # row group (pyarrow's pre_buffer default) peaks at about 50 MB; streaming at about 10 MB.
    # (CSV blocks are bounded by the reader's read-ahead, about 80 MB at 1 MiB blocks whatever the
    # file size: too close to any file small enough for a unit test to assert here.)
    out = subprocess.run(
        [sys.executable, "-c", _STREAM_PROBE, str(tmp_path)], check=True, capture_output=True, text=True
    ).stdout.split()
    peaks = dict(zip(out[::2], map(int, out[1::2]), strict=True))
    assert peaks["pq"] < 20e6, peaks


def test_image_folders_keep_a_short_string_per_file(example_formats) -> None:
    # A Path object per file cost about 400 bytes an image (and was pickled to every worker); the
    # relative path as one str is about 100 with the label.
    import gc
    import tracemalloc

    load_dataset(example_formats.data["images"])  # imports (Pillow) out of the way
    gc.collect()
    tracemalloc.start()
    try:
        ds = load_dataset(example_formats.data["images"])
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    n = sum(s.n for s in ds.splits.values())
    assert n == 3797
    assert held / n < 200
    dev = ds.splits["dev"]
    first = next(dev.batches(4))
    assert first.x.shape == (4, 1, 8, 8) and dev.ids()[0].startswith("dev/")
