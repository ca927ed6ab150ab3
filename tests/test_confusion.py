"""The confusion-matrix image of `diagnose errors`: row rates, the grown cells, the PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from diagnose.plots.confusion import confusion_figure, grown_cells, panels_for, row_rates, save_png


def test_row_rates_and_grown_cells_by_hand() -> None:
    before = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]])
    after = np.array([[5, 5, 0], [0, 6, 4], [3, 0, 7]])
    rates = row_rates(before)
    assert np.allclose(rates[0], [0.8, 0.2, 0.0]) and np.isnan(rates[2]).all()
    grown = grown_cells(before, after)
    # (1, 2): 0 -> 0.4; (0, 1): 0.2 -> 0.5; (2, 0) has no items in `before`'s row: not comparable.
    assert [(g.true, g.pred) for g in grown] == [(1, 2), (0, 1)]
    assert grown[0].before == 0.0 and grown[0].after == pytest.approx(0.4) and grown[0].count == 4
    assert grown[1].growth == pytest.approx(0.3)
    # A cell of one item is not a pattern.
    assert [(g.true, g.pred) for g in grown_cells(before, np.array([[9, 1, 0], [0, 9, 1], [0, 0, 1]]))] == []


def test_grown_cells_against_a_loop() -> None:
    rng = np.random.default_rng(3)
    before, after = rng.integers(0, 20, (12, 12)), rng.integers(0, 20, (12, 12))
    expected = []
    for i in range(12):
        for j in range(12):
            if i != j and after[i, j] >= 2:
                g = after[i, j] / after[i].sum() - before[i, j] / before[i].sum()
                if g > 0:
                    expected.append((g, i, j))
    expected.sort(key=lambda t: -t[0])
    got = grown_cells(before, after, top=7)
    assert [(g.true, g.pred) for g in got] == [(i, j) for _, i, j in expected[:7]]


def test_panels_for() -> None:
    assert panels_for(["train", "train_dev", "dev"], "dev") == ["train_dev", "dev"]
    assert panels_for(["train", "train_dev"], "train_dev") == ["train", "train_dev"]
    assert panels_for(["dev"], "dev") == ["dev"]
    assert panels_for(["train", "dev"], "train") == ["train"]


@pytest.mark.slow
@pytest.mark.parametrize("classes", [10, 100])
def test_figure_is_drawn_and_marked(tmp_path: Path, classes: int) -> None:
    rng = np.random.default_rng(classes)
    a = rng.integers(0, 3, (classes, classes)) + np.eye(classes, dtype=int) * 40
    b = rng.integers(0, 6, (classes, classes)) + np.eye(classes, dtype=int) * 25
    grown = grown_cells(a, b)
    png = tmp_path / "cm.png"
    save_png(confusion_figure([("train_dev", a), ("dev", b)], [f"c{k}" for k in range(classes)], grown), png)
    with Image.open(png) as im:
        assert im.text.get("Software") == "diagnose"
        assert 900 <= im.size[0] <= 1300
        pixels = np.asarray(im.convert("RGB")).astype(int)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 100  # the grown cells are boxed in red
    stacked = confusion_figure([("train_dev", a), ("dev", b)], None, grown, stacked=True)
    assert stacked.get_size_inches()[0] * stacked.dpi <= 440  # a phone's width, text kept large


def test_errors_writes_the_confusion_image(cli, tmp_path: Path, example_model: Path, example_data: Path) -> None:
    wd = tmp_path / "wd"
    assert cli("gaps", example_model, example_data, "--workdir", wd, "--human-error", 0.01).exit_code == 0
    out = tmp_path / "sheet.csv"
    result = cli("errors", "--workdir", wd, "--out", out, "--sample", 20, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["confusion_png"] == str(tmp_path / "sheet_confusion.png")
    assert doc["confusion_splits"] == ["train_dev", "dev"]
    # The grown cells, recomputed from the saved predictions with pandas.
    rates = {}
    for split in ("train_dev", "dev"):
        p = pd.read_parquet(wd / "predictions" / f"{split}.parquet")
        rates[split] = pd.crosstab(p["label"], p["pred"], normalize="index").reindex(index=range(10), columns=range(10), fill_value=0.0)
        counts = pd.crosstab(p["label"], p["pred"]).reindex(index=range(10), columns=range(10), fill_value=0)
    growth = (rates["dev"] - rates["train_dev"]).stack()
    growth = growth[[i != j and counts.loc[i, j] >= 2 and g > 0 for (i, j), g in growth.items()]]
    top = growth.sort_values(ascending=False, kind="stable").head(5)
    got = [(int(g["label"]), int(g["pred"])) for g in doc["grown_confusions"]]
    assert got == [tuple(k) for k in top.index]
    assert doc["grown_confusions"][0]["growth"] == pytest.approx(top.iloc[0])
    with Image.open(doc["confusion_png"]) as im:
        assert im.format == "PNG"


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=2048))
def test_regrid_reads_any_bytes_without_crashing(data: bytes) -> None:
    from diagnose.plots.contact import regrid

    assert regrid(data) is None  # not a contact sheet of ours


def test_regrid_lays_a_contact_sheet_out_two_to_a_row(tmp_path: Path) -> None:
    import io

    from diagnose.plots.contact import CELL_H, CELL_W, contact_sheet, regrid, save_contact_sheet

    tiles = [np.full((8, 8), k * 20, dtype=np.uint8) for k in range(13)]
    sheet = contact_sheet(tiles, [f"{k} \u2192 x" for k in range(13)], list(range(1, 14)), title="t")
    save_contact_sheet(sheet, tmp_path / "s.png", tiles=13)
    raw = (tmp_path / "s.png").read_bytes()
    narrow = regrid(raw)
    assert narrow is not None
    with Image.open(io.BytesIO(narrow)) as im:
        assert im.size == (2 * CELL_W, 7 * CELL_H)
        px = np.asarray(im.convert("L"))
    # Tile 13 (grey 240) sits alone in the last row, left; the right half of that row is blank.
    assert (px[6 * CELL_H : 7 * CELL_H, CELL_W:] == 255).all()
    assert px[6 * CELL_H + 40, 40] == 240
