"""Preprocessing of tensor and table splits, on two projects stored raw and normalized in training.

Without preprocessing the verdict is withheld (exit code 4) with what to check first; with the
loop's --mean/--std, or --standardize train, the counts equal a plain evaluation with the same
preprocessing, and the manifest records it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from diagnose.io.memory import as_dataset
from diagnose.io.preprocess import train_statistics
from fixtures.make_raw import COLUMNS, SPLITS, build_signal_project, build_table_project

pytestmark = pytest.mark.slow  # each project trains a small network (seconds)


@pytest.fixture(scope="module")
def signals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_signal_project(tmp_path_factory.mktemp("signals"), seed=0)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_table_project(tmp_path_factory.mktemp("table"), seed=0)


def _raw(project: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split's stored values as float32 and its labels, read without diagnose."""
    pt = project / "data" / f"{split}.pt"
    if pt.is_file():
        blob = torch.load(pt)
        return blob["x"].numpy().astype(np.float32), blob["y"].numpy()
    frame = pd.read_csv(project / "data" / f"{split}.csv")
    return frame[list(COLUMNS)].to_numpy(np.float64).astype(np.float32), frame["label"].to_numpy()


def _errors(project: Path, mean: list[float], std: list[float]) -> dict[str, int]:
    """A plain evaluation: (x - mean) / std per feature in float32, the model in batches of 256."""
    model = torch.jit.load(str(project / "model.pt")).eval()
    out = {}
    for split in SPLITS:
        x, y = _raw(project, split)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        m = np.asarray(mean, dtype=np.float32).reshape(shape)
        s = np.asarray(std, dtype=np.float32).reshape(shape)
        xn = torch.from_numpy((x - m) / s)
        with torch.no_grad():
            pred = torch.cat([model(xn[i:i + 256]).argmax(1) for i in range(0, len(xn), 256)]).numpy()
        out[split] = int((pred != y).sum())
    return out


def _arch(project: Path) -> str:
    return f"{project / 'arch.py'}:{'SignalNet' if (project / 'data' / 'train.pt').is_file() else 'TableNet'}"


def _gaps(cli, project: Path, wd: Path, *extra: object, code: int = 0) -> dict:
    r = cli("gaps", project / "weights.pt", project / "data", "--arch", _arch(project), "--human-error", "0.05",
            "--json", "--workdir", wd, *extra)
    assert r.exit_code == code, r.output
    return json.loads(r.stdout)


def _loop(project: Path) -> dict[str, list[float]]:
    return json.loads((project / "preprocessing.json").read_text())


@pytest.mark.parametrize("name", ["signals", "table"])
def test_raw_inputs_withhold_the_verdict_with_what_to_check(cli, request, tmp_path: Path, name: str) -> None:
    project = request.getfixturevalue(name)
    r = cli("gaps", project / "weights.pt", project / "data", "--arch", _arch(project), "--human-error", "0.05",
            "--log", project / "run.csv", "--workdir", tmp_path / "wd")
    assert r.exit_code == 4, r.output
    out = r.stdout
    assert "Verdict: withheld - check these first:" in out and "Preprocessing:" in out
    assert "Train a bigger model" not in out and "Get more training data" not in out
    assert "--standardize train" in out and "raw pixels" not in out and "--image-size" not in out
    if name == "table":
        assert "one value per column: income, age, balance, tenure_months" in out
    else:
        assert "one value per channel (2)" in out
    assert r.stderr.startswith(f"Error: {project / 'weights.pt'}: expected a model measurably better")
    doc = _gaps(cli, project, tmp_path / "wd", "--log", project / "run.csv", code=4)
    assert doc["verdict_withheld"] is True and doc["verdict"]["problem"] is None
    assert any(d.startswith("the batch-norm input check") for d in doc["doubts"])


