"""sha256 of a file, read in chunks: what the manifest records and `diagnose report` checks. No torch here."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_recorded_digest(path: Path, manifest: object, split: str) -> None:
    """Refuse predictions that are not the ones `manifest` records for `split` (another run's
    manifest beside them, or a file changed since): its sha256 must match the recorded one."""
    from diagnose.exceptions import DataError

    if manifest is None:
        return
    splits = manifest.get("splits") if isinstance(manifest, dict) else getattr(manifest, "splits", None)
    entry = splits.get(split) if isinstance(splits, dict) else None
    expected = entry.get("sha256") if isinstance(entry, dict) else getattr(entry, "sha256", None)
    if not isinstance(expected, str) or not Path(path).is_file():
        return
    if sha256_file(path) != expected:
        raise DataError(
            f"{path}: expected the predictions its manifest records (sha256 {expected[:12]}...), got a different "
            "file (another run wrote one of them, or the file changed); rerun diagnose gaps"
        )
