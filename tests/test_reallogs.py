"""The real-log corpus: every log read as its practitioner's reading says.

Runs only when DIAGNOSE_REALLOGS names a folder holding the logs and their `readings.json` (CI sets it
when the corpus sits beside the clone); skipped otherwise. See bench/corpus.py for what "right" means.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.corpus import READINGS, halves, score, summary

CORPUS = os.environ.get("DIAGNOSE_REALLOGS", "")


def test_halves_are_fixed_and_alternate() -> None:
    split = halves(["c", "a", "d", "b"])
    assert split == {"a": "calibration", "b": "held-out", "c": "calibration", "d": "held-out"}


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS or not (Path(CORPUS) / READINGS).is_file(),
                    reason="DIAGNOSE_REALLOGS does not name a folder with readings.json")
def test_every_real_log_reads_as_its_reading() -> None:
    verdicts = score(Path(CORPUS))
    assert verdicts, f"{CORPUS}/{READINGS} lists no logs"
    misses = [f"{v.name} ({v.half}): {v.why()}" for v in verdicts if not v.right]
    assert not misses, f"{summary(verdicts)}; wrong on {len(misses)}:\n" + "\n".join(misses)
