"""`diagnose errors` end to end: gaps -> errors on the bundled example, foreign shards, refusals, tally round trip."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from diagnose.cli import app

HEADER = ("n,split,index,id,label,pred,confidence,p_label,loss,suspect_mislabel,label_issue_score,blurry,confusable,mislabeled,"
          "other,note")


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory, example_model: Path, example_data: Path) -> Path:
    """`.diagnose/` as `diagnose gaps` leaves it for the bundled example."""
    wd = tmp_path_factory.mktemp("errors") / ".diagnose"
    result = _run("gaps", example_model, example_data, "--workdir", wd)
    assert result.exit_code == 0, result.output
    return wd


@pytest.fixture(scope="session")
def dev(workdir: Path) -> pd.DataFrame:
    return pd.read_parquet(workdir / "predictions" / "dev.parquet")


def _sheet(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype={"label": str, "pred": str}, keep_default_na=False)


def test_sheet_and_contact_sheet_on_the_example(
    workdir: Path, dev: pd.DataFrame, tmp_path: Path, example_counts: dict[str, tuple[int, int]]
) -> None:
    out = tmp_path / "error_analysis.csv"
    result = _run("errors", "--workdir", workdir, "--out", out, "--sample", 100)
    assert result.exit_code == 0, result.output
    n, wrong = example_counts["dev"]
    assert f"dev: {wrong} of {n} misclassified ({wrong / n * 100:.1f}%" in result.stdout
    assert f"Sample: all {wrong} misclassified items (fewer than --sample 100)." in result.stdout
    assert out.read_bytes().startswith(b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n")
    sheet = _sheet(out)
    misclassified = dev[dev.label != dev.pred]
    assert len(sheet) == wrong == len(misclassified)
    assert sheet["n"].tolist() == list(range(1, wrong + 1))
    assert sorted(sheet["index"]) == sorted(misclassified["index"])
    # Suspects first, most likely first, then the rest by index.
    flagged = sheet["suspect_mislabel"] == "yes"
    k = int(flagged.sum())
    assert flagged[:k].all() and not flagged[k:].any()
    assert sheet["label_issue_score"][:k].is_monotonic_decreasing
    assert sheet["index"][k:].is_monotonic_increasing
    assert (sheet["label"] != sheet["pred"]).all()
    merged = sheet.merge(dev, on="index", suffixes=("", "_saved"))
    assert (merged["label"].astype(int) == merged["label_saved"]).all()
    assert np.allclose(merged["confidence"], merged["confidence_saved"], atol=5e-5)
    # Confident learning, one item at a time: a class's threshold is the mean p_label of the
    # train_dev items labelled with it (a split drawn like training: this dev is shifted); an error
    # is suspect when one of its other top classes reaches its threshold. The TorchScript model shows
    # no linear head to read features from, so no neighbours are compared.
    train_dev = pd.read_parquet(workdir / "predictions" / "train_dev.parquet")
    threshold = train_dev.groupby("label")["p_label"].mean().to_dict()
    expected = set()
    for row in misclassified.itertuples():
        for j in range(1, 6):
            c, p = getattr(row, f"top{j}"), getattr(row, f"top{j}_p")
            if c != row.label and p >= threshold.get(c, 2.0) - 1e-6:
                expected.add(row.index)
    suspect = len(expected)
    assert 0 < suspect < wrong
    assert set(sheet["index"][flagged]) == expected
    scores = misclassified.set_index("index")["confidence"] - misclassified.set_index("index")["p_label"]
    assert np.allclose(sheet.set_index("index")["label_issue_score"], ((scores + 1) / 2)[sheet["index"]], atol=1e-4)
    assert f"Suspect mislabels: {suspect} of {wrong} rows" in result.stdout
    assert "over train_dev, a split drawn like training" in result.stdout
    assert "dev errs more than train_dev (25.6% against " in result.stdout
    # --neighbours: the TorchScript model has no nn.Linear to read features from; the sheet says so.
    again = _run("errors", "--workdir", workdir, "--out", tmp_path / "nb.csv", "--sample", 100, "--no-images",
                 "--neighbours", "--json")
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert doc["suspect_neighbours"] is None and doc["suspect_mislabel"] == suspect
    assert any(n.startswith("Suspects judged on the probabilities alone, not on the labels of similar items: "
                            "the model has no single linear head") for n in doc["notes"])

    png = out.with_suffix(".png")
    with Image.open(png) as im:
        assert im.format == "PNG"
        assert im.text["tiles"] == str(wrong)
        columns, rows = 10, math.ceil(wrong / 10)
        assert im.text["grid"] == f"{rows}x{columns}"
        # Tiles of 128 px with 8 px margins and a 22 px caption band, under a 28 px title band.
        assert im.size == (columns * (128 + 16), 28 + rows * (128 + 8 + 22))
        # The last row holds wrong % 10 tiles: right of them the sheet is blank.
        pixels = np.asarray(im.convert("L"))
        last_row = pixels[28 + (rows - 1) * 158 + 8 : 28 + (rows - 1) * 158 + 136]
        filled = wrong - (rows - 1) * columns
        assert last_row[:, : filled * 144].std() > 10
        assert (last_row[:, filled * 144 :] == 255).all()


def test_pairs_and_json_match_pandas(workdir: Path, dev: pd.DataFrame, tmp_path: Path) -> None:
    result = _run("errors", "--workdir", workdir, "--out", tmp_path / "s.csv", "--sample", 10, "--seed", 1, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    wrong = dev[dev.label != dev.pred]
    counts = wrong.groupby(["label", "pred"]).size().sort_values(ascending=False, kind="stable")
    assert doc["errors"] == len(wrong) and doc["items"] == len(dev) and doc["sample"] == 10
    assert [p["count"] for p in doc["pairs"]] == counts.tolist()[:10]
    for p in doc["pairs"]:
        assert counts[(int(p["label"]), int(p["pred"]))] == p["count"]
    assert doc["suspect_rule"] == "confident_learning"
    assert doc["suspect_thresholds_split"] == "train_dev" and doc["suspect_neighbours"] is None
    train_dev = pd.read_parquet(workdir / "predictions" / "train_dev.parquet")
    means = train_dev.groupby("label")["p_label"].mean()
    assert doc["suspect_thresholds"].keys() == {str(c) for c in means.index}
    assert all(abs(doc["suspect_thresholds"][str(c)] - v) < 1e-4 for c, v in means.items())
    assert doc["contact_sheet"] == str(tmp_path / "s.png")


def test_same_seed_same_sheet(workdir: Path, tmp_path: Path) -> None:
    paths = [tmp_path / f"{k}.csv" for k in range(3)]
    for path, seed in zip(paths, (4, 4, 5), strict=True):
        assert _run("errors", "--workdir", workdir, "--out", path, "--sample", 12, "--seed", seed, "--no-images").exit_code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert set(_sheet(paths[0])["index"]) != set(_sheet(paths[2])["index"])


def test_model_and_data_evaluated_directly_give_the_same_sample(
    workdir: Path, tmp_path: Path, example_model: Path, example_data: Path
) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert _run("errors", "--workdir", workdir, "--out", a, "--sample", 15, "--seed", 2, "--no-images").exit_code == 0
    result = _run("errors", example_model, example_data, "--out", b, "--sample", 15, "--seed", 2, "--no-images")
    assert result.exit_code == 0, result.output
    assert a.read_bytes() == b.read_bytes()


def test_a_filled_sheet_is_never_lost(workdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "error_analysis.csv"
    args = ("errors", "--workdir", workdir, "--out", out, "--sample", 10, "--no-images")
    assert _run(*args).exit_code == 0
    assert _run(*args).exit_code == 0  # an unmarked sheet is ours to replace
    text = out.read_bytes().decode("utf-8-sig").replace(",,,,\r\n", ",x,,,\r\n", 1)
    out.write_text(text, encoding="utf-8-sig", newline="")
    marked = out.read_bytes()
    result = _run(*args)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out}: expected no sheet or an unmarked one, got 1 filled category or note cells; "
        "pass --out another.csv, or --force to replace it (a .bak copy is kept)\n"
    )
    assert out.read_bytes() == marked
    result = _run(*args, "--seed", 9, "--force")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "error_analysis.csv.bak").read_bytes() == marked
    assert f"Kept the previous sheet as {out}.bak." in result.stdout
    assert out.read_bytes() != marked


def test_errors_mark_tally_round_trip(workdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "error_analysis.csv"
    assert _run("errors", "--workdir", workdir, "--out", out, "--sample", 40, "--seed", 5, "--no-images").exit_code == 0
    # A person marks the rows (here a rule stands in for the person) and Excel saves it back in a
    # ';' locale with a renamed header and a note.
    sheet = _sheet(out)
    marks = pd.DataFrame(
        {
            "mislabeled": sheet["suspect_mislabel"] == "yes",
            "blurry": sheet["label"].isin(["1", "5"]),
            "confusable": (sheet["pred"] == "8") & (sheet["suspect_mislabel"] != "yes"),
            "other": sheet["index"] % 7 == 0,
        }
    )
    saved = tmp_path / "saved.csv"
    with open(saved, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(["n", "Mislabel", "blurry", "confusable", "other", "note", "split", "index", "label", "pred"])
        for k, row in sheet.iterrows():
            writer.writerow([row["n"], *("x" if marks.loc[k, c] else "" for c in marks.columns), "dark; thin stroke" if k % 3 == 0 else "",
                             row["split"], row["index"], row["label"], row["pred"]])
    result = _run("tally", saved, "--workdir", workdir, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    manifest = json.loads((workdir / "manifest.json").read_text())
    error = manifest["splits"]["dev"]["error"]
    counts = marks.sum()  # pandas, independent of diagnose's loop
    assert doc["split"] == "dev" and doc["error"] == error and doc["rows"] == 40
    assert doc["unmarked"] == int((~marks.any(axis=1)).sum())
    z = 1.959963984540054
    for c in doc["categories"]:
        k = int(counts[{"Mislabel": "mislabeled"}.get(c["name"], c["name"])])
        p = k / 40
        centre = (p + z * z / 80) / (1 + z * z / 40)
        half = z / (1 + z * z / 40) * math.sqrt(p * (1 - p) / 40 + z * z / 6400)
        assert c["count"] == k and c["share"] == pytest.approx(p)
        assert c["ci"] == [pytest.approx(max(0.0, centre - half)), pytest.approx(min(1.0, centre + half))]
        assert c["ceiling"] == pytest.approx(p * error)
    assert [c["count"] for c in doc["categories"]] == sorted(counts.tolist(), reverse=True)
    assert doc["first"] == doc["categories"][0]["name"]
    assert {"word": "dark", "rows": 14} in doc["note_words"]


def test_foreign_shards_with_class_names_and_no_index(workdir: Path, dev: pd.DataFrame, tmp_path: Path) -> None:
    # A Spark/Ray job's output: a folder of Parquet shards, names instead of indices, no index column.
    names = [f"digit {k}" for k in range(10)]
    shards = tmp_path / "preds" / "val"
    shards.mkdir(parents=True)
    table = pa.table({"label": [names[v] for v in dev["label"]], "pred": [names[v] for v in dev["pred"]],
                      "confidence": dev["confidence"].to_numpy()})
    for k, start in enumerate(range(0, len(dev), 100)):
        pq.write_table(table.slice(start, 100), shards / f"part-{k:05d}.parquet")
    ours = tmp_path / "ours.csv"
    assert _run("errors", "--workdir", workdir, "--out", ours, "--sample", 10, "--seed", 3, "--no-images").exit_code == 0
    theirs = tmp_path / "theirs.csv"
    result = _run("errors", "--predictions", tmp_path / "preds", "--out", theirs, "--sample", 10, "--seed", 3, "--json")
    assert result.exit_code == 0, result.output
    a, b = _sheet(ours), _sheet(theirs)
    # The same items; ours puts the suspect mislabels first, theirs has no p_label and keeps index order.
    a = a.sort_values("index", kind="stable").reset_index(drop=True)
    assert a["index"].tolist() == sorted(b["index"].tolist())
    assert b["label"].tolist() == [f"digit {v}" for v in a["label"]]
    doc = json.loads(result.stdout)
    assert doc["suspect_mislabel"] is None and doc["contact_sheet"] is None
    assert doc["pairs"][0] == {"label": "digit 1", "pred": "digit 8", "count": 21}


def test_image_folder_predictions_get_a_contact_sheet(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = tmp_path / "preds"
    rows = []
    for k in range(30):
        cls = ["cat", "dog"][k % 2]
        f = base / "images" / cls / f"{k}.png"
        f.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20 + k, 32, 3), dtype=np.uint8)).save(f)
        rows.append({"index": k, "id": f"images/{cls}/{k}.png", "label": k % 2, "pred": (k % 2) if k % 3 else 1 - k % 2})
    pd.DataFrame(rows).to_parquet(base / "dev.parquet")
    out = tmp_path / "ea.csv"
    result = _run("errors", "--predictions", base, "--out", out)
    assert result.exit_code == 0, result.output
    with Image.open(out.with_suffix(".png")) as im:
        assert im.text["tiles"] == "10" and im.size == (10 * 144, 28 + 158)
    assert _sheet(out)["id"].tolist() == [f"images/{['cat', 'dog'][k % 2]}/{k}.png" for k in range(0, 30, 3)]


def test_saved_predictions_are_read_without_torch(workdir: Path, tmp_path: Path) -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom diagnose.cli import app\n"
        f"r = CliRunner().invoke(app, ['errors', '--workdir', {str(workdir)!r}, '--out', {str(tmp_path / 'x.csv')!r},"
        " '--no-images'])\nassert r.exit_code == 0, r.output\nprint('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"


def test_bad_input_gets_one_error_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = _run("errors", "--workdir", missing)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {missing}: expected the predictions saved by `diagnose gaps`, got no such folder; "
        "run `diagnose gaps MODEL DATA` first, or pass MODEL DATA, or --predictions DIR\n"
    )
    result = _run("errors", "--workdir", missing, "--split", "holdout")
    assert result.exit_code == 2
    assert result.stderr == "Error: --split: expected train, train_dev, dev or test, got 'holdout'; pass one of them\n"
    result = _run("errors", "--categories", "blurry,note")
    assert result.exit_code == 2
    assert result.stderr == "Error: --categories: expected names other than the sheet's own columns, got note; rename them\n"
    # Names `diagnose tally` would read back as the sheet's own columns: "comment" is the note.
    result = _run("errors", "--categories", "blurry,comment,Predicted,True Label")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --categories: expected names other than the sheet's own columns, got comment, Predicted, "
        "True Label; rename them\n"
    )
    regression = tmp_path / "reg"
    regression.mkdir()
    pd.DataFrame({"label": [0.5, 1.5], "pred": [0.7, 1.5]}).to_parquet(regression / "dev.parquet")
    result = _run("errors", "--predictions", regression)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {regression / 'dev.parquet'}: expected class indices in 'label', got fractional values (regression); "
        "error analysis by category needs a classifier's predictions\n"
    )


@pytest.mark.parametrize(("fmt", "tiles"), [("images", True), ("csv", False)])
def test_contact_sheet_only_for_image_data(fmt: str, tiles: bool, example_formats, example_model: Path, tmp_path: Path) -> None:
    wd = tmp_path / ".diagnose"
    assert _run("gaps", example_model, example_formats.data[fmt], "--workdir", wd).exit_code == 0
    out = tmp_path / "ea.csv"
    result = _run("errors", "--workdir", wd, "--out", out, "--sample", 12, "--seed", 2)
    assert result.exit_code == 0, result.output
    assert out.with_suffix(".png").exists() is tiles
    if tiles:
        sheet = _sheet(out)
        # ids are paths relative to DATA, so a labeler can open the file.
        assert all((example_formats.data[fmt] / i).is_file() for i in sheet["id"])
        with Image.open(out.with_suffix(".png")) as im:
            assert im.text["tiles"] == "12" and im.size == (10 * 144, 28 + 2 * 158)


def test_no_errors_writes_no_sheet(tmp_path: Path) -> None:
    preds = tmp_path / "preds"
    preds.mkdir()
    pd.DataFrame({"label": [0, 1, 2], "pred": [0, 1, 2]}).to_parquet(preds / "test.parquet")
    out = tmp_path / "ea.csv"
    result = _run("errors", "--predictions", preds, "--split", "test", "--out", out)
    assert result.exit_code == 0, result.output
    assert "test: 0 of 3 misclassified (0.0%" in result.stdout
    assert "Nothing to analyse: no item is misclassified, so no sheet was written." in result.stdout
    assert not out.exists()
    result = _run("errors", "--predictions", preds, "--out", out)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {preds}: expected predictions for the dev split, got test; pass --split test\n"


SUMMARY = """\
dev: 5 of 8 misclassified (62.5%, 95% CI 30.6%–86.3%); predictions from dev.parquet
Sample: 3 of 5 misclassified items, uniform at random (seed 0).
Wrote s.csv (3 rows; categories blurry, confusable, mislabeled, other; one column each, plus note).
Most-confused pairs                         
                                            
 true   predicted   count   share of errors 
 ────────────────────────────────────────── 
 cat    dog             2             40.0% 
 dog    cat             2             40.0% 
 bird   cat             1             20.0% 
                                            
