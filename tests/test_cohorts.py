"""`diagnose cohorts`: the tests and corrections against scipy and statsmodels, planted slices found,
null data left alone, and the command on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from diagnose.cli import app
from diagnose.core.cohorts import benjamini_hochberg, conditions_of, find_cohorts, fisher_greater
from diagnose.core.stats import wilson_interval


def test_fisher_tail_is_scipys() -> None:
    from scipy.stats import fisher_exact, hypergeom

    rng = np.random.default_rng(0)
    items, errors = 4000, 500
    n = rng.integers(1, 3000, 300)
    k = np.array([rng.integers(max(0, a - (items - errors)), min(a, errors) + 1) for a in n])
    ours = fisher_greater(k, n, errors, items)
    assert np.allclose(ours, hypergeom.sf(k - 1, items, errors, n), rtol=1e-8, atol=1e-300)
    # The same as Fisher's exact test on the 2x2 table slice / rest x wrong / right, one-sided.
    for ki, ni in zip(k[:20].tolist(), n[:20].tolist(), strict=True):
        table = [[ki, ni - ki], [errors - ki, items - ni - errors + ki]]
        assert fisher_greater(np.array([ki]), np.array([ni]), errors, items)[0] == pytest.approx(
            fisher_exact(table, alternative="greater").pvalue, rel=1e-8)


def test_benjamini_hochberg_is_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(1)
    p = np.concatenate([rng.random(200), rng.random(20) * 1e-4])
    assert np.allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1])


def test_conditions_of_categories_and_numbers() -> None:
    cats = np.array(["a", "b", None, "a"], dtype=object)
    got = {c.describe(): m.tolist() for c, m in conditions_of("site", cats)}
    assert got == {"site = a": [True, False, False, True], "site = b": [False, True, False, False]}
    x = np.arange(100, dtype=float)
    got = {c.describe(): int(m.sum()) for c, m in conditions_of("age", x)}
    assert got["age >= 89.1"] == 10 and got["age <= 9.9"] == 10 and got["age >= 74.25"] == 25


def _planted(seed: int, kind: str, n: int = 3000, base: float = 0.1) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """Errors at `base`, 3x that in a tenth of the items defined by one metadata column; unrelated columns beside."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {f"group{j}": rng.choice(list("ABCDE"), n).astype(object) for j in range(3)}
    cols.update({f"score{j}": rng.normal(size=n) for j in range(3)})
    if kind == "category":
        cols["camera"] = rng.choice(list("PQRSTUVWXY"), n).astype(object)
        planted, column = cols["camera"] == "Q", "camera"
    else:
        cols["exposure"] = rng.random(n)
        planted, column = cols["exposure"] >= 0.9, "exposure"
    wrong = rng.random(n) < np.where(planted, 3 * base, base)
    return wrong, cols, column


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["category", "range"])
def test_planted_slices_are_recovered(kind: str) -> None:
    """A tenth of 3,000 items with 3x the error rate (10% against 30%). Measured: the most significant
    cohort is the planted condition alone in 19 of 20 runs for a category, 20 of 20 for a numeric range."""
    recovered = 0
    for seed in range(20):
        wrong, cols, column = _planted(seed, kind)
        found = find_cohorts(wrong, cols, seed=seed)
        recovered += bool(found.cohorts) and found.cohorts[0].conditions[0].column == column and len(found.cohorts[0].conditions) == 1
        if found.cohorts:
            top = found.cohorts[0]
            assert top.ci[0] <= top.error <= top.ci[1]
            k = round(top.error * top.n_confirm)
            assert top.ci == pytest.approx(wilson_interval(k, top.n_confirm))
    assert recovered >= 18, recovered


