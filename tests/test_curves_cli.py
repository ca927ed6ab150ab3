"""`diagnose curves` through the CLI: tables, JSON, --list, several runs, bad input, no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from diagnose.cli import app

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
runner = CliRunner()


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    """A writable copy of the bundled runs (the default figure goes beside the log)."""
    dst = tmp_path / "runs"
    shutil.copytree(RUNS, dst)
    return dst


def _invoke(*args: str):
    return runner.invoke(app, ["curves", *args])


def test_json_schema_and_numbers(runs: Path) -> None:
    log = runs / "overfitting.trainer_state.json"
    res = _invoke(str(log), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc) == {"runs", "plot"}
    assert doc["plot"] == str(runs / "overfitting.trainer_state.json.curves.png")
    assert Path(doc["plot"]).stat().st_size > 10_000
    run = doc["runs"][0]
    assert set(run) == {"path", "format", "run", "runs", "run_name", "steps", "epochs", "series", "findings"}
    assert run["format"] == "json" and (run["run"], run["runs"], run["run_name"]) == (1, 1, None)
    history = json.loads(log.read_text())["log_history"]
    evals = [r for r in history if "eval_loss" in r]
    losses = [r for r in history if "loss" in r]
    assert run["steps"] == max(r["step"] for r in history)
    assert run["epochs"] == 150
    val = run["series"]["val_loss"]
    best = min(evals, key=lambda r: r["eval_loss"])
    assert val == {
        "points": len(evals), "first": evals[0]["eval_loss"], "last": evals[-1]["eval_loss"],
        "min": best["eval_loss"], "min_at": {"step": best["step"], "epoch": int(best["epoch"])},
    }
    assert run["series"]["train_loss"]["points"] == len(losses)
    over = next(f for f in run["findings"] if f["id"] == "overfitting")
    assert set(over) == {"id", "severity", "evidence", "advice", "at"}
    assert over["severity"] == "warn" and over["at"] == {"step": best["step"], "epoch": int(best["epoch"])}


def test_findings_table(runs: Path) -> None:
    res = _invoke(str(runs / "underfitting.keras.csv"), "--no-plot")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"{runs / 'underfitting.keras.csv'} (csv, 30 epochs): train_loss (30), val_loss (30), train_acc (30), val_acc (30), lr (30)\n")
    assert "underfitting" in res.stdout and "warn" in res.stdout
    # the level at the end: the median training accuracy of the last third of the epochs
    import csv

    with (runs / "underfitting.keras.csv").open() as fh:
        acc = [float(r["accuracy"]) for r in csv.DictReader(fh)]
    assert f"ends at {float(np.median(acc[-10:])):.1%}" in res.stdout
    assert "plot:" not in res.stdout
    assert not (runs / "underfitting.keras.csv.curves.png").exists()


def test_markdown(runs: Path) -> None:
    res = _invoke(str(runs / "lr_diverged.metrics.json"), "--markdown", "--out", str(runs / "d.svg"))
    assert res.exit_code == 0, res.output
    assert "| warn | diverged | step 30 | train_loss is NaN from step 30 on (350 of 380 points) |" in res.stdout
    assert (runs / "d.svg").read_bytes().lstrip().startswith(b"<?xml")


def test_several_runs_overlaid(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare.pdf"
    res = _invoke(str(runs / "healthy.log"), str(runs / "lr_too_high.log"), "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [r["path"] for r in doc["runs"]] == [str(runs / "healthy.log"), str(runs / "lr_too_high.log")]
    assert {f["id"] for f in doc["runs"][1]["findings"] if f["severity"] == "warn"} == {"lr_too_high"}
    assert out.read_bytes().startswith(b"%PDF")


def test_list_shows_the_mapping(runs: Path) -> None:
    res = _invoke(str(runs / "healthy.mmdet.json"), "--list", "--json")
    assert res.exit_code == 0, res.output
    names = {n["source"]: n for n in json.loads(res.stdout)["runs"][0]["names"]}
    assert names["accuracy_top-1"] == {"source": "accuracy_top-1", "target": "train_acc", "points": 210, "note": "percent -> fraction"}
    assert names["loss"]["target"] == "train_loss"
    assert names["val_loss"]["target"] == "val_loss"
    res = _invoke(str(runs / "healthy.mmdet.json"), "--list")
    assert res.exit_code == 0
    assert "accuracy_top-1" in res.stdout and "percent -> fraction" in res.stdout
    assert not (runs / "healthy.mmdet.json.curves.png").exists()


def test_metric_panel_and_unknown_metric(runs: Path) -> None:
    res = _invoke(str(runs / "overfitting.trainer_state.json"), "--metric", "grad_norm", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["runs"][0]["series"]["grad_norm"]["points"] == 300
    res = _invoke(str(runs / "underfitting.keras.csv"), "--metric", "f1")
    assert res.exit_code == 2
    assert res.stderr == "Error: --metric f1: expected a name found in the logs, got none called that; found lr, train_acc, train_loss, val_acc, val_loss\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "{p}: expected a training log, got an empty file; point at the log the run wrote"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 4, "{p}: expected a text log or a TensorBoard event file, got binary data; pass the log file the run wrote (or --format to force one)"),
        (b"step,name\n1,a\n2,b\n", "{p}: expected metrics such as loss or accuracy, got 2 rows with columns step, name; pass --format if the format was guessed wrong"),
        (b"Starting...\nDone.\n", "{p}: expected metrics such as loss or accuracy, got 2 lines and no `name value` pairs; pass --format if the format was guessed wrong"),
        (b'{\n  "log_history": [\n', "{p}: expected a JSON document, got invalid JSON (Expecting value at line 3); if the run is still writing, wait for it to finish"),
    ],
)
def test_bad_input_exact_lines(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.log"
    p.write_bytes(content)
    res = _invoke(str(p))
    assert res.exit_code == 1
    assert res.stderr == "Error: " + message.format(p=p) + "\n"
    assert res.stdout == ""


def test_usage_errors(runs: Path, tmp_path: Path) -> None:
    log = runs / "healthy.keras.csv"
    res = _invoke(str(log), "--out", str(tmp_path / "x.txt"))
    assert res.exit_code == 2
    assert res.stderr == f"Error: --out {tmp_path / 'x.txt'}: expected a .png, .svg or .pdf file, got .txt; name the figure file.png\n"
    res = _invoke(str(log), "--format", "xml")
    assert res.exit_code == 2  # typer's own check of the closed choice
    assert "Invalid value for '--format'" in res.output and "'xml' is not one of" in " ".join(res.output.split())
    res = _invoke(str(tmp_path / "missing.csv"))
    assert res.exit_code == 1
    assert res.stderr == f"Error: {tmp_path / 'missing.csv'}: expected a training log, got no such file or folder; check the path\n"


def test_nan_is_reported_and_drawn(tmp_path: Path) -> None:
    p = tmp_path / "run.csv"
    p.write_text("epoch,loss,val_loss\n0,2.0,2.1\n1,1.0,1.5\n2,nan,inf\n3,nan,nan\n")
    res = _invoke(str(p), "--json")
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)["runs"][0]
    assert run["series"]["train_loss"]["nonfinite"] == 2
    assert run["series"]["val_loss"]["last"] is None
    d = next(f for f in run["findings"] if f["id"] == "diverged")
    assert d["at"] == {"epoch": 2}
    assert d["evidence"] == "train_loss is NaN from epoch 2 on (2 of 4 points)"


def test_format_forced(tmp_path: Path) -> None:
    p = tmp_path / "odd.dat"
    p.write_text("loss=1.0\nloss=0.5\n")
    res = _invoke(str(p), "--format", "text", "--json", "--no-plot")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["runs"][0]["series"]["train_loss"]["last"] == 0.5


def test_curves_never_imports_torch(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "fig.png"
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom diagnose.cli import app\n"
        f"r = CliRunner().invoke(app, ['curves', {str(runs / 'healthy_tb')!r}, {str(runs / 'healthy.log')!r}, '--json', '-o', {str(out)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    got = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert got == ["False", "True"]
    assert out.read_bytes().startswith(b"\x89PNG")


def test_default_out_for_tensorboard_folder(runs: Path) -> None:
    res = _invoke(str(runs / "noisy_tb"), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["plot"] == str(runs / "noisy_tb.curves.png")
    from PIL import Image

    with Image.open(runs / "noisy_tb.curves.png") as im:
        assert im.size[0] == 1100
        assert np.asarray(im).std() > 10  # not blank


def test_tensorboard_root_with_several_runs(runs: Path, tmp_path: Path) -> None:
    root = tmp_path / "lightning_logs"
    shutil.copytree(runs / "healthy_tb", root / "version_0")
    shutil.copytree(runs / "noisy_tb", root / "version_1")
    shutil.copytree(runs / "healthy_tf2", root / "version_2")  # train/ + validation/: one run
    res = _invoke(str(root), "--json", "--out", str(tmp_path / "all.png"))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [Path(r["path"]).name for r in doc["runs"]] == ["version_0", "version_1", "version_2"]
    assert [r["series"]["val_loss"]["points"] for r in doc["runs"]] == [30, 4, 30]


def test_log_without_loss_or_accuracy(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("step,val_f1\n1,0.5\n2,0.6\n3,0.7\n")
    res = _invoke(str(p), "--json", "--metric", "val_f1")
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)["runs"][0]
    assert [f["id"] for f in run["findings"]] == ["no_curves"]
    assert run["series"] == {"val_f1": {"points": 3, "first": 0.5, "last": 0.7, "min": 0.5, "min_at": {"step": 1}}}


@pytest.mark.parametrize("listing", [False, True])
def test_json_gives_each_run_of_a_file_its_index(listing: bool) -> None:
    logs = RUNS.parent / "logs"
    res = _invoke(str(logs / "appended_runs.csv"), str(logs / "mlflow" / "mlruns" / "1"), "--json",
                  "--list" if listing else "--no-plot")
    assert res.exit_code == 0, res.output
    runs = json.loads(res.stdout)["runs"]
    assert [(r["run"], r["runs"], r["run_name"]) for r in runs] == [
        (1, 2, None), (2, 2, None), (1, 2, "softmax-lr0.05"), (2, 2, "softmax-lr0.2")]
