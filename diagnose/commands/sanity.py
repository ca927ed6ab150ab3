"""`diagnose sanity` (being built)."""

from __future__ import annotations

from diagnose.errors import UsageError

NAME = "sanity"
HELP = "Not built yet."


def command() -> None:
    raise UsageError("diagnose sanity is not built yet")
