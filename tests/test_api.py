"""The Python API as a user calls it: in-memory data, the docs/api.md example, a light import."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from typer.testing import CliRunner

import diagnose
from diagnose.cli import app
from diagnose.exceptions import ArgumentError
from diagnose.io.manifest import Manifest, read_manifest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example"
SPLITS = ("train", "train_dev", "dev", "test")


def test_import_diagnose_and_touching_gaps_does_not_import_torch() -> None:
    code = "import diagnose, sys; diagnose.gaps; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        diagnose.nope  # noqa: B018


def test_docs_api_example_runs() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    scope: dict[str, object] = {"__name__": "__main__"}
    exec(compile("\n".join(blocks), "docs/api.md", "exec"), scope)  # noqa: S102
    rep = scope["rep"]
    # The example's numbers, checked against a plain loop over the same tensors.
    model = scope["model"]
    with torch.no_grad():
        wrong = int((model(scope["x_dev"]).argmax(1) != scope["y_dev"]).sum())
    assert rep.splits["dev"].errors == wrong  # type: ignore[attr-defined]


def test_dataloader_in_memory_gives_the_counts_of_the_cli_on_disk(tmp_path: Path) -> None:
    """The same items as a DataLoader, a Dataset and (x, y) arrays give exactly the CLI's counts on the files."""
    runner = CliRunner()
    r = runner.invoke(app, ["gaps", str(EXAMPLE / "model.pt"), str(EXAMPLE / "data"), "--json",
                            "--workdir", str(tmp_path / "wd")])
    assert r.exit_code == 0, r.output
    cli = json.loads(r.stdout)
    data = {n: torch.load(EXAMPLE / "data" / f"{n}.pt") for n in SPLITS}
    inputs = {
        "train": DataLoader(TensorDataset(data["train"]["x"], data["train"]["y"]), batch_size=97),
        "train_dev": TensorDataset(data["train_dev"]["x"], data["train_dev"]["y"]),
        "dev": (data["dev"]["x"].numpy(), data["dev"]["y"].numpy()),
        "test": (data["test"]["x"], data["test"]["y"]),
    }
    rep = diagnose.gaps(EXAMPLE / "model.pt", inputs, device="cpu")
    for name in SPLITS:
        assert rep.splits[name].n == cli["splits"][name]["n"]
        assert rep.splits[name].errors == cli["splits"][name]["errors"]
    assert rep.verdict.problem == cli["verdict"]["problem"]
    # The human error came from the CLI's diagnose.toml; in memory there is none, so only that gap differs.
    assert rep.gaps["variance"].ci == pytest.approx(tuple(cli["gaps"]["variance"]["ci"]))


