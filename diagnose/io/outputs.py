"""One rule for every file diagnose writes, so nothing a person made is overwritten or lost.

- An output path that is one of the command's inputs is refused.
- An existing output is replaced only when diagnose wrote it (recognized by its metadata: the PNG
  `Software` text chunk, the SVG / PDF `Creator`, the HTML generator tag); anything else is copied to
  `<name>.bak` first (`.bak.1`, ... when taken), and the command says so.
- Every file of one command is written to a temporary beside its target, and all are renamed into
  place together at the end (`OutputGroup`): an interrupted or failed command leaves the old files.
- `gaps` publishes its whole workdir as one unit (`publish_dir`) under a lock (`workdir_lock`).
- OS failures while writing (disk full, read-only file system, a file where a folder should be)
  become one `Error:` line (`write_error`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from diagnose.exceptions import DiagnoseError, UsageError

# The metadata value diagnose stamps into its figures: PNG `Software`, SVG / PDF `Creator`.
CREATOR = "diagnose"
_HEAD = 1 << 16


def figure_metadata(fmt: str) -> dict[str, str]:
    """The `metadata=` for matplotlib's savefig that marks a figure as diagnose's own."""
    return {"Software": CREATOR} if fmt == "png" else {"Creator": CREATOR}


def written_by_diagnose(path: Path) -> bool:
    """True when `path` carries diagnose's mark (a figure, a contact sheet or a report). Only a
    regular file is opened (a FIFO at the path would block the read)."""
    from diagnose.io.paths import open_regular

    path = Path(path)
    try:
        with open_regular(path, "a file", "") as fh:
            head = fh.read(_HEAD)
            if head.startswith(b"%PDF"):  # the Info dictionary is near the end
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - _HEAD))
                head += fh.read(_HEAD)
    except (OSError, DiagnoseError):
        return False
    if head.startswith(b"\x89PNG"):
        # tEXt chunk: keyword, NUL, text
        return b"tEXtSoftware\x00" + CREATOR.encode() in head
    if head.startswith(b"%PDF"):
        return b"/Creator (" + CREATOR.encode() in head
    text = head.decode("utf-8", errors="replace")
    if "<svg" in text:
        return f"<dc:title>{CREATOR}" in text or f">{CREATOR}</dc:" in text
    return '<meta name="generator" content="diagnose' in text


def same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).exists() and Path(b).exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_inputs(out: Path, inputs: Sequence[Path | None], option: str = "--out") -> None:
    """An output that is one of the inputs would destroy it: refuse before any work."""
    for p in inputs:
        if p is None:
            continue
        if same_file(out, p) or Path(os.path.abspath(out)) == Path(os.path.abspath(p)):
            raise UsageError(f"{option} {out}: expected a new file, got one of the inputs ({p}); choose another name")


def check_folder(folder: Path, what: str) -> None:
    """Raise a one-line error before any work when `folder` (or the nearest parent that exists, where it
    will be created) is a file or may not be written: the failure would otherwise come after the work.
    what: the option and value the message starts with, e.g. "--out sheets/x.csv"."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what}: expected a folder to write in, got a file at {existing}; pass another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: expected a folder you may write in, got permission denied on {existing}; pass another path")


def check_target(out: Path, option: str = "--out") -> None:
    """The door of every output file, before any work: refuse a target that is a folder, anything
    but a regular file (a FIFO, a device, a socket), a symlink loop or a dangling link, a name the
    file system cannot hold, or a path below a regular file or in a folder that may not be written."""
    from diagnose.io.paths import describe

    out = Path(out)
    if os.path.isdir(out):
        raise UsageError(f"{option} {out}: expected a file path, got a folder; pass a file name inside it")
    what = describe(out) if os.path.lexists(out) else _name_problem(out)
    if what is not None:
        raise UsageError(f"{option} {out}: expected a regular file or a new file path, got {what}; pass another path")
    check_folder(out.parent, f"{option} {out}")


def _name_problem(out: Path) -> str | None:
    """Why a path that does not exist yet could never be created by name, or None."""
    from diagnose.io.paths import failure

    try:
        os.lstat(out)
    except (FileNotFoundError, NotADirectoryError):  # a new file; below a file: check_folder says so
        return None
    except OSError as exc:
        return failure(exc, out)
    except ValueError:
        return "a name with a NUL byte"
    return None


