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
# The largest image side a setting or --image-size may ask for: an 8192 x 8192 RGB image is 0.8 GB
# as float32, already past one batch on most GPUs; a typo such as 200000 would ask for 480 GB.
MAX_IMAGE_SIDE: Final = 8192
