"""`diagnose errors` (being built)."""

from __future__ import annotations

from diagnose.errors import UsageError

NAME = "errors"
HELP = "Not built yet."


def command() -> None:
    raise UsageError("diagnose errors is not built yet")
