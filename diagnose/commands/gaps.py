"""`diagnose gaps` (being built)."""

from __future__ import annotations

from diagnose.errors import UsageError

NAME = "gaps"
HELP = "Not built yet."


def command() -> None:
    raise UsageError("diagnose gaps is not built yet")
