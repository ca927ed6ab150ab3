"""Results -> rich tables, JSON and Markdown. Each function takes the Console it writes to.

Shared pieces live here; each command's renderers live in `render/<command>.py`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def stdout_console() -> Console:
    """The Console results go to. Wide enough that tables do not wrap when stdout is a file or pipe."""
    from rich.console import Console

    class _ResultConsole(Console):
        def on_broken_pipe(self) -> None:
            # rich's default raises SystemExit(1), which the CLI would take for the user's code calling
            # sys.exit. A reader that left (`| head`) is no failure: the CLI ends quietly with 0.
            self.quiet = True
            raise BrokenPipeError

    return _ResultConsole(soft_wrap=False, width=None if sys.stdout.isatty() else 120, highlight=False)


def _clean(obj: Any) -> Any:
    """NaN and inf are not JSON: write them as null (strict parsers reject the bare words)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _clean(obj.item())
    return obj


def to_json_text(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2, ensure_ascii=False, allow_nan=False)


def print_json(obj: Any) -> None:
    """Write a JSON document to stdout, plain (no colour codes), newline-terminated."""
    sys.stdout.write(to_json_text(obj) + "\n")
    sys.stdout.flush()


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; `|` inside cells is escaped."""

    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def pct(value: float | None, digits: int = 1) -> str:
    """0.123 -> '12.3%'; None -> ''."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value * 100:.{digits}f}%"


def pts(value: float | None, digits: int = 1) -> str:
    """A difference of two rates in percentage points: 0.021 -> '2.1 pts'."""
    if value is None:
        return ""
    return f"{value * 100:.{digits}f} pts"
