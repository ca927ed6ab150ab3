"""`.diagnose/manifest.json`: what a `diagnose gaps` run evaluated, how, and what it found.

`Manifest` is the one reader and writer of that file. Every field is optional when read, since
`--predictions DIR` may come from another framework with no manifest or a partial one; a field of the
wrong type reads as absent rather than failing a later command.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diagnose import __version__
from diagnose.exceptions import DataError

if TYPE_CHECKING:
    from diagnose.core.gaps import GapReport

MANIFEST = "manifest.json"


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


@dataclass(frozen=True)
class ModelRecord:
    """The model file evaluated: absolute path, content digest, loader format ('torchscript', ...)."""

    path: str | None = None
    sha256: str | None = None  # only with a full digest (io.digest)
    format: str | None = None
    fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "fingerprint": self.fingerprint, "sha256": self.sha256, "format": self.format}

    @classmethod
    def from_json(cls, doc: Any) -> ModelRecord:
        d = _dict(doc)
        return cls(path=_str(d.get("path")), sha256=_str(d.get("sha256")), format=_str(d.get("format")),
                   fingerprint=_str(d.get("fingerprint")))


@dataclass(frozen=True)
class SplitFile:
    """One split of DATA: its path relative to the data folder, format, item count and digest."""

    path: str | None = None
    format: str | None = None
    n: int | None = None
    sha256: str | None = None  # only with a full digest (io.digest)
    fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "n": self.n, "fingerprint": self.fingerprint, "sha256": self.sha256}

    @classmethod
    def from_json(cls, doc: Any) -> SplitFile:
        d = _dict(doc)
        return cls(path=_str(d.get("path")), format=_str(d.get("format")), n=_int(d.get("n")), sha256=_str(d.get("sha256")),
                   fingerprint=_str(d.get("fingerprint")))


@dataclass(frozen=True)
class DataRecord:
    """The DATA folder (absolute path, or None for in-memory splits) and its split files."""

    path: str | None = None
    splits: dict[str, SplitFile] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "splits": {n: s.to_json() for n, s in self.splits.items()}}

    @classmethod
    def from_json(cls, doc: Any) -> DataRecord:
        d = _dict(doc)
        splits = {str(n): SplitFile.from_json(s) for n, s in _dict(d.get("splits")).items() if isinstance(s, dict)}
        return cls(path=_str(d.get("path")), splits=splits)


@dataclass(frozen=True)
class SplitRun:
    """One split's evaluation: the predictions file (relative to the workdir) and its digest, items evaluated (n) of
    n_total, misclassified count (classification), error (fraction, or mean loss), seconds."""

    file: str | None = None
    n: int | None = None
    n_total: int | None = None
    errors: int | None = None
    error: float | None = None
    seconds: float | None = None
    sha256: str | None = None  # of the predictions file (full digest only), to tell when it was changed afterwards
    fingerprint: str | None = None  # of the predictions file (io.digest)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "fingerprint": self.fingerprint, "sha256": self.sha256, "n": self.n,
                               "n_total": self.n_total}
        if self.errors is not None:
            out["errors"] = self.errors
        out["error"] = self.error
        out["seconds"] = self.seconds
        return out

    @classmethod
    def from_json(cls, doc: Any) -> SplitRun:
        d = _dict(doc)
        return cls(file=_str(d.get("file")), n=_int(d.get("n")), n_total=_int(d.get("n_total")),
                   errors=_int(d.get("errors")), error=_float(d.get("error")), seconds=_float(d.get("seconds")),
                   sha256=_str(d.get("sha256")), fingerprint=_str(d.get("fingerprint")))


@dataclass(frozen=True)
class Manifest:
    """The whole manifest. `report` is the GapReport as its JSON (see `gap_report`)."""

    metric: str | None = None
    model: ModelRecord = field(default_factory=ModelRecord)
    data: DataRecord = field(default_factory=DataRecord)
    classes: list[str] | None = None
    num_classes: int | None = None
    human_error: float | None = None
    device: str | None = None
    precision: str | None = None
    max_items: int | None = None
    seed: int | None = None
    world_size: int | None = None
    splits: dict[str, SplitRun] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    # What the model was fed: {"kind": "none"}, or kind "mean/std" / "standardize train" with the
    # mean and std used (one value or one per feature), and "images" with the decoding options.
    preprocessing: dict[str, Any] | None = None
    diagnose_version: str | None = None
    created: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "diagnose_version": self.diagnose_version or __version__,
            "created": self.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "metric": self.metric,
            "model": self.model.to_json(),
            "data": self.data.to_json(),
            "classes": self.classes,
            "num_classes": self.num_classes,
            "human_error": self.human_error,
            "device": self.device,
            "precision": self.precision,
            "max_items": self.max_items,
            "seed": self.seed,
            "world_size": self.world_size,
            "splits": {n: s.to_json() for n, s in self.splits.items()},
            "preprocessing": self.preprocessing,
            "report": self.report,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Manifest:
        """Any JSON value: fields missing or of the wrong type read as absent."""
        d = _dict(doc)
        classes = d.get("classes")
        return cls(
            metric=_str(d.get("metric")),
            model=ModelRecord.from_json(d.get("model")),
            data=DataRecord.from_json(d.get("data")),
            classes=[str(c) for c in classes] if isinstance(classes, list) else None,
            num_classes=_int(d.get("num_classes")),
            human_error=_float(d.get("human_error")),
            device=_str(d.get("device")),
            precision=_str(d.get("precision")),
            max_items=_int(d.get("max_items")),
            seed=_int(d.get("seed")),
            world_size=_int(d.get("world_size")),
            splits={str(n): SplitRun.from_json(s) for n, s in _dict(d.get("splits")).items() if isinstance(s, dict)},
            report=d.get("report") if isinstance(d.get("report"), dict) else None,
            preprocessing=d.get("preprocessing") if isinstance(d.get("preprocessing"), dict) else None,
            diagnose_version=_str(d.get("diagnose_version")),
            created=_str(d.get("created")),
        )

    def gap_report(self) -> GapReport | None:
        """The saved report; raises KeyError, TypeError, ValueError or IndexError when it is malformed."""
        from diagnose.core.gaps import GapReport

        return None if self.report is None else GapReport.from_json(self.report)

    def split_format(self, split: str) -> str | None:
        entry = self.data.splits.get(split)
        return entry.format if entry is not None else None


def manifest_path(workdir: Path) -> Path:
    return Path(workdir) / MANIFEST


def write_manifest(workdir: Path, manifest: Manifest) -> Path:
    """Write `workdir/manifest.json` atomically."""
    from diagnose.io.atomic import atomic_write_text
    from diagnose.render import to_json_text

    path = manifest_path(workdir)
    atomic_write_text(path, to_json_text(manifest.to_json()) + "\n")
    return path


def load_manifest(path: Path) -> Manifest:
    """Read one manifest file; DataError when it cannot be read or is not JSON."""
    from diagnose.io.paths import open_regular
    from diagnose.io.splits import unreadable

    try:
        with open_regular(Path(path), "a JSON manifest", "rerun diagnose gaps", DataError) as fh:
            doc = json.loads(fh.read().decode("utf-8"))
    except RecursionError:
        raise DataError(f"{path}: expected a JSON manifest, got nesting too deep to read; rerun diagnose gaps") from None
    except PermissionError:
        raise DataError(unreadable(path, "manifest")) from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: expected a JSON manifest, got bytes that are not UTF-8 text; rerun diagnose gaps") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: expected JSON, got {exc.msg} at line {exc.lineno}; rerun diagnose gaps") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object (a manifest), got a JSON {_json_kind(doc)}; rerun diagnose gaps")
    return Manifest.from_json(doc)


def _json_kind(doc: object) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(doc), "number")


def read_manifest(workdir: Path) -> Manifest | None:
    """The manifest in `workdir` (or its parent when given `.../predictions`), or None."""
    for candidate in (manifest_path(workdir), Path(workdir).parent / MANIFEST):
        if candidate.is_file():
            return load_manifest(candidate)
    return None


def manifest_error(workdir: Path, sheet: Path, split: str) -> tuple[float | None, str | None, int | None]:
    """(error rate, the manifest it came from, misclassified count) of `split`, or Nones: what
    `diagnose tally` needs to turn category shares into ceilings on the error.

    Looks in `workdir`, then in the `.diagnose/` beside the sheet (a sheet carried to another folder).
    """
    from diagnose.exceptions import InputError

    for path in (manifest_path(workdir), Path(sheet).resolve().parent / ".diagnose" / MANIFEST):
        if not path.is_file():
            continue
        try:
            manifest = load_manifest(path)
        except DataError as exc:
            raise InputError(f"{exc.message.rsplit('; ', 1)[0]}; rerun diagnose gaps or give the error rate") from None
        entry = manifest.splits.get(split)
        if entry is not None and entry.error is not None:
            return entry.error, str(path), entry.errors
    return None, None, None
