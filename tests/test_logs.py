"""Training-log parsing: every format on the runs fixtures/make_runs.py trained, and edge cases by hand."""

from __future__ import annotations

import csv
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from diagnose.exceptions import LogParseError
from diagnose.io import tensorboard as tb
from diagnose.io.logs import canonical_name, detect_format, parse_log, parse_runs
from diagnose.io.textlog import clean_text, parse_line, parse_text

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


def _keras_reference() -> dict[str, np.ndarray]:
    """The healthy run's per-epoch numbers, read with the csv module (independent of the parser)."""
    with open(RUNS / "healthy.keras.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


HEALTHY_FILES = {
    "healthy.keras.csv": ("csv", 1e-9),
    "healthy.metrics.csv": ("csv", 1e-9),
    "healthy.mmdet.json": ("jsonl", 1e-9),
    "healthy.trainer_state.json": ("json", 1e-9),
    "healthy_tb": ("tensorboard", 1e-6),  # float32 in the event file
    "healthy_tf2": ("tensorboard", 1e-6),
    "healthy.log": ("text", 5e-5),  # printed with 4 decimals
    "healthy.keras.txt": ("text", 5e-5),
}


@pytest.mark.parametrize("name", sorted(HEALTHY_FILES))
def test_every_format_gives_the_same_validation_curve(name: str) -> None:
    fmt, tol = HEALTHY_FILES[name]
    ref = _keras_reference()
    log = parse_log(RUNS / name)
    assert log.format == fmt
    np.testing.assert_allclose(log.series["val_loss"].value, ref["val_loss"], atol=tol)
    np.testing.assert_allclose(log.series["val_acc"].value, ref["val_accuracy"], atol=tol)


def test_keras_csv_columns_are_mapped() -> None:
    log = parse_log(RUNS / "healthy.keras.csv")
    assert {s.source for s in log.series.values()} == {"loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"}
    assert list(log.series["train_loss"].epoch) == list(range(30))
    assert np.isnan(log.series["train_loss"].step).all()


def test_lightning_sparse_rows() -> None:
    log = parse_log(RUNS / "healthy.metrics.csv")
    with open(RUNS / "healthy.metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    step_rows = [r for r in rows if r["train_loss_step"]]
    train = log.series["train_loss"]
    assert train.source == "train_loss_step"
    assert len(train) == len(step_rows)
    np.testing.assert_array_equal(train.step, [float(r["step"]) for r in step_rows])
    np.testing.assert_array_equal(train.value, [float(r["train_loss_step"]) for r in step_rows])
    assert log.series["lr"].source == "lr-SGD"
    assert "train_loss_epoch" in log.others
    assert len(log.series["val_loss"]) == 30


def test_mmdet_mode_tagged_records_and_per_epoch_iter() -> None:
    log = parse_log(RUNS / "healthy.mmdet.json")
    lines = [json.loads(x) for x in (RUNS / "healthy.mmdet.json").read_text().splitlines()]
    train = [r for r in lines if r.get("mode") == "train"]
    val = [r for r in lines if r.get("mode") == "val"]
    assert len(log.series["train_loss"]) == len(train)
    np.testing.assert_allclose(log.series["val_loss"].value, [r["loss"] for r in val])
    # accuracy_top-1 is logged in percent
    np.testing.assert_allclose(log.series["val_acc"].value, [r["accuracy_top-1"] / 100 for r in val])
    # `iter` restarts each epoch: steps are made cumulative, so they only grow
    assert np.all(np.diff(log.series["train_loss"].step) > 0)
    per_epoch = max(r["iter"] for r in val)
    assert log.series["val_loss"].step[-1] == per_epoch * 30
    assert any("restarts every epoch" in n for n in log.notes)


def test_trainer_state_drops_the_closing_summary() -> None:
    doc = json.loads((RUNS / "overfitting.trainer_state.json").read_text())
    with_loss = [r for r in doc["log_history"] if "loss" in r]
    log = parse_log(RUNS / "overfitting.trainer_state.json")
    assert len(log.series["train_loss"]) == len(with_loss)
    assert log.series["val_loss"].source == "eval_loss"
    assert log.series["val_acc"].source == "eval_accuracy"
    assert "train_loss" not in log.others  # the run average is not a curve
    assert "grad_norm" in log.others


def test_detectron2_nan_is_kept() -> None:
    lines = [json.loads(x) for x in (RUNS / "lr_diverged.metrics.json").read_text().splitlines()]
    log = parse_log(RUNS / "lr_diverged.metrics.json")
    loss = log.series["train_loss"]
    assert len(loss) == len(lines)
    expected_nan = sum(1 for r in lines if isinstance(r["total_loss"], float) and math.isnan(r["total_loss"]))
    assert expected_nan > 0
    assert int(np.isnan(loss.value).sum()) == expected_nan


def test_text_log_percent_and_epoch_lines() -> None:
    log = parse_log(RUNS / "healthy.log")
    assert log.series["val_acc"].source == "Val Acc"
    assert log.series["train_loss"].source == "loss"  # per-step lines win over the epoch summary
    assert "Train Loss" in log.others
    assert log.series["val_acc"].epoch[0] == 1
    assert log.series["train_loss"].step[0] == 5


def test_keras_console_with_carriage_returns() -> None:
    log = parse_log(RUNS / "lr_too_low.keras.txt")
    assert len(log.series["train_loss"]) == 30  # the \r-overwritten running averages are not extra points
    assert list(log.series["val_loss"].epoch) == list(range(1, 31))
    assert "Total params" not in log.others  # a banner number, logged once


def test_tensorboard_simple_and_tensor_values() -> None:
    log = parse_log(RUNS / "healthy_tb")
    assert len(log.series["train_loss"]) == 1140
    assert log.series["train_loss"].epoch[0] == 0 and log.series["train_loss"].epoch[-1] == 29
    tf2 = parse_log(RUNS / "healthy_tf2")
    assert tf2.series["train_loss"].source == "epoch_loss"
    assert tf2.series["val_loss"].source == "val_epoch_loss"


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::pandas.errors.Pandas4Warning")
def test_tensorboard_matches_tbparse() -> None:
    tbparse = pytest.importorskip("tbparse")
    df = tbparse.SummaryReader(str(RUNS / "noisy_tb")).scalars
    ours = parse_log(RUNS / "noisy_tb")
    ref = df[df["tag"] == "train_loss"].sort_values("step")
    np.testing.assert_array_equal(ours.series["train_loss"].step, ref["step"].to_numpy(dtype=float))
    np.testing.assert_allclose(ours.series["train_loss"].value, ref["value"].to_numpy(dtype=float), rtol=1e-6)


def test_tensorboard_truncated_last_record(tmp_path: Path) -> None:
    src = next((RUNS / "noisy_tb").glob("*tfevents*")).read_bytes()
    (tmp_path / "events.out.tfevents.1.x").write_bytes(src[:-7])
    log = parse_log(tmp_path)
    full = parse_log(RUNS / "noisy_tb")
    assert len(log.series["train_loss"]) + len(log.series["val_loss"]) < len(full.series["train_loss"]) + len(full.series["val_loss"])
    assert any("incomplete" in n for n in log.notes)


def test_event_writer_round_trip(tmp_path: Path) -> None:
    data = tb.file_version_record(1.0) + b"".join(
        tb.frame_record(tb.encode_event(s, 1.0 + s, [("a", s * 0.5), ("b", -s)], tensor=s % 2 == 0)) for s in range(10)
    )
    path = tmp_path / "events.out.tfevents.2.y"
    path.write_bytes(data)
    tags, steps, _, values, truncated = tb.read_scalars(path)
    assert not truncated
    assert tags == ["a", "b"] * 10
    assert steps == [s for s in range(10) for _ in (0, 1)]
    assert values == [v for s in range(10) for v in (s * 0.5, float(-s))]


def test_crc32c_known_value() -> None:
    # RFC 3720 B.4: crc32c of 32 zero bytes is 0x8A9136AA
    assert tb.crc32c(bytes(32)) == 0x8A9136AA


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("loss", "train_loss"), ("training_loss", "train_loss"), ("loss_step", "train_loss"),
        ("train/loss", "train_loss"), ("total_loss", "train_loss"), ("valid_loss", "val_loss"),
        ("eval_loss", "val_loss"), ("val/loss", "val_loss"), ("loss/val", "val_loss"), ("accuracy", "train_acc"),
        ("top1", "train_acc"), ("val_accuracy", "val_acc"), ("eval_accuracy", "val_acc"),
        ("metrics/accuracy_top1", "val_acc"), ("learning_rate", "lr"), ("lr-Adam", "lr"), ("lr/pg0", "lr"),
        ("train_lr", "lr"), ("Val Acc", "val_acc"), ("test_loss", None), ("val_f1", None), ("epoch_loss", "train_loss"),
    ],
)
def test_canonical_names(name: str, expected: str | None) -> None:
    assert canonical_name(name)[0] == expected


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p