def backup(path: Path) -> Path:
    """Copy `path` to `path.bak` (or .bak.1, .bak.2, ... if taken); never overwrites."""
    from diagnose.io.atomic import atomic_path

    bak = path.with_name(path.name + ".bak")
    k = 0
    while bak.exists():
        k += 1
        bak = path.with_name(f"{path.name}.bak.{k}")
    with atomic_path(bak) as tmp:
        shutil.copy2(path, tmp)
    return bak


def keep_or_backup(out: Path) -> Path | None:
    """Before replacing `out`: nothing to do when it is absent or diagnose wrote it; else a .bak copy."""
    out = Path(out)
    if not out.exists() or written_by_diagnose(out):
        return None
    if not out.is_file():
        raise UsageError(f"--out {out}: expected a regular file, got something else at that path; pass another path")
    return backup(out)


def write_error(exc: OSError, target: Path | str) -> DiagnoseError:
    """One line for an OS failure while writing `target`."""
    import re

    # A temporary of ours (".sheet.csv.4711.k2j4l1xq.tmp.csv"): name the file it stood for.
    temp = re.match(r"^\.(.+)\.\d+\.[A-Za-z0-9_]{8}\.tmp", Path(target).name)
    if temp:
        target = Path(target).with_name(temp.group(1))
    code = exc.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return DiagnoseError(f"{target}: expected room to write, got a full disk ({exc.strerror}); free space or pass another path")
    if code == errno.EROFS:
        return DiagnoseError(f"{target}: expected a writable file system, got a read-only one; pass a path on a writable disk")
    if code in (errno.ENOTDIR, errno.EEXIST):
        return DiagnoseError(f"{target}: expected a folder to write in, got a file in the path; pass another path")
    if code in (errno.EACCES, errno.EPERM):
        return DiagnoseError(f"{target}: expected a folder you may write in, got permission denied; pass another path")
    return DiagnoseError(f"{target}: expected to write the file, got {exc.strerror or exc}; check the disk and the path")


@contextlib.contextmanager
def _defer_sigint() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block is done, then raise KeyboardInterrupt."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


class OutputGroup:
    """Temporaries for several outputs, renamed into place together when the block succeeds.

        with OutputGroup() as group:
            write_sheet(group.path(out), ...)
            fig.savefig(group.path(png))
        # both replaced here, or neither when the block raised (or was interrupted)
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []
        self._keep: list[tuple[Path, Path]] = []

    def keep(self, path: Path, *, unless_ours: bool = True) -> Path | None:
        """Copy `path` to a .bak just before the renames, when it exists (and, with unless_ours, when
        diagnose did not write it). Returns the .bak path it will get, or None. Done at the end, so an
        interrupted command leaves no .bak behind either."""
        path = Path(path)
        if not path.is_file() or (unless_ours and written_by_diagnose(path)):
            return None
        taken = {b for _, b in self._keep}
        bak, k = path.with_name(path.name + ".bak"), 0
        while bak.exists() or bak in taken:
            k += 1
            bak = path.with_name(f"{path.name}.bak.{k}")
        self._keep.append((path, bak))
        return bak

    def path(self, target: Path) -> Path:
        from diagnose.io.atomic import temp_beside

        target = Path(target)
        tmp = temp_beside(target)
        self._pending.append((tmp, target))
        return tmp

    def __enter__(self) -> OutputGroup:
        return self

    def _discard(self) -> None:
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._pending = []

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._discard()
            return
        from diagnose.io.atomic import _umask

        try:
            for tmp, _ in self._pending:
                os.chmod(tmp, 0o666 & ~_umask())
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
            # The renames are the only step left: each is atomic, nothing is computed between them, and
            # Ctrl-C waits until all are done (then interrupts), so the files never come from two runs.
            with _defer_sigint():
                for src, bak in self._keep:
                    from diagnose.io.atomic import atomic_path

                    with atomic_path(bak) as copy:
                        shutil.copy2(src, copy)
                for tmp, target in self._pending:
                    os.replace(tmp, target)
        except OSError as err:
            self._discard()
            raise write_error(err, self._pending[0][1] if self._pending else "output") from None
        except BaseException:
            self._discard()
            raise
        self._pending = []


# --- gaps: the workdir as one unit --------------------------------------------------------------

_LOCK_HELP = "wait for it to finish, or pass another --workdir"


@contextlib.contextmanager
def workdir_lock(workdir: Path, *, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on `workdir` (created empty when absent) for a run that writes it.

    The lock is `flock` on the folder itself, so nothing is left behind. A second run fails with one
    line (or waits, with wait=True). The workdir is swapped for a new folder when a run is published:
    a lock taken on the folder that was just replaced is retried on the new one.
    """
    import fcntl

    workdir = Path(workdir)
    while True:
        workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(workdir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise DiagnoseError(
                    f"--workdir {workdir}: expected no other diagnose run writing to it, got one running; {_LOCK_HELP}"
                ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(workdir))
            except FileNotFoundError:
                same = False
            if not same:  # published over while we waited: lock the new folder
                continue
            yield
            return
        finally:
            os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where not supported."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    res = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if res == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP if hasattr(errno, "ENOTSUP") else errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), str(a))


def staging_dir(workdir: Path) -> Path:
    """A new, empty folder beside `workdir` to build the next run in (same file system). Called under
    the workdir's lock: the staging folders a killed run left beside it are removed first."""
    import tempfile

    from diagnose.io.atomic import remove_stale

    workdir = Path(os.path.abspath(workdir))
    remove_stale(workdir.parent, f".{workdir.name}.new-")
    return Path(tempfile.mkdtemp(prefix=f".{workdir.name}.new-{os.getpid()}.", dir=workdir.parent))


def carry_over(old: Path, new: Path, own: Sequence[str]) -> None:
    """Hard-link (or copy) what a person keeps in the old workdir into the new one, except the
    entries named in `own`, which the new run writes itself."""
    if not old.is_dir():
        return
    for entry in old.iterdir():
        if entry.name in own or (new / entry.name).exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, new / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(entry), str(new / entry.name))


