"""Input paths checked before they are opened: only regular files are read.

A FIFO or a device given as a model, log or sheet would block forever or grow until the memory
runs out (`/dev/zero`); a symlink loop or a dangling link would surface as an odd OSError. Each
becomes one line naming the path and what was found there.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from diagnose.exceptions import InputError


def describe(path: Path) -> str | None:
    """What is at `path` when it is not a regular file (or a folder): a phrase for the error, else None."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        if os.path.islink(path):
            return f"a dangling symlink to {os.readlink(path)}"
        if exc.errno == errno.ENOENT:
            return "nothing at that path"
        return exc.strerror or str(exc)
    mode = st.st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_file(
    path: Path, expected: str, fix: str, error: type[InputError] = InputError, *, folder_ok: bool = False
) -> Path:
    """Raise `error` unless `path` is a regular file (or, with folder_ok, a folder):
    '<path>: expected <expected>, got <what>; <fix>'."""
    path = Path(path)
    what = describe(path)
    if what is None and path.is_dir() and not folder_ok:
        what = "a folder"
    if what is not None:
        raise error(f"{path}: expected {expected}, got {what}; {fix}")
    return path
