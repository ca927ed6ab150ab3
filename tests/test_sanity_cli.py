"""`diagnose sanity` through the CLI: the bundled example, every model format, planted defects, --fail-on, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from diagnose.checklist import CHECK_IDS
from diagnose.cli import app
from fixtures.make_defects import dead_relu_mlp, digits, split_arrays, write_data

DEFECTS = Path(__file__).resolve().parents[1] / "fixtures" / "make_defects.py"


def run(*args: str):
    return CliRunner().invoke(app, ["sanity", *args])


def doc_of(result) -> dict:
    assert result.exit_code == 0, result.stderr or result.stdout
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def digits_data(tmp_path_factory) -> Path:
    x, y = digits()
    return write_data(tmp_path_factory.mktemp("digits") / "data", split_arrays(x, y))


def test_example_all_pass_with_numbers(example_model, example_data, example_arch) -> None:
    doc = doc_of(run(str(example_model), str(example_data), "--arch", example_arch, "--json", "--items", "5000"))
    assert [c["id"] for c in doc["checks"]] == list(CHECK_IDS)
    assert {c["id"]: c["status"] for c in doc["checks"]} == dict.fromkeys(CHECK_IDS, "pass")
    assert doc["status"] == "pass"
    by = {c["id"]: c for c in doc["checks"]}
    assert by["init_loss"]["details"]["ln_c"] == pytest.approx(math.log(10))
    assert by["overfit_batch"]["details"]["accuracy"] == 1.0
    assert by["overfit_batch"]["details"]["start"] == "built by --arch"  # fresh weights, not the trained ones
    # input_stats against the file read directly: uint8 pixels / 255 over all 3,000 training items
    raw = torch.load(example_data / "train.pt", weights_only=True)["x"].double() / 255.0
    assert by["input_stats"]["details"]["n"] == 3000
    assert by["input_stats"]["details"]["mean"][0] == pytest.approx(float(raw.mean()), rel=1e-6)
    assert by["input_stats"]["details"]["std"][0] == pytest.approx(float(raw.std(unbiased=False)), rel=1e-6)
    assert set(by["activations"]["details"]["layers"]) == {"act"}  # hooks reach the TorchScript model's eager twin


def test_example_table_and_markdown(example_model, example_data, example_arch) -> None:
    r = run(str(example_model), str(example_data), "--arch", example_arch)
    assert r.exit_code == 0, r.stderr
    assert "init_loss" in r.stdout and "gradient_flow" in r.stdout
    assert r.stdout.rstrip().endswith("PASS: 7 pass")
    md = run(str(example_model), str(example_data), "--arch", example_arch, "--markdown")
    assert md.exit_code == 0
    assert md.stdout.startswith("### diagnose sanity: model.pt (torchscript) on data/train\n\n| status | check | evidence |")
    assert "| pass | `overfit_batch` | Fit one batch of 16 items in " in md.stdout


@pytest.mark.parametrize("fmt", ["torchscript", "export", "state_dict", "safetensors", "lightning", "pickle"])
def test_every_model_format_runs(example_formats, example_data, fmt) -> None:
    path, extra = example_formats.models[fmt]
    # overfit_batch starts from fresh weights where the format allows (a fresh DigitsMLP fits its batch in ~190-250 steps)
    doc = doc_of(run(str(path), str(example_data), "--json", "--steps", "400", *extra))
    statuses = {c["id"]: c["status"] for c in doc["checks"]}
    assert "fail" not in statuses.values() and "warn" not in statuses.values(), doc
    if fmt in ("torchscript", "export"):  # no --arch: no fresh weights to check
        assert statuses["init_loss"] == "skip"
    else:
        assert statuses["init_loss"] == "pass"
    assert statuses["overfit_batch"] == "pass"


def test_fresh_design_from_arch_alone(example_data, example_arch) -> None:
    doc = doc_of(run("--arch", example_arch, str(example_data), "--json"))
    by = {c["id"]: c for c in doc["checks"]}
    assert by["init_loss"]["status"] == "pass" and by["init_loss"]["details"]["fresh_weights"] == "built by --arch"
    assert by["init_scale"]["status"] == "pass"


def test_zero_init_design_fails_and_gates(digits_data) -> None:
    spec = f"{DEFECTS}:ZeroInitMLP"
    doc = doc_of(run("--arch", spec, str(digits_data), "--json", "--steps", "150"))
    statuses = {c["id"]: c["status"] for c in doc["checks"]}
    assert statuses["init_scale"] == "fail" and statuses["gradient_flow"] == "fail" and statuses["overfit_batch"] == "fail"
    r = run("--arch", spec, str(digits_data), "--fail-on", "fail", "--steps", "20")
    assert r.exit_code == 3
    assert r.stderr == (
        f"Error: --arch {spec}: expected no check at fail or worse (--fail-on fail), got 4: overfit_batch (fail), "
        "activations (fail), init_scale (fail), gradient_flow (fail); fix them or relax --fail-on\n"
    )
    assert "init_scale" in r.stdout  # the table is still printed before the gate


def test_dead_relus_from_a_real_training_run(digits_data, tmp_path) -> None:
    x, y = digits()
    model = dead_relu_mlp(*split_arrays(x, y)["train"])
    weights = tmp_path / "dead.pt"
    torch.save(model.state_dict(), weights)
    doc = doc_of(run(str(weights), str(digits_data), "--arch", f"{DEFECTS}:MLP", "--json", "--steps", "150"))
    by = {c["id"]: c for c in doc["checks"]}
    assert by["activations"]["status"] == "fail"
    assert by["init_loss"]["status"] == "pass"  # fresh weights from --arch are fine: the training killed them
    dead_share = max(v["dead_share"] for v in by["activations"]["details"]["layers"].values())
    assert dead_share >= 0.4
    r = run(str(weights), str(digits_data), "--arch", f"{DEFECTS}:MLP", "--fail-on", "warn", "--steps", "20")
    assert r.exit_code == 3 and r.stderr.startswith(f"Error: {weights}: expected no check at warn or worse (--fail-on warn), got ")


def test_fail_on_passes_quietly_on_example(example_model, example_data, example_arch) -> None:
    r = run(str(example_model), str(example_data), "--arch", example_arch, "--fail-on", "warn", "--json")
    assert r.exit_code == 0 and r.stderr == ""


def test_usage_errors(example_data, example_model) -> None:
    r = run(str(example_data))
    assert r.exit_code == 2
    assert r.stderr == "Error: diagnose sanity: expected MODEL DATA (or --arch ... DATA), got no DATA; run e.g. diagnose sanity model.pt data/\n"
    r = run(str(example_model), str(example_data), "--json", "--markdown")
    assert r.exit_code == 2
    assert r.stderr == "Error: --json and --markdown: expected at most one output format, got both; pick one\n"
    # Not a split name at all: wrong usage (2), worded as errors --split words it, before loading anything.
    r = run(str(example_model), str(example_data), "--split", "holdout")
    assert r.exit_code == 2
    assert r.stderr == "Error: --split: expected train, train_dev, dev or test, got 'holdout'; pass one of them\n"
    r = run(str(example_model), str(example_data), "--fail-on", "sometimes")
    assert r.exit_code == 2


def test_a_split_the_data_lacks(example_model, tmp_path) -> None:
    torch.save({"x": torch.rand(8, 1, 8, 8), "y": torch.zeros(8, dtype=torch.long)}, tmp_path / "dev.pt")
    r = run(str(example_model), str(tmp_path), "--split", "val")
    assert r.exit_code == 0, r.stderr  # val is dev
    r = run(str(example_model), str(tmp_path), "--split", "test")
    assert r.exit_code == 1
    assert r.stderr == f"Error: {tmp_path}: expected a test split for the sanity checks, got dev; pass --split dev\n"


def test_regression_model_and_targets(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    y = (x[:, 0] - 2 * x[:, 1]).astype(np.float32)
    data = tmp_path / "reg"
    data.mkdir()
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, data / "train.pt")
    arch = tmp_path / "reg_arch.py"
    arch.write_text(
        "from torch import nn\n\n\ndef make():\n    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))\n"
    )
    doc = doc_of(run("--arch", f"{arch}:make", str(data), "--json"))
    by = {c["id"]: c["status"] for c in doc["checks"]}
    assert by["init_loss"] == "skip" and by["overfit_batch"] == "pass" and by["gradcheck"] == "pass"


def test_data_that_does_not_fit_the_model(tmp_path, example_formats, example_arch) -> None:
    example_model = example_formats.models["state_dict"][0]
    data = tmp_path / "wide"
    data.mkdir()
    torch.save({"x": torch.zeros(20, 100), "y": torch.zeros(20, dtype=torch.long)}, data / "train.pt")
    r = run(str(example_model), str(data), "--arch", example_arch)
    assert r.exit_code == 1
    assert r.stderr.startswith(f"Error: {data / 'train.pt'}: expected inputs of shape (N, 64) for the model, got (N, 100); ")
    labels = tmp_path / "labels"
    labels.mkdir()
    torch.save({"x": torch.zeros(20, 64), "y": torch.arange(20)}, labels / "train.pt")
    r = run(str(example_model), str(labels), "--arch", example_arch)
    assert r.exit_code == 1
    assert r.stderr == (
        f"Error: {labels / 'train.pt'}: expected labels in 0..9 (the model has 10 outputs), got 19 (10 of 20 items); "
        "check that the data and the model use the same classes\n"
    )


def test_rgb_images_are_converted_to_the_models_grayscale(example_formats, example_model: Path, tmp_path: Path) -> None:
    from PIL import Image

    # 64 train images saved as RGB: the bundled model takes one channel, as gaps and errors convert them.
    for png in sorted((example_formats.data["images"] / "train").rglob("*.png"))[:64]:
        dest = tmp_path / "data" / "train" / png.parent.name / png.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.open(png).convert("RGB").save(dest)
    doc = doc_of(run(str(example_model), str(tmp_path / "data"), "--json"))
    stats = next(c for c in doc["checks"] if c["id"] == "input_stats")
    assert stats["status"] == "pass" and len(stats["details"]["mean"]) == 1


def test_functional_relus_and_pinned_sigmoids_warn_example_quiet(digits_data, tmp_path, example_data, example_arch) -> None:
    from fixtures.make_defects import dead_functional_mlp, pinned_sigmoid_mlp

    x, y = digits()
    weights = tmp_path / "functional.pt"
    torch.save(dead_functional_mlp(*split_arrays(x, y)["train"]).state_dict(), weights)
    only = ("--only", "activations,init_loss")
    doc = doc_of(run(str(weights), str(digits_data), "--arch", f"{DEFECTS}:FunctionalMLP", "--json", *only))
    act = next(c for c in doc["checks"] if c["id"] == "activations")
    assert act["status"] in ("warn", "fail") and act["details"]["functional"] == ["relu"]
    assert [c["status"] for c in doc["checks"] if c["id"] not in ("activations", "init_loss")] == ["skip"] * 5
    pinned = tmp_path / "pinned.pt"
    torch.save(pinned_sigmoid_mlp().state_dict(), pinned)
    doc = doc_of(run(str(pinned), str(digits_data), "--arch", f"{DEFECTS}:MLP", "--arch-kwargs", '{"hidden": 24, "act": "sigmoid"}', "--json", *only))
    act = next(c for c in doc["checks"] if c["id"] == "activations")
    assert act["status"] in ("warn", "fail") and act["details"]["layers"]["net.2"]["near_bound_share"] > 0.5
    doc = doc_of(run("--arch", example_arch, str(example_data), "--json", "--skip", "gradcheck"))
    assert {c["status"] for c in doc["checks"]} <= {"pass", "skip"}


def test_arch_that_does_not_fit_a_complete_model_file_is_refused(example_model, example_data, example_arch, tmp_path) -> None:
    # The bundled model.pt is a TorchScript archive: it carries its architecture. An --arch beside it
    # is used for fresh weights and hooks, so an unrelated one would make the checks describe another network.
    other = tmp_path / "other.py"
    other.write_text("import torch.nn as nn\n\nclass Wide(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                     "        self.net = nn.Sequential(nn.Linear(64, 300), nn.ReLU(), nn.Linear(300, 10))\n\n"
                     "    def forward(self, x):\n        return self.net(x.flatten(1))\n")
    before = example_model.read_bytes()
    r = run(str(example_model), str(example_data), "--arch", f"{other}:Wide", "--json")
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()
    assert line.startswith(f"Error: --arch {other}:Wide: expected the architecture of model.pt (a torchscript file carries its own), "
                           "got one whose parameters do not fit it (4 tensors, 22,510 values against ")
    assert line.endswith("leave --arch out (or remove arch from the project settings) for this file")
    assert example_model.read_bytes() == before
    # The architecture it was made from fits, and the checks run.
    assert run(str(example_model), str(example_data), "--arch", example_arch, "--json", "--only", "init_loss").exit_code == 0
