"""`diagnose tally` (being built)."""

from __future__ import annotations

from diagnose.errors import UsageError

NAME = "tally"
HELP = "Not built yet."


def command() -> None:
    raise UsageError("diagnose tally is not built yet")
