"""Regenerate the option tables in docs/commands/*.md from the commands themselves.

Each table sits between `<!-- options: diagnose NAME -->` and `<!-- /options -->`; only that block is
rewritten, so the prose around it is kept. The rows are read from the click command objects typer
builds (names, defaults, help), the same source as `diagnose NAME --help`. A command that does not
exist yet leaves its block as it is.

    python docs/gen_options.py           # rewrite the stale blocks
    python docs/gen_options.py --check   # exit 1 and name the stale files, write nothing
"""

from __future__ import annotations

import enum
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
BLOCK = re.compile(r"(<!-- options: diagnose (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /options -->)", re.DOTALL)


def _commands() -> dict[str, Any]:
    import typer.main

    from diagnose.cli import app

    group = typer.main.get_command(app)
    return dict(getattr(group, "commands", {}))


def _cell(text: str) -> str:
    """One Markdown table cell: one line; pipes escaped (also inside code), no raw HTML."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _metavar(param: Any) -> str:
    """PATH, N, X, TEXT, or the choices `a|b|c`, from the annotation typer read the option from."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    while typing.get_origin(annotation) in (list, tuple, typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(str(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "|".join(str(member.value) for member in annotation)
    choices = getattr(getattr(param, "type", None), "choices", None)
    if choices:
        return "|".join(str(getattr(c, "value", c)) for c in choices)
    names = {Path: "PATH", int: "N", float: "X", str: "TEXT"}
    return names.get(annotation, "VALUE") if isinstance(annotation, type) else "VALUE"


def _default(param: Any) -> str:
    value = param.default
    if callable(value) or value is None or value == () or value == []:
        return ""
    if getattr(param, "is_flag", False) and isinstance(value, bool):
        if param.secondary_opts:
            return f"`{(param.opts if value else param.secondary_opts)[0]}`"
        return "on" if value else "off"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return f"`{value}`"


def _range(param: Any) -> str:
    lo, hi = getattr(param, "min", None), getattr(param, "max", None)
    if lo is None and hi is None:
        return ""
    if lo is not None and hi is not None:
        return f" Range: {lo} to {hi}."
    return f" Range: at least {lo}." if lo is not None else f" Range: at most {hi}."


def _rows(command: Any) -> Iterator[tuple[str, str, str]]:
    for param in command.params:
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        help_text = getattr(param, "help", None) or ""
        if param.param_type_name == "argument":
            name = (param.metavar or param.name.upper()) + ("..." if param.nargs == -1 else "")
            yield f"`{_cell(name)}`", "", _cell(help_text + ("" if param.required else " Optional."))
            continue
        longs = sorted(param.opts, key=lambda o: (not o.startswith("--"), o))
        name = ", ".join(longs)
        if param.secondary_opts:
            name += " / " + ", ".join(param.secondary_opts)
        if not getattr(param, "is_flag", False):
            name += f" {_metavar(param)}"
        if getattr(param, "multiple", False):
            help_text += " Repeatable." if "repeat" not in help_text.lower() else ""
        yield f"`{_cell(name)}`", _cell(_default(param)), _cell(help_text + _range(param))


def render(command: Any) -> str:
    """The Markdown option table of one click command."""
    lines = ["| option | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| {name} | {default} | {meaning} |" for name, default, meaning in _rows(command)]
    return "\n".join(lines) + "\n"


def update(text: str, commands: dict[str, Any]) -> str:
    """`text` with every block of an existing command regenerated."""

    def replace(match: re.Match[str]) -> str:
        command = commands.get(match["name"])
        if command is None:
            return match[0]
        return match[1] + render(command) + match[4]

    return BLOCK.sub(replace, text)


def stale_files(docs: Path = DOCS) -> list[Path]:
    """The docs pages whose generated blocks differ from the commands."""
    commands = _commands()
    return [p for p in sorted(docs.rglob("*.md")) if update(p.read_text(encoding="utf-8"), commands) != p.read_text(encoding="utf-8")]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = stale_files()
        for path in stale:
            print(f"{path}: option table is stale; run python docs/gen_options.py", file=sys.stderr)
        return 1 if stale else 0
    commands = _commands()
    for path in sorted(DOCS.rglob("*.md")):
        old = path.read_text(encoding="utf-8")
        new = update(old, commands)
        if new != old:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path.relative_to(DOCS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
