"""Curve findings, under their first name: `diagnose.core.findings` holds them; this module re-exports
the names other modules import."""

from diagnose.core.findings import ADVICE, Hint, RunResult, Series, ema, find_hints, x_of
from diagnose.core.findings.base import _rolling_median

__all__ = ["ADVICE", "Hint", "RunResult", "Series", "_rolling_median", "ema", "find_hints", "x_of"]
