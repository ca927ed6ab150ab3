"""What the manifest records of each file it names, and the check that a file is still that file.

By default a file gets a *fingerprint*: BLAKE2b over its size and its content when it is small, or,
for a file over 8 MiB, over its first and last MiB and 64 blocks of 64 KiB spread evenly between (6 MiB
read, whatever the size). That tells a file from another, or from itself rewritten, for the price
of a few milliseconds; a full sha256 of a 784 MB split took longer than the whole forward pass over
it. Only a change of the same size inside the bytes the samples skip goes unseen, so a full sha256
is there behind an option (`diagnose gaps --full-digest`, `diagnose.gaps(..., full_digest=True)`),
for when the record must prove the exact bytes. No torch here.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

# Files up to this size are fingerprinted whole.
WHOLE_UP_TO = 8 << 20
EDGE = 1 << 20  # the first and the last MiB of a larger file
BLOCKS = 64
BLOCK = 64 << 10
_SCHEME = "blake2b-sampled-v1"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint_file(path: Path) -> str:
    """`blake2b-sampled-v1:<32 hex digits>` of the file's size and sampled content (see the module)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        h.update(f"{_SCHEME}:{size}:".encode())
        if size <= WHOLE_UP_TO:
            while block := fh.read(1 << 20):
                h.update(block)
        else:
            spans = [(0, EDGE), (size - EDGE, EDGE)]
            room = size - 2 * EDGE - BLOCK
            spans[1:1] = [(EDGE + room * (k + 1) // (BLOCKS + 1), BLOCK) for k in range(BLOCKS)]
            for start, length in spans:
                fh.seek(start)
                h.update(fh.read(length))
    return f"{_SCHEME}:{h.hexdigest()}"


@dataclass(frozen=True)
class FileDigest:
    """What is recorded of one file: its fingerprint, and its sha256 when a full digest was asked for."""

    fingerprint: str
    sha256: str | None = None


def digest_file(path: Path, *, full: bool = False) -> FileDigest:
    return FileDigest(fingerprint_file(path), sha256_file(path) if full else None)


def same_file(path: Path, *, fingerprint: str | None, sha256: str | None) -> bool | None:
    """Is `path` still the file recorded? The full sha256 decides when one was recorded, else the
    fingerprint; None when nothing was recorded to compare with."""
    if sha256:
        return sha256_file(path) == sha256
    if fingerprint:
        return fingerprint_file(path) == fingerprint
    return None


def check_recorded_digest(path: Path, manifest: object, split: str) -> None:
    """Refuse predictions that are not the ones `manifest` records for `split` (another run's
    manifest beside them, or a file changed since): their digest must match the recorded one."""
    from diagnose.exceptions import DataError

    if manifest is None:
        return
    splits = manifest.get("splits") if isinstance(manifest, dict) else getattr(manifest, "splits", None)
    entry = splits.get(split) if isinstance(splits, dict) else None

    def recorded(key: str) -> str | None:
        value = entry.get(key) if isinstance(entry, dict) else getattr(entry, key, None)
        return value if isinstance(value, str) else None

    fingerprint, sha = recorded("fingerprint"), recorded("sha256")
    if not Path(path).is_file() or same_file(path, fingerprint=fingerprint, sha256=sha) is not False:
        return
    shown = f"sha256 {sha[:12]}..." if sha else f"fingerprint {(fingerprint or '').split(':')[-1][:12]}..."
    raise DataError(
        f"{path}: expected the predictions its manifest records ({shown}), got a different "
        "file (another run wrote one of them, or the file changed); rerun diagnose gaps"
    )
