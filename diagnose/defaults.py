"""The default of each setting shared by the commands and the Python API, defined once.

Plain constants (no typer, no torch): `diagnose.options` gives them to the flags, `diagnose.api` and
`diagnose.evaluate` to their keyword arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

BATCH_SIZE = 256  # items per forward pass
LABEL_COLUMN = "label"  # label column of CSV / Parquet splits
SEED = 0  # seed of every random draw (the --max-items sample, the error sample)
WORKDIR = Path(".diagnose")  # where gaps saves predictions and manifest.json
APP_DIR = Path(".")  # put first on sys.path for --arch specs and trusted pickles
DEVICE: Final = "auto"  # cuda, then mps, then cpu
PRECISION: Final = "fp32"  # or bf16 / fp16 autocast
