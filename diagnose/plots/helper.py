"""Draw a figure in a forked helper process, so that importing matplotlib and drawing run on a second
core while the command reads the logs and finds what they show.

matplotlib's import (about 0.9 s on a small machine) and the drawing are Python code that holds the
GIL: on a thread they slow the reading they overlap. A child forked when the command starts (one
thread, no numpy or pyarrow loaded yet) imports matplotlib at once; the command sends it the job when
the data is ready (pickle protocol 5: the arrays are written once to an anonymous in-memory file the
helper maps, never copied into the pickle) and waits for the answer.

Only on Linux with two or more cores, and never under `--debug` (one process, one traceback). If the
helper cannot start or dies, the command draws in its own process, so an error surfaces as usual.
A failure the user can fix (a `DiagnoseError`: the disk is full, the target is a folder) comes back
as itself; Python warnings come back as warnings.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import struct
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

_HEADER = struct.Struct("<QQI")  # length of the pickle, of the arrays' bytes, number of arrays
_LENGTH = struct.Struct("<Q")


def _aligned(n: int) -> int:
    return (n + 63) // 64 * 64


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    parts = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError  # the other side is gone
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def send(sock: socket.socket, obj: Any) -> None:
    """Send `obj`: a header, then the pickle. Its arrays (pickle protocol 5's out-of-band buffers)
    are written once into an anonymous in-memory file whose descriptor goes along with the header, so
    the other side maps them instead of reading them through the socket."""
    buffers: list[pickle.PickleBuffer] = []
    main = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    total = sum(_aligned(r.nbytes) for r in raws)
    head = _HEADER.pack(len(main), total, len(raws)) + b"".join(_LENGTH.pack(r.nbytes) for r in raws)
    if not raws:
        sock.sendall(head + main)
        return
    fd = os.memfd_create("diagnose-figure", os.MFD_CLOEXEC)
    try:
        for raw in raws:
            view = raw.cast("B")
            while view:
                view = view[os.write(fd, view):]
            os.write(fd, bytes(_aligned(raw.nbytes) - raw.nbytes))  # each array starts 64-byte aligned
        socket.send_fds(sock, [head[: _HEADER.size]], [fd])
        sock.sendall(head[_HEADER.size :] + main)
    finally:
        os.close(fd)


def receive(sock: socket.socket) -> Any:
    """What `send` sent; the arrays are copy-on-write maps of the sender's memory file. EOFError if
    the other side went away first."""
    import mmap

    msg, fds, _, _ = socket.recv_fds(sock, _HEADER.size, 1)
    try:
        if not msg:
            raise EOFError
        head = msg + (_recv_exact(sock, _HEADER.size - len(msg)) if len(msg) < _HEADER.size else b"")
        size, total, count = _HEADER.unpack(head)
        lengths = [n for (n,) in _LENGTH.iter_unpack(_recv_exact(sock, _LENGTH.size * count))] if count else []
        main = _recv_exact(sock, size)
        buffers: list[memoryview] = []
        if count:
            if not fds:
                raise EOFError
            whole = memoryview(mmap.mmap(fds[0], total, flags=mmap.MAP_PRIVATE)) if total else memoryview(b"")
            at = 0
            for n in lengths:
                buffers.append(whole[at : at + n])
                at += _aligned(n)
        return pickle.loads(main, buffers=buffers)
    finally:
        for fd in fds:
            os.close(fd)


def _usable() -> bool:
    return (
        sys.platform == "linux"
        and hasattr(os, "fork")
        and hasattr(os, "memfd_create")
        and (os.cpu_count() or 1) >= 2
        and threading.active_count() == 1
        and os.environ.get("DIAGNOSE_NO_HELPER", "") in ("", "0")
    )


_early: FigureHelper | None = None


class FigureHelper:
    """A forked child that has imported what `preload` imports and waits for one job."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self.closed = False

    @classmethod
    def start(cls, preload: Callable[[], None]) -> FigureHelper | None:
        """Fork the helper, or None where it cannot run (then draw in-process)."""
        if not _usable():
            return None
        for stream in (sys.stdout, sys.stderr):  # nothing buffered is written twice
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            ours, theirs = socket.socketpair()
        except OSError:
            return None
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return None
        if pid == 0:  # the helper: never returns
            try:
                ours.close()
                _serve(theirs, preload)
            finally:
                os._exit(1)
        theirs.close()
        return cls(pid, ours)

    @classmethod
    def start_early(cls, preload: Callable[[], None]) -> None:
        """Fork the helper before the command line is parsed, for the command to `take` (parsing
        with typer and pydantic takes a quarter of a second the helper spends importing instead)."""
        global _early
        if _early is None:
            _early = cls.start(preload)

    @classmethod
    def take(cls, preload: Callable[[], None]) -> FigureHelper | None:
        """The helper started early, else a new one (None where none can run)."""
        global _early
        helper, _early = _early, None
        return helper if helper is not None else cls.start(preload)

    @staticmethod
    def discard_early() -> None:
        """Stop a helper started early that no command took (a usage error, --help)."""
        global _early
        if _early is not None:
            _early.close()
            _early = None

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` in the helper (`fn` a module-level function); in this process if the
        helper is gone."""
        sent = False
        try:
            send(self.sock, (fn, args, kwargs))
            sent = True
            reply = receive(self.sock)
        except KeyboardInterrupt:
            # Interrupted while the helper draws: it stops too, removes its temporary file, and the
            # old figure stays as it was.
            self._end(signal.SIGINT)
            raise
        except Exception:  # noqa: BLE001 - the job cannot travel, the helper died, or its answer cannot be read
            reply = None
        self._end(None if sent else signal.SIGKILL)
        if reply is None:
            return fn(*args, **kwargs)  # here instead
        status, value, caught = reply
        for category, message in caught:
            warnings.warn(message, category, stacklevel=2)
        if status == "ok":
            return value
        if status == "error":
            raise value
        from diagnose.exceptions import DiagnoseError

        if status == "error-text":  # a DiagnoseError that does not pickle: its message and exit code
            message, code = value
            exc = DiagnoseError(message)
            exc.exit_code = code
            raise exc
        return fn(*args, **kwargs)  # an unexpected failure: again here, where it is reported as usual

    def close(self) -> None:
        """Stop a helper that got no job (the command ended early, or the job could not be sent): it
        has only imported."""
        self._end(signal.SIGKILL)

    def _end(self, sig: int | None) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        try:
            if sig is not None:
                os.kill(self.pid, sig)
            os.waitpid(self.pid, 0)
        except (OSError, ChildProcessError):
            pass


def _serve(sock: socket.socket, preload: Callable[[], None]) -> None:
    """The helper's life: import, take one job, answer, exit without running the parent's cleanup."""
    code = 0
    try:
        # A second Ctrl-C must not cut short the cleanup the first one started.
        def once(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, once)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        preload()
        try:
            fn, args, kwargs = receive(sock)
        except EOFError:
            os._exit(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                answer: tuple[str, Any] = ("ok", fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - sent back; the parent decides
                from diagnose.exceptions import DiagnoseError

                answer = ("error", exc) if isinstance(exc, DiagnoseError) else ("failed", repr(exc))
                if isinstance(exc, DiagnoseError):
                    try:
                        pickle.loads(pickle.dumps(exc))
                    except Exception:  # noqa: BLE001 - a subclass whose arguments differ from its message
                        answer = ("error-text", (exc.message, exc.exit_code))
        said = [(w.category, str(w.message)) for w in caught if issubclass(w.category, UserWarning)]
        send(sock, (*answer, said))
    except BaseException:  # noqa: BLE001 - an interrupt, or the parent went away
        code = 1
    finally:
        os._exit(code)