Suspect mislabels: 2 of 3 rows (confident learning: another class passes its own threshold, the mean probability the model gives items labelled with that class); they are the first rows of the sheet, most likely first (label_issue_score): check their labels first.
Suspect thresholds come from dev itself (no train_dev or train predictions): on a split unlike training they flag shifted items too.
Next: mark each row's categories (x) in a spreadsheet, then `diagnose tally s.csv`.
"""  # noqa: W291, W293 (rich pads table lines with spaces)


def test_summary_literal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pd.DataFrame(
        {
            "index": range(8),
            "label": ["cat", "cat", "dog", "dog", "bird", "cat", "dog", "bird"],
            "pred": ["dog", "cat", "cat", "dog", "cat", "dog", "cat", "bird"],
            "confidence": [0.95, 0.95, 0.6, 0.9, 0.99, 0.7, 0.45, 0.9],
            "p_label": [0.01, 0.95, 0.3, 0.9, 0.004, 0.6, 0.4, 0.9],
        }
    ).to_parquet("dev.parquet")
    result = _run("errors", "--predictions", ".", "--sample", 3, "--out", "s.csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == SUMMARY
    assert Path("s.csv").read_bytes().decode("utf-8-sig").split("\r\n")[1:4] == [
        # Thresholds: cat (0.01 + 0.95 + 0.6) / 3 = 0.52, dog 0.533, bird 0.452. Items 4 and 2 give
        # cat at least 0.52 (suspect, most likely first); item 6 gives it 0.45 (not).
        "1,dev,4,,bird,cat,0.9900,0.0040,,yes,0.9930,,,,,",
        "2,dev,2,,dog,cat,0.6000,0.3000,,yes,0.6500,,,,,",
        "3,dev,6,,dog,cat,0.4500,0.4000,,no,0.5250,,,,,",
    ]


def test_contact_sheet_problems_leave_the_sheet_and_a_note(tmp_path: Path, example_data: Path) -> None:
    # Predictions whose manifest points at DATA that no longer matches them (index past its end).
    stale = tmp_path / "stale"
    stale.mkdir()
    pd.DataFrame({"index": [5, 900], "label": [1, 2], "pred": [8, 8]}).to_parquet(stale / "dev.parquet")
    (stale / "manifest.json").write_text(
        json.dumps({"data": {"path": str(example_data), "splits": {"dev": {"format": "pt"}}}})
    )
    out = tmp_path / "a.csv"
    result = _run("errors", "--predictions", stale, "--out", out)
    assert result.exit_code == 0, result.output
    assert (
        f"No contact sheet: the predictions index items up to 900, but {example_data / 'dev.pt'} has 250; "
        "the data changed since the predictions were made (rerun diagnose gaps)." in result.stdout
    )
    assert len(_sheet(out)) == 2 and not out.with_suffix(".png").exists()
    # An image file that is not an image.
    broken = tmp_path / "broken"
    (broken / "img").mkdir(parents=True)
    (broken / "img" / "a.png").write_bytes(b"not a png")
    pd.DataFrame({"index": [0], "id": ["img/a.png"], "label": [0], "pred": [1]}).to_parquet(broken / "dev.parquet")
    result = _run("errors", "--predictions", broken, "--out", tmp_path / "b.csv")
    assert result.exit_code == 0, result.output
    assert "No contact sheet: cannot identify image file" in result.stdout
    assert len(_sheet(tmp_path / "b.csv")) == 1


def test_model_on_rgb_images_is_fed_the_channels_it_takes(example_formats, example_model: Path, example_counts, tmp_path: Path) -> None:
    # The bundled model takes grayscale; RGB copies of the dev images are converted for it, as gaps does.
    for png in (example_formats.data["images"] / "dev").rglob("*.png"):
        dest = tmp_path / "data" / "dev" / png.parent.name / png.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.open(png).convert("RGB").save(dest)
    result = _run("errors", example_model, tmp_path / "data", "--out", tmp_path / "s.csv", "--no-images", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["errors"] == example_counts["dev"][1]


def test_predictions_of_a_max_items_sample_say_so(example_model: Path, example_data: Path, tmp_path: Path) -> None:
    wd = tmp_path / ".diagnose"
    assert _run("gaps", example_model, example_data, "--max-items", 100, "--workdir", wd).exit_code == 0
    result = _run("errors", "--workdir", wd, "--out", tmp_path / "s.csv", "--no-images", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["items"] == 100
    assert doc["notes"][0] == (
        "These predictions cover a seeded sample of 100 of the 250 dev items (diagnose gaps --max-items): "
        "the counts above are of that sample."
    )
    # Beside it, at most the note that this dev errs more than train_dev (how to judge suspects then).
    assert all(n.startswith("dev errs more than train_dev (") for n in doc["notes"][1:])


def test_contact_sheet_of_npz_data_needs_neither_torch_nor_matplotlib(example_formats, example_model: Path, tmp_path: Path) -> None:
    # Tiles come from the memory-mapped arrays and the font from matplotlib's folder, not its import;
    # matplotlib is imported for the confusion-matrix figure only, torch never.
    wd = tmp_path / ".diagnose"
    assert _run("gaps", example_model, example_formats.data["npz"], "--workdir", wd).exit_code == 0
    out = tmp_path / "x.csv"
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom diagnose.cli import app\n"
        f"r = CliRunner().invoke(app, ['errors', '--workdir', {str(wd)!r}, '--out', {str(out)!r}])\n"
        "assert r.exit_code == 0, r.output\nprint('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False True"
    with Image.open(out.with_suffix(".png")) as png:
        assert png.format == "PNG"


def test_out_under_a_file_is_one_error_line(workdir: Path, tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("x")
    result = _run("errors", "--workdir", workdir, "--out", tmp_path / "notes" / "sheet.csv")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: --out {tmp_path / 'notes' / 'sheet.csv'}: expected a folder to write in, got a file at "
        f"{tmp_path / 'notes'}; pass another path\n"
    )


def test_model_and_data_take_the_reading_options_gaps_takes(example_formats, example_model: Path, example_counts, tmp_path: Path) -> None:
    # A CSV whose label column is 'target': the error line told to pass --label-column, which errors lacked.
    data = tmp_path / "data"
    data.mkdir()
    frame = pd.read_csv(example_formats.data["csv"] / "dev.csv").rename(columns={"label": "target"})
    frame.to_csv(data / "dev.csv", index=False)
    result = _run("errors", example_model, data, "--label-column", "target", "--out", tmp_path / "s.csv", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["errors"] == example_counts["dev"][1]
