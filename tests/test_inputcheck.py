"""The preprocessing trap: batch-norm statistics against the train split, and the training log's last
validation value against what gaps measures. No false alarm on a healthy model or the bundled example."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import tomllib
import torch

from diagnose.inputcheck import first_norm_stats, input_statistics_warning, last_validation, log_disagreement
from diagnose.io.splits import load_dataset
from fixtures.make_project import copy_project


def _project_model(project: Path) -> torch.nn.Module:
    sys.path.insert(0, str(project))
    try:
        import mynet

        model = mynet.MyNet()
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("mynet", None)
    model.load_state_dict(torch.load(project / "weights.pt", weights_only=True))
    return model.eval()


def _norm(project: Path) -> tuple[list[float], list[float]]:
    tool = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["diagnose"]
    return tool["mean"], tool["std"]


@pytest.mark.slow
def test_batch_norm_statistics_tell_raw_pixels_from_normalized(shapes_project: Path) -> None:
    model = _project_model(shapes_project)
    mean, std = _norm(shapes_project)
    raw = load_dataset(shapes_project / "data").splits["train"]
    normalized = load_dataset(shapes_project / "data", mean=mean, std=std).splits["train"]
    off = first_norm_stats(model, raw)
    ok = first_norm_stats(model, normalized)
    assert off is not None and ok is not None
    assert off.off and not ok.off
    assert ok.shift < 0.1 and 0.8 < ok.variance_ratio < 1.25
    assert input_statistics_warning(model, normalized) is None
    text = input_statistics_warning(model, raw)
    assert text is not None and "features.1" in text and "--mean/--std" in text


@pytest.mark.slow
def test_nothing_said_where_it_cannot_be_known(example_model: Path, example_data: Path, shapes_project: Path) -> None:
    split = load_dataset(example_data).splits["train"]
    scripted = torch.jit.load(str(example_model))
    assert first_norm_stats(scripted, split) is None  # TorchScript: no hooks
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    assert first_norm_stats(plain, split) is None  # no batch norm
    no_stats = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(64, track_running_stats=False),
                                   torch.nn.Linear(64, 10)).eval()
    assert first_norm_stats(no_stats, split) is None
    assert input_statistics_warning(plain, None) is None


def test_log_disagreement_by_accuracy_and_by_loss() -> None:
    # 160 items: 9 errors measured; the log said 94.4% accuracy (9 errors): agree.
    assert log_disagreement(log_name="val_acc", log_value=0.94375, kind="accuracy", split="train_dev", n=160,
                            errors=9, loss=None) is None
    # within sampling noise of a same-size sample: agree
    assert log_disagreement(log_name="val_acc", log_value=0.92, kind="accuracy", split="train_dev", n=160,
                            errors=9, loss=None) is None
    text = log_disagreement(log_name="val_acc", log_value=0.94375, kind="accuracy", split="train_dev", n=160,
                            errors=120, loss=None)
    assert text is not None and "normalization" in text and "another checkpoint" in text and "+69.4 pts" in text
    # percent-style accuracy out of range, or unknown kinds: nothing
    assert log_disagreement(log_name="acc", log_value=94.0, kind="accuracy", split="dev", n=10, errors=1, loss=None) is None
    # loss: 0.17 logged, 1.9 measured (sd 1.0 over 160 items): disagree; 0.18 measured: agree
    assert log_disagreement(log_name="val_loss", log_value=0.17, kind="loss", split="dev", n=160, errors=None,
                            loss=(1.9, 1.0)) is not None
    assert log_disagreement(log_name="val_loss", log_value=0.17, kind="loss", split="dev", n=160, errors=None,
                            loss=(0.18, 0.5)) is None


@pytest.mark.slow
def test_last_validation_reads_the_project_log(shapes_project: Path) -> None:
    name, value, kind = last_validation(shapes_project / "run.csv")
    last = (shapes_project / "run.csv").read_text().strip().splitlines()[-1].split(",")
    assert (name, kind) == ("val_acc", "accuracy") and value == pytest.approx(float(last[3]))


def _gaps_json(cli, *args: object, code: int = 0) -> dict:
    r = cli("gaps", *args, "--json")
    assert r.exit_code == code, r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
def test_gaps_warns_on_the_trap_and_not_on_a_healthy_run(cli, shapes_project: Path, tmp_path: Path,
                                                          example_model: Path, example_data: Path) -> None:
    # Run from another folder, the project's arch is allowed by name (--trust-settings).
    healthy = _gaps_json(cli, shapes_project / "weights.pt", shapes_project / "data", "--app-dir", shapes_project,
                         "--log", shapes_project / "run.csv", "--workdir", tmp_path / "a", "--trust-settings")
    assert healthy["warnings"] == []
    assert healthy["settings"]["mean"]["source"].endswith("pyproject.toml (tool.diagnose)")
    # The trap: the same project with the mean and std left out of its settings.
    trap = tmp_path / "trap"
    copy_project(shapes_project, trap)
    lines = (trap / "pyproject.toml").read_text().splitlines()
    (trap / "pyproject.toml").write_text("\n".join(x for x in lines if not x.startswith(("mean", "std"))) + "\n")
    doc = _gaps_json(cli, trap / "weights.pt", trap / "data", "--app-dir", trap, "--log", trap / "run.csv",
                     "--workdir", tmp_path / "b", "--trust-settings", code=4)
    assert len(doc["warnings"]) == 2
    assert "batch-norm" in doc["warnings"][0] and "training log" in doc["warnings"][1]
    # Inputs in doubt: the verdict is withheld for what to check first, for both reasons.
    assert doc["verdict_withheld"] is True and doc["verdict"]["problem"] is None
    reasons = [d.split(":")[0] for d in doc["doubts"]]
    assert reasons[-2:] == ["the batch-norm input check", "the training log"]
    assert healthy["verdict_withheld"] is False and healthy["baseline"]["model_better"] is True
    assert doc["splits"]["dev"]["error"] > healthy["splits"]["dev"]["error"] + 0.2
    # the bundled example: an MLP without batch norm, and no log: nothing to say
    assert _gaps_json(cli, example_model, example_data, "--workdir", tmp_path / "c")["warnings"] == []
    # a log with no validation metric is one line
    (tmp_path / "train_only.csv").write_text("epoch,train_loss\n1,0.9\n2,0.5\n")
    r = cli("gaps", example_model, example_data, "--workdir", tmp_path / "d", "--log", tmp_path / "train_only.csv")
    assert r.exit_code == 2 and r.stderr.startswith("Error: --log") and r.stderr.count("\n") == 1
