"""Curve findings: what a training log says about the run. Pure: arrays in, frozen dataclasses out.

Each series is first measured (`measure`): its noise, trend, best point, jumps, finite share; each
check then judges those measurements against thresholds stated in noise units or relative terms
(`thresholds`), never in absolute loss values; the chance level ln C is the one scale the task sets.
"""

from diagnose.core.findings.advice import ADVICE
from diagnose.core.findings.base import Hint, RunResult, Series, ema, x_of
from diagnose.core.findings.judge import find_hints

__all__ = ["ADVICE", "Hint", "RunResult", "Series", "ema", "find_hints", "x_of"]