def test_plain_text_variants(tmp_path: Path) -> None:
    text = (
        "Loading data...\n"
        "==== banner ====\n"
        "[INFO] 2024-01-01 12:00:00 epoch=1 loss=2.5 val_loss=2.4 lr=0.1\n"
        "Epoch: 2 | loss: 1.5 | val_loss: 1.6 | lr: 0.1\n"
        "epoch 3 loss 1.0 val_loss 1.2 lr 0.01\n"
        "epoch 4 loss nan val_loss inf lr 0.01\n"
    )
    log = parse_log(_write(tmp_path, "run.log", text))
    assert log.format == "text"
    np.testing.assert_array_equal(log.series["train_loss"].value[:3], [2.5, 1.5, 1.0])
    assert np.isnan(log.series["train_loss"].value[3])
    assert np.isinf(log.series["val_loss"].value[3])
    np.testing.assert_array_equal(log.series["val_loss"].epoch, [1, 2, 3, 4])


def test_backspace_and_crlf(tmp_path: Path) -> None:
    text = "Epoch 1/2\r\n 1/4 [==>...] - loss: 9.0\b\b\b\b\b\b\b\b\b\b\b\b\b\b\b\b\b\b\r4/4 [====] - loss: 0.5 - val_loss: 0.6\r\nEpoch 2/2\r\n4/4 [====] - loss: 0.4 - val_loss: 0.55\r\n"
    assert "\r" not in clean_text(text) and "\b" not in clean_text(text)
    log = parse_log(_write(tmp_path, "out.txt", text))
    np.testing.assert_array_equal(log.series["train_loss"].value, [0.5, 0.4])
    np.testing.assert_array_equal(log.series["train_loss"].epoch, [1, 2])


