"""Project settings: what a model was trained with, written once instead of retyped in every command.

Read from, highest first:

1. the command line (`--arch`, `--mean`, ...);
2. `DATA/diagnose.toml` (beside the splits);
3. `[tool.diagnose]` in the nearest `pyproject.toml` that has that table, looking up from DATA, then
   from the current folder;
4. the built-in default.

Keys: arch, arch_kwargs, mean, std, image_size, label_column, classes, human_error,
human_error_target. A relative file path in `arch` ("models/net.py:Net") is taken from the folder of
the file that names it. Every command that reads data or loads a model calls `load_settings` once,
so gaps, errors, sanity, data (and lr-find) agree, and each says where each value came from.

Code is imported only when the person running the command named it. A setting that names code
(`CODE_KEYS`: arch) is taken from the command line, or from a file of the project the command runs
in (`diagnose.toml` in the current folder, `pyproject.toml` in it or a folder above it, owned by the
person running it). Found in a file that came with the data (DATA/diagnose.toml elsewhere, a
pyproject.toml above DATA outside the current project), it is refused when read unless
`trust_settings` (`--trust-settings`) says so, in the spirit of `trust_remote_code` in
huggingface transformers. Settings that name no code (human_error, mean, std, ...) are read from
every file.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diagnose.defaults import MAX_IMAGE_SIDE
from diagnose.exceptions import SettingsError, UntrustedSetting, UsageError

KEYS: tuple[str, ...] = (
    "arch", "arch_kwargs", "mean", "std", "image_size", "label_column", "classes", "human_error", "human_error_target",
    "standardize", "transform",
)
# What a command that loads data (and a model) but measures no gap reads.
INPUT_KEYS: tuple[str, ...] = ("arch", "arch_kwargs", "mean", "std", "image_size", "label_column")
DEFAULTS: dict[str, Any] = {"label_column": "label"}
# Settings whose value names code to import ("path/net.py:Net", "package.module:factory"): read only
# from the command line or the project's own files (see the module docstring). Any key listed here
# and in KEYS is covered.
CODE_KEYS: frozenset[str] = frozenset({"arch", "transform"})
# DATA/diagnose.toml may hold keys other parts of diagnose read; only these are checked here.
_OPTION = {k: "--" + k.replace("_", "-") for k in KEYS}
# Bounds of the schema. A settings file is a few lines: 1 MiB leaves room for a long pyproject.toml.
MAX_FILE_BYTES = 1 << 20
# arch_kwargs is the deepest key that needs nesting (a table of lists: 2 or 3 levels).
MAX_DEPTH = 8
MAX_TEXT = 1024  # characters in a name (arch, label_column, a class)
MAX_ITEMS = 1 << 16  # entries in a list (classes; mean and std, one per channel or feature)


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # "--mean", "data/diagnose.toml", "pyproject.toml (tool.diagnose)", "default"


@dataclass(frozen=True)
class Settings:
    values: dict[str, Setting] = field(default_factory=dict)
    # key -> the one-line refusal of a code-naming setting from a file that came with the data:
    # raised when the key is read, so a command that never takes it (`data`) is not stopped.
    refused: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.refused:
            raise UntrustedSetting(self.refused[key])
        s = self.values.get(key)
        return default if s is None else s.value

    def source(self, key: str) -> str | None:
        s = self.values.get(key)
        return None if s is None else s.source

    def from_files(self) -> dict[str, Setting]:
        """The settings that came from a file (not the command line, not a default)."""
        return {k: s for k, s in self.values.items() if not s.source.startswith("--") and s.source != "default"}

    def describe(self, keys: tuple[str, ...] = KEYS, *, typed: bool = False) -> str | None:
        """One line for the head of a table: 'settings: arch mynet:MyNet, mean, std from pyproject.toml
        (tool.diagnose); human_error 0.02 from data/diagnose.toml; mean from the command line', or None
        when all of `keys` are defaults. typed: also name those given on the command line."""
        by_source: dict[str, list[str]] = {}
        for key, s in self.values.items():
            if key not in keys or s.source == "default" or (s.source.startswith("--") and not typed):
                continue
            source = "the command line" if s.source.startswith("--") else s.source
            by_source.setdefault(source, []).append(_short(key, s.value))
        if not by_source:
            return None
        return "settings: " + "; ".join(f"{', '.join(keys)} from {src}" for src, keys in by_source.items())

    def to_json(self) -> dict[str, object]:
        return {k: {"value": s.value, "source": s.source} for k, s in self.values.items()}


def parse_arch_kwargs(text: str | None) -> dict | None:
    """--arch-kwargs: a JSON object -> dict; None when not given (torch-free, for every command)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--arch-kwargs: expected a JSON object, got {text!r} ({exc.msg}); quote it as '{{\"k\": 1}}'") from None
    except RecursionError:
        raise UsageError(f"--arch-kwargs: expected a JSON object nested at most {MAX_DEPTH} deep, got deeper; pass a flat one") from None
    if not isinstance(value, dict):
        raise UsageError(f"--arch-kwargs: expected a JSON object, got {type(value).__name__}; pass '{{\"k\": 1}}'")
    return value


