"""Reader quirks seen in real training logs, on the files fixtures/make_logs.py writes from a real run.

Each file's expected numbers come from the run that wrote it (fixtures/logs/truth.json), not from the
reader.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnose.core.hints import find_hints
from diagnose.io.logs import parse_log, parse_runs

LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
TRUTH: dict[str, Any] = json.loads((LOGS / "truth.json").read_text(encoding="utf-8"))


def _check_series(log: Any, want: dict[str, Any], name: str) -> None:
    for series, expect in want.items():
        got = log.series.get(series)
        assert got is not None, f"{name}: {series} not read; read {sorted(log.series)}, others {sorted(log.others)[:10]}"
        np.testing.assert_allclose(got.value, expect["value"], rtol=2e-3, err_msg=f"{name}: {series} values")
        for axis in ("epoch", "step"):
            if axis in expect:
                np.testing.assert_allclose(getattr(got, axis), expect[axis], rtol=1e-6, atol=1e-6,
                                           err_msg=f"{name}: {series} {axis}")


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_quirk_file_reads_as_the_run_wrote_it(name: str) -> None:
    truth = TRUTH[name]
    runs = parse_runs(LOGS / name)
    if "runs" in truth:
        assert len(runs) == len(truth["runs"]), [r.label for r in runs]
        for run, want in zip(runs, truth["runs"], strict=True):
            _check_series(run, want, f"{name} {run.label}")
        if "run_names" in truth:
            assert [r.run_name for r in runs] == truth["run_names"]
        return
    assert len(runs) == truth.get("runs_count", 1), [r.label for r in runs]
    log = runs[0]
    _check_series(log, truth["series"], name)
    if "only" in truth:
        assert sorted(log.series) == truth["only"]
    for other in truth.get("others_nan", []):
        assert other in log.others, sorted(log.others)
        assert np.isnan(log.others[other].value).all()
    for bad in truth.get("no_others_like", []):
        assert not [n for n in log.others if bad in n], sorted(log.others)
    hints = {h.id for h in find_hints(log.series)}
    for finding in truth.get("not", []):
        assert finding not in hints, hints


def test_two_runs_are_said_and_parse_log_names_the_one_it_gives() -> None:
    runs = parse_runs(LOGS / "appended_runs.csv")
    assert [r.label for r in runs] == ["appended_runs.csv run 1", "appended_runs.csv run 2"]
    assert any("holds 2 runs" in n for n in runs[0].notes)
    last = parse_log(LOGS / "appended_runs.csv")
    assert last.run == 2 and any("only run 2 of 2" in n for n in last.notes)


def test_a_resume_keeps_the_later_values_and_says_so() -> None:
    log = parse_log(LOGS / "resumed.log")
    assert any("logged twice" in n for n in log.notes), log.notes


def test_tensorboard_tags_keep_their_own_step_axes() -> None:
    (log,) = parse_runs(LOGS / "tb_own_axes")
    assert len(log.series["train_loss"]) == 192 and len(log.series["val_loss"]) == 8


def test_perplexity_is_read_only_when_no_loss_is_logged(tmp_path: Path) -> None:
    path = tmp_path / "ppl.log"
    path.write_text("".join(f"| epoch {e} | valid ppl {np.exp(3 - 0.1 * e):.3f}\n" for e in range(1, 6)))
    log = parse_log(path)
    np.testing.assert_allclose(log.series["val_loss"].value, [3 - 0.1 * e for e in range(1, 6)], atol=1e-3)
    assert any("ln(ppl)" in m.note for m in log.mapping)


def test_test_loss_stands_in_only_without_validation(tmp_path: Path) -> None:
    only_test = tmp_path / "t.log"
    only_test.write_text("".join(f"epoch {e} loss {1 / e:.3f} test_loss {1.2 / e:.3f}\n" for e in range(1, 6)))
    log = parse_log(only_test)
    assert log.series["val_loss"].source == "test_loss"
    assert any("test set" in n for n in log.notes)
    both = tmp_path / "b.log"
    both.write_text("".join(f"epoch {e} loss {1 / e:.3f} val_loss {1.1 / e:.3f} test_loss {1.2 / e:.3f}\n" for e in range(1, 6)))
    assert parse_log(both).series["val_loss"].source == "val_loss"


# A number as a log writes it: 12, 0.1234, 1.5e-05, .5
_NUMBER = re.compile(r"([-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)")


def _last_place(token: str) -> float:
    """One unit in the last digit `token` is written with: 0.1234 -> 1e-4, 1.5e-05 -> 1e-6."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def _same_text_and_numbers(got: str, want: str, rel: str) -> None:
    """The words, separators and integers of `got` equal those of `want`; a number with a decimal point
    or an exponent may differ by one unit in the last digit written (a rounding that the last bits of a
    BLAS sum tipped the other way), no more."""
    a, b = _NUMBER.split(got), _NUMBER.split(want)
    assert len(a) == len(b), f"{rel} differs in layout: run python fixtures/make_logs.py"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if i % 2 == 0 or not any(c in x + y for c in ".eE"):
            assert x == y, f"{rel} differs at {x!r} != {y!r}: run python fixtures/make_logs.py"
        else:
            unit = max(_last_place(x), _last_place(y))
            assert abs(float(x) - float(y)) <= unit * (1 + 1e-9), f"{rel}: {x} != {y} beyond {unit:g}"


