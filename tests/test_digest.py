"""The file digests the manifest records: a sampled fingerprint by default, a full sha256 on request."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from diagnose.io import digest


def _write(path: Path, size: int, seed: int = 0) -> bytes:
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(data)
    return data


def test_sha256_is_hashlibs(tmp_path: Path) -> None:
    data = _write(tmp_path / "f", 3_000_001)
    assert digest.sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [0, 1, 4096, digest.WHOLE_UP_TO, digest.WHOLE_UP_TO + 1, 40 << 20])
def test_same_bytes_same_fingerprint_anywhere(tmp_path: Path, size: int) -> None:
    _write(tmp_path / "a", size)
    (tmp_path / "b").write_bytes((tmp_path / "a").read_bytes())
    fa = digest.fingerprint_file(tmp_path / "a")
    assert fa == digest.fingerprint_file(tmp_path / "b") and fa.startswith("blake2b-sampled-v1:")


def test_a_small_file_is_read_whole(tmp_path: Path) -> None:
    data = bytearray(_write(tmp_path / "f", 1 << 20))
    before = digest.fingerprint_file(tmp_path / "f")
    for at in (0, 123_457, len(data) - 1):  # any single byte counts
        changed = bytearray(data)
        changed[at] ^= 1
        (tmp_path / "f").write_bytes(changed)
        assert digest.fingerprint_file(tmp_path / "f") != before


def test_a_large_file_is_sampled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = 64 << 20
    data = bytearray(_write(tmp_path / "f", size))
    before = digest.fingerprint_file(tmp_path / "f")
    read = []
    real_open = open

    class Counting:
        def __init__(self, fh):  # type: ignore[no-untyped-def]
            self.fh = fh

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *a):  # type: ignore[no-untyped-def]
            self.fh.close()

        def read(self, n=-1):  # type: ignore[no-untyped-def]
            out = self.fh.read(n)
            read.append(len(out))
            return out

        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            return getattr(self.fh, name)

    monkeypatch.setattr(digest, "open", lambda p, mode: Counting(real_open(p, mode)), raising=False)
    assert digest.fingerprint_file(tmp_path / "f") == before
    assert sum(read) == 2 * digest.EDGE + digest.BLOCKS * digest.BLOCK  # 6 MiB of 64
    monkeypatch.undo()
    for at in (10, size - 10):  # the first and last MiB are read whole
        changed = bytearray(data)
        changed[at] ^= 1
        (tmp_path / "f").write_bytes(changed)
        assert digest.fingerprint_file(tmp_path / "f") != before
    (tmp_path / "f").write_bytes(data + b"x")  # so is the size
    assert digest.fingerprint_file(tmp_path / "f") != before


def test_same_file_prefers_the_full_digest(tmp_path: Path) -> None:
    data = _write(tmp_path / "f", 1000)
    fp, sha = digest.fingerprint_file(tmp_path / "f"), hashlib.sha256(data).hexdigest()
    assert digest.same_file(tmp_path / "f", fingerprint=fp, sha256=None) is True
    assert digest.same_file(tmp_path / "f", fingerprint="blake2b-sampled-v1:0", sha256=sha) is True
    assert digest.same_file(tmp_path / "f", fingerprint=fp, sha256="0" * 64) is False
    assert digest.same_file(tmp_path / "f", fingerprint=None, sha256=None) is None


def test_full_digest_records_sha256_of_every_file(cli, tmp_path: Path, example_model: Path, example_data: Path) -> None:
    r = cli("gaps", example_model, example_data, "--workdir", tmp_path / "wd", "--max-items", 100, "--full-digest", "--json")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "wd" / "manifest.json").read_text())
    assert m["model"]["sha256"] == hashlib.sha256(example_model.read_bytes()).hexdigest()
    assert m["model"]["fingerprint"] == digest.fingerprint_file(example_model)
    for name, entry in m["data"]["splits"].items():
        assert entry["sha256"] == hashlib.sha256((example_data / entry["path"]).read_bytes()).hexdigest(), name
    for name, entry in m["splits"].items():
        assert entry["sha256"] == hashlib.sha256((tmp_path / "wd" / entry["file"]).read_bytes()).hexdigest(), name
