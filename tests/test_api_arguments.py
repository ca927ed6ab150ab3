"""The Python API's argument door: a wrong type or value for any public function ends in the
documented ArgumentError naming the argument, before any work, never a TypeError from inside."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diagnose
from diagnose.arguments import RULES
from diagnose.exceptions import ArgumentError

PUBLIC = ["gaps", "gaps_from_predictions", "sample_errors", "tally", "check_data", "sanity", "lr_find", "curves"]


@pytest.mark.parametrize(("call", "argument"), [
    (lambda d: diagnose.gaps(d / "model.pt", d / "data", batch_size=0.5), "batch_size"),
    (lambda d: diagnose.gaps(d / "model.pt", d / "data", workdir=123), "workdir"),
    (lambda d: diagnose.gaps(d / "model.pt", d / "data", image_size=(200_000, 200_000)), "image_size"),
    (lambda d: diagnose.gaps(d / "model.pt", d / "data", std=[0.0]), "std"),
    (lambda d: diagnose.gaps(d / "model.pt", d / "data", mean=[0.5, float("nan")]), "mean"),
    (lambda d: diagnose.gaps(d / "model.pt", d / "data", max_items=0), "max_items"),
    (lambda d: diagnose.gaps(d / "model.pt", d / "data", show_progress="yes"), "show_progress"),
    (lambda d: diagnose.gaps(d / "model.pt", d / "data", bogus=1), "gaps"),
    (lambda d: diagnose.tally(123), "sheet"),
    (lambda d: diagnose.tally(d / "sheet.csv", split=3), "split"),
    (lambda d: diagnose.sample_errors(5), "source"),
    (lambda d: diagnose.sample_errors(d, n=2.5), "n"),
    (lambda d: diagnose.check_data(d / "data", error_rate=2), "error_rate"),
    (lambda d: diagnose.sanity(None, d / "data", lr=-1.0), "lr"),
    (lambda d: diagnose.lr_find(None, d / "data", repeats=0), "repeats"),
    (lambda d: diagnose.curves(d / "run.csv", classes="ten"), "classes"),
    (lambda d: diagnose.curves(d / "run.csv", smooth=1.5), "smooth"),
    (lambda d: diagnose.gaps_from_predictions(None), "predictions"),
])
def test_a_wrong_argument_is_named(call, argument: str, example_dir: Path) -> None:
    with pytest.raises(ArgumentError) as err:
        call(example_dir)
    assert err.value.argument == argument
    assert str(err.value).startswith(f"{argument}") and "expected" in str(err.value) and "; " in str(err.value)


def test_numpy_values_are_numbers(example_dir: Path, tmp_path: Path) -> None:
    report = diagnose.gaps(example_dir / "model.pt", example_dir / "data", batch_size=np.int64(64),
                           max_items=np.int32(50), seed=np.uint8(1), workdir=tmp_path)
    assert report.splits["dev"].n == 50


def test_every_rule_names_a_parameter_of_the_api() -> None:
    names = {p for f in PUBLIC for p in inspect.signature(getattr(diagnose, f)).parameters}
    assert set(RULES) - names <= {"trust_settings", "force_verdict"}, set(RULES) - names


BAD = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
                st.text(max_size=5), st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(name=st.sampled_from(sorted(RULES)), value=BAD)
def test_each_rule_accepts_or_refuses_in_words(name: str, value: object) -> None:
    """Any value, of any type: a rule answers None or (expected, example), never raises."""
    bad = RULES[name](value)
    assert bad is None or (isinstance(bad[0], str) and bad[0] and isinstance(bad[1], str) and bad[1])


def test_tally_reads_the_error_rate_from_a_workdir_as_the_command_does(tmp_path: Path, cli) -> None:
    import json

    sheet = tmp_path / "sheet.csv"
    sheet.write_text("n,split,id,label,pred,blurry,mislabeled,note\n"
                     + "".join(f"{i},dev,a{i},1,2,{'x' if i % 2 else ''},{'x' if i % 3 == 0 else ''},\n" for i in range(30)))
    workdir = tmp_path / "wd"
    workdir.mkdir()
    (workdir / "manifest.json").write_text(json.dumps({"metric": "error", "splits": {"dev": {"error": 0.2, "errors": 50, "n": 250}}}))
    result = diagnose.tally(sheet, workdir=workdir)
    assert result.error == 0.2 and result.context is not None
    assert result.context.split == "dev" and result.context.error_source == str(workdir / "manifest.json")
    assert result.context.split_errors == 50
    doc = json.loads(cli("tally", sheet, "--workdir", workdir, "--json").stdout)
    assert doc["error"] == 0.2 and [c["count"] for c in doc["categories"]] == [c.count for c in result.categories]
    assert diagnose.tally(sheet).error is None  # no workdir given: no error rate, no guess
