"""`diagnose data` (being built)."""

from __future__ import annotations

from diagnose.errors import UsageError

NAME = "data"
HELP = "Not built yet."


def command() -> None:
    raise UsageError("diagnose data is not built yet")