@pytest.mark.parametrize("name", ["signals", "table"])
def test_the_loops_mean_and_std_give_the_counts_of_a_plain_evaluation(cli, request, tmp_path: Path, name: str) -> None:
    project = request.getfixturevalue(name)
    loop = _loop(project)
    mean, std = ",".join(repr(v) for v in loop["mean"]), ",".join(repr(v) for v in loop["std"])
    doc = _gaps(cli, project, tmp_path / "wd", "--mean", mean, "--std", std, "--log", project / "run.csv")
    assert doc["warnings"] == [] and doc["doubts"] == [] and doc["verdict_withheld"] is False
    assert doc["baseline"]["model_better"] is True
    assert {s: doc["splits"][s]["errors"] for s in SPLITS} == _errors(project, loop["mean"], loop["std"])
    manifest = json.loads((tmp_path / "wd" / "manifest.json").read_text())
    assert manifest["preprocessing"]["kind"] == "mean/std"
    assert manifest["preprocessing"]["mean"] == pytest.approx(loop["mean"], rel=1e-6)


@pytest.mark.parametrize("name", ["signals", "table"])
def test_standardize_train_records_the_train_statistics_and_counts_exactly(cli, request, tmp_path: Path,
                                                                          name: str) -> None:
    project = request.getfixturevalue(name)
    doc = _gaps(cli, project, tmp_path / "wd", "--standardize", "train")
    assert doc["verdict_withheld"] is False and doc["warnings"] == []
    rec = json.loads((tmp_path / "wd" / "manifest.json").read_text())["preprocessing"]
    assert rec["kind"] == "standardize train"
    x, _ = _raw(project, "train")
    axes = (0, 2) if x.ndim == 3 else (0,)
    # What StandardScaler fitted on train gives (population std), per column or per channel.
    if x.ndim == 2:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x.astype(np.float64))
        ref_mean, ref_std = scaler.mean_, scaler.scale_
        assert rec["features"] == list(COLUMNS)
    else:
        ref_mean, ref_std = x.astype(np.float64).mean(axis=axes), x.astype(np.float64).std(axis=axes)
    assert rec["mean"] == pytest.approx(ref_mean.tolist(), rel=1e-9)
    assert rec["std"] == pytest.approx(ref_std.tolist(), rel=1e-9)
    assert {s: doc["splits"][s]["errors"] for s in SPLITS} == _errors(project, rec["mean"], rec["std"])


def test_streamed_statistics_do_not_depend_on_the_batch_size(table: Path) -> None:
    split = as_dataset(table / "data").splits["train"]
    whole = train_statistics(split, batch_size=100_000)
    for size in (1, 7, 333):
        mean, std = train_statistics(split, batch_size=size)
        assert mean == pytest.approx(whole[0], rel=1e-12) and std == pytest.approx(whole[1], rel=1e-12)


def test_wrong_number_of_values_names_the_columns(cli, table: Path, tmp_path: Path) -> None:
    r = cli("gaps", table / "weights.pt", table / "data", "--arch", _arch(table), "--mean", "1,2,3",
            "--workdir", tmp_path / "wd")
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        f"Error: --mean: expected 1 value or one per column of {table / 'data' / 'train.csv'} (4: income, age, "
        "balance, tenure_months), got 3; pass one value, or 4 separated by commas"
    )
    both = cli("gaps", table / "weights.pt", table / "data", "--arch", _arch(table), "--mean", "0", "--standardize",
               "train", "--workdir", tmp_path / "wd")
    assert both.exit_code == 2 and "expected either --standardize or --mean/--std, got both" in both.stderr


def test_a_constant_model_on_a_table_gets_no_prescription(cli, table: Path, tmp_path: Path) -> None:
    lin = torch.nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))  # always the rarest-but-one class: worse than chance
    path = tmp_path / "constant.pt"
    torch.jit.save(torch.jit.script(lin), str(path))
    r = cli("gaps", path, table / "data", "--standardize", "train", "--human-error", "0.05", "--json",
            "--workdir", tmp_path / "wd")
    assert r.exit_code == 4, r.output
    doc = json.loads(r.stdout)
    assert doc["baseline"]["model_better"] is False and doc["verdict"]["problem"] is None
    assert doc["withheld_verdict"]["problem"] == "avoidable_bias"
    assert doc["doubts"][0].startswith("the model is not significantly better on train")