def test_bulk_layout_path_equals_per_line_parse() -> None:
    rng = np.random.default_rng(0)
    lines = []
    for i in range(3000):
        if i % 97 == 0:
            lines.append(f"checkpoint saved at step {i} (val_loss: {rng.random():.4f})")
        lines.append(f"epoch {i // 100} step {i} loss {rng.random():.5f} acc {rng.random():.4f} lr {1e-3 * (1 + i % 3)}")
    recs = parse_text("\n".join(lines))
    assert recs.bulk_lines >= 3000
    expected: dict[str, list[float]] = {}
    for line in lines:
        for key, value, _, _ in parse_line(line):
            expected.setdefault(key, []).append(value)
    got = recs.series()
    assert set(got) == set(expected)
    for key, values in expected.items():
        np.testing.assert_allclose(got[key][1], values)


def test_restarted_runs_are_kept_as_runs(tmp_path: Path) -> None:
    text = "".join(f"Epoch [{e}/3], Train Loss: {3 - e * 0.1:.2f}, Val Acc: {50 + e}%\n" for e in (1, 2, 3, 1, 2))
    path = _write(tmp_path, "train.log", text)
    runs = parse_runs(path)
    assert [(r.run, r.runs) for r in runs] == [(1, 2), (2, 2)]
    np.testing.assert_array_equal(runs[0].series["train_loss"].epoch, [1, 2, 3])
    np.testing.assert_array_equal(runs[1].series["train_loss"].epoch, [1, 2])
    np.testing.assert_allclose(runs[1].series["val_acc"].value, [0.51, 0.52])
    assert any("holds 2 runs" in n for n in runs[0].notes)
    assert runs[1].label == "train.log run 2"
    last = parse_log(path)  # one run asked for: the last, and it says so
    np.testing.assert_array_equal(last.series["train_loss"].epoch, [1, 2])
    assert any("only run 2 of 2" in n for n in last.notes)


