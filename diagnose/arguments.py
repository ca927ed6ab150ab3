"""The Python API's one door for arguments: every public function's arguments are checked by name
before it runs, so a wrong type or value ends in the documented `ArgumentError` naming the argument
(`batch_size: expected an integer >= 1, got 0.5; ...`), never a TypeError from deep inside.

A rule belongs to a parameter name and holds wherever that name is used (`batch_size` means the same
in gaps, check_data and lr_find); a function may override a name it uses otherwise (`classes` is a
count in `curves`, a list of names elsewhere). Only arguments the caller passed are checked: the
defaults are the library's own.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from diagnose.exceptions import ArgumentError

F = TypeVar("F", bound=Callable[..., Any])
# A rule returns None when the value is acceptable, else (what was expected, an example to pass).
Rule = Callable[[Any], "tuple[str, str] | None"]

# Image sides past this are a typo, not a resolution (a 200000-pixel side asked for 298 GiB per batch).
MAX_IMAGE_SIDE = 8192


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)  # numpy's integers too


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _items(v: Any) -> list[Any] | None:
    """The elements of a list, tuple, numpy array or other sized iterable; None for text or a mapping."""
    if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, Iterable) or not hasattr(v, "__len__"):
        return None
    return list(v)


def integer(minimum: int, example: int) -> Rule:
    def rule(v: Any) -> tuple[str, str] | None:
        return None if _is_int(v) and v >= minimum else (f"an integer >= {minimum}", str(example))
    return rule


def number(lo: float, hi: float, example: float, *, lo_open: bool = False, hi_open: bool = False) -> Rule:
    shown = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def rule(v: Any) -> tuple[str, str] | None:
        ok = _is_number(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        return None if ok else (f"a finite number in {shown}", f"{example:g}")
    return rule


def optional(inner: Rule) -> Rule:
    def rule(v: Any) -> tuple[str, str] | None:
        if v is None:
            return None
        bad = inner(v)
        return None if bad is None else (f"None or {bad[0]}", bad[1])
    return rule


def _path(v: Any) -> tuple[str, str] | None:
    return None if isinstance(v, (str, os.PathLike)) else ("a path (str or pathlib.Path)", "'runs/exp1'")


def _flag(v: Any) -> tuple[str, str] | None:
    return None if isinstance(v, bool) else ("True or False", "True")


def _text(v: Any) -> tuple[str, str] | None:
    return None if isinstance(v, str) and v else ("a non-empty string", "'dev'")


def _texts(v: Any) -> tuple[str, str] | None:
    items = _items(v)
    ok = items is not None and all(isinstance(s, str) and s for s in items)
    return None if ok else ("a list of non-empty strings", "['cat', 'dog']")


def _values(positive: bool) -> Rule:
    def rule(v: Any) -> tuple[str, str] | None:
        seq = [v] if _is_number(v) else _items(v)
        ok = seq is not None and len(seq) > 0 and all(_is_number(x) and (x > 0 or not positive) for x in seq)
        kind = "positive finite numbers" if positive else "finite numbers"
        return None if ok else (f"a number or a list of {kind} (one per channel or column)", "[0.5, 0.5, 0.5]")
    return rule


def _size(v: Any) -> tuple[str, str] | None:
    items = _items(v)
    ok = items is not None and len(items) == 2 and all(_is_int(s) and 1 <= s <= MAX_IMAGE_SIDE for s in items)
    return None if ok else (f"(height, width) in pixels, each 1 to {MAX_IMAGE_SIDE}", "(224, 224)")


def _mapping(v: Any) -> tuple[str, str] | None:
    return None if isinstance(v, Mapping) and all(isinstance(k, str) for k in v) else ("a dict of keyword arguments", "{'width': 64}")


def _sheet(v: Any) -> tuple[str, str] | None:
    frame = hasattr(v, "to_csv") and hasattr(v, "columns")
    return None if frame or isinstance(v, (str, os.PathLike)) else ("a sheet's CSV path or a pandas DataFrame", "'error_analysis.csv'")


def _source(v: Any) -> tuple[str, str] | None:
    report = hasattr(v, "predictions") and hasattr(v, "verdict")
    return None if report or isinstance(v, (str, os.PathLike)) else (
        "a GapReport from diagnose.gaps, or a workdir or predictions folder", "'.diagnose'")


RULES: dict[str, Rule] = {
    "batch_size": integer(1, 256),
    "max_items": optional(integer(1, 10_000)),
    "seed": integer(0, 0),
    "n": integer(1, 100),
    "steps": integer(1, 100),
    "repeats": integer(1, 3),
    "items": integer(1, 2048),
    "batch": integer(1, 16),
    "gradcheck_coords": integer(1, 48),
    "workers": integer(0, 4),
    "lr": number(0.0, math.inf, 3e-3, lo_open=True, hi_open=True),
    "momentum": number(0.0, 1.0, 0.9, hi_open=True),
    "weight_decay": optional(number(0.0, math.inf, 1e-4, hi_open=True)),
    "error_rate": number(0.0, 1.0, 0.1, lo_open=True, hi_open=True),
    "smooth": optional(number(0.0, 1.0, 0.6, hi_open=True)),
    "workdir": optional(_path),
    "app_dir": optional(_path),
    "predictions": _path,
    "device": _text,
    "split": _text,
    "label_column": _text,
    "optimizer": _text,
    "arch": optional(_text),
    "fmt": optional(_text),
    "classes": optional(_texts),
    "categories": optional(_texts),
    "only": optional(_texts),
    "skip": _texts,
    "metrics": _texts,
    "mean": optional(_values(positive=False)),
    "std": optional(_values(positive=True)),
    "image_size": optional(_size),
    "arch_kwargs": optional(_mapping),
    "show_progress": _flag,
    "full_digest": _flag,
    "trust_pickle": _flag,
    "trust_settings": _flag,
    "skip_unmarked": _flag,
    "force_verdict": _flag,
    "sheet": _sheet,
    "source": _source,
}


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else f"a {type(v).__name__}"


def checked(fn: F | None = None, **overrides: Rule) -> Any:
    """Check the named arguments of a public API function against RULES (and `overrides`) on every
    call; raise ArgumentError naming the first that does not fit. Use as `@checked` or
    `@checked(classes=...)`."""

    def wrap(func: F) -> F:
        signature = inspect.signature(func)
        rules = {name: overrides.get(name, RULES.get(name)) for name in signature.parameters}
        rules = {name: rule for name, rule in rules.items() if rule is not None}

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as exc:  # a missing or unknown argument: Python's own words, as one error
                raise ArgumentError(func.__name__, f"expected the parameters help(diagnose.{func.__name__}) lists, "
                                    f"{exc}; fix the call") from None
            for name, value in bound.arguments.items():
                rule = rules.get(name)
                bad = rule(value) if rule is not None else None
                if bad is not None:
                    expected, example = bad
                    raise ArgumentError(name, f"expected {expected}, got {_shown(value)}; pass e.g. {name}={example}")
            return func(*args, **kwargs)

        return call  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap
