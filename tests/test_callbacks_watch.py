"""`Watch` on real training loops: findings live, the event log, stopping, and the replay through
`diagnose curves --json` giving the same findings as the live watch."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from diagnose.callbacks import TrainingStopped, Watch
from diagnose.cli import app
from diagnose.exceptions import ArgumentError
from diagnose.io.logs import parse_log


def _data(seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(10, 3, generator=g)
    x = torch.randn(512, 10, generator=g)
    y = (x @ w).argmax(1)
    xv = torch.randn(128, 10, generator=g)
    return x, y, xv, (xv @ w).argmax(1)


# SGD with momentum at this learning rate overflows the MLP's activations within a few steps: the
# loss goes 1.1, 1e5, 1e17, then NaN.
DIVERGING_LR = 1000.0
HEALTHY_LR = 0.05


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3)
    )


def train(watch: Watch, *, lr: float, seed: int = 0, epochs: int = 8) -> int:
    """A real MLP trained with SGD on a linear 3-class problem; returns the steps taken."""
    x, y, xv, yv = _data(seed)
    torch.manual_seed(seed)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    step = 0
    for epoch in range(epochs):
        for i in range(0, len(x), 32):
            loss = torch.nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            watch.log(step=step, epoch=epoch, train_loss=loss, lr=opt.param_groups[0]["lr"])
            if watch.should_stop:
                return step
        with torch.no_grad():
            out = model(xv)
            watch.log(val_loss=torch.nn.functional.cross_entropy(out, yv), val_acc=(out.argmax(1) == yv).float().mean())
    return step


def curves_findings(log: Path) -> list[dict]:
    """What `diagnose curves --json` reports on the log."""
    res = CliRunner().invoke(app, ["curves", str(log), "--json", "--no-plot"])
    assert res.exit_code == 0, res.output
    runs = json.loads(res.stdout)["runs"]
    assert len(runs) == 1
    return runs[0]["findings"]


def as_json(watch: Watch) -> list[dict]:
    return [{"id": h.id, "severity": h.severity, "evidence": h.evidence, "advice": h.advice, "at": dict(h.at)} for h in watch.findings]


def events(log: Path) -> list[dict]:
    return [r for r in map(json.loads, log.read_text().splitlines()) if "event" in r]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_run_warns_nothing_and_replays(tmp_path: Path, seed: int) -> None:
    said = io.StringIO()
    with Watch(tmp_path / "run.jsonl", stop_on=("diverged",), stream=said) as watch:
        steps = train(watch, lr=HEALTHY_LR, seed=seed)
    assert steps == 128 and not watch.should_stop
    assert [h.severity for h in watch.findings if h.severity == "warn"] == []
    assert said.getvalue() == ""
    assert as_json(watch) == curves_findings(watch.path)
    # judged at the 8 evaluations and every 50 records, not at each of the 128 steps
    assert watch.judgements <= 8 + 136 // 50 + 1


def test_series_read_back_equal_the_live_series(tmp_path: Path) -> None:
    with Watch(tmp_path / "run.jsonl") as watch:
        train(watch, lr=HEALTHY_LR, epochs=3)
    log = parse_log(watch.path)
    live = watch.series()
    assert sorted(log.series) == sorted(live) == ["lr", "train_loss", "val_acc", "val_loss"]
    assert log.others == {}
    for name, s in live.items():
        r = log.series[name]
        assert r.value.tolist() == s.value.tolist()
        assert r.step.tolist() == s.step.tolist()
        assert r.epoch.tolist() == s.epoch.tolist()


def test_nan_stops_at_once_with_the_reason(tmp_path: Path) -> None:
    said = io.StringIO()
    watch = Watch(tmp_path / "run.jsonl", stop_on=("diverged",), stream=said)
    steps = train(watch, lr=DIVERGING_LR)
    watch.close()
    assert watch.should_stop
    # judged at each non-finite loss: the run stops one step after its first (the confirmation)
    losses = [r for r in map(json.loads, watch.path.read_text().splitlines()) if "train_loss" in r]
    first_bad = next(r["step"] for r in losses if r["train_loss"] != r["train_loss"] or abs(r["train_loss"]) == float("inf"))
    assert steps == losses[-1]["step"] == first_bad + 1 < 10
    assert watch.stop_reason.startswith("diverged: train_loss is ")
    lines = said.getvalue().splitlines()
    assert lines[0].startswith("diagnose: diverged: train_loss is ") and "lower the learning rate" in lines[0]
    assert lines[1].startswith("diagnose: stopping the run (diverged requested): diverged:")
    assert as_json(watch) == curves_findings(watch.path)
    kinds = [(e["event"], e.get("state"), e.get("id")) for e in events(watch.path)]
    assert kinds[0] == ("watch", None, None)
    assert ("finding", "start", "diverged") in kinds and ("stop", None, None) in kinds
    assert kinds[-1] == ("finding", "final", "diverged")


def test_raise_on_stop(tmp_path: Path) -> None:
    watch = Watch(tmp_path / "run.jsonl", stop_on=("diverged",), raise_on_stop=True, stream=io.StringIO())
    with pytest.raises(TrainingStopped, match=r"^diverged: train_loss is ") as info:
        train(watch, lr=DIVERGING_LR)
    assert info.value.finding.id == "diverged"
    watch.close()


def test_without_stop_on_a_diverged_run_goes_on_and_says_so_once(tmp_path: Path) -> None:
    said = io.StringIO()
    with Watch(tmp_path / "run.jsonl", stream=said) as watch:
        steps = train(watch, lr=DIVERGING_LR, epochs=3)
    assert steps == 48 and not watch.should_stop
    assert [h.id for h in watch.findings] == ["diverged"]
    assert said.getvalue().count("diagnose: diverged:") == 1
    assert as_json(watch) == curves_findings(watch.path)


def test_a_finding_starts_when_confirmed_and_ends_with_its_evidence(tmp_path: Path) -> None:
    """A loss that turns NaN for three records and then recovers (a skipped step is not a divergence):
    `diverged` holds at the second NaN (confirmed), and ends at the first finite loss after them."""
    said = io.StringIO()
    with Watch(tmp_path / "run.jsonl", judge_every=1, budget=None, stream=said) as watch:
        for k in range(1, 31):
            watch.log(step=k, train_loss=float("nan") if 11 <= k <= 13 else 1.0 / k)
            if k == 11:
                assert "diverged" not in watch.active and said.getvalue() == ""
            if k == 12:
                assert "diverged" in watch.active
    found = [(e["state"], e["id"], e["step"], e["evidence"]) for e in events(watch.path) if e["event"] == "finding"]
    diverged = [f for f in found if f[1] == "diverged"]
    assert diverged == [
        ("start", "diverged", 12, "train_loss is NaN from step 11 on (2 of 12 points)"),
        ("end", "diverged", 14, "train_loss is NaN from step 11 on (3 of 13 points)"),
    ]
    assert said.getvalue().startswith("diagnose: diverged: train_loss is NaN from step 11 on (2 of 12 points); lower")
    finals = {f[1] for f in found if f[0] == "final"}
    assert finals == {h.id for h in watch.findings if h.id != "healthy"}
    assert "diverged" not in finals


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    mine = tmp_path / "run.jsonl"
    mine.write_text("my notes\n")
    (tmp_path / "run.1.jsonl").write_text("more notes\n")
    said = io.StringIO()
    with Watch(mine, stream=said) as watch:
        watch.log(step=1, train_loss=1.0)
    assert mine.read_text() == "my notes\n" and (tmp_path / "run.1.jsonl").read_text() == "more notes\n"
    assert watch.path == tmp_path / "run.2.jsonl"
    assert said.getvalue() == f"diagnose: {mine} exists and is kept; the log is written to {watch.path}\n"
    assert json.loads(watch.path.read_text().splitlines()[1]) == {"step": 1, "train_loss": 1.0}


def test_each_record_is_on_disk_when_log_returns(tmp_path: Path) -> None:
    watch = Watch(tmp_path / "run.jsonl")
    for k in range(1, 4):
        watch.log(step=k, train_loss=1.0 / k)
        assert len((tmp_path / "run.jsonl").read_text().splitlines()) == 1 + k
    watch.close()


def test_position_fills_in(tmp_path: Path) -> None:
    with Watch(tmp_path / "run.jsonl") as watch:
        watch.log(train_loss=2.0)
        watch.log(train_loss=1.5)
        watch.log(step=10, epoch=1, train_loss=1.0)
        watch.log(val_loss=1.2)
    lines = [json.loads(s) for s in (tmp_path / "run.jsonl").read_text().splitlines()[1:5]]
    assert lines == [
        {"step": 1, "train_loss": 2.0}, {"step": 2, "train_loss": 1.5},
        {"step": 10, "epoch": 1, "train_loss": 1.0}, {"step": 10, "epoch": 1, "val_loss": 1.2},
    ]


def test_accuracy_in_percent_is_judged_as_the_reader_reads_it(tmp_path: Path) -> None:
    with Watch(tmp_path / "run.jsonl") as watch:
        for k in range(1, 13):
            watch.log(step=k * 10, epoch=k, train_loss=1.0 / k, train_acc=20.0 + k, val_loss=1.2 / k, val_acc=18.0 + k)
    assert watch.series()["val_acc"].value.max() == pytest.approx(0.30)
    assert as_json(watch) == curves_findings(watch.path)


def test_unknown_stop_on_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match=r"^stop_on: expected finding ids such as .*got 'diverge'"):
        Watch(tmp_path / "run.jsonl", stop_on=("diverge",))
    assert not (tmp_path / "run.jsonl").exists()


def test_importing_the_callbacks_imports_no_framework() -> None:
    probe = "import diagnose, diagnose.callbacks, sys; print(' '.join(sorted(sys.modules)))"
    mods = set(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split())
    assert not mods & {"torch", "lightning", "pytorch_lightning", "transformers", "keras", "pandas", "matplotlib"}


@pytest.mark.parametrize(
    ("adapter", "module", "install"),
    [("KerasCallback", "keras", "diagnose[keras]"), ("HFCallback", "transformers", "diagnose[hf]"),
     ("LightningCallback", "lightning", "diagnose[lightning]")],
)
def test_a_missing_framework_says_what_to_install(adapter: str, module: str, install: str) -> None:
    blocked = [module] + (["pytorch_lightning"] if module == "lightning" else [])
    probe = (
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
        + f"import diagnose.callbacks as c\ntry:\n    c.{adapter}\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.startswith(f"{adapter} needs ") and f"pip install '{install}'" in out and out.count("\n") == 1


@pytest.mark.parametrize(
    ("logged", "canonical"),
    [
        # Keras
        ({"loss": 1, "accuracy": 2, "val_loss": 3, "val_accuracy": 4, "learning_rate": 5},
         {"train_loss": 1, "train_acc": 2, "val_loss": 3, "val_acc": 4, "lr": 5}),
        ({"loss": 1, "sparse_categorical_accuracy": 2, "val_sparse_categorical_accuracy": 4, "lr": 5},
         {"train_loss": 1, "train_acc": 2, "val_acc": 4, "lr": 5}),
        # Hugging Face: a training record, an evaluation record
        ({"loss": 1, "grad_norm": 9, "learning_rate": 5, "epoch": 0.5}, {"train_loss": 1, "lr": 5}),
        ({"eval_loss": 3, "eval_accuracy": 4, "eval_runtime": 9, "epoch": 1}, {"val_loss": 3, "val_acc": 4}),
        # Lightning: a `_step` value is preferred to the plain and the `_epoch` one
        ({"train_loss": 1, "train_loss_step": 2, "train_loss_epoch": 3, "val/acc": 4, "lr-SGD": 5},
         {"train_loss": 2, "val_acc": 4, "lr": 5}),
        ({"train_acc_epoch": 2, "valid_loss": 3, "test_loss": 7, "f1": 8}, {"train_acc": 2, "val_loss": 3}),
    ],
)
def test_framework_names_map_to_the_canonical_ones(logged: dict, canonical: dict) -> None:
    from diagnose.callbacks.names import to_canonical

    assert to_canonical(logged) == canonical


def test_judging_keeps_to_its_budget_but_not_on_a_nan(tmp_path: Path) -> None:
    with Watch(tmp_path / "run.jsonl", budget=1e-9, stream=io.StringIO()) as watch:
        for k in range(1, 41):
            watch.log(step=k, train_loss=1.0 / k, val_loss=1.0 / k)  # an evaluation at every record
        assert watch.judgements == 1  # the first; each later one would pass the budget
        watch.log(step=41, train_loss=float("nan"))
        assert watch.judgements == 2
    unlimited = Watch(tmp_path / "free.jsonl", budget=None)
    for k in range(1, 41):
        unlimited.log(step=k, train_loss=1.0 / k, val_loss=1.0 / k)
    assert unlimited.judgements == 40
    unlimited.close()
