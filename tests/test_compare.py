"""`diagnose compare`: the statistics against statsmodels and a hand count, pairing, and the command."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagnose.core.compare import (
    Side,
    SplitItems,
    binom_cdf_half,
    compare_runs,
    mcnemar_exact,
    paired_change,
    unpaired_change,
)


def _wrong(both: int, fixed: int, broken: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """old_wrong, new_wrong with the given counts of (both wrong, fixed, broken, both right)."""
    old = [True] * both + [True] * fixed + [False] * broken + [False] * neither
    new = [True] * both + [False] * fixed + [True] * broken + [False] * neither
    return np.array(old), np.array(new)


def test_hand_computed_case() -> None:
    # 20 items: 2 wrong in both runs, 1 fixed, 5 broken, 12 right in both.
    # McNemar exact: b + c = 6 discordant, min = 1: p = 2 * (C(6,0) + C(6,1)) / 2^6 = 2 * 7 / 64.
    c = paired_change(*_wrong(2, 1, 5, 12))
    assert (c.old.errors, c.new.errors, c.old.n) == (3, 7, 20)
    assert c.change == pytest.approx(0.2)
    assert c.p_value == pytest.approx(14 / 64)
    assert (c.fixed, c.broken) == (1, 5)
    # Newcombe's paired interval, worked by hand from the two Wilson intervals and phi:
    # new 7/20: Wilson (0.18119, 0.56715); old 3/20: (0.05237, 0.36042);
    # phi = (2*12 - 5*1) / sqrt(7 * 13 * 3 * 17) = 19 / 68.125 = 0.27890
    # lower = 0.2 - sqrt(0.16881^2 - 2 phi 0.16881 * 0.21042 + 0.21042^2) = 0.2 - 0.23013
    # upper = 0.2 + sqrt(0.21715^2 - 2 phi 0.21715 * 0.09763 + 0.09763^2) = 0.2 + 0.21180
    assert c.ci[0] == pytest.approx(0.2 - 0.23013, abs=2e-5)
    assert c.ci[1] == pytest.approx(0.2 + 0.21180, abs=2e-5)


def test_mcnemar_matches_statsmodels_exact() -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(0)
    tables = [(0, 0), (0, 1), (1, 0), (3, 3), (10, 0), (0, 25), (40, 60), (500, 560), (2500, 2400)]
    tables += [tuple(int(v) for v in rng.integers(0, 200, size=2)) for _ in range(60)]
    for b, c in tables:
        ref = mcnemar([[17, b], [c, 31]], exact=True).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(float(ref), rel=1e-9, abs=1e-300), (b, c)


def test_binomial_cdf_against_scipy() -> None:
    from scipy.stats import binom

    for n, k in [(1, 0), (7, 3), (50, 10), (2000, 950), (20000, 9700)]:
        assert binom_cdf_half(k, n) == pytest.approx(binom.cdf(k, n, 0.5), rel=1e-9)


def test_unpaired_matches_statsmodels() -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    for k1, n1, k2, n2 in [(30, 100, 18, 120), (0, 50, 3, 60), (45, 160, 67, 160), (5, 5, 0, 7)]:
        c = unpaired_change(Side(n1, k1), Side(n2, k2))
        lo, hi = confint_proportions_2indep(k2, n2, k1, n1, method="newcomb", compare="diff")
        assert c.ci == pytest.approx((lo, hi), abs=1e-9)
        if 0 < k1 + k2 < n1 + n2:
            _, p = proportions_ztest([k2, k1], [n2, n1])
            assert c.p_value == pytest.approx(p, rel=1e-9)
        assert c.test == "newcombe_unpaired"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=300))
def test_paired_change_invariants(pairs: list[tuple[bool, bool]]) -> None:
    old = np.array([a for a, _ in pairs])
    new = np.array([b for _, b in pairs])
    c = paired_change(old, new)
    assert c.old.errors == old.sum() and c.new.errors == new.sum()
    assert c.ci[0] - 1e-12 <= c.change <= c.ci[1] + 1e-12
    assert -1 <= c.ci[0] <= c.ci[1] <= 1
    assert 0 <= c.p_value <= 1
    # swapping the runs mirrors the interval and keeps the p-value
    m = paired_change(new, old)
    assert m.p_value == pytest.approx(c.p_value)
    assert m.ci == pytest.approx((-c.ci[1], -c.ci[0]), abs=1e-12)


def _items(labels: list[int], preds: list[int], ids: list[str] | None = None) -> SplitItems:
    return SplitItems(np.array(labels), np.array(preds), ids=None if ids is None else np.array(ids),
                      index=np.arange(len(labels)))


def test_pairs_by_id_whatever_the_order() -> None:
    rng = np.random.default_rng(3)
    n = 200
    labels = rng.integers(0, 3, n)
    old_pred = np.where(rng.random(n) < 0.3, (labels + 1) % 3, labels)
    new_pred = np.where(rng.random(n) < 0.2, (labels + 2) % 3, labels)
    ids = np.array([f"item{i}" for i in range(n)])
    order = rng.permutation(n)
    a = {"dev": SplitItems(labels, old_pred, ids=ids)}
    b = {"dev": SplitItems(labels[order], new_pred[order], ids=ids[order])}
    shuffled = compare_runs(a, b).splits["dev"]
    aligned = paired_change(labels != old_pred, labels != new_pred)
    assert shuffled.paired and shuffled.ci == aligned.ci and shuffled.p_value == aligned.p_value
    # per class, the rows sum up to the split
    cmp = compare_runs(a, b, classes=["a", "b", "c"])
    rows = cmp.per_class["dev"]
    assert [r.name for r in rows] == ["a", "b", "c"]
    assert sum(r.change.new.errors for r in rows) == shuffled.new.errors


def test_other_items_are_compared_unpaired_and_said_so() -> None:
    a = {"dev": _items([0, 1, 1, 0], [0, 0, 1, 0], ids=["a", "b", "c", "d"])}
    b = {"dev": _items([0, 1, 1, 0, 1], [1, 1, 1, 0, 0], ids=["a", "b", "c", "d", "e"])}
    cmp = compare_runs(a, b)
    assert not cmp.paired and cmp.splits["dev"].test == "newcombe_unpaired"
    assert any("unpaired" in n and "in common" in n for n in cmp.notes)


def test_json_has_exactly_the_documented_shape() -> None:
    a = {"train": _items([0, 1] * 50, [0, 1] * 50), "dev": _items([0, 1] * 50, [1, 1] * 50)}
    b = {"train": _items([0, 1] * 50, [0, 1] * 50), "dev": _items([0, 1] * 50, [0, 1] * 45 + [1, 1] * 5)}
    doc = compare_runs(a, b, human_error=0.0).to_json()
    assert doc["paired"] is True
    dev = doc["splits"]["dev"]
    assert set(dev) == {"old", "new", "change", "ci", "p_value", "test"}
    assert dev["old"] == {"n": 100, "errors": 50, "error": 0.5}
    assert dev["new"] == {"n": 100, "errors": 5, "error": 0.05}
    assert dev["change"] == pytest.approx(-0.45) and dev["test"] == "mcnemar_exact"
    assert dev["p_value"] == pytest.approx(2 * 0.5**45)  # 45 fixed, 0 broken
    assert set(doc["gaps"]) == {"avoidable_bias", "variance", "data_mismatch", "dev_overfit"}
    assert doc["gaps"]["avoidable_bias"]["old"]["value"] == 0.0
    assert doc["gaps"]["variance"]["old"] is None  # no train_dev split
    assert json.loads(json.dumps(doc)) == doc


# --------------------------------------------------------------------------- the command


def _write_predictions(folder: Path, split: str, labels: list[str], preds: list[str], ids: list[str] | None) -> None:
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    frame = {"label": labels, "pred": preds}
    if ids is not None:
        frame["id"] = ids
    pd.DataFrame(frame).to_parquet(folder / f"{split}.parquet")


def test_prediction_folders_with_class_names(cli, tmp_path: Path) -> None:
    labels = ["cat", "dog"] * 30
    ids = [f"img{i}.png" for i in range(60)]
    _write_predictions(tmp_path / "old", "dev", labels, ["cat"] * 60, ids)
    _write_predictions(tmp_path / "new", "val", labels[::-1], labels[::-1], ids[::-1])
    for run in ("old", "new"):
        (tmp_path / run / "classes.txt").write_text("cat\ndog\n")
    r = cli("compare", tmp_path / "old", tmp_path / "new", "--json")
    assert r.exit_code == 0, r.stderr
    dev = json.loads(r.stdout)["splits"]["dev"]
    assert dev["test"] == "mcnemar_exact" and dev["old"]["errors"] == 30 and dev["new"]["errors"] == 0
    md = cli("compare", tmp_path / "old", tmp_path / "new", "--markdown")
    assert md.exit_code == 0 and "| dev | 60 | 50.0% | 0.0% | -50.0 pts |" in md.stdout
    txt = cli("compare", tmp_path / "old", tmp_path / "new")
    assert "better" in txt.stdout and "cat" in txt.stdout


def test_bad_inputs_are_one_line(cli, tmp_path: Path) -> None:
    _write_predictions(tmp_path / "old", "dev", ["a"], ["a"], None)
    _write_predictions(tmp_path / "new", "test", ["a"], ["a"], None)
    (tmp_path / "old" / "classes.txt").write_text("a\n")
    (tmp_path / "new" / "classes.txt").write_text("a\n")
    r = cli("compare", tmp_path / "old", tmp_path / "new")
    assert r.exit_code != 0 and r.stderr.startswith("Error: ") and "same splits" in r.stderr
    r = cli("compare", tmp_path / "old", tmp_path / "missing")
    assert r.exit_code != 0 and r.stderr.count("\n") == 1


@pytest.mark.slow
def test_two_workdirs_of_the_project(cli, shapes_project: Path, tmp_path: Path) -> None:
    """weights.pt, then weights_v2.pt (trained after the advice: more data like dev) on the same splits."""
    pyproject = (shapes_project / "pyproject.toml").read_text()
    line = next(x for x in pyproject.splitlines() if x.startswith("mean"))
    mean = line.split("[", 1)[1].rstrip("]").replace(" ", "")
    std = next(x for x in pyproject.splitlines() if x.startswith("std")).split("[", 1)[1].rstrip("]").replace(" ", "")
    for model, work in (("weights.pt", "old"), ("weights_v2.pt", "new")):
        r = cli("gaps", shapes_project / model, shapes_project / "data", "--arch", "mynet:MyNet", "--app-dir",
                shapes_project, "--mean", mean, "--std", std, "--workdir", tmp_path / work, "--json")
        assert r.exit_code == 0, r.stderr
    r = cli("compare", tmp_path / "old", tmp_path / "new", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["paired"] is True
    dev = doc["splits"]["dev"]
    # independent count from the two prediction files
    import pandas as pd

    o = pd.read_parquet(tmp_path / "old" / "predictions" / "dev.parquet").set_index("id")
    n = pd.read_parquet(tmp_path / "new" / "predictions" / "dev.parquet").set_index("id").loc[o.index]
    ow, nw = o.label != o.pred, n.label != n.pred
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[int((ow & nw).sum()), int((ow & ~nw).sum())], [int((~ow & nw).sum()), int((~ow & ~nw).sum())]]
    assert dev["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-9)
    assert dev["old"]["errors"] == int(ow.sum()) and dev["new"]["errors"] == int(nw.sum())
    assert dev["change"] < 0 and dev["ci"][1] < 0  # acting on the advice cut dev error
    assert doc["gaps"]["data_mismatch"]["change"] < 0
    per_class = doc["per_class"]["dev"]
    assert sum(r["new"]["errors"] for r in per_class) == dev["new"]["errors"]
    assert math.isclose(sum(r["change"] * r["new"]["n"] for r in per_class) / dev["new"]["n"], dev["change"])
    # the new predictions with an item left out, as a folder of their own (a workdir whose files no
    # longer match its manifest is refused): compared unpaired, and said so
    shutil.copytree(tmp_path / "new" / "predictions", tmp_path / "cut")
    cut = pd.read_parquet(tmp_path / "cut" / "dev.parquet").iloc[1:]
    cut.to_parquet(tmp_path / "cut" / "dev.parquet")
    doc = json.loads(cli("compare", tmp_path / "old", tmp_path / "cut", "--json").stdout)
    assert doc["paired"] is False and doc["splits"]["dev"]["test"] == "newcombe_unpaired"
    assert doc["splits"]["test"]["test"] == "mcnemar_exact"


# --------------------------------------------------------------------------- runs that cannot be compared


def _write_indices(folder: Path, split: str, labels: np.ndarray, preds: np.ndarray) -> None:
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"index": np.arange(len(labels)), "label": labels, "pred": preds}).to_parquet(folder / f"{split}.parquet")


def test_runs_of_tasks_with_other_class_counts_are_refused(cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ten, three = rng.integers(0, 10, 400), rng.integers(0, 3, 400)
    _write_indices(tmp_path / "ten", "dev", ten, ten)
    _write_indices(tmp_path / "three", "dev", three, (three + 1) % 3)
    r = cli("compare", tmp_path / "ten", tmp_path / "three")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith(f"Error: {tmp_path / 'ten'}: expected labels of the same classes as the other run (3 classes)")
    assert r.stderr.count("\n") == 1
    # The same with a class count each run recorded: refused before any label is looked at.
    for run, k in (("ten", 10), ("three", 3)):
        (tmp_path / run / "manifest.json").write_text(json.dumps({"metric": "error", "num_classes": k}))
    r = cli("compare", tmp_path / "ten", tmp_path / "three")
    assert r.exit_code == 1
    assert r.stderr == (f"Error: {tmp_path / 'three'}: expected a run with the 10 classes of {tmp_path / 'ten'}, "
                        "got 3 classes; compare runs of the same task\n")


def test_a_sample_missing_a_rare_class_is_still_the_same_task(cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    old = rng.integers(0, 9, 500)  # class 9 is rare: only the new run's items have it
    new = np.concatenate([rng.integers(0, 9, 495), np.full(5, 9)])
    _write_indices(tmp_path / "old", "dev", old, old)
    _write_indices(tmp_path / "new", "dev", new, new)
    r = cli("compare", tmp_path / "old", tmp_path / "new", "--json")
    assert r.exit_code == 0, r.stderr


def test_a_run_with_no_rows_is_refused(cli, tmp_path: Path) -> None:
    labels = np.arange(40) % 4
    _write_indices(tmp_path / "old", "dev", labels, labels)
    _write_indices(tmp_path / "new", "dev", labels[:0], labels[:0])
    r = cli("compare", tmp_path / "old", tmp_path / "new")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == (f"Error: {tmp_path / 'new' / 'dev.parquet'}: expected at least one prediction, got 0 rows; "
                        "remove the file or fill it\n")


def test_predictions_that_no_longer_match_their_manifest_are_refused(cli, tmp_path: Path) -> None:
    from diagnose.io.digest import digest_file

    labels = np.arange(60) % 3
    for run in ("old", "new"):
        _write_indices(tmp_path / run, "dev", labels, labels)
        digest = digest_file(tmp_path / run / "dev.parquet", full=True)
        manifest = {"metric": "error", "num_classes": 3,
                    "splits": {"dev": {"file": "dev.parquet", "sha256": digest.sha256, "fingerprint": digest.fingerprint}}}
        (tmp_path / run / "manifest.json").write_text(json.dumps(manifest))
    assert cli("compare", tmp_path / "old", tmp_path / "new").exit_code == 0
    _write_indices(tmp_path / "new", "dev", labels, (labels + 1) % 3)  # another run's predictions now
    r = cli("compare", tmp_path / "old", tmp_path / "new")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith(f"Error: {tmp_path / 'new' / 'dev.parquet'}: expected the predictions its manifest records")


def test_runs_fed_with_other_preprocessing_are_refused_unless_allowed(cli, tmp_path: Path) -> None:
    labels = np.arange(90) % 3
    records = {"raw": {"kind": "none"}, "scaled": {"kind": "standardize", "mean": [3.0, 1900.0], "std": [2.0, 15.0]}}
    for run, record in records.items():
        _write_indices(tmp_path / run, "dev", labels, (labels + (run == "raw")) % 3)
        (tmp_path / run / "manifest.json").write_text(json.dumps({"metric": "error", "num_classes": 3,
                                                                  "preprocessing": record}))
    r = cli("compare", tmp_path / "raw", tmp_path / "scaled")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == (f"Error: {tmp_path / 'scaled'}: expected the preprocessing of {tmp_path / 'raw'}, got "
                        "standardize against none; rerun one of them the same way, or pass "
                        "--allow-other-preprocessing to compare them anyway\n")
    r = cli("compare", tmp_path / "raw", tmp_path / "scaled", "--allow-other-preprocessing", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["splits"]["dev"]["new"]["errors"] == 0
    # The same kind with other values (another train split's statistics) is another preprocessing too.
    other = dict(records["scaled"], mean=[3.5, 1901.0])
    (tmp_path / "raw" / "manifest.json").write_text(json.dumps({"metric": "error", "num_classes": 3, "preprocessing": other}))
    r = cli("compare", tmp_path / "raw", tmp_path / "scaled")
    assert r.exit_code == 1 and "got standardize with other values" in r.stderr