@pytest.mark.slow
def test_a_planted_pair_of_conditions_is_recovered() -> None:
    """A ninth of 3,000 items (group0 = A and group1 = B) errs at 30%, the rest at 10%. Measured: the
    pair is among the cohorts in 19 of 20 runs (the most significant in 17)."""
    recovered = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n = 3000
        cols: dict[str, np.ndarray] = {f"group{j}": rng.choice(list("ABC"), n).astype(object) for j in range(3)}
        cols.update({f"score{j}": rng.normal(size=n) for j in range(2)})
        planted = (cols["group0"] == "A") & (cols["group1"] == "B")
        found = find_cohorts(rng.random(n) < np.where(planted, 0.3, 0.1), cols, seed=seed)
        recovered += "group0 = A and group1 = B" in [c.description for c in found.cohorts]
    assert recovered >= 18, recovered


@pytest.mark.slow
def test_null_data_gives_no_cohort() -> None:
    """Errors independent of 10 random columns (5 of categories, 5 of numbers). Measured: no cohort in
    40 of 40 runs."""
    reported = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        n = 3000
        cols: dict[str, np.ndarray] = {f"group{j}": rng.choice(list("ABCDE"), n).astype(object) for j in range(5)}
        cols.update({f"score{j}": rng.normal(size=n) for j in range(5)})
        reported += bool(find_cohorts(rng.random(n) < 0.1, cols, seed=seed).cohorts)
    assert reported <= 2, reported


def _project(tmp_path: Path, seed: int = 3, by: str = "id") -> tuple[Path, Path]:
    wrong, cols, _ = _planted(seed, "category")
    n = len(wrong)
    label = np.arange(n) % 4
    pred = np.where(wrong, (label + 1) % 4, label)
    folder = tmp_path / "preds"
    folder.mkdir()
    ids = [f"img/{i:05d}.png" for i in range(n)]
    pd.DataFrame({"index": np.arange(n), "id": ids, "label": label, "pred": pred}).to_parquet(folder / "dev.parquet")
    meta = pd.DataFrame({by: ids if by == "id" else np.arange(n), **cols}).sample(frac=1.0, random_state=0)
    path = tmp_path / ("meta.csv" if by == "id" else "meta.parquet")
    if by == "id":
        meta.to_csv(path, index=False)
    else:
        meta.to_parquet(path)
    return folder, path


