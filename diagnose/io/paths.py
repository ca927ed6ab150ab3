"""Input paths checked before they are opened: only regular files are read.

A FIFO or a device given as a model, log or sheet would block forever or grow until the memory
runs out (`/dev/zero`); a symlink loop or a dangling link would surface as an odd OSError. Each
becomes one line naming the path and what was found there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from diagnose.exceptions import DiagnoseError, InputError


def failure(exc: OSError, path: Path | str) -> str:
    """What an OSError met at `path` means, as a phrase for `expected ..., got <phrase>`."""
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if exc.errno == errno.ENAMETOOLONG:
        return "a name longer than the file system allows"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOTDIR:
        return "a path through something that is not a folder"
    if exc.errno == errno.EISDIR:
        return "a folder"
    try:
        if os.path.islink(path):
            return f"a dangling symlink to {os.readlink(path)}"
    except (OSError, ValueError):
        pass
    if exc.errno == errno.ENOENT:
        return "nothing at that path"
    return exc.strerror or str(exc)


def describe(path: Path) -> str | None:
    """What is at `path` when it is not a regular file (or a folder): a phrase for the error, else None."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return failure(exc, path)
    except ValueError:  # an embedded NUL byte
        return "a name with a NUL byte"
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
    path: Path, expected: str, fix: str, error: type[DiagnoseError] = InputError, *, folder_ok: bool = False
) -> Path:
    """Raise `error` unless `path` is a regular file (or, with folder_ok, a folder):
    '<path>: expected <expected>, got <what>; <fix>'."""
    path = Path(path)
    what = describe(path)
    if what is None and os.path.isdir(path) and not folder_ok:
        what = "a folder"
    if what is not None:
        raise error(f"{path}: expected {expected}, got {what}; {_fix(what, path, fix)}")
    return path


def _fix(what: str, path: Path, fix: str) -> str:
    return f"check its permissions (ls -l {path})" if what == "permission denied" else fix


@contextlib.contextmanager
def open_regular(
    path: Path, expected: str, fix: str, error: type[DiagnoseError] = InputError
) -> Iterator[BinaryIO]:
    """Open `path` for reading in binary, only if it is a regular file: checked before opening, and
    again on the open descriptor (opened non-blocking, so a FIFO swapped in between cannot block).
    Any OSError on the way (a loop, a dangling link, a name too long, permission denied) is `error`:
    '<path>: expected <expected>, got <what>; <fix>'."""
    path = Path(path)
    require_file(path, expected, fix, error)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        what = failure(exc, path)
        raise error(f"{path}: expected {expected}, got {what}; {_fix(what, path, fix)}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{path}: expected {expected}, got not a regular file; {fix}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def text_encoding(path: Path, *, what: str = "text") -> str:
    """"utf-8", or "cp1252" when the whole file is Windows-1252 (what spreadsheets save as plain CSV),
    judged on every byte, not a sample; else one DataError naming the first byte that is neither."""
    import codecs

    from diagnose.exceptions import DataError

    for encoding in ("utf-8", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        offset, bad = 0, None
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    bad = (chunk[exc.start], offset + exc.start)
                    break
                offset += len(chunk)
            else:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    bad = (0, offset)
        if bad is None:
            return encoding
    assert bad is not None
    raise DataError(f"{path}: expected {what} in UTF-8 or Windows-1252, got byte 0x{bad[0]:02x} at offset {bad[1]}, "
                    "which is neither; save the file as UTF-8")