def _decode(data: bytes) -> str:
    return data[2:].decode("utf-16-le") if data.startswith(b"\xff\xfe") else data.decode("utf-8")


def test_fixtures_are_what_the_script_writes(tmp_path: Path) -> None:
    from diagnose.io.tensorboard import read_scalars
    from fixtures import make_logs

    make_logs.main(tmp_path)
    want = sorted(p.relative_to(LOGS) for p in LOGS.rglob("*") if p.is_file())
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()) == want
    for rel in want:
        got, bundled = tmp_path / rel, LOGS / rel
        if "tfevents" in rel.name:
            # binary float32 records: the decoded scalars, tags and steps exactly, values to float32 precision
            (tags_a, steps_a, walls_a, values_a, _), (tags_b, steps_b, walls_b, values_b, _) = read_scalars(got), read_scalars(bundled)
            assert (tags_a, steps_a, walls_a) == (tags_b, steps_b, walls_b), f"{rel} differs: run python fixtures/make_logs.py"
            np.testing.assert_allclose(values_a, values_b, rtol=1e-6, err_msg=str(rel))
        else:
            _same_text_and_numbers(_decode(got.read_bytes()), _decode(bundled.read_bytes()), str(rel))


def test_the_comparison_of_fixtures_allows_a_last_digit_and_nothing_else() -> None:
    _same_text_and_numbers("loss 0.1235, step 12\n", "loss 0.1234, step 12\n", "a")
    _same_text_and_numbers("v 1.5e-05", "v 1.6e-05", "a")
    for got in ("loss 0.1236, step 12\n", "loss 0.1235, step 13\n", "Loss 0.1235, step 12\n", "loss 0.1235 step 12\n"):
        with pytest.raises(AssertionError):
            _same_text_and_numbers(got, "loss 0.1234, step 12\n", "a")


def test_train_and_val_pairs_reusing_one_key(tmp_path: Path) -> None:
    path = tmp_path / "pairs.log"
    path.write_text("".join(
        f"Epoch {e}/5 | Train Loss {2 / e:.3f} Acc {0.5 + e / 20:.3f} | Val Loss {2.2 / e:.3f} Acc {0.45 + e / 20:.3f}\n"
        for e in range(1, 6)
    ))
    log = parse_log(path)
    np.testing.assert_allclose(log.series["train_acc"].value, [0.5 + e / 20 for e in range(1, 6)], atol=1e-3)
    np.testing.assert_allclose(log.series["val_acc"].value, [0.45 + e / 20 for e in range(1, 6)], atol=1e-3)
    np.testing.assert_allclose(log.series["val_loss"].value, [2.2 / e for e in range(1, 6)], atol=1e-3)


_FRAGMENTS = [
    "Epoch", "epoch", "[3][8/24]", "3/50", "loss", "Loss:", "val_loss=", "'loss':", "{", "}", "(", ")", "[", "]",
    "nan", "NaN", "-inf", "1e9", "0.5", "12", "%", "|", ",", "\r", "\x1b[A", "\x1b[32m", "Train", "Val", "Test",
    "acc", "ppl", "batches", "avg loss,", "rate,", ":", "launch.py:", "\t", "4.2G", "=", "ValAcc",
    "\n      Epoch    GPU_mem   box_loss", "\n  all", "\n  Class     Images  Instances      Box(P", "640:", "12/24",
]


