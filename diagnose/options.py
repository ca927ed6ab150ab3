"""The options several commands share, each defined once: its flag, its help, its default.

A command writes `mean: options.Mean = None`; the flag, help text and checks come from here, so
`gaps`, `errors`, `sanity`, `data` and `report` cannot drift apart. Only typer and the standard
library are imported: every command module imports this at start-up.
"""

from __future__ import annotations

import enum
import math
from pathlib import Path
from typing import Annotated

import typer

from diagnose.exceptions import UsageError

# --------------------------------------------------------------------------- closed choices


class Metric(str, enum.Enum):
    error = "error"
    mse = "mse"
    mae = "mae"


class Device(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Precision(str, enum.Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class FailOn(str, enum.Enum):
    warn = "warn"
    fail = "fail"


# --------------------------------------------------------------------------- defaults (one each)

from diagnose.defaults import APP_DIR, BATCH_SIZE, LABEL_COLUMN, MAX_IMAGE_SIDE, SEED, WORKDIR  # noqa: E402,F401  (one definition each)

# --------------------------------------------------------------------------- model loading

Arch = Annotated[
    str | None,
    typer.Option("--arch", help="Architecture for weights-only files: package.module:factory or path/to/file.py:ClassName."),
]
ArchKwargs = Annotated[
    str | None,
    typer.Option("--arch-kwargs", help="JSON object of keyword arguments for --arch, e.g. '{\"hidden\": 64}'."),
]
AppDir = Annotated[
    Path,
    typer.Option("--app-dir", readable=False, help="Folder put first on sys.path so --arch module specs and pickled models find your own code (as python -m would)."),
]
TrustPickle = Annotated[
    bool,
    typer.Option("--trust-pickle", help="Allow a whole pickled nn.Module (runs code stored in the file: only for files you trust)."),
]
TrustSettings = Annotated[
    bool,
    typer.Option("--trust-settings", help="Import the code (arch) named by a settings file that came with DATA (DATA/diagnose.toml, a pyproject.toml above it outside the current project): only for data you trust."),
]

# --------------------------------------------------------------------------- evaluation

DeviceOpt = Annotated[Device, typer.Option("--device", help="Where the model runs: auto picks cuda, then mps, then cpu.")]
PrecisionOpt = Annotated[Precision, typer.Option("--precision", help="fp32, or bf16 / fp16 autocast.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Items per forward pass.")]
Workers = Annotated[int, typer.Option("--workers", min=0, help="Processes decoding image folders (tensor and table files need none).")]
MaxItems = Annotated[
    int | None,
    typer.Option("--max-items", min=1, help="Evaluate a seeded uniform sample of at most N items per split (intervals widen to match)."),
]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Seed of every random draw: the same seed gives the same result.")]
Workdir = Annotated[
    Path, typer.Option("--workdir", readable=False, help="Where `diagnose gaps` saves per-item predictions and manifest.json.")
]

# --------------------------------------------------------------------------- reading DATA

LabelColumn = Annotated[str, typer.Option("--label-column", help="Label column in CSV / Parquet splits.")]
ImageSize = Annotated[str | None, typer.Option("--image-size", help="Resize images to H,W (or one number for square).")]
Mean = Annotated[
    str | None,
    typer.Option("--mean", help="Mean subtracted from the inputs: one value, or one per channel (image pixels in [0, 1], e.g. 0.485,0.456,0.406; signal channels) or per column of a table, on the values as stored."),
]
Std = Annotated[
    str | None,
    typer.Option("--std", help="Standard deviation the inputs are divided by after --mean: one value, or one per channel or column, e.g. 0.229,0.224,0.225."),
]
Transform = Annotated[
    str | None,
    typer.Option("--transform", metavar="MODULE:FUNCTION", help="A function of your own from a batch of inputs (a float32 tensor, after --mean/--std) to the batch the model takes: package.module:function or path/to/file.py:function, imported as --arch is."),
]
Standardize = Annotated[
    str | None,
    typer.Option("--standardize", metavar="train", help="Standardize tensor and table splits with each feature's (column's, channel's) mean and standard deviation over the train split, as a StandardScaler fitted on train; recorded in the manifest."),
]

# --------------------------------------------------------------------------- curves

Smooth = Annotated[
    float | None,
    typer.Option("--smooth", min=0.0, max=0.999, show_default=False,
                 help="TensorBoard-style smoothing weight for per-step curves, 0 to 0.999 (default: an EMA window of 2% of the points)."),
]
Classes = Annotated[int | None, typer.Option("--classes", min=2, help="Number of classes: checks the loss against chance, ln(C).")]

# --------------------------------------------------------------------------- output

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (schema in docs/json.md).")]
Markdown = Annotated[bool, typer.Option("--markdown", help="Print the result as Markdown.")]
FailOnOpt = Annotated[
    FailOn | None, typer.Option("--fail-on", help="Exit with code 3 when any check reaches this status (warn: warn or fail).")
]

# --------------------------------------------------------------------------- parsing


def parse_floats(text: str | None, option: str) -> list[float] | None:
    """'0.485,0.456,0.406' -> [0.485, 0.456, 0.406]; None stays None."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise UsageError(f"{option}: expected comma-separated numbers like 0.485,0.456,0.406, got {text!r}; fix the list") from None
    if not values:
        raise UsageError(f"{option}: expected at least one number, got {text!r}; pass e.g. {option} 0.5")
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"{option}: expected finite numbers, got {text!r}; fix the list")
    if option == "--std" and min(values) <= 0:
        raise UsageError(f"{option}: expected standard deviations > 0 (the inputs are divided by them), got {text!r}; "
                         "pass e.g. --std 0.229,0.224,0.225")
    return values


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    """'224' or '224,192' or '224x192' -> (H, W); None stays None."""
    if text is None:
        return None
    parts = text.lower().replace("x", ",").split(",")
    try:
        dims = [int(p) for p in parts if p.strip()]
    except ValueError:
        dims = []
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) <= 0 or max(dims) > MAX_IMAGE_SIDE:
        raise UsageError(f"--image-size: expected H,W or one size like 224, got {text!r}; pass e.g. --image-size 224,224 "
                         f"(each side from 1 to {MAX_IMAGE_SIDE})")
    return dims[0], dims[1]


# Library arguments whose command-line spelling is not `--` + the name with dashes.
_FLAGS = {"model": "MODEL", "data": "DATA", "splits": "DATA"}


def flag(argument: str) -> str:
    """The command-line spelling of a library argument: max_items -> --max-items, model -> MODEL."""
    return _FLAGS.get(argument, "--" + argument.replace("_", "-"))


def cli_message(exc: Exception) -> str:
    """A library error as the command line words it: arguments become flags, in the head and in the fix."""
    from diagnose.exceptions import ArgumentError, DiagnoseError

    if isinstance(exc, ArgumentError):
        name = flag(exc.argument)
        detail = exc.detail.replace(f"use {exc.argument} ", f"use {name} ")
        head = name if exc.value is None else f"{name} {exc.value}"
        return f"{head}: {detail}"
    return exc.message if isinstance(exc, DiagnoseError) else str(exc)


def one_format(json_out: bool, markdown: bool) -> None:
    """--json and --markdown exclude each other."""
    if json_out and markdown:
        raise UsageError("--json and --markdown: expected at most one output format, got both; pick one")
