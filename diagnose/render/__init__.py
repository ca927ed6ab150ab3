"""Results -> rich tables, JSON and Markdown. Each function takes the Console it writes to.

Shared pieces live here; each command's renderers live in `render/<command>.py`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


# --------------------------------------------------------------------------- text out: one door
# Text that came from the input (class names, file names, log headers, sheet categories) may hold
# control characters: ESC sequences retitle the terminal window or recolour it, CR and backspace
# overwrite what was printed, C1 controls (0x9b is CSI) act like ESC on some terminals, and the
# bidirectional overrides reorder what is shown ("Trojan Source", CVE-2021-42574). They are shown
# as escapes (\x1b, \u202e) instead, wherever text reaches a terminal or a Markdown document.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_BREAK = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str, *, one_line: bool = False) -> str:
    """`text` with every control character shown as an escape (ESC -> '\\x1b'); newlines and tabs
    are kept unless one_line. Idempotent: what it returns holds no control character."""
    return (_CONTROL_OR_BREAK if one_line else _CONTROL).sub(_escape, text)


def figure_text(text: object) -> str:
    """A name for a figure label: one line, control characters escaped, and `$` escaped so
    matplotlib does not read it as mathtext (an unbalanced `$` would fail at draw time)."""
    return safe_text(str(text), one_line=True).replace("$", "\\$")


_CODE_SPAN = re.compile(r"^`[^`\n]*`$")


def markdown_escape(text: object) -> str:
    """Text for a Markdown document or table cell, shown as written: control characters escaped,
    line breaks as spaces, `\\`, `|` and the characters that would start HTML (`<`, `>`, `&`) backslashed,
    backticks too (unless the whole text is one code span of ours), and brackets when they would
    make a link or an image."""
    out = safe_text(str(text).replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " "))
    out = out.replace("\\", "\\\\").replace("|", "\\|").replace("<", "\\<").replace(">", "\\>").replace("&", "\\&")
    if "`" in out and not _CODE_SPAN.match(out):
        out = out.replace("`", "\\`")
    if "](" in out or "][" in out:
        out = out.replace("[", "\\[").replace("]", "\\]")
    return out


def stdout_console() -> Console:
    """The Console results go to. Wide enough that tables do not wrap when stdout is a file or pipe.
    Every piece of text it renders passes `safe_text` (styles and cursor moves of its own are kept)."""
    from rich.console import Console
    from rich.segment import Segment

    class _ResultConsole(Console):
        def on_broken_pipe(self) -> None:
            # rich's default raises SystemExit(1), which the CLI would take for the user's code calling
            # sys.exit. A reader that left (`| head`) is no failure: the CLI ends quietly with 0.
            self.quiet = True
            raise BrokenPipeError

        def render(self, renderable: Any, options: Any = None) -> Any:
            # The one place every table cell, line and Text object passes on its way out: print()
            # calls render, and tables render their cells through it.
            for segment in super().render(renderable, options):
                if segment.control or not _CONTROL.search(segment.text):
                    yield segment
                else:
                    yield Segment(safe_text(segment.text), segment.style, segment.control)

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
    """A GitHub-flavoured Markdown table; every cell passes `markdown_escape`."""

    cell = markdown_escape
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