def test_reader_never_fails_other_than_cleanly(tmp_path: Path) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    from diagnose.exceptions import LogParseError

    line = st.lists(st.sampled_from(_FRAGMENTS), max_size=12).map(" ".join)
    counter = iter(range(10**6))

    @hypothesis.settings(max_examples=80, deadline=None, derandomize=True)
    @hypothesis.given(st.lists(line, min_size=1, max_size=30), st.sampled_from(["\n", "\r\n", "\r\r\n"]))
    def check(lines: list[str], end: str) -> None:
        path = tmp_path / f"fuzz{next(counter)}.log"
        path.write_text(end.join(lines) + end, encoding="utf-8", newline="")
        try:
            runs = parse_runs(path)
        except LogParseError:
            return
        assert runs and all(r.runs == len(runs) for r in runs)

    check()


@pytest.mark.parametrize("line", [
    "[EarlyStopping] No improvement for 3/7 epochs",
    "  (fc): Linear(in_features=64, out_features=10, bias=True)",
    "[INFO] [launch.py:145:main] nnodes=1 launch.py: 12 (per GPU) 32 GPU) 7",
])
def test_prose_and_code_give_no_metric_names(line: str) -> None:
    from diagnose.io.textlog import parse_line

    keys = [k for k, _, _, _ in parse_line(line)]
    assert not [k for k in keys if k.lower() in ("for", "to") or "(" in k or ")" in k or k.endswith(".py")], keys


def test_counters_inside_an_epoch_are_positions_not_restarts() -> None:
    (log,) = parse_runs(LOGS / "paddleclas_iters.log")
    assert not any("logged twice" in n or "runs" in n for n in log.notes), log.notes
    # the evaluation lines count the iterations of the evaluation pass, which follows the epoch's training
    np.testing.assert_allclose(log.series["val_loss"].epoch, np.repeat(np.arange(1.0, 9.0), 3))
    assert log.series["lr"].source.startswith("lr(")
    from diagnose.io.textlog import parse_line

    # a validation metric after the position does not make it an evaluation pass's
    keys = [k for k, _, _, _ in parse_line("Epoch 3/10 - 200/400 steps - loss 0.5 - val_loss 0.6")]
    assert "batch_pos" in keys and "batch_total" in keys