def test_ultralytics_spaces_and_parts(tmp_path: Path) -> None:
    text = (
        "                  epoch,      train/box_loss,      train/cls_loss,        val/box_loss,        val/cls_loss,  metrics/accuracy_top1,         lr/pg0\n"
        "                      1,              1.5,              2.0,              1.4,              2.2,              0.5,          0.01\n"
        "                      2,              1.2,              1.5,              1.3,              2.0,              0.6,          0.01\n"
    )
    log = parse_log(_write(tmp_path, "results.csv", text))
    np.testing.assert_allclose(log.series["train_loss"].value, [3.5, 2.7])
    np.testing.assert_allclose(log.series["val_loss"].value, [3.6, 3.3])
    np.testing.assert_allclose(log.series["val_acc"].value, [0.5, 0.6])
    assert log.series["lr"].source == "lr/pg0"


def test_wandb_and_mlflow_exports(tmp_path: Path) -> None:
    wandb = 'Step,"run-7 - train/loss","run-7 - train/loss__MIN","run-7 - train/loss__MAX"\n1,2.0,2.0,2.0\n2,1.5,1.5,1.5\n'
    log = parse_log(_write(tmp_path, "wandb.csv", wandb))
    np.testing.assert_array_equal(log.series["train_loss"].value, [2.0, 1.5])
    np.testing.assert_array_equal(log.series["train_loss"].step, [1, 2])
    mlflow = "key,value,step,timestamp\nloss,2.0,0,1\nloss,1.0,1,2\nval_loss,2.5,1,2\n"
    log = parse_log(_write(tmp_path, "mlflow.csv", mlflow))
    np.testing.assert_array_equal(log.series["train_loss"].value, [2.0, 1.0])
    np.testing.assert_array_equal(log.series["val_loss"].step, [1])


def test_keras_history_dict_and_tsv(tmp_path: Path) -> None:
    log = parse_log(_write(tmp_path, "history.json", json.dumps({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [50.0, 80.0]})))
    np.testing.assert_array_equal(log.series["val_loss"].epoch, [1, 2])
    np.testing.assert_allclose(log.series["train_acc"].value, [0.5, 0.8])
    log = parse_log(_write(tmp_path, "m.tsv", "step\tloss\n1\t0.9\n2\t0.8\n"))
    assert log.format == "tsv"
    np.testing.assert_array_equal(log.series["train_loss"].value, [0.9, 0.8])


def test_truncated_last_lines(tmp_path: Path) -> None:
    log = parse_log(_write(tmp_path, "m.jsonl", '{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.9}\n{"step": 3, "lo'))
    np.testing.assert_array_equal(log.series["train_loss"].value, [1.0, 0.9])
    assert any("incomplete" in n for n in log.notes)
    log = parse_log(_write(tmp_path, "m.csv", "step,loss,val_loss\n1,1.0,1.2\n2,0.9,1.1\n3,0.8"))
    np.testing.assert_array_equal(log.series["train_loss"].value, [1.0, 0.9])


