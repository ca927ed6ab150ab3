"""`diagnose report` (being built)."""

from __future__ import annotations

from diagnose.errors import UsageError

NAME = "report"
HELP = "Not built yet."


def command() -> None:
    raise UsageError("diagnose report is not built yet")
