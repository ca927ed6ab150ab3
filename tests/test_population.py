"""A slice of the run population (bench/population.py), really trained here on families the thresholds
were not calibrated on: each kind of problem must be found in most of the runs made with it, and the
healthy runs must get no warning. The bounds were measured over the slice's runs with room to spare."""

from __future__ import annotations

import pytest

from bench import population as P
from diagnose.core.hints import find_hints

# (condition, family, runs, at least this many detected)
SLICE = [
    ("nan_start", "iris", 3, 3),
    ("shuffled", "images", 3, 2),
    ("noisy_val", "sequences", 3, 2),
    ("overfit", "breast_cancer", 3, 3),
    ("healthy", "breast_cancer", 4, 4),
]


@pytest.fixture(scope="session")
def outcomes() -> dict[str, list[tuple[list[str], object]]]:
    """condition -> [(warning ids, the overfitting finding's epoch or None) per run, its true onset]."""
    assert not set(CALIBRATION := P.CALIBRATION) & {f for _, f, _, _ in SLICE}, CALIBRATION
    out: dict[str, list[tuple[list[str], object]]] = {}
    specs = P.specs(5)
    for condition, family, runs, _ in SLICE:
        picked = [s for s in specs if s.condition == condition and s.family == family][:runs]
        for spec in picked:
            run = P.train(spec)
            hints = find_hints(P.to_series(run))
            over = next((h for h in hints if h.id == "overfitting"), None)
            found = over.at.get("epoch") if over is not None else None
            out.setdefault(condition, []).append(([h.id for h in hints if h.severity == "warn"], (found, run.onset)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("condition", "family", "runs", "least"), SLICE, ids=[c for c, *_ in SLICE])
def test_each_kind_is_found_on_runs_made_with_it(outcomes: dict, condition: str, family: str, runs: int,
                                                 least: int) -> None:
    got = outcomes[condition]
    assert len(got) == runs
    expect = P.CONDITIONS[condition]
    if expect:
        hit = sum(any(w in expect for w in warns) for warns, _ in got)
    else:
        hit = sum(not warns for warns, _ in got)
    assert hit >= least, f"{condition} on {family}: {hit} of {runs} ({[w for w, _ in got]})"


@pytest.mark.slow
def test_overfitting_onset_is_the_validation_minimum(outcomes: dict) -> None:
    onsets = [o for _, o in outcomes["overfit"]]
    assert all(found is not None and abs(found - true) <= 1 for found, true in onsets), onsets
