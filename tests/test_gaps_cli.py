"""`diagnose gaps` end to end through typer's CliRunner: counts in every format, outputs, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from diagnose.core.stats import newcombe_interval, wilson_interval

SPLITS = ("train", "train_dev", "dev", "test")


def _json(result) -> dict:
    assert result.exit_code == 0, result.stderr or result.stdout
    return json.loads(result.stdout)


def _counts(doc: dict) -> dict[str, tuple[int, int]]:
    return {s: (v["n"], v["errors"]) for s, v in doc["splits"].items()}


@pytest.fixture(scope="module")
def bundled_json(tmp_path_factory, example_model, example_data) -> dict:
    from typer.testing import CliRunner

    from diagnose.cli import app

    wd = tmp_path_factory.mktemp("wd_bundled")
    r = CliRunner().invoke(app, ["gaps", str(example_model), str(example_data), "--json", "--per-class", "--workdir", str(wd)])
    doc = _json(r)
    doc["_workdir"] = str(wd)
    return doc


def test_bundled_example_counts_match_a_plain_loop(bundled_json, example_counts) -> None:
    assert _counts(bundled_json) == example_counts
    # The bundled example shows all three problems at once, and data mismatch dominates.
    assert example_counts == {"train": (3000, 195), "train_dev": (300, 44), "dev": (250, 64), "test": (247, 67)}
    gaps = bundled_json["gaps"]
    assert [gaps[g]["significant"] for g in ("avoidable_bias", "variance", "data_mismatch", "dev_overfit")] == [
        True, True, True, False,
    ]
    assert bundled_json["verdict"]["problem"] == "data_mismatch"
    assert bundled_json["human_error"] == 0.01  # from data/diagnose.toml


def test_bundled_example_intervals_are_wilson_and_newcombe(bundled_json) -> None:
    s = bundled_json["splits"]
    for v in s.values():
        assert v["error"] == v["errors"] / v["n"]
        assert v["ci"] == pytest.approx(list(wilson_interval(v["errors"], v["n"])), abs=1e-12)
    g = bundled_json["gaps"]
    assert g["variance"]["value"] == pytest.approx(44 / 300 - 195 / 3000)
    assert g["variance"]["ci"] == pytest.approx(list(newcombe_interval(195, 3000, 44, 300)))
    assert g["data_mismatch"]["ci"] == pytest.approx(list(newcombe_interval(44, 300, 64, 250)))
    assert g["avoidable_bias"]["value"] == pytest.approx(195 / 3000 - 0.01)


def test_default_table_output(cli, example_model, example_data, tmp_path) -> None:
    r = cli("gaps", example_model, example_data, "--human-error", "0.01", "--workdir", tmp_path)
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "│ train       │ 3,000 │  6.5% │ 5.7 – 7.4   │ avoidable bias 5.5 pts         │ 4.7 – 6.4  │" in out
    assert "│ train-dev   │   300 │ 14.7% │ 11.1 – 19.1 │ variance 8.2 pts               │ 4.5 – 12.7 │" in out
    assert "│ test        │   247 │ 27.1% │ 22.0 – 33.0 │ dev overfitting 1.5 pts (n.s.) │ -6.2 – 9.2 │" in out
    assert "Verdict: data mismatch is the largest significant gap (10.9 pts, 95% CI 4.2 – 17.7)." in out
    assert "1. Do error analysis on dev against train-dev" in out


def test_markdown_output(cli, example_model, example_data, tmp_path) -> None:
    r = cli("gaps", example_model, example_data, "--markdown", "--workdir", tmp_path)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "| level | n | error | 95% CI | gap | gap 95% CI | majority class |"
    assert lines[2] == "| human-level |  | 1.0% |  |  |  |  |"
    assert lines[4] == "| train-dev | 300 | 14.7% | 11.1 – 19.1 | variance 8.2 pts | 4.5 – 12.7 | 88.3% (84.2–91.5) |"


def test_per_class_contributions_add_up_to_each_gap(bundled_json) -> None:
    pc = bundled_json["per_class"]
    assert [c["class"] for c in pc["classes"]] == [str(i) for i in range(10)]
    for gap in ("variance", "data_mismatch", "dev_overfit"):
        total = sum(c["contribution"][gap] for c in pc["classes"])
        assert total == pytest.approx(bundled_json["gaps"][gap]["value"], abs=1e-12)
    for split, (n, errors) in {"dev": (250, 64), "train": (3000, 195)}.items():
        assert sum(c["n"][split] for c in pc["classes"]) == n
        assert sum(round(c["error"][split] * c["n"][split]) for c in pc["classes"]) == errors
    # The blurred 1s are all misread: class 1 drives the data mismatch.
    assert pc["drivers"]["data_mismatch"][0]["class"] == "1"


def test_predictions_and_manifest_are_saved(bundled_json, example_model, example_data) -> None:
    import pandas as pd

    wd = Path(bundled_json["_workdir"])
    manifest = json.loads((wd / "manifest.json").read_text())
    def fingerprint(data: bytes) -> str:  # a file under 8 MiB: BLAKE2b of the scheme, its size and all of it
        h = hashlib.blake2b(f"blake2b-sampled-v1:{len(data)}:".encode() + data, digest_size=16)
        return "blake2b-sampled-v1:" + h.hexdigest()

    assert manifest["model"]["fingerprint"] == fingerprint(example_model.read_bytes())
    assert manifest["model"]["sha256"] is None  # only with --full-digest
    assert manifest["model"]["format"] == "torchscript"
    assert manifest["data"]["splits"]["dev"]["fingerprint"] == fingerprint((example_data / "dev.pt").read_bytes())
    assert manifest["classes"] == [str(i) for i in range(10)]
    for split in SPLITS:
        frame = pd.read_parquet(wd / "predictions" / f"{split}.parquet")
        n, errors = bundled_json["splits"][split]["n"], bundled_json["splits"][split]["errors"]
        assert len(frame) == n and int((frame["label"] != frame["pred"]).sum()) == errors
        assert frame["index"].tolist() == list(range(n))
        assert (frame["top1"] == frame["pred"]).all()
        assert np.allclose(frame["confidence"], frame["top1_p"])
        # loss is the cross-entropy: -log p(label)
        assert np.allclose(frame["loss"], -np.log(frame["p_label"]), atol=1e-4)
    assert frame["id"].iloc[0].startswith("digit")


def test_predictions_dir_gives_the_same_report(cli, bundled_json) -> None:
    wd = bundled_json["_workdir"]
    doc = _json(cli("gaps", "--predictions", wd, "--json", "--per-class"))
    assert doc["splits"] == bundled_json["splits"]
    assert doc["gaps"] == bundled_json["gaps"]
    assert doc["per_class"] == bundled_json["per_class"]


MODEL_FORMATS = ("torchscript", "export", "state_dict", "state_dict_legacy", "lightning", "checkpoint", "safetensors", "pickle")
DATA_FORMATS = ("pt", "npz", "npz_compressed", "csv", "parquet", "images")


@pytest.mark.parametrize("fmt", MODEL_FORMATS)
def test_every_model_format_gives_the_same_counts(cli, fmt, example_formats, example_data, example_counts, tmp_path) -> None:
    path, extra = example_formats.models[fmt]
    doc = _json(cli("gaps", path, example_data, "--json", "--workdir", tmp_path, *extra))
    assert _counts(doc) == example_counts


@pytest.mark.parametrize("fmt", DATA_FORMATS)
def test_every_data_format_gives_the_same_counts(cli, fmt, example_formats, example_model, example_counts, tmp_path) -> None:
    extra = ["--workers", "1"] if fmt == "images" else []
    doc = _json(cli("gaps", example_model, example_formats.data[fmt], "--json", "--workdir", tmp_path, "--batch-size", "100", *extra))
    assert _counts(doc) == example_counts


def test_max_items_sample(cli, example_model, example_data, tmp_path) -> None:
    import pandas as pd

    a = _json(cli("gaps", example_model, example_data, "--json", "--max-items", "200", "--workdir", tmp_path / "a"))
    b = _json(cli("gaps", example_model, example_data, "--json", "--max-items", "200", "--workdir", tmp_path / "b"))
    c = _json(cli("gaps", example_model, example_data, "--json", "--max-items", "200", "--seed", "1", "--workdir", tmp_path / "c"))
    assert {s: v["n"] for s, v in a["splits"].items()} == {"train": 200, "train_dev": 200, "dev": 200, "test": 200}
    assert a["splits"] == b["splits"]
    assert a["splits"]["train"]["errors"] != c["splits"]["train"]["errors"] or a["splits"]["dev"] != c["splits"]["dev"]
    frame = pd.read_parquet(tmp_path / "a" / "predictions" / "train.parquet")
    assert frame["index"].is_unique and frame["index"].between(0, 2999).all()
    assert int((frame["label"] != frame["pred"]).sum()) == a["splits"]["train"]["errors"]
    # The interval reflects n = 200, not 3,000.
    t = a["splits"]["train"]
    assert t["ci"] == pytest.approx(list(wilson_interval(t["errors"], 200)))
    assert "train: evaluated a seeded sample of 200 of 3,000 items (max_items)" in a["notes"]


def test_missing_split_and_no_human_error(cli, example_data, example_model, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "dev", "test"):
        shutil.copy(example_data / f"{split}.pt", data / f"{split}.pt")
    doc = _json(cli("gaps", example_model, data, "--json", "--workdir", tmp_path / "wd"))
    assert set(doc["splits"]) == {"train", "dev", "test"}
    assert doc["gaps"]["avoidable_bias"] is None
    assert doc["gaps"]["variance"] is None and doc["gaps"]["data_mismatch"] is None
    assert doc["gaps"]["dev_overfit"] is not None
    assert doc["human_error"] is None
    assert "no train_dev split: variance, data_mismatch unknown" in doc["notes"]
    assert any(n.startswith("avoidable bias unknown: pass --human-error") and "at most the train error, 6.5%" in n for n in doc["notes"])
    assert not (tmp_path / "wd" / "predictions" / "train_dev.parquet").exists()


def _write_torchscript(module: torch.nn.Module, path: Path) -> Path:
    torch.jit.save(torch.jit.script(module.eval()), str(path))
    return path


def test_regression_metrics_are_means_of_per_item_losses(cli, tmp_path) -> None:
    rng = np.random.default_rng(3)
    model = torch.nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0]]))
        model.bias.fill_(0.1)
    path = _write_torchscript(model, tmp_path / "reg.pt")
    data = tmp_path / "data"
    data.mkdir()
    truth = {}
    for split, noise in (("train", 0.1), ("train_dev", 0.2), ("dev", 0.5)):
        x = rng.normal(size=(400, 4)).astype(np.float32)
        y = x @ np.array([1.0, -2.0, 0.5, 0.0], dtype=np.float32) + 0.1 + rng.normal(0, noise, 400).astype(np.float32)
        np.savez(data / f"{split}.npz", x=x, y=y)
        with torch.no_grad():
            pred = model(torch.from_numpy(x))[:, 0].double().numpy()
        truth[split] = pred - y.astype(np.float64)
    for metric, fn in (("mse", np.square), ("mae", np.abs)):
        doc = _json(cli("gaps", path, data, "--metric", metric, "--json", "--workdir", tmp_path / metric))
        assert doc["metric"] == metric
        for split, diff in truth.items():
            loss = fn(diff)
            assert doc["splits"][split]["error"] == pytest.approx(loss.mean(), rel=1e-5)
            assert doc["splits"][split]["sd"] == pytest.approx(loss.std(ddof=1), rel=1e-4)
            assert "errors" not in doc["splits"][split]
        assert doc["gaps"]["variance"]["value"] == pytest.approx(fn(truth["train_dev"]).mean() - fn(truth["train"]).mean(), rel=1e-4)


def test_human_error_of_a_regression_metric_is_a_mean_loss(cli, example_model, example_data, tmp_path) -> None:
    # A human-level MSE is in the target's units, often above 1: it must not be held to [0, 1).
    rng = np.random.default_rng(4)
    model = torch.nn.Linear(3, 1)
    path = _write_torchscript(model, tmp_path / "reg.pt")
    data = tmp_path / "data"
    data.mkdir()
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (10 * rng.normal(size=200)).astype(np.float32)
    np.savez(data / "train.npz", x=x, y=y)
    with torch.no_grad():
        mse = float(np.mean((model(torch.from_numpy(x))[:, 0].double().numpy() - y) ** 2))
    doc = _json(cli("gaps", path, data, "--metric", "mse", "--human-error", "2.5", "--json", "--workdir", tmp_path / "wd"))
    assert doc["human_error"] == 2.5
    assert doc["gaps"]["avoidable_bias"]["value"] == pytest.approx(mse - 2.5, rel=1e-5)
    (data / "diagnose.toml").write_text("human_error = 4.0\n", encoding="utf-8")
    doc = _json(cli("gaps", path, data, "--metric", "mse", "--json", "--workdir", tmp_path / "wd"))
    assert doc["gaps"]["avoidable_bias"]["value"] == pytest.approx(mse - 4.0, rel=1e-5)
    # The same file given to a classifier: a fraction is expected there.
    copy = tmp_path / "digits"
    shutil.copytree(example_data, copy)
    (copy / "diagnose.toml").write_text("human_error = 4.0\n", encoding="utf-8")
    r = cli("gaps", example_model, copy, "--workdir", tmp_path / "wd2")
    assert r.exit_code == 2
    assert _error(r) == f"Error: {copy / 'diagnose.toml'}: expected human-level error as a fraction in [0, 1), got 4.0; write 0.01 for 1%"
    r = cli("gaps", path, data, "--metric", "mae", "--human-error", "-1", "--workdir", tmp_path / "wd")
    assert r.exit_code == 2
    assert _error(r) == (
        "Error: --human-error: expected human-level mae as a mean per-item loss >= 0, got -1.0; "
        "pass the mae a person (or the best known model) reaches"
    )


def test_binary_single_logit_model(cli, tmp_path) -> None:
    rng = np.random.default_rng(5)
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, -1.0]]))
        model.bias.fill_(0.0)
    path = _write_torchscript(model, tmp_path / "bin.pt")
    data = tmp_path / "data"
    data.mkdir()
    expected = {}
    for split in ("train", "dev"):
        x = rng.normal(size=(500, 2)).astype(np.float32)
        y = (x[:, 0] + 0.3 * rng.normal(size=500) > 0).astype(np.int64)
        torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, data / f"{split}.pt")
        pred = (3 * x[:, 0] - x[:, 1] > 0).astype(np.int64)
        expected[split] = (500, int((pred != y).sum()))
    doc = _json(cli("gaps", path, data, "--json", "--workdir", tmp_path / "wd"))
    assert _counts(doc) == expected


# --------------------------------------------------------------------------- bad input, exact lines


def _error(result) -> str:
    return result.stderr.strip()


def test_missing_data(cli, example_model, tmp_path) -> None:
    r = cli("gaps", example_model, tmp_path / "nope")
    assert r.exit_code == 1
    assert _error(r) == f"Error: {tmp_path / 'nope'}: expected a data folder with train/train_dev/dev/test splits, got nothing at that path; check the path"


def test_no_recognizable_split(cli, example_model, tmp_path) -> None:
    (tmp_path / "training.pt").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    r = cli("gaps", example_model, tmp_path)
    assert r.exit_code == 1
    assert _error(r) == (
        f"Error: {tmp_path}: expected splits named train, train_dev, dev or test (.pt, .npz, .csv, .parquet or an image folder), "
        "got notes.txt, training.pt; rename the files (aliases: train-dev, val, valid, validation)"
    )


def test_unknown_model_file(cli, example_data, tmp_path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_text("hello world, not a model")
    r = cli("gaps", bad, example_data)
    assert r.exit_code == 1
    assert _error(r) == (
        f"Error: {bad}: expected a PyTorch model (TorchScript, torch.export .pt2, state dict or .safetensors), "
        "got a file starting with b'hello wo'; save the model with torch.save(model.state_dict(), ...) or torch.jit.save"
    )


def test_truncated_model_file(cli, example_model, example_data, tmp_path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(example_model.read_bytes()[: example_model.stat().st_size // 2])
    r = cli("gaps", bad, example_data)
    assert r.exit_code == 1
    assert _error(r) == (
        f"Error: {bad}: expected a complete model archive, got a truncated or damaged zip file; copy or save the model again"
    )


def test_pickle_without_trust(cli, example_formats, example_data) -> None:
    path, _ = example_formats.models["pickle"]
    r = cli("gaps", path, example_data)
    assert r.exit_code == 1
    assert _error(r) == (
        f"Error: {path}: expected tensors only (weights_only=True), got a pickle that runs code to load "
        "(it needs torch.nn.modules.container.Sequential); convert it once where the model's class is importable: "
        "torch.save(model.state_dict(), 'weights.pt') and pass --arch, or torch.jit.save(torch.jit.script(model), 'model.pt'); "
        "or pass --trust-pickle if you trust the file"
    )


def test_weights_without_arch_is_a_usage_error(cli, example_formats, example_data) -> None:
    path, _ = example_formats.models["state_dict"]
    r = cli("gaps", path, example_data)
    assert r.exit_code == 2
    assert _error(r) == (
        f"Error: {path}: expected --arch with weights-only files, got a state dict of 4 tensors; "
        "pass --arch package.module:factory or --arch path/to/file.py:ClassName"
    )


def test_input_shape_mismatch_names_both_shapes(cli, example_model, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "train.npz", x=np.zeros((10, 32), dtype=np.float32), y=np.zeros(10, dtype=np.int64))
    r = cli("gaps", example_model, data, "--workdir", tmp_path / "wd")
    assert r.exit_code == 1
    assert _error(r) == (
        f"Error: {data / 'train.npz'}: expected inputs of shape (N, 64) for the model, got (N, 32); reshape the data to what the model takes"
    )


def test_labels_outside_the_model_classes(cli, example_model, example_data, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    obj = torch.load(example_data / "dev.pt", weights_only=True)
    y = obj["y"].clone()
    y[[3, 7]] = 12
    torch.save({"x": obj["x"], "y": y}, data / "dev.pt")
    r = cli("gaps", example_model, data, "--workdir", tmp_path / "wd")
    assert r.exit_code == 1
    assert _error(r) == (
        f"Error: {data / 'dev.pt'}: expected labels in 0..9 (the model has 10 outputs), got 12 (2 of 250 items); "
        "check that the data and the model use the same classes"
    )


def test_empty_split(cli, example_model, example_data, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(example_data / "train.pt", data / "train.pt")
    torch.save({"x": torch.zeros(0, 1, 8, 8), "y": torch.zeros(0, dtype=torch.int64)}, data / "dev.pt")
    r = cli("gaps", example_model, data, "--workdir", tmp_path / "wd")
    assert r.exit_code == 1
    assert _error(r) == f"Error: {data / 'dev.pt'}: expected at least one item in the dev split, got 0; remove the split or fill it"


def test_nan_outputs(cli, make_fixtures, example_data, tmp_path) -> None:
    model = make_fixtures.load_example_model()
    with torch.no_grad():
        model.hidden.weight[0, :] = float("nan")
    path = _write_torchscript(model, tmp_path / "nan.pt")
    r = cli("gaps", path, example_data, "--workdir", tmp_path / "wd")
    assert r.exit_code == 1
    assert _error(r).startswith(f"Error: {example_data / 'train.pt'}: expected finite model outputs, got NaN or inf for ")
    assert _error(r).endswith("check the weights for NaN and that the inputs are scaled as in training (--mean/--std)")
    assert len(r.stderr.strip().splitlines()) == 1


def test_workdir_under_a_file_is_refused_before_evaluating(cli, example_model, example_data, tmp_path) -> None:
    (tmp_path / "notes").write_text("x")
    r = cli("gaps", example_model, example_data, "--workdir", tmp_path / "notes" / "wd")
    assert r.exit_code == 2
    assert _error(r) == (
        f"Error: --workdir {tmp_path / 'notes' / 'wd'}: expected a folder to write in, got a file at {tmp_path / 'notes'}; "
        "pass another path"
    )


def test_per_class_with_a_regression_metric_is_refused_before_evaluating(cli, example_model, example_data, tmp_path) -> None:
    r = cli("gaps", example_model, example_data, "--metric", "mse", "--per-class", "--workdir", tmp_path / "wd")
    assert r.exit_code == 2
    assert _error(r) == "Error: --per-class: expected --metric error, got --metric mse; per-class gaps need classes"
    assert not (tmp_path / "wd").exists()  # nothing evaluated, nothing written


def test_nan_input_names_its_position_in_the_split(cli, example_model, tmp_path) -> None:
    # The position of the item to look at, not its place in whichever batch it fell in.
    data = tmp_path / "data"
    data.mkdir()
    x = torch.rand(600, 1, 8, 8)
    x[517, 0, 2, 2] = float("nan")
    torch.save({"x": x, "y": torch.zeros(600, dtype=torch.long)}, data / "dev.pt")
    r = cli("gaps", example_model, data, "--batch-size", "256", "--workdir", tmp_path / "wd")
    assert r.exit_code == 1
    assert _error(r) == (
        f"Error: {data / 'dev.pt'}: expected finite inputs, got NaN or inf in 1 of 88 items in a batch "
        "(first: item 517 of the split); fill or drop the missing values in the data"
    )


@pytest.mark.slow
def test_unreadable_image(cli, example_formats, example_model, tmp_path) -> None:
    data = tmp_path / "images"
    shutil.copytree(example_formats.data["images"], data)
    victim = sorted((data / "dev" / "3").glob("*.png"))[0]
    victim.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    r = cli("gaps", example_model, data, "--workdir", tmp_path / "wd")
    assert r.exit_code == 1
    assert _error(r).startswith(f"Error: {victim}: expected an image Pillow can decode, got ")
    assert _error(r).endswith("; remove or replace the file")


def test_json_and_markdown_together_is_a_usage_error(cli, example_model, example_data) -> None:
    r = cli("gaps", example_model, example_data, "--json", "--markdown")
    assert r.exit_code == 2
    assert _error(r) == "Error: --json and --markdown: expected at most one output format, got both; pick one"


def test_rgb_images_are_converted_to_the_models_grayscale(cli, example_formats, example_model, example_counts, tmp_path) -> None:
    from PIL import Image

    src = example_formats.data["images"] / "dev"
    for png in src.rglob("*.png"):
        dest = tmp_path / "data" / "dev" / png.parent.name / png.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.open(png).convert("RGB").save(dest)
    doc = _json(cli("gaps", example_model, tmp_path / "data", "--json", "--workdir", tmp_path / "wd"))
    assert _counts(doc) == {"dev": example_counts["dev"]}


def test_grayscale_images_are_converted_for_an_rgb_model_with_per_channel_mean(cli, example_formats, tmp_path) -> None:
    # --mean / --std with three values fit the RGB the model takes, not the grayscale files.
    from PIL import Image

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 10))
    path = _write_torchscript(model.eval(), tmp_path / "rgb.pt")
    data = tmp_path / "data"
    shutil.copytree(example_formats.data["images"] / "dev", data / "dev")
    mean, std = np.array([0.1, 0.2, 0.3], np.float32), np.array([0.5, 0.25, 0.2], np.float32)
    wrong = 0
    files = sorted(data.rglob("*.png"))
    for png in files:
        rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.float32) / 255
        x = torch.from_numpy(((rgb - mean) / std).transpose(2, 0, 1)[None].copy())
        with torch.no_grad():
            wrong += int(model(x).argmax(1).item() != int(png.parent.name))
    doc = _json(cli("gaps", path, data, "--mean", "0.1,0.2,0.3", "--std", "0.5,0.25,0.2", "--json", "--workdir", tmp_path / "wd"))
    assert _counts(doc) == {"dev": (len(files), wrong)}


def test_bf16_autocast_on_cpu_is_close(cli, example_model, example_data, example_counts, tmp_path) -> None:
    doc = _json(cli("gaps", example_model, example_data, "--json", "--precision", "bf16", "--device", "cpu", "--workdir", tmp_path))
    for split, (n, errors) in example_counts.items():
        assert doc["splits"][split]["n"] == n
        assert abs(doc["splits"][split]["errors"] - errors) <= max(3, n // 100)


def test_fp16_on_cpu_is_a_usage_error(cli, example_model, example_data) -> None:
    r = cli("gaps", example_model, example_data, "--precision", "fp16", "--device", "cpu")
    assert r.exit_code == 2
    assert _error(r) == "Error: --precision fp16: expected a GPU device, got the CPU; use --precision bf16 on a CPU"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_same_counts(cli, example_formats, example_model, example_counts, tmp_path) -> None:
    doc = _json(cli("gaps", example_model, example_formats.data["parquet"], "--json", "--device", "cuda", "--workdir", tmp_path / "a"))
    assert _counts(doc) == example_counts
    half = _json(cli("gaps", example_model, example_formats.data["pt"], "--json", "--device", "cuda", "--precision", "fp16", "--workdir", tmp_path / "b"))
    for split, (_, errors) in example_counts.items():
        assert abs(half["splits"][split]["errors"] - errors) <= 3


def test_a_model_that_fails_for_another_reason(cli, example_data, tmp_path) -> None:
    class Picky(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if bool(x.sum() > 0):
                raise RuntimeError("the weights were never loaded")
            return x.flatten(1)[:, :10]

    path = _write_torchscript(Picky(), tmp_path / "picky.pt")
    r = cli("gaps", path, example_data, "--workdir", tmp_path / "wd")
    assert r.exit_code == 1
    assert _error(r).startswith(f"Error: {example_data / 'train.pt'}: expected the model to run on a batch of shape (2, 1, 8, 8), got ")
    assert _error(r).endswith("; rerun with --debug for the traceback")


def test_rich_table_literal() -> None:
    from rich.console import Console

    from diagnose.core.gaps import compute_gaps, summarize_errors
    from diagnose.render.gaps import render_rich

    report = compute_gaps(
        {"train": summarize_errors("train", 80, 1000), "dev": summarize_errors("dev", 30, 200)}, human_error=0.02
    )
    console = Console(width=100, record=True, color_system=None, soft_wrap=False)
    render_rich(console, report)
    lines = console.export_text().splitlines()
    assert lines[:10] == [
        "┏━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┓",
        "┃ level       ┃     n ┃  error ┃ 95% CI      ┃ gap                     ┃ gap 95% CI ┃",
        "┡━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━┩",
        "│ human-level │       │   2.0% │             │                         │            │",
        "│ train       │ 1,000 │   8.0% │ 6.5 – 9.8   │ avoidable bias 6.0 pts  │ 4.5 – 7.8  │",
        "│ train-dev   │       │ absent │             │ variance unknown        │            │",
        "│ dev         │   200 │  15.0% │ 10.7 – 20.6 │ data mismatch unknown   │            │",
        "│ test        │       │ absent │             │ dev overfitting unknown │            │",
        "└─────────────┴───────┴────────┴─────────────┴─────────────────────────┴────────────┘",
        "Verdict: avoidable bias is the largest significant gap (6.0 pts, 95% CI 4.5 – 7.8).",
    ]
    assert lines[-1] == (
        "Note: without a train_dev split, dev - train = +7.0 pts mixes variance and data mismatch; "
        "hold out part of train as train_dev to tell them apart"
    )


def test_a_failed_run_leaves_the_previous_predictions(cli, example_model, example_data, tmp_path) -> None:
    wd = tmp_path / "wd"
    _json(cli("gaps", example_model, example_data, "--json", "--workdir", wd))
    before = {p.name: p.read_bytes() for p in (wd / "predictions").iterdir()}
    manifest = (wd / "manifest.json").read_text()
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(example_data / "train.pt", data / "train.pt")
    torch.save({"x": torch.zeros(3, 1, 8, 8), "y": torch.tensor([0, 1, 99])}, data / "dev.pt")
    r = cli("gaps", example_model, data, "--workdir", wd)
    assert r.exit_code == 1 and "expected labels in 0..9" in r.stderr
    assert {p.name: p.read_bytes() for p in (wd / "predictions").iterdir()} == before
    assert (wd / "manifest.json").read_text() == manifest
    assert sorted(p.name for p in wd.iterdir()) == ["manifest.json", "predictions"]


_RUN_AS_USER = """
import json, sys
from typer.testing import CliRunner
from diagnose.cli import app
out = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(app, args)
    out.append([r.exit_code, r.stderr.strip()])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_files_without_read_permission_get_one_line(example_model, example_data, example_formats, tmp_path) -> None:
    # click's own check printed a usage box (exit 2) for MODEL / DATA; a split file read as "not a zip" or
    # "save it again"; a predictions folder ended in "unexpected PermissionError".
    import os
    import subprocess
    import sys

    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file permissions are not enforced")
        prefix = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
    model = tmp_path / "model.pt"
    shutil.copy(example_model, model)
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(example_formats.data["npz"] / "val.npz", data / "dev.npz")
    images = tmp_path / "images"
    shutil.copytree(example_formats.data["images"] / "dev", images / "dev")
    png = sorted((images / "dev" / "3").iterdir())[0]
    closed = tmp_path / "closed"
    closed.mkdir()
    wd = tmp_path / "wd"
    (wd / "predictions").mkdir(parents=True)
    for path in (model, data / "dev.npz", png, closed, wd / "predictions"):
        path.chmod(0)
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o555)
    cases = [
        ["gaps", str(example_model), str(example_data), "--workdir", str(readonly / "wd")],
        ["gaps", str(model), str(example_data)],
        ["gaps", str(example_model), str(data), "--workdir", str(tmp_path / "w1")],
        ["gaps", str(example_model), str(images), "--workdir", str(tmp_path / "w2")],
        ["data", str(closed)],
        ["errors", "--workdir", str(wd)],
    ]
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", _RUN_AS_USER, json.dumps(cases)],
                              capture_output=True, text=True, timeout=120)
    finally:
        for path in (model, data / "dev.npz", png, closed, wd / "predictions"):
            path.chmod(0o755)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)

    def line(path: Path, what: str) -> str:
        return f"Error: {path}: expected a readable {what}, got permission denied; check its permissions (ls -l {path})"

    assert got == [
        [2, f"Error: --workdir {readonly / 'wd'}: expected a folder you may write in, got permission denied on {readonly}; pass another path"],
        [1, line(model, "model file")],
        [1, line(data / "dev.npz", "split file")],
        [1, line(png, "image")],
        [1, line(closed, "folder")],
        [1, line(wd / "predictions", "folder")],
    ]