@pytest.mark.parametrize("by", ["id", "index"])
def test_command_finds_the_planted_cohort(tmp_path: Path, by: str) -> None:
    folder, meta = _project(tmp_path, by=by)
    result = CliRunner().invoke(app, ["cohorts", str(folder), "--meta", str(meta), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["split"] == "dev" and doc["items"] == 3000 and doc["min_support"] == 30
    top = doc["cohorts"][0]
    assert top["description"] == "camera = Q"
    assert top["conditions"] == [{"column": "camera", "op": "=", "value": "Q"}]
    assert top["lift"] > 2 and top["p_adjusted"] < 0.05 and top["ci"][0] < top["error"] < top["ci"][1]
    assert 250 < top["n"] < 350
    table = CliRunner().invoke(app, ["cohorts", str(folder), "--meta", str(meta)])
    assert "camera = Q" in table.stdout and "confirmed on the other half" in table.stdout


def test_bad_inputs_are_one_error_line(tmp_path: Path) -> None:
    folder, meta = _project(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["cohorts", str(folder)])
    assert result.exit_code == 2
    assert result.stderr == ("Error: --meta: expected a CSV or Parquet file of per-item columns (with an id or index "
                             "column), got none; pass --meta items.csv\n")
    result = runner.invoke(app, ["cohorts", str(folder), "--meta", str(meta), "--source", "features"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --source features: expected meta or image, got a source that is not searched yet")
    result = runner.invoke(app, ["cohorts", str(folder), "--source", "image"])
    assert result.exit_code == 2
    assert result.stderr == ("Error: --data: expected the DATA folder whose images to measure, got none (the workdir "
                             "records none); pass --data DIR\n")
    bare = tmp_path / "bare.csv"
    pd.DataFrame({"camera": ["a", "b"]}).to_csv(bare, index=False)
    result = runner.invoke(app, ["cohorts", str(folder), "--meta", str(bare)])
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {bare}: expected an 'id' or 'index' column to match items with, got camera; add one\n")
    other = tmp_path / "other.csv"
    pd.DataFrame({"id": ["x", "y"], "camera": ["a", "b"]}).to_csv(other, index=False)
    result = runner.invoke(app, ["cohorts", str(folder), "--meta", str(other)])
    assert result.exit_code == 1 and "expected rows matching the items of the split by 'id', got none" in result.stderr


def _dark_images(tmp_path: Path, seed: int, n: int = 3000) -> tuple[Path, Path, np.ndarray]:
    """A DATA folder with dev.npz (n 8x8 grey images, a tenth of them darker) and predictions whose
    errors are 10% on the rest and 30% on the dark tenth."""
    rng = np.random.default_rng(seed)
    dark = rng.random(n) < 0.1
    x = rng.uniform(0.4, 0.9, (n, 1, 8, 8))
    x[dark] *= 0.4
    y = np.arange(n) % 4
    data = tmp_path / f"data{seed}"
    data.mkdir()
    np.savez(data / "dev.npz", x=(x * 255).astype(np.uint8), y=y)
    wrong = rng.random(n) < np.where(dark, 0.3, 0.1)
    preds = tmp_path / f"preds{seed}"
    preds.mkdir()
    pd.DataFrame({"index": np.arange(n), "label": y, "pred": np.where(wrong, (y + 1) % 4, y)}).to_parquet(preds / "dev.parquet")
    return data, preds, dark


def _members(cohort: object, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The items a cohort's conditions select, computed here from its JSON conditions."""
    mask = np.ones(len(next(iter(columns.values()))), dtype=bool)
    for cond in cohort.to_json()["conditions"]:  # type: ignore[attr-defined]
        x, op, value = columns[cond["column"]], cond["op"], cond["value"]
        if op == "<=":
            mask &= x <= value
        elif op == ">=":
            mask &= x >= value
        elif op == "=":
            mask &= x == value
        else:
            mask &= (x >= value[0]) & (x < value[1])
    return mask


@pytest.mark.slow
def test_a_planted_image_property_is_recovered(tmp_path: Path) -> None:
    """Dark images (a tenth of 3,000, 3x the error rate) found from image statistics alone, with no
    metadata: some cohort holds at least 80% of the dark items, and they are at least half of it (a
    brightness or a contrast condition: darkened images have both lower). Measured: 10 of 10 runs."""
    from diagnose.cohorts import image_statistics, run_cohorts

    recovered = 0
    for seed in range(10):
        data, preds, dark = _dark_images(tmp_path, seed)
        found = run_cohorts(preds, meta=None, data=data, seed=seed)
        stats = image_statistics(data, "dev")
        for cohort in found.cohorts:
            inside = _members(cohort, stats)
            if (inside & dark).sum() >= 0.8 * dark.sum() and (inside & dark).sum() >= 0.5 * inside.sum():
                recovered += 1
                break
    assert recovered >= 9, recovered


def test_image_statistics_of_image_files_and_arrays(tmp_path: Path) -> None:
    from PIL import Image

    from diagnose.cohorts import image_statistics

    data, _, dark = _dark_images(tmp_path, 0, n=40)
    stats = image_statistics(data, "dev")
    x = np.load(data / "dev.npz")["x"].astype(np.float64) / 255
    assert np.allclose(stats["brightness"], x.reshape(40, -1).mean(axis=1), atol=1e-6)
    assert np.allclose(stats["contrast"], x.reshape(40, -1).std(axis=1), atol=1e-6)
    assert stats["brightness"][dark].max() < stats["brightness"][~dark].min()
    folder = tmp_path / "files"
    for i, shade in enumerate((30, 200)):
        (folder / "dev" / "a").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (6 + i, 5), (shade, shade, shade)).save(folder / "dev" / "a" / f"{i}.png")
    stats = image_statistics(folder, "dev")
    assert np.allclose(stats["brightness"], [30 / 255, 200 / 255]) and stats["width"].tolist() == [6, 7]
    assert stats["height"].tolist() == [5, 5] and np.allclose(stats["contrast"], 0)