def _link_or_copy(src: str, dst: str) -> str:
    try:
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def publish_dir(staged: Path, workdir: Path) -> None:
    """Make the finished `staged` folder the workdir in one step; the old workdir is removed after.

    Readers see either the whole old run or the whole new one, never a mix. Where the system cannot
    swap two folders at once, the old one is renamed aside first and put back if the second rename fails.
    """
    workdir = Path(workdir)
    if not workdir.exists():
        os.rename(staged, workdir)
        return
    if _exchange(staged, workdir):
        shutil.rmtree(staged, ignore_errors=True)  # it now holds the old run
        return
    aside = staged.with_name(staged.name.replace(".new-", ".old-"))
    os.rename(workdir, aside)
    try:
        os.rename(staged, workdir)
    except BaseException:
        os.rename(aside, workdir)
        raise
    shutil.rmtree(aside, ignore_errors=True)


class WorkdirRun:
    """The run `gaps` builds: a new folder beside the workdir (`staged`), swapped in whole by
    `publish()` once its manifest is written, under an exclusive lock on the workdir.

        with WorkdirRun(workdir) as run:
            ... write run.staged / "predictions" / "dev.parquet" ...
            write_manifest(run.staged, ...)
            run.publish()

    Leaving the block without `publish()` (an error, Ctrl-C) removes the staged folder and leaves the
    previous run as it was. Under torchrun only rank 0 writes: the other ranks get a private folder.
    """

    OWN: tuple[str, ...] = ("manifest.json", "predictions")

    def __init__(self, workdir: Path) -> None:
        workdir = Path(workdir)
        # A symlinked workdir: publish into the folder it points to, and keep the link.
        self.workdir = Path(os.path.realpath(workdir)) if workdir.is_symlink() else workdir
        self.active = os.environ.get("RANK", "0") == "0"
        self.staged = Path()
        self._lock: contextlib.ExitStack | None = None
        self._published = False

    def __enter__(self) -> WorkdirRun:
        import tempfile

        if not self.active:
            self.staged = Path(tempfile.mkdtemp(prefix="diagnose-rank-"))
            return self
        here = Path.cwd().resolve()
        target = Path(os.path.abspath(self.workdir)).resolve()
        if here == target or here.is_relative_to(target):
            raise UsageError(
                f"--workdir {self.workdir}: expected a folder for diagnose's own files, got the current folder "
                "(or one above it); pass e.g. --workdir .diagnose"
            )
        check_folder(self.workdir, f"--workdir {self.workdir}")
        self._lock = contextlib.ExitStack()
        try:
            self._lock.enter_context(workdir_lock(self.workdir))
            self.staged = staging_dir(self.workdir)
        except OSError as exc:
            self._lock.close()
            raise write_error(exc, self.workdir) from None
        except BaseException:
            self._lock.close()
            raise
        return self

    def publish(self) -> None:
        try:
            carry_over(self.workdir, self.staged, self.OWN)
            publish_dir(self.staged, self.workdir)
        except OSError as exc:
            raise write_error(exc, self.workdir) from None
        self._published = True

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if not self._published and self.staged != Path():
                shutil.rmtree(self.staged, ignore_errors=True)
        finally:
            if self._lock is not None:
                self._lock.close()