def test_a_counter_with_its_total_that_goes_on_across_epochs_is_the_step(tmp_path: Path) -> None:
    path = tmp_path / "global.log"
    path.write_text("".join(f"Epoch {1 + (s - 1) // 4}/3 step {s * 10}/120 loss {2 / s:.4f}\n" for s in range(1, 13)))
    (log,) = parse_runs(path)
    np.testing.assert_allclose(log.series["train_loss"].step, [s * 10 for s in range(1, 13)])
    np.testing.assert_allclose(log.series["train_loss"].epoch, [1 + (s - 1) // 4 for s in range(1, 13)])


def test_a_printed_configuration_gives_no_points(tmp_path: Path) -> None:
    from diagnose.io.textlog import parse_line

    assert parse_line("optimizer = dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0001)") == []
    log = parse_log(LOGS / "mmcv_config_dump.log")
    assert any("before the first epoch" in n for n in log.notes), log.notes


def test_a_name_with_a_validation_twin_is_the_training_series(tmp_path: Path) -> None:
    path = tmp_path / "twins.csv"
    path.write_text("epoch,loss,model_acc,val_loss,val_model_acc,head_f1,val_f1\n"
                    + "".join(f"{e},{1 / e:.4f},{0.5 + e / 20:.4f},{1.1 / e:.4f},{0.4 + e / 20:.4f},0.5,0.5\n" for e in range(1, 5)))
    log = parse_log(path)
    assert log.series["train_acc"].source == "model_acc" and log.series["val_acc"].source == "val_model_acc"
    assert "head_f1" in log.others  # a twin names a series only when its stem is loss or accuracy
    parts = tmp_path / "parts.csv"  # loss parts, each with its twin: no part is the training loss
    parts.write_text("epoch,box_loss,cls_loss,val_box_loss,val_cls_loss,model_acc,test_acc\n"
                     + "".join(f"{e},{0.5 / e:.4f},{0.4 / e:.4f},{0.6 / e:.4f},{0.5 / e:.4f},0.{e},0.{e}\n" for e in range(1, 5)))
    log = parse_log(parts)
    assert "train_loss" not in log.series and log.series["train_acc"].source == "model_acc"


def test_nested_results_with_plain_lists_read_by_path(tmp_path: Path) -> None:
    doc = {split: {"combined": {"loss": [2.0 * k / e for e in range(1, 5)]},
                   "label": {"loss": [2.0 * k / e for e in range(1, 5)], "accuracy": [0.5 + e / (10 * k) for e in range(1, 5)]}}
           for split, k in (("training", 1.0), ("validation", 1.2), ("test", 1.3))}
    path = tmp_path / "training_statistics.json"
    path.write_text(json.dumps(doc), encoding="utf-8")  # one line
    log = parse_log(path)
    np.testing.assert_allclose(log.series["val_loss"].value, [2.4 / e for e in range(1, 5)])
    np.testing.assert_allclose(log.series["train_acc"].epoch, [1, 2, 3, 4])
    assert "test_loss" in log.others and "train_label_loss" in log.others
    lines = tmp_path / "nested_records.jsonl"  # records with a `train` section of numbers: JSON lines still
    lines.write_text("".join(json.dumps({"train": {"loss": 1 / e}, "epoch": e}) + "\n" for e in range(1, 5)))
    log = parse_log(lines)
    assert log.format == "jsonl" and len(log.series["train_loss"]) == 4


def test_an_mlflow_run_folder_or_its_metrics_folder_is_one_run() -> None:
    exp = LOGS / "mlflow" / "mlruns" / "1"
    second = exp / "9a8b7c6d5e4f4a3b2c1d0e9f8a7b6c5d"
    for path in (second, second / "metrics"):
        (log,) = parse_runs(path)
        assert log.format == "mlflow" and log.runs == 1 and log.series["train_loss"].source == "train/loss"
        assert "lr" not in log.series  # params/ are settings, not metrics
    # every point logged at the same step (logged without one): numbered in the order logged
    (log,) = parse_runs(second, fmt="mlflow")
    assert len(log.series["val_loss"]) == 4


def test_mlflow_metrics_logged_without_steps_keep_their_order(tmp_path: Path) -> None:
    run = tmp_path / "0" / "abc"
    (run / "metrics").mkdir(parents=True)
    (run / "meta.yaml").write_text("run_id: abc\n")
    values = [2.0, 1.5, 1.2, 1.1]
    (run / "metrics" / "val_loss").write_text("".join(f"{1000 + i} {v} 0\n" for i, v in enumerate(values)))
    (log,) = parse_runs(run)
    np.testing.assert_allclose(log.series["val_loss"].value, values)
    assert any("without steps" in n for n in log.notes)
    from diagnose.exceptions import LogParseError

    with pytest.raises(LogParseError, match="expected an MLflow run folder"):
        parse_runs(tmp_path, fmt="mlflow")


def test_lines_longer_than_the_bound_are_found_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diagnose.io import logs

    monkeypatch.setattr(logs, "_MAX_LINE", 50)
    monkeypatch.setattr(logs, "_BLOCK", 64)
    rng = np.random.default_rng(0)
    for trial in range(40):
        lengths = rng.choice([0, 3, 49, 50, 51, 120, 200], size=rng.integers(1, 12))
        data = b"\n".join(b"x" * int(n) for n in lengths) + (b"\n" if trial % 2 else b"")
        path = tmp_path / f"t{trial}.log"
        path.write_bytes(data)
        want, start = [], 0
        for n in lengths.tolist():  # a plain loop over the lines
            if n > 50:
                want.append((start, min(start + n, len(data))))
            start += n + 1
        assert logs._long_line_spans(path) == want, lengths


def test_a_line_longer_than_the_bound_is_skipped_and_said(tmp_path: Path) -> None:
    epochs = "".join(f"epoch {e} loss {1 / e:.4f} val_loss {1.2 / e:.4f}\n" for e in range(1, 6))
    path = tmp_path / "huge_line.log"
    path.write_bytes(epochs.encode() + b"loss 0.1 " * 400_000 + b"\n" + epochs.replace("epoch ", "epoch 1").encode())
    (log,) = parse_runs(path)
    assert len(log.series["train_loss"]) == 10
    assert any("1 line(s) longer than 1 MiB were skipped" in n for n in log.notes), log.notes
    bar = tmp_path / "bar.log"  # a progress bar rewritten with \r for 3 MB, then its last state
    states = b"".join(f"\r{i % 100:3d}%| step {i} loss {2 - i / 1e5:.4f}".encode() for i in range(100_000))
    bar.write_bytes(epochs.encode() + states + b"\r" + b"epoch 6 loss 0.1500 val_loss 0.1800\n")
    (log,) = parse_runs(bar)
    np.testing.assert_allclose(log.series["val_loss"].value, [1.2 / e for e in range(1, 6)] + [0.18], atol=1e-4)
    assert any("read at their last state" in n for n in log.notes), log.notes
