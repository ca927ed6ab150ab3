"""The command line: parse options, call the core, render, and turn failures into one `Error:` line.

Only typer, the standard library and `diagnose.exceptions` are imported here at module level; each
command module in `diagnose/commands/` imports torch, pandas or matplotlib inside its function, so
`diagnose --help`, `diagnose curves` and `diagnose tally` start without torch.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from diagnose import __version__
from diagnose.commands import cohorts, compare, curves, data, errors, gaps, lr_find, report, sanity, tally
from diagnose.exceptions import DiagnoseError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="diagnose",
    help="Tell what is holding a deep-learning model back, and what to do next.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": bool(os.environ.get("DIAGNOSE_DEBUG"))}


def debug_enabled() -> bool:
    return _state["debug"]


def _error_line(message: str) -> None:
    # Written raw, not through rich: rich would wrap a long line and read markup in file names.
    from diagnose.render import safe_text

    sys.stderr.write(f"Error: {safe_text(message, one_line=True)}\n")
    sys.stderr.flush()


# Optional packages a command may need, by import name: what to call them in the one-line error.
_EXTRAS = {"torch": "PyTorch", "safetensors": "safetensors"}


# Disk full, quota exceeded, read-only file system: the output could not be written.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
# What a path can be wrong with: a loop, a dangling link, a name too long, permission denied.
_PATH_ERRNOS = frozenset({errno.ELOOP, errno.ENOENT, errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.ENOTDIR})


def _quiet_closed_stdout() -> None:
    """The reader of stdout went away (`diagnose ... | head -1`): stop quietly, as `head` expects.
    stdout is pointed at /dev/null so the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _without_raw_warnings(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `fn` with Python warnings recorded instead of printed: library noise (numpy overflow in a
    fit, deprecations) never reaches the terminal around the result or the `Error:` line. A warning
    meant for the user (a UserWarning, such as torch's about a legacy file format) becomes one
    `note:` line each, before any `Error:` line. --debug shows them raw."""
    if debug_enabled():
        return fn(*args, **kwargs)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            return fn(*args, **kwargs)
        finally:
            said: set[str] = set()
            for w in caught:
                if not issubclass(w.category, UserWarning) or issubclass(w.category, (DeprecationWarning, FutureWarning)):
                    continue
                text = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
                if text and text not in said and len(said) < 3:
                    said.add(text)
                    from diagnose.render import safe_text

                    sys.stderr.write(f"note: {safe_text(text[:300], one_line=True)}\n")


def boundary(fn: F) -> F:
    """Run a command; expected failures become one `Error:` line and their exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return _without_raw_warnings(fn, *args, **kwargs)
        except DiagnoseError as exc:
            if debug_enabled():
                raise
            from diagnose.options import cli_message

            _error_line(cli_message(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _error_line("interrupted")
            raise typer.Exit(130) from None
        except SystemExit as exc:
            # diagnose ends commands with typer.Exit: a SystemExit here came from the user's code (a
            # model's forward, an --arch file) and must not become diagnose's exit status silently.
            if debug_enabled():
                raise
            _error_line(
                f"expected the model's code to return, got sys.exit({exc.code!r}) from it; remove the exit call "
                "(rerun with --debug to see where)"
            )
            raise typer.Exit(1) from None
        except Exception as exc:
            # typer's own exits and usage errors pass through untouched.
            if type(exc).__module__.startswith(("typer", "click")) or debug_enabled():
                raise
            if isinstance(exc, BrokenPipeError):
                _quiet_closed_stdout()
                raise typer.Exit(0) from None
            if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
                from diagnose.io.outputs import write_error

                _error_line(write_error(exc, exc.filename or "the output").message)
                raise typer.Exit(1) from None
            if isinstance(exc, OSError) and exc.errno in _PATH_ERRNOS and exc.filename:
                # A path met by a reader that has no door of its own: the same line the doors give.
                from diagnose.io.paths import failure

                _error_line(f"{exc.filename}: expected a file or folder to read, got {failure(exc, exc.filename)}; check the path")
                raise typer.Exit(1) from None
            missing = (getattr(exc, "name", None) or "").partition(".")[0]
            if isinstance(exc, ModuleNotFoundError) and missing in _EXTRAS:
                # torch is an extra (`diagnose[torch]`): the commands that run a model say so in one line.
                name = getattr(sys.modules.get(fn.__module__), "NAME", fn.__name__)
                _error_line(f"diagnose {name} needs {_EXTRAS[missing]}; pip install 'diagnose[torch]'")
                raise typer.Exit(1) from None
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            _error_line(
                f"unexpected {type(exc).__name__}: {detail}; rerun with --debug for the traceback "
                "and report it if the input looks right"
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"diagnose {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback instead of one Error: line."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Tell what is holding a deep-learning model back, and what to do next."""
    if debug:
        _state["debug"] = True


_COMMANDS = {m.NAME: m for m in (gaps, errors, tally, cohorts, curves, sanity, data, report, compare, lr_find)}
for _module in _COMMANDS.values():
    app.command(_module.NAME, help=_module.HELP)(boundary(_module.command))


def _run(argv: list[str]) -> Any:
    """typer on `argv`; its usage errors as one `Error:` line; the exit code."""
    try:
        code = app(args=argv, prog_name="diagnose", standalone_mode=False)
    except Exception as exc:
        if not hasattr(exc, "exit_code") or not type(exc).__module__.startswith(("typer", "click")):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError" or debug_enabled():  # `diagnose gaps` alone: show its help
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        where = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        _error_line(f"{exc.format_message().rstrip('.')}{where}")  # type: ignore[attr-defined]
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _error_line("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        _quiet_closed_stdout()
        sys.exit(0)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_closed_stdout()
    return code


def main() -> None:
    """Console entry point. `--debug` is accepted anywhere on the line, not only before the command.

    Usage errors that typer finds itself (an unknown option, a value out of range) become one
    `Error:` line too, rather than a framed box, so scripts and people read the same thing.
    """
    argv = sys.argv[1:]
    if "--debug" in argv:
        _state["debug"] = True
        argv = [a for a in argv if a != "--debug"]
    # Started with no stdout or stderr at all (`diagnose ... >&-`): Python leaves them None; write
    # them to /dev/null instead of failing on the first print.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    code = _run(argv)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