def _short(key: str, value: Any) -> str:
    if key == "image_size" and isinstance(value, (tuple, list)) and len(value) == 2:
        return f"image_size {value[0]}x{value[1]}"
    if key in ("arch", "label_column", "human_error", "human_error_target", "image_size"):
        return f"{key} {value}"
    return key


def _shown(path: Path) -> str:
    """Relative to the current folder when inside it (data/diagnose.toml), else as given."""
    try:
        return _real(path).relative_to(_real(Path.cwd())).as_posix()
    except (ValueError, OSError):
        return str(path)


def _real(path: Path | str) -> Path:
    """The path with symlinks resolved; a symlink loop is left as it stands (Path.resolve would raise)."""
    return Path(os.path.realpath(path))


def _nesting(value: Any) -> int:
    """How deep tables and arrays nest in a parsed TOML value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _parse(raw: bytes, where: str) -> dict[str, Any]:
    """TOML text -> dict, or SettingsError naming the file: the bytes' size, encoding, syntax and
    nesting are checked here, for every settings file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: no TOML reader; the numbers (human_error) are plain lines
        text = raw.decode("utf-8", errors="replace")
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^\s*(\w+)\s*=\s*([0-9.eE+-]+)\s*$", text, re.M)
                if m.group(2).strip("+-.eE")}
    fix = "fix the file"
    try:
        text = raw.decode("utf-8")
        doc = tomllib.loads(text)
    except UnicodeDecodeError:
        raise SettingsError(f"{where}: expected UTF-8 TOML text, got undecodable bytes; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{where}: expected TOML, got {exc}; {fix}") from None
    except RecursionError:
        raise SettingsError(f"{where}: expected tables and arrays nested at most {MAX_DEPTH} deep, got deeper "
                            f"than Python can parse; {fix}") from None
    if _nesting(doc) > MAX_DEPTH:
        raise SettingsError(f"{where}: expected tables and arrays nested at most {MAX_DEPTH} deep, got deeper; {fix}")
    return doc


def _read_bytes(path: Path, where: str) -> bytes:
    """The bytes of a settings file through the paths door: a regular file of at most MAX_FILE_BYTES."""
    from diagnose.io.paths import open_regular

    with open_regular(path, "a TOML settings file", "remove it or replace it with a file", SettingsError) as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise SettingsError(f"{where}: expected a settings file of at most {MAX_FILE_BYTES // 1024} KiB, got a "
                            "larger one; keep only the settings in it")
    return raw


def read_settings_file(path: Path, where: str | None = None) -> dict[str, Any]:
    """One settings file (DATA/diagnose.toml) as a dict; SettingsError (exit code 2) naming the file
    for anything wrong with it: not a regular file, too large, not UTF-8, not TOML, nested too deep."""
    where = str(path) if where is None else where
    return _parse(_read_bytes(Path(path), where), where)


def read_data_settings(root: Path, *, where: str | None = None) -> dict[str, Any]:
    """DATA/diagnose.toml checked against the schema ({} when absent): every key one of KEYS, every
    value of its type and range, normalized as `load_settings` gives it. SettingsError otherwise."""
    path = Path(root) / "diagnose.toml"
    if not os.path.lexists(path):
        return {}
    where = str(path) if where is None else where
    table = read_settings_file(path, where)
    _check_keys(table, where)
    return {key: _check(key, value, where, path.parent) for key, value in table.items()}


