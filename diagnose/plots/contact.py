"""The contact sheet of an error-analysis sample: one numbered tile per sheet row, captioned
true -> predicted (confidence), so the person labeling looks at the items instead of opening files.

The tiles are composed into one pixel mosaic (numpy, Pillow for resizing and text), so the PNG's
size is exact: columns x CELL_W by TITLE_H + rows x CELL_H pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from diagnose.io.atomic import atomic_path
from diagnose.render import figure_text

if TYPE_CHECKING:
    from PIL import Image

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
    a, b = figure_text(label), figure_text(pred)
    budget = 24 - len(conf) - 3  # about 24 characters of 11 px DejaVu Sans fit under a 128 px tile
    while len(a) + len(b) > budget and max(len(a), len(b)) > 4:
        if len(a) >= len(b):
            a = _short(a, len(a) - 1)
        else:
            b = _short(b, len(b) - 1)
    return f"{a} \u2192 {b}{conf}"


def _fonts() -> tuple[Any, Any, Any]:
    """(caption, number, title) fonts: DejaVu Sans as matplotlib ships it (it has the arrow), else
    Pillow's built-in font."""
    import importlib.util

    from PIL import ImageFont

    # Found without importing matplotlib (0.7 s of start-up for a font path): its package folder.
    spec = importlib.util.find_spec("matplotlib")
    try:
        if spec is None or not spec.submodule_search_locations:
            raise OSError("matplotlib is not installed")
        ttf = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"
        return (
            ImageFont.truetype(str(ttf / "DejaVuSans.ttf"), 11),
            ImageFont.truetype(str(ttf / "DejaVuSans-Bold.ttf"), 11),
            ImageFont.truetype(str(ttf / "DejaVuSans.ttf"), 14),
        )
    except OSError:
        font = ImageFont.load_default()
        return font, font, font


def contact_sheet(
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    numbers: Sequence[int],
    *,
    suspect: Sequence[bool] | None = None,
    title: str = "",
) -> Image.Image:
    """An RGB image of len(images) tiles, `grid_for(n).size` pixels. images: each (H, W) /
    (H, W, 3) (see `to_rgb8`); captions and numbers: one per image; suspect: tiles framed and
    captioned in red.

    Drawn with Pillow rather than matplotlib text objects: 1,000 tiles take about a second and the
    memory of the pixels, where a matplotlib Figure with 2,000 texts took 13 s and 2.7 GB.
    """
    from PIL import Image, ImageDraw

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

    sheet = Image.fromarray(mosaic)
    draw = ImageDraw.Draw(sheet)
    caption_font, number_font, title_font = _fonts()
    if title:
        draw.text((PAD, TITLE_H // 2), title, fill="black", font=title_font, anchor="lm")
    for k, (text, number) in enumerate(zip(captions, numbers, strict=True)):
        r, c = divmod(k, grid.columns)
        x0, y0 = c * CELL_W + PAD, TITLE_H + r * CELL_H + PAD
        box = draw.textbbox((x0 + 3, y0 + 2), str(number), font=number_font)
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill="white")
        draw.text((x0 + 3, y0 + 2), str(number), fill="black", font=number_font)
        color = SUSPECT_RGB if suspect[k] else (0, 0, 0)
        draw.text((x0 + TILE // 2, y0 + TILE + 2 + CAPTION_H // 2), text, fill=color, font=caption_font, anchor="mm")
    return sheet


def save_contact_sheet(sheet: Image.Image, path: Path, *, tiles: int) -> None:
    """Write the PNG atomically; its text chunks carry the tile count and grid (tests read them)."""
    from PIL.PngImagePlugin import PngInfo

    grid = grid_for(tiles)
    info = PngInfo()
    for key, value in {"Software": "diagnose", "tiles": str(tiles), "grid": f"{grid.rows}x{grid.columns}"}.items():
        info.add_text(key, value)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", pnginfo=info, compress_level=3)


def regrid(png: bytes, columns: int = 2) -> bytes | None:
    """The tiles of a contact sheet PNG (as `save_contact_sheet` wrote it) laid out `columns` to a
    row, without the title band: at a phone's width the tiles are shown at their own size, so the
    11 px captions stay readable. None when the PNG is not one of ours (no grid recorded)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as im:
            rows_cols = im.text.get("grid", "") if hasattr(im, "text") else ""
            tiles = int(im.text.get("tiles", "0")) if hasattr(im, "text") else 0
            rows, cols = (int(x) for x in rows_cols.split("x"))
            sheet = im.convert("RGB")
    except (OSError, ValueError):
        return None
    if tiles <= 0 or sheet.size != grid_for(tiles).size or cols != grid_for(tiles).columns or rows < 1:
        return None
    new_rows = math.ceil(tiles / columns)
    out = Image.new("RGB", (columns * CELL_W, new_rows * CELL_H), "white")
    for k in range(tiles):
        r, c = divmod(k, cols)
        cell = sheet.crop((c * CELL_W, TITLE_H + r * CELL_H, (c + 1) * CELL_W, TITLE_H + (r + 1) * CELL_H))
        nr, nc = divmod(k, columns)
        out.paste(cell, (nc * CELL_W, nr * CELL_H))
    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