def test_undecodable_bytes_are_replaced(tmp_path: Path) -> None:
    log = parse_log(_write(tmp_path, "u.log", b"epoch 1 loss 1.0 \xff\xfe\nepoch 2 loss 0.5\n"))
    np.testing.assert_array_equal(log.series["train_loss"].value, [1.0, 0.5])
    assert any("not UTF-8" in n for n in log.notes)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "expected a training log, got an empty file; point at the log the run wrote"),
        (b"\x00\x01\x02\x03binary\x00" * 10, "expected a text log or a TensorBoard event file, got binary data; pass the log file the run wrote (or --format to force one)"),
        ("hello world\nnothing here\n", "expected metrics such as loss or accuracy, got 2 lines and no `name value` pairs; pass --format if the format was guessed wrong"),
    ],
)
def test_bad_input(tmp_path: Path, content: str | bytes, message: str) -> None:
    p = _write(tmp_path, "bad.log", content)
    with pytest.raises(LogParseError) as err:
        parse_log(p)
    assert err.value.message == f"{p}: {message}"


def test_detection() -> None:
    assert detect_format(Path("x"), b"epoch,loss\n0,1.0\n") == "csv"
    assert detect_format(Path("x"), b'{"a": 1}\n{"a": 2}\n') == "jsonl"
    assert detect_format(Path("x"), b'{\n  "log_history": []\n}') == "json"
    assert detect_format(Path("x"), b"2024-01-01 10:00:00,123 - INFO - Epoch [1/5], Loss: 1.0, Acc: 50%\n" * 3) == "text"


def test_undecodable_bytes_in_csv_and_jsonl(tmp_path: Path) -> None:
    log = parse_log(_write(tmp_path, "m.csv", b"step,loss,run\n1,1.0,a\xff\n2,0.5,b\n"))
    np.testing.assert_array_equal(log.series["train_loss"].value, [1.0, 0.5])
    assert "some bytes are not UTF-8; they were replaced" in log.notes
    log = parse_log(_write(tmp_path, "m.jsonl", b'{"step": 1, "loss": 1.0, "tag": "a\xff"}\n{"step": 2, "loss": 0.5, "tag": "b"}\n'))
    np.testing.assert_array_equal(log.series["train_loss"].value, [1.0, 0.5])
    assert "some bytes are not UTF-8; they were replaced" in log.notes