def _check_keys(table: dict[str, Any], where: str) -> None:
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        import difflib

        near = difflib.get_close_matches(unknown[0], KEYS, n=1)
        fix = f"did you mean {near[0]}?" if near else "fix the name"
        raise SettingsError(f"{where}: expected keys among {', '.join(KEYS)}, got {unknown[0]!r}; {fix}")


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a folder above it that may not be listed
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _diagnose_table(path: Path) -> dict[str, Any] | None:
    """[tool.diagnose] of a pyproject.toml, or None when the file has no such table. A pyproject.toml
    that does not mention diagnose belongs to someone else: it is not parsed, so a broken, unreadable
    or huge one above the data stops nothing. One that mentions it is read as a settings file."""
    try:
        with open(path, "rb") as f:  # only regular files reach here (_is_file)
            head = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if not re.search(rb"\bdiagnose\b", head):
        return None
    where = _shown(path)
    if len(head) > MAX_FILE_BYTES:
        raise SettingsError(f"{where}: expected a pyproject.toml of at most {MAX_FILE_BYTES // 1024} KiB, got a larger one; "
                            "move the diagnose settings to diagnose.toml")
    tool = _parse(head, where).get("tool")
    if not isinstance(tool, dict) or "diagnose" not in tool:  # `tool = "diagnose"` is not a table of ours
        return None
    table = tool["diagnose"]
    if not isinstance(table, dict):
        raise SettingsError(f"{where} (tool.diagnose): expected a table of settings, got {table!r}; "
                            "write [tool.diagnose] and key = value lines")
    return table


def find_pyproject(*starts: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.diagnose] table, looking up from each start in turn."""
    seen: set[Path] = set()
    for start in starts:
        folder = _real(start)
        if _is_file(folder):
            folder = folder.parent
        for candidate in (folder, *folder.parents):
            if candidate in seen:
                break
            seen.add(candidate)
            path = candidate / "pyproject.toml"
            if _is_file(path) and _diagnose_table(path) is not None:
                return path
    return None


def _printable(value: Any) -> bool:
    """A non-empty string of at most MAX_TEXT characters with no control characters (no ESC, NUL,
    newline or tab: they would reach a terminal, a path or a table cell)."""
    return (isinstance(value, str) and bool(value.strip()) and len(value) <= MAX_TEXT
            and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value))


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(key: str, value: Any, where: str, base: Path) -> Any:
    """A value from a file, checked against the schema and normalized; SettingsError naming the file
    and key otherwise."""

    def bad(expected: str) -> SettingsError:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return SettingsError(f"{where}: expected {key} as {expected}, got {shown}; fix the file or pass {_OPTION.get(key, key)}")

    if key == "standardize":
        if value != "train":
            raise bad('"train" (each feature\'s mean and std over the train split)')
        return value
    if key in ("arch", "label_column", "transform"):
        if not _printable(value):
            raise bad(f"a string of at most {MAX_TEXT} printable characters")
        if key in ("arch", "transform"):
            target, sep, name = value.rpartition(":")
            if sep and (target.endswith(".py") or "/" in target) and not Path(target).is_absolute():
                return f"{_real(base / target)}:{name}"
        return value
    if key == "arch_kwargs":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                raise bad("a table or a JSON object") from None
            if isinstance(value, dict) and _nesting(value) > MAX_DEPTH:
                raise bad(f"a table nested at most {MAX_DEPTH} deep")
        if not isinstance(value, dict):
            raise bad("a table like {hidden = 64}")
        return value
    if key in ("mean", "std"):
        values = value if isinstance(value, list) else [value]
        if not values or len(values) > MAX_ITEMS or not all(_number(v) for v in values):
            raise bad("a number or a list of numbers like [0.485, 0.456, 0.406]")
        if key == "std" and any(v <= 0 for v in values):
            raise bad("numbers > 0")
        return [float(v) for v in values]
    if key == "image_size":
        sizes = value if isinstance(value, list) else [value]
        if len(sizes) == 1:
            sizes = sizes * 2
        if len(sizes) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_IMAGE_SIDE for v in sizes):
            raise bad(f"one size like 224 or [height, width], each from 1 to {MAX_IMAGE_SIDE}")
        return (int(sizes[0]), int(sizes[1]))
    if key == "classes":
        if (not isinstance(value, list) or not value or len(value) > MAX_ITEMS
                or not all((isinstance(v, int) and not isinstance(v, bool)) or _printable(v) for v in value)):
            raise bad('a list of class names like ["cat", "dog"] (printable text, no control characters)')
        names = [str(v) for v in value]
        if len(set(names)) != len(names):
            raise bad("a list of distinct class names")
        return names
    if key in ("human_error", "human_error_target"):
        if not _number(value) or value < 0:
            raise bad("a number >= 0 (a fraction for error: 0.01 for 1%)")
        return float(value)
    return value


def trusted_file(path: Path, cwd: Path) -> bool:
    """Whether a settings file belongs to the project the command runs in: a diagnose.toml in the
    current folder, a pyproject.toml in it or a folder above it; owned by the person running the
    command (or root), as git's safe.directory asks of a repository."""
    try:
        folder, here = _real(path).parent, _real(cwd)
        owner = os.stat(path).st_uid
    except OSError:
        return False
    if hasattr(os, "getuid") and owner not in (os.getuid(), 0):
        return False
    if Path(path).name == "pyproject.toml":
        return folder == here or folder in here.parents
    return folder == here


