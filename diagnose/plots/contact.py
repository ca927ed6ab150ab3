"""The contact sheet of an error-analysis sample: one numbered tile per sheet row, captioned
true -> predicted (confidence), so the person labeling looks at the items instead of opening files.

The tiles are composed into one pixel mosaic (numpy + Pillow resizing) and drawn with one
`figimage`, so the PNG's size is exact: columns x CELL_W by TITLE_H + rows x CELL_H pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from diagnose.io.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
TILE = 128  # image area of a tile, pixels
PAD = 8  # white space around a tile
CAPTION_H = 22  # caption band under each tile
TITLE_H = 28
CELL_W = TILE + 2 * PAD
CELL_H = TILE + PAD + CAPTION_H
MAX_COLUMNS = 10
SUSPECT_RGB = (200, 30, 30)


@dataclass(frozen=True)
class Grid:
    tiles: int
    rows: int
    columns: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the PNG in pixels."""
        return (self.columns * CELL_W, TITLE_H + self.rows * CELL_H)


def grid_for(tiles: int) -> Grid:
    columns = max(1, min(MAX_COLUMNS, tiles))
    return Grid(tiles=tiles, rows=max(1, math.ceil(tiles / columns)), columns=columns)


def to_rgb8(image: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """(H, W), (H, W, 1|3|4), (1|3, H, W) -> (H, W, 3) uint8. Floats are scaled from [lo, hi]
    (default: the image's own range) to 0..255; uint8 is kept."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # channels first (torch) -> last
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        lo = float(np.nanmin(a)) if lo is None else lo
        hi = float(np.nanmax(a)) if hi is None else hi
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        a = np.clip(np.nan_to_num((a - lo) * scale), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an image (H, W) or (H, W, 3), got shape {np.asarray(image).shape}")
    return a


def _fit(rgb: np.ndarray) -> np.ndarray:
    """Resize to fit TILE x TILE keeping the aspect ratio: nearest for small images (pixels stay
    crisp, 8x8 digits stay readable), Lanczos when shrinking photos."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = TILE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(rgb).resize(size, method))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def caption(label: str, pred: str, confidence: float | None) -> str:
    """'cat → dog (0.93)'; names are shortened so the caption fits under a tile."""
    conf = "" if confidence is None or confidence != confidence else f" ({confidence:.2f})"
    a, b = str(label), str(pred)
    budget = 24 - len(conf) - 3  # about 24 characters of 8-point text fit under a tile
    while len(a) + len(b) > budget and max(len(a), len(b)) > 4:
        if len(a) >= len(b):
            a = _short(a, len(a) - 1)
        else:
            b = _short(b, len(b) - 1)
    return f"{a} \u2192 {b}{conf}"


def contact_sheet(
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    numbers: Sequence[int],
    *,
    suspect: Sequence[bool] | None = None,
    title: str = "",
) -> Figure:
    """A Figure of len(images) tiles. images: each (H, W) / (H, W, 3) uint8 RGB (see `to_rgb8`);
    captions and numbers: one per image; suspect: tiles framed and captioned in red."""
    from matplotlib.figure import Figure

    if not len(images) == len(captions) == len(numbers):
        raise ValueError("expected one caption and one number per image")
    suspect = list(suspect) if suspect is not None else [False] * len(images)
    grid = grid_for(len(images))
    width, height = grid.size
    mosaic = np.full((height, width, 3), 255, dtype=np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, grid.columns)
        x0, y0 = c * CELL_W + PAD, TITLE_H + r * CELL_H + PAD
        mosaic[y0 : y0 + TILE, x0 : x0 + TILE] = 235  # a light frame shows the tile's extent
        tile = _fit(to_rgb8(image))
        th, tw = tile.shape[:2]
        oy, ox = y0 + (TILE - th) // 2, x0 + (TILE - tw) // 2
        mosaic[oy : oy + th, ox : ox + tw] = tile
        if suspect[k]:
            for t in range(3):
                mosaic[y0 - 1 - t, x0 - 1 - t : x0 + TILE + 1 + t] = SUSPECT_RGB
                mosaic[y0 + TILE + t, x0 - 1 - t : x0 + TILE + 1 + t] = SUSPECT_RGB
                mosaic[y0 - 1 - t : y0 + TILE + 1 + t, x0 - 1 - t] = SUSPECT_RGB
                mosaic[y0 - 1 - t : y0 + TILE + 1 + t, x0 + TILE + t] = SUSPECT_RGB

    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    fig.figimage(mosaic, xo=0, yo=0, origin="upper")
    if title:
        fig.text(PAD / width, 1 - (TITLE_H / 2) / height, title, fontsize=10, va="center", ha="left")
    for k, (text, number) in enumerate(zip(captions, numbers, strict=True)):
        r, c = divmod(k, grid.columns)
        x0, y0 = c * CELL_W + PAD, TITLE_H + r * CELL_H + PAD
        fig.text(
            (x0 + 2) / width,
            1 - (y0 + 2) / height,
            str(number),
            fontsize=8,
            va="top",
            ha="left",
            fontweight="bold",
            bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
        )
        fig.text(
            (x0 + TILE / 2) / width,
            1 - (y0 + TILE + CAPTION_H / 2 + 2) / height,
            text,
            fontsize=8,
            va="center",
            ha="center",
            color="#c81e1e" if suspect[k] else "black",
        )
    return fig


def save_contact_sheet(fig: Figure, path: Path, *, tiles: int) -> None:
    """Write the PNG atomically; its text chunks carry the tile count and grid (tests read them)."""
    grid = grid_for(tiles)
    metadata = {"Software": "diagnose", "tiles": str(tiles), "grid": f"{grid.rows}x{grid.columns}"}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata=metadata)