@pytest.mark.parametrize("name", ["signals", "table"])
def test_transform_from_the_users_own_file_counts_exactly(cli, request, tmp_path: Path, name: str) -> None:
    project = request.getfixturevalue(name)
    loop = _loop(project)
    code = tmp_path / "prep.py"
    code.write_text(
        "import torch\n\n"
        f"MEAN = torch.tensor({loop['mean']!r}, dtype=torch.float32)\n"
        f"STD = torch.tensor({loop['std']!r}, dtype=torch.float32)\n\n\n"
        "def standardize(x):\n"
        "    shape = (1, -1) + (1,) * (x.ndim - 2)\n"
        "    return (x - MEAN.reshape(shape)) / STD.reshape(shape)\n",
        encoding="utf-8",
    )
    doc = _gaps(cli, project, tmp_path / "wd", "--transform", f"{code}:standardize")
    assert doc["verdict_withheld"] is False and doc["warnings"] == []
    assert {s: doc["splits"][s]["errors"] for s in SPLITS} == _errors(project, loop["mean"], loop["std"])
    rec = json.loads((tmp_path / "wd" / "manifest.json").read_text())["preprocessing"]
    assert rec == {"kind": "none", "transform": f"{code}:standardize"}
    bad = cli("gaps", project / "weights.pt", project / "data", "--arch", _arch(project), "--transform",
              f"{code}:nope", "--workdir", tmp_path / "wd2")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == (f"Error: --transform {code}:nope: expected a function nope in {code}, got no such "
                                  "callable; check the name")


def test_transform_as_a_python_function_in_the_api(signals: Path) -> None:
    import diagnose

    loop = _loop(signals)
    mean = torch.tensor(loop["mean"], dtype=torch.float32).reshape(1, -1, 1)
    std = torch.tensor(loop["std"], dtype=torch.float32).reshape(1, -1, 1)
    model = torch.jit.load(str(signals / "model.pt"))
    data = {s: _raw(signals, s) for s in SPLITS}
    report = diagnose.gaps(model, {s: (torch.from_numpy(x), torch.from_numpy(y)) for s, (x, y) in data.items()},
                           transform=lambda x: (x - mean) / std)
    assert {s: report.splits[s].errors for s in SPLITS} == _errors(signals, loop["mean"], loop["std"])
    assert report.withheld is None


def test_standardize_and_transform_as_settings(table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`standardize` is a setting like mean and std; `transform` names code, so it is taken from the
    project run from, never from a file that came with the data."""
    from typer.testing import CliRunner

    from diagnose.cli import app

    def run(cwd: Path, *args: object) -> object:
        monkeypatch.chdir(cwd)
        return CliRunner().invoke(app, [str(a) for a in args])

    args = ("gaps", table / "weights.pt", table / "data", "--arch", _arch(table), "--human-error", "0.05", "--json")
    project = tmp_path / "project"
    project.mkdir()
    typed = run(project, *args, "--workdir", tmp_path / "typed", "--standardize", "train")
    assert typed.exit_code == 0, typed.output
    (project / "pyproject.toml").write_text('[tool.diagnose]\nstandardize = "train"\n')
    from_file = run(project, *args, "--workdir", tmp_path / "file")
    assert from_file.exit_code == 0, from_file.output
    a, b = json.loads(typed.stdout), json.loads(from_file.stdout)
    assert {s: a["splits"][s]["errors"] for s in SPLITS} == {s: b["splits"][s]["errors"] for s in SPLITS}
    manifest = json.loads((tmp_path / "file" / "manifest.json").read_text())
    assert manifest["preprocessing"]["kind"] == "standardize train"

    marker = tmp_path / "ran"
    (table / "data" / "prep.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef f(x):\n    return x\n")
    (table / "data" / "diagnose.toml").write_text('transform = "prep.py:f"\nhuman_error = 0.05\n')
    try:
        refused = run(project, *args, "--workdir", tmp_path / "data-code")
        assert refused.exit_code == 2 and not marker.exists()
        assert "expected settings that name code (transform) only from the project you run in" in refused.stderr
    finally:
        (table / "data" / "diagnose.toml").unlink()
        (table / "data" / "prep.py").unlink()