def test_module_in_memory_and_max_items(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    net.train()
    x = torch.randn(300, 4)
    y = torch.randint(0, 3, (300,))
    rep = diagnose.gaps(net, {"train": (x, y), "val": DataLoader(TensorDataset(x, y), batch_size=64)},
                        max_items=100, workdir=tmp_path / "wd")
    assert net.training  # the caller's mode is restored
    assert rep.splits["train"].n == 100 and rep.splits["dev"].n == 100
    # The seeded sample is the one subsample() draws for that level: count it with a plain loop.
    from diagnose.evaluate import subsample

    idx = subsample(300, 100, seed=0, salt=0)
    with torch.no_grad():
        assert rep.splits["train"].errors == int((net(x[idx]).argmax(1) != y[idx]).sum())
    manifest = read_manifest(tmp_path / "wd")
    assert isinstance(manifest, Manifest)
    assert manifest.splits["train"].n == 100 and manifest.splits["train"].n_total == 300
    assert manifest.model.format == "module" and manifest.data.path is None
    assert Manifest.from_json(json.loads(json.dumps(manifest.to_json()))) == manifest
    sample = diagnose.sample_errors(rep, split="dev", n=5)
    assert len(sample) == min(5, rep.splits["dev"].errors or 0)


def test_library_errors_name_arguments_and_the_cli_names_flags(tmp_path: Path) -> None:
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    with pytest.raises(ArgumentError, match=r"^max_items: expected None or an integer >= 1, got 0"):
        diagnose.gaps(torch.nn.Linear(4, 3), {"dev": (x, y)}, max_items=0)
    with pytest.raises(ArgumentError, match=r"^splits: expected split names train, train_dev, dev or test, got 'holdout'"):
        diagnose.gaps(torch.nn.Linear(4, 3), {"holdout": (x, y)})
    with pytest.raises(ArgumentError, match=r"^precision fp16: expected a GPU device"):
        diagnose.gaps(torch.nn.Linear(4, 3), {"dev": (x, y)}, device="cpu", precision="fp16")


def test_manifest_reads_wrong_types_as_absent() -> None:
    m = Manifest.from_json({"classes": "cat", "splits": {"dev": {"n": "12", "error": 0.1}}, "model": [], "seed": True})
    assert m.classes is None and m.splits["dev"].n is None and m.splits["dev"].error == 0.1
    assert m.model.path is None and m.seed is None
    assert Manifest.from_json(None) == Manifest.from_json({})


def test_per_class_contributions_add_up_to_the_gap() -> None:
    data = {n: torch.load(EXAMPLE / "data" / f"{n}.pt") for n in SPLITS}
    rep = diagnose.gaps(EXAMPLE / "model.pt", {n: (d["x"], d["y"]) for n, d in data.items()})
    rows = rep.per_class()
    total = sum(r.contribution["variance"] or 0.0 for r in rows)
    assert total == pytest.approx(rep.gaps["variance"].value)
    assert "<table>" in rep._repr_html_()
    assert np.isfinite(rep.splits["dev"].error)


def test_curves_from_a_dict_of_lists_and_a_path_read_the_same_run(tmp_path: Path) -> None:
    epochs = list(range(1, 21))
    train = [2.0 * 0.85**e for e in epochs]
    val = [2.0 * 0.85**e if e <= 8 else 2.0 * 0.85**8 + 0.05 * (e - 8) for e in epochs]
    cols = {"epoch": epochs, "train_loss": train, "val_loss": val}
    cur = diagnose.curves(cols)
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,train_loss,val_loss\n" + "".join(f"{e},{t},{v}\n" for e, t, v in zip(epochs, train, val, strict=True)))
    on_disk = diagnose.curves(csv)
    assert [h.id for h in cur.findings] == [h.id for h in on_disk.findings]
    assert "overfitting" in [h.id for h in cur.findings]
    fig = cur.figure()
    assert type(fig).__name__ == "Figure" and not list(tmp_path.glob("*.png"))
    with pytest.raises(ArgumentError, match=r"^logs: expected a log path"):
        diagnose.curves({"epoch": [1, 2], "loss": [1.0]})


def test_lr_find_and_sanity_in_memory_match_the_cli_on_disk(tmp_path: Path) -> None:
    """The commands are shells over diagnose.lr_find and diagnose.sanity: the same data in memory gives
    the same sweep (same seeds, same batches) and the same checks as the CLI reading it from disk."""
    arch = f"{EXAMPLE / 'arch.py'}:DigitsMLP"
    r = CliRunner().invoke(app, ["lr-find", str(EXAMPLE / "data"), "--arch", arch, "--steps", "30", "--repeats", "2",
                                 "--no-plot", "--json"])
    assert r.exit_code == 0, r.output
    cli = json.loads(r.stdout)
    blob = torch.load(EXAMPLE / "data" / "train.pt", weights_only=True)
    res = diagnose.lr_find(None, (blob["x"], blob["y"]), arch=arch, steps=30, repeats=2)
    assert res.suggested_lr == pytest.approx(cli["suggested_lr"], rel=1e-9)
    assert res.to_json()["curve"]["loss"] == pytest.approx(cli["curve"]["loss"], rel=1e-6)

    checks = diagnose.sanity(EXAMPLE / "model.pt", (blob["x"], blob["y"]), only=["init_loss", "activations"])
    r = CliRunner().invoke(app, ["sanity", str(EXAMPLE / "model.pt"), str(EXAMPLE / "data"), "--only",
                                 "init_loss,activations", "--json"])
    assert r.exit_code == 0, r.output
    assert [(c.id, c.status, c.evidence) for c in checks] == [
        (c["id"], c["status"], c["evidence"]) for c in json.loads(r.stdout)["checks"]]
    assert checks.model_format == "torchscript" and checks.split == "train"
    (tmp_path / "only_dev").mkdir()
    (tmp_path / "only_dev" / "dev.pt").write_bytes((EXAMPLE / "data" / "dev.pt").read_bytes())
    with pytest.raises(ArgumentError, match=r"^split test: expected a split the data has, got none called test; it has dev"):
        diagnose.sanity(EXAMPLE / "model.pt", tmp_path / "only_dev", split="test")
    with pytest.raises(ArgumentError, match=r"^split train: expected a split the data has"):
        diagnose.lr_find(None, tmp_path / "only_dev", arch=arch)


def test_sample_errors_writes_the_sheet_diagnose_errors_writes(tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    rep = diagnose.gaps(EXAMPLE / "model.pt", EXAMPLE / "data", workdir=wd, max_items=200)
    sample = diagnose.sample_errors(rep, split="dev", n=12, seed=3)
    assert {"suspect_mislabel", "label_issue_score"} <= set(sample.columns)
    assert (sample["suspect_mislabel"] == "yes").any()  # the blurred dev digits hold some
    sample.to_sheet(tmp_path / "api.csv")
    r = CliRunner().invoke(app, ["errors", "--workdir", str(wd), "--split", "dev", "--sample", "12", "--seed", "3",
                                 "--out", str(tmp_path / "cli.csv"), "--no-images"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "api.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()
