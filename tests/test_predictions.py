"""Saved and foreign prediction files: written in a stream, read back, tallied against numpy / sklearn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from diagnose.exceptions import DataError
from diagnose.io.manifest import Manifest, read_manifest, write_manifest
from diagnose.io.predictions import (
    PredictionWriter,
    prediction_files,
    read_predictions,
    tally_predictions,
)


def test_writer_round_trip_and_atomic_name(tmp_path) -> None:
    target = tmp_path / "predictions" / "dev.parquet"
    with PredictionWriter(target, regression=False, topk=2) as w:
        w.write({"index": np.array([0, 1]), "label": np.array([1, 0]), "pred": np.array([1, 1]),
                 "loss": np.array([0.1, 2.0], dtype=np.float32), "top1": np.array([1, 1]), "top1_p": np.array([0.9, 0.8])})
        assert not target.exists()  # appears only when complete
        w.write({"index": np.array([2]), "label": np.array([2]), "pred": np.array([2]), "id": ["c"],
                 "loss": np.array([0.0], dtype=np.float32)})
    frame = read_predictions(target)
    assert frame.columns.tolist() == ["index", "id", "label", "pred", "confidence", "p_label", "loss", "top1", "top2", "top1_p", "top2_p"]
    assert frame["label"].tolist() == [1, 0, 2] and frame["id"].isna().tolist() == [True, True, False]
    assert frame["top2"].isna().all()


def test_failed_write_leaves_nothing(tmp_path) -> None:
    target = tmp_path / "dev.parquet"
    with pytest.raises(RuntimeError), PredictionWriter(target, regression=True, topk=0) as w:
        w.write({"index": np.array([0]), "label": np.array([1.0]), "pred": np.array([1.5]), "loss": np.array([0.25])})
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_foreign_predictions_shards_and_class_names(tmp_path, cli) -> None:
    """A scikit-learn user's predictions: dev as a folder of shards, labels as class names."""
    import pandas as pd
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix

    digits = load_digits()
    x, y = digits.data[:1200], digits.target[:1200]
    clf = LogisticRegression(max_iter=200).fit(x[:800], y[:800])
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    pred_dir = tmp_path / "preds"
    (pred_dir / "val").mkdir(parents=True)
    pd.DataFrame({"label": y[:800], "pred": clf.predict(x[:800])}).to_parquet(pred_dir / "train.parquet")
    dev_pred = clf.predict(x[800:])
    for k, part in enumerate(np.array_split(np.arange(400), 3)):
        pd.DataFrame({"label": names[y[800:][part]], "pred": names[dev_pred[part]]}).to_parquet(pred_dir / "val" / f"part{k}.parquet")
    (pred_dir / "classes.txt").write_text("\n".join(names) + "\n")

    files = prediction_files(pred_dir)
    assert list(files) == ["train", "dev"]
    tally = tally_predictions(files["dev"], metric="error", classes=list(names))
    assert (tally.confusion == confusion_matrix(y[800:], dev_pred, labels=range(10))).all()

    r = cli("gaps", "--predictions", pred_dir, "--json", "--human-error", "0.02")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["splits"]["dev"]["errors"] == int((dev_pred != y[800:]).sum())
    assert doc["splits"]["dev"]["n"] == 400
    assert doc["splits"]["train"]["errors"] == int((clf.predict(x[:800]) != y[:800]).sum())
    assert doc["human_error"] == 0.02


def test_foreign_predictions_missing_pred_column(tmp_path, cli) -> None:
    import pandas as pd

    pd.DataFrame({"label": [1, 2], "prediction": [1, 1]}).to_parquet(tmp_path / "dev.parquet")
    r = cli("gaps", "--predictions", tmp_path)
    assert r.exit_code == 1
    assert r.stderr.strip() == f"Error: {tmp_path / 'dev.parquet'}: expected columns label, pred, got label, prediction; add the pred column"


def test_class_names_without_a_class_list(tmp_path, cli) -> None:
    import pandas as pd

    pd.DataFrame({"label": ["a"], "pred": ["b"]}).to_parquet(tmp_path / "test.parquet")
    with pytest.raises(DataError, match="got class names and no class list; put classes.txt"):
        tally_predictions(tmp_path / "test.parquet", metric="error")
    # Neither gaps nor errors takes DATA beside --predictions: the fix must not offer it.
    r = cli("gaps", "--predictions", tmp_path)
    assert r.exit_code == 1
    assert r.stderr.strip() == (
        f"Error: {tmp_path / 'test.parquet'}: expected class indices in 'label', got class names and no class list; "
        "put classes.txt (one name per line) beside the predictions"
    )


def test_regression_predictions(tmp_path) -> None:
    import pandas as pd

    rng = np.random.default_rng(2)
    y, p = rng.normal(size=300), rng.normal(size=300)
    pd.DataFrame({"label": y, "pred": p}).to_parquet(tmp_path / "dev.parquet")
    s = tally_predictions(tmp_path / "dev.parquet", metric="mse").summary("dev")
    assert s.error == pytest.approx(np.mean((p - y) ** 2))
    assert s.sd == pytest.approx(np.std((p - y) ** 2, ddof=1))


def test_manifest(tmp_path) -> None:
    write_manifest(tmp_path, Manifest(metric="error", classes=["a"]))
    doc = read_manifest(tmp_path)
    assert doc is not None
    assert doc.metric == "error" and doc.classes == ["a"] and doc.diagnose_version and doc.created
    assert doc.created.endswith("Z")
    assert json.loads((tmp_path / "manifest.json").read_text())["classes"] == ["a"]
    assert read_manifest(tmp_path / "predictions") == doc
    assert read_manifest(tmp_path / "elsewhere" / "x") is None