def _refusal(key: str, raw: Any, where: str) -> str:
    return (f"{where}: expected settings that name code ({key}) only from the project you run in, got "
            f"{key} = {raw!r} in a file that came with the data; pass {_OPTION[key]} yourself, or "
            "--trust-settings to import what it names")


def load_settings(
    data: Path | None,
    given: Mapping[str, Any],
    *,
    cwd: Path | None = None,
    trust_settings: bool = False,
) -> Settings:
    """Resolve every key: `given` (the command line: a key whose value is None was not given), then
    DATA/diagnose.toml, then [tool.diagnose] of the nearest pyproject.toml, then the default.

    A key of CODE_KEYS taken from a file outside the project in `cwd` is refused (Settings.get raises
    UntrustedSetting naming the file and the key) unless trust_settings."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    layers: list[tuple[str, Path, dict[str, Any], bool]] = []
    if data is not None and os.path.lexists(Path(data) / "diagnose.toml") and not _is_dir(Path(data) / "diagnose.toml"):
        path = Path(data) / "diagnose.toml"
        where = _shown(path)
        table = read_settings_file(path, where)
        _check_keys(table, where)
        layers.append((where, path.parent, table, trust_settings or trusted_file(path, cwd)))
    # A DATA folder that cannot be read is left for the data reader to name.
    starts = [Path(data)] if data is not None and _is_dir(Path(data)) else []
    pyproject = find_pyproject(*starts, cwd)
    if pyproject is not None:
        table = _diagnose_table(pyproject) or {}
        where = f"{_shown(pyproject)} (tool.diagnose)"  # no [..]: rich would read it as markup
        _check_keys(table, where)
        layers.append((where, pyproject.parent, table, trust_settings or trusted_file(pyproject, cwd)))
    values: dict[str, Setting] = {}
    refused: dict[str, str] = {}
    for key in KEYS:
        if given.get(key) is not None:
            values[key] = Setting(given[key], _OPTION[key])
            continue
        for where, base, table, trusted in layers:
            if key in table:
                value = _check(key, table[key], where, base)
                if key in CODE_KEYS and not trusted:
                    refused[key] = _refusal(key, table[key], where)
                else:
                    values[key] = Setting(value, where)
                break
        else:
            if key in DEFAULTS:
                values[key] = Setting(DEFAULTS[key], "default")
    return Settings(values, refused)


def given_on_command_line(params: Mapping[str, Any]) -> dict[str, Any]:
    """The command's option values, with those left at their default set to None, so a file may set
    them (click knows which options were typed). Outside a click command, values pass unchanged."""
    import importlib

    # typer vendors click as typer._click; an older typer runs on click itself. Imported by name so the
    # type check does not depend on whether click is installed beside typer.
    try:
        core, context = (importlib.import_module(f"typer._click.{m}") for m in ("core", "globals"))
    except ImportError:  # pragma: no cover - an older typer, on top of click
        core, context = (importlib.import_module(f"click.{m}") for m in ("core", "globals"))
    ParameterSource, get_current_context = core.ParameterSource, context.get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return dict(params)
    out: dict[str, Any] = {}
    for name, value in params.items():
        source = ctx.get_parameter_source(name)
        out[name] = value if source not in (ParameterSource.DEFAULT, None) else None
    return out


def resolve(data: Path | None, *, trust_settings: bool = False, **given: Any) -> Settings:
    """`load_settings` for a command: pass its parsed option values by key (arch=..., mean=[...]);
    those the person did not type are taken from the files. The one call each command makes.
    trust_settings: --trust-settings, import code named by settings that came with DATA."""
    return load_settings(data, given_on_command_line(given), trust_settings=trust_settings)
