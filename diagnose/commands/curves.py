"""`diagnose curves` (being built)."""

from __future__ import annotations

from diagnose.errors import UsageError

NAME = "curves"
HELP = "Not built yet."


def command() -> None:
    raise UsageError("diagnose curves is not built yet")