@pytest.mark.parametrize("name", ["healthy.mmdet.json", "healthy_adam.mmdet.json", "lr_diverged.metrics.json"])
def test_jsonl_same_without_polars(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """polars is an optional speed-up; pyarrow's reader gives the same series."""
    with_polars = parse_log(RUNS / name)
    monkeypatch.setitem(sys.modules, "polars", None)  # `import polars` now raises ImportError
    without = parse_log(RUNS / name)
    assert with_polars.series.keys() == without.series.keys()
    for key, s in with_polars.series.items():
        np.testing.assert_array_equal(s.value, without.series[key].value)
        np.testing.assert_array_equal(s.step, without.series[key].step)
        np.testing.assert_array_equal(s.epoch, without.series[key].epoch)


def test_text_truncated_last_line(tmp_path: Path) -> None:
    lines = "".join(f"epoch {e} step {e * 10} loss {1 / e:.4f} acc 0.5\n" for e in range(1, 6))
    log = parse_log(_write(tmp_path, "t.log", lines + "epoch 6 step 60 loss 0."))
    np.testing.assert_array_equal(log.series["train_loss"].epoch, [1, 2, 3, 4, 5])
    assert "the last line is incomplete (a run still writing?); it was left out" in log.notes


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tensor_scalars_serialized_by_protobuf(tmp_path: Path) -> None:
    """Events built with TensorBoard's own protobuf classes: float_val, tensor_content, simple_value."""
    event_pb2 = pytest.importorskip("tensorboard.compat.proto.event_pb2")
    from tensorboard.compat.proto import types_pb2

    ev = event_pb2.Event(step=5, wall_time=1.0)
    a = ev.summary.value.add(tag="a")
    a.tensor.dtype = types_pb2.DT_FLOAT
    a.tensor.float_val.append(0.25)
    b = ev.summary.value.add(tag="b")
    b.tensor.dtype = types_pb2.DT_DOUBLE
    b.tensor.tensor_content = struct.pack("<d", 1.5)
    c = ev.summary.value.add(tag="c")
    c.simple_value = 2.0
    hist = ev.summary.value.add(tag="not_a_scalar")
    hist.tensor.dtype = types_pb2.DT_FLOAT
    hist.tensor.float_val.extend([1.0, 2.0, 3.0])
    path = tmp_path / "events.out.tfevents.3.z"
    path.write_bytes(tb.file_version_record(0.0) + tb.frame_record(ev.SerializeToString()))
    tags, steps, _, values, _ = tb.read_scalars(path)
    assert (tags, steps, values) == (["a", "b", "c"], [5, 5, 5], [0.25, 1.5, 2.0])
    # and our encoder's bytes parse with the protobuf classes
    ours = event_pb2.Event.FromString(tb.encode_event(7, 2.0, [("x", 0.5)], tensor=True))
    assert ours.step == 7 and ours.summary.value[0].tag == "x"
    assert struct.unpack("<f", ours.summary.value[0].tensor.tensor_content)[0] == 0.5


def test_tensor_float_and_double_values_packed_or_not(tmp_path: Path) -> None:
    """TensorProto float_val (field 5) and double_val (field 6), each packed and one value at a time."""

    def scalar(tag: str, proto: bytes) -> bytes:
        return tb._field_bytes(1, tb._field_bytes(1, tag.encode()) + tb._field_bytes(8, proto))

    packed_f = b"\x08\x01" + tb._field_bytes(5, struct.pack("<f", 0.25))
    single_f = b"\x08\x01" + b"\x2d" + struct.pack("<f", 0.5)
    packed_d = b"\x08\x02" + tb._field_bytes(6, struct.pack("<d", 1.5))
    single_d = b"\x08\x02" + b"\x31" + struct.pack("<d", 2.5)
    two_d = b"\x08\x02" + tb._field_bytes(6, struct.pack("<2d", 1.0, 2.0))  # not a scalar
    summary = b"".join(scalar(t, pr) for t, pr in (("pf", packed_f), ("sf", single_f), ("pd", packed_d),
                                                    ("sd", single_d), ("two", two_d)))
    event = b"\x09" + struct.pack("<d", 1.0) + b"\x10\x03" + tb._field_bytes(5, summary)
    path = tmp_path / "events.out.tfevents.4.z"
    path.write_bytes(tb.file_version_record(0.0) + tb.frame_record(event))
    tags, steps, _, values, truncated = tb.read_scalars(path)
    assert (tags, steps, values, truncated) == (["pf", "sf", "pd", "sd"], [3] * 4, [0.25, 0.5, 1.5, 2.5], False)


def test_event_file_with_a_bad_first_checksum(tmp_path: Path) -> None:
    good = tb.file_version_record(0.0)
    for i, data in enumerate((good[:11], good[:8] + b"\x00\x00\x00\x00" + good[12:])):
        path = tmp_path / f"events.out.tfevents.{i}.bad"
        path.write_bytes(data)
        with pytest.raises(tb.EventFileError, match="first length checksum"):
            tb.read_scalars(path)
        with pytest.raises(LogParseError, match="expected a TensorBoard event file, got not a TFRecord file"):
            parse_log(path)


def test_utf16_console_capture(tmp_path: Path) -> None:
    text = "Epoch 1/2\r\n10/10 - loss: 0.9 - val_loss: 1.0\r\nEpoch 2/2\r\n10/10 - loss: 0.5 - val_loss: 0.7\r\n"
    log = parse_log(_write(tmp_path, "ps.txt", text.encode("utf-16")))
    np.testing.assert_array_equal(log.series["val_loss"].value, [1.0, 0.7])
    assert "the file is UTF-16; it was read as such" in log.notes
