"""Expected failures, each carrying the exit code the command line ends with.

Messages follow one shape: `<file or split>: expected <X>, got <Y>; <fix>`. The CLI prints them as a
single `Error: ...` line on stderr; `--debug` shows the traceback instead.
"""

from __future__ import annotations


class DiagnoseError(Exception):
    """A failure the user can fix; `exit_code` 1 for a failed run."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(DiagnoseError):
    """Options that do not fit together, or a missing argument (exit code 2, as click uses)."""

    exit_code = 2


class SettingsError(UsageError):
    """A settings file (DATA/diagnose.toml, [tool.diagnose] in pyproject.toml) that does not fit the
    schema: not TOML, an unknown key, a value of the wrong type or out of range. Exit code 2, as the
    same value given as an option would be."""


class UntrustedSetting(SettingsError):
    """A settings file that came with the data names code to import (arch), and the person running
    the command did not allow it (`--trust-settings`, `trust_settings=True`)."""


class InputError(DiagnoseError):
    """A file or folder that cannot be read as what it should be."""


class ModelLoadError(InputError):
    """A model file that cannot be loaded (unknown format, truncated, untrusted pickle)."""


class DataError(InputError):
    """A dataset split that cannot be read or does not fit the model."""


class LogParseError(InputError):
    """A training log with nothing recognizable in it."""


class SheetError(InputError):
    """An error-analysis sheet that cannot be read."""


class EvaluationError(DiagnoseError):
    """The model ran but produced something unusable (NaN outputs, wrong shape)."""


class OverwriteRefused(DiagnoseError):
    """An output exists and holds a person's work; nothing was written."""


class GateFailed(DiagnoseError):
    """A `--fail-on` threshold was reached (exit code 3, so CI can tell it from a crash)."""

    exit_code = 3


class VerdictWithheld(DiagnoseError):
    """The gaps were shown but the verdict withheld: the model does no better than always predicting
    the most frequent class, or its inputs are not what it was trained on (exit code 4, so a script
    can tell numbers to distrust from a failed run). `--force-verdict` shows the verdict instead."""

    exit_code = 4


class ArgumentError(UsageError):
    """A library argument with a value that cannot work. The message names the argument as Python
    spells it (`max_items: expected ...`); the command line shows the flag instead (`--max-items`).

    argument: the parameter name; value: the value shown after it, or None.
    """

    def __init__(self, argument: str, detail: str, value: object = None) -> None:
        self.argument = argument
        self.value = value
        self.detail = detail
        head = argument if value is None else f"{argument} {value}"
        super().__init__(f"{head}: {detail}")

    def as_flag(self, flag: str) -> str:
        """The message with the argument replaced by its command-line spelling."""
        head = flag if self.value is None else f"{flag} {self.value}"
        return f"{head}: {self.detail}"
