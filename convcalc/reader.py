"""Reading a file a user names, bounded in bytes and in time, whatever the path turns out to be.

- ``-`` is stdin (and so is a path that *is* stdin, like ``/dev/stdin``): read up to the limit.
- A regular file: at most ``limit + 1`` bytes are read, so a file that grows is still bounded.
- A named pipe (``mkfifo``, ``<(…)``): opened without blocking, read up to the limit while data
  arrives within :data:`PIPE_SECONDS`; a pipe with no writer is reported, never waited on forever.
- Folders, devices (``/dev/zero``, ``/dev/urandom``, ``/dev/null``) and sockets are refused.

Every refusal is an :class:`~convcalc.errors.InputError` (a usage error: exit code 2).
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Iterator
from typing import Any

from .errors import InputError

#: How long a named pipe may stay silent before convcalc gives up on it.
PIPE_SECONDS = 5.0


def read_bounded(path: str, limit: int, *, what: str = "file") -> bytes:
    """The bytes of ``path`` (``-``: stdin), or an InputError when it is not readable or above ``limit``."""
    if path == "-" or _is_stdin(path):
        data = _read_stdin(limit + 1)
    else:
        data = _read_path(path, limit, what)
    if len(data) > limit:
        raise InputError(f"{_name(path)} is larger than {_amount(limit)}; convcalc reads a {what} of at most {_amount(limit)}", file=path)
    return data


def bounded_lines(stream: Any, path: str, limit: int) -> Iterator[str]:
    """The lines of a text stream, each at most ``limit`` characters: a stream without line breaks
    (``/dev/zero`` on stdin) is refused instead of read into memory whole."""
    number = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith("\n"):
            raise InputError(f"{_name(path)}:{number}: a line longer than {limit:,} characters; convcalc reads lines up to that", file=path, line=number)
        yield line


def check_stream(path: str, *, what: str = "file") -> None:
    """For a reader that streams: ``-`` and stdin itself are fine, anything else must be a regular file."""
    if path != "-" and not _is_stdin(path):
        check_regular(path, what=what)


def check_regular(path: str, *, what: str = "file") -> None:
    """An InputError unless ``path`` is an existing regular file (for files another tool reads)."""
    mode = _mode(path)
    if not stat.S_ISREG(mode):
        raise InputError(f"{path} is {_kind(mode)}, not a {what}", file=path)


def _mode(path: str) -> int:
    """``os.stat(path).st_mode``, or the one-line InputError of a missing or unreadable path."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", file=path) from None
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}", file=path) from None


def _name(path: str) -> str:
    return "- (stdin)" if path == "-" else path


def _amount(count: int) -> str:
    return f"{count // 2**20} MiB" if count >= 2**20 and count % 2**20 == 0 else f"{count:,} bytes"


def _is_stdin(path: str) -> bool:
    """True when ``path`` names the stream on fd 0 (``/dev/stdin``, ``/proc/self/fd/0``)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(0))
    except (OSError, ValueError):
        return False


def _read_stdin(count: int) -> bytes:
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise InputError("- (stdin) is closed; give a file name instead of -", file="-")
    try:
        return stream.read(count)
    except OSError as error:
        raise InputError(f"- (stdin): {error.strerror}", file="-") from None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    return "not a regular file"


def _read_path(path: str, limit: int, what: str) -> bytes:
    mode = _mode(path)
    if stat.S_ISFIFO(mode):
        return _read_pipe(path, limit + 1)
    if not stat.S_ISREG(mode):
        raise InputError(f"{path} is {_kind(mode)}, not a {what}", file=path)
    try:
        with open(path, "rb") as handle:
            return handle.read(limit + 1)
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}", file=path) from None


def _read_pipe(path: str, count: int) -> bytes:
    """Up to ``count`` bytes of a named pipe; gives up when it stays silent for PIPE_SECONDS."""
    import select

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never blocks, even without a writer
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}", file=path) from None
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + PIPE_SECONDS
    try:
        while size < count:
            try:
                chunk: bytes | None = os.read(fd, min(count - size, 1 << 20))
            except BlockingIOError:  # a writer is there, with nothing written yet
                chunk = None
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
                deadline = time.monotonic() + PIPE_SECONDS
                continue
            if chunk == b"" and chunks:
                break  # the writer is done
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InputError(
                    f"{path} is a pipe that sent nothing for {PIPE_SECONDS:.0f} s (no writer?); convcalc stopped waiting",
                    file=path,
                )
            if chunk is None:
                select.select([fd], [], [], remaining)
            else:  # no writer (yet): an empty read does not wait, so pause
                time.sleep(min(0.05, remaining))
    finally:
        os.close(fd)
    return b"".join(chunks)


# Files convcalc writes (``draw -o``, ``verify --emit-spec``): a regular file or a new one, never
# a pipe, a device or a folder: writing to a FIFO without a reader blocks forever, a device
# (``/dev/full``) or a terminal is not a file to keep.

STDOUT = "-"


def output_target(path: str, *, option: str, example: str = "out") -> str:
    """``path`` checked as a file to write, before any work: ``-`` for stdout (also a path that *is*
    stdout, like ``/dev/stdout``), else an existing regular file or a new file in an existing
    folder. Anything else is an InputError (exit 2) naming ``option``."""
    if path == STDOUT:
        return STDOUT
    if not path:
        raise InputError(f"{option} needs a file name (or - for stdout), got ''")
    if _is_stdout(path):
        return STDOUT
    try:
        mode: int | None = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise InputError(f"{option} {path}: {error.strerror}", file=path) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise InputError(f"{option} {path}: is a directory; name a file in it, e.g. {os.path.join(path, example)}", file=path)
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"{option} {path}: is {_kind(mode)}, not a regular file; name a file (or - for stdout)", file=path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{option} {path}: cannot write it, the folder {folder} does not exist", file=path)
    if not os.access(folder if mode is None else path, os.W_OK):
        raise InputError(f"{option} {path}: cannot write {'in ' + folder if mode is None else 'it'} (permission denied)", file=path)
    return path


def open_output(path: str, *, option: str, binary: bool = False) -> Any:
    """``path`` opened for writing (created or truncated) without ever blocking: a FIFO or device
    that appeared since :func:`output_target` is refused after opening, before a byte is written."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as error:  # ENXIO: a FIFO without a reader
        raise InputError(f"{option} {path}: cannot write it ({error.strerror or error})", file=path) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(f"{option} {path}: is {_kind(mode)}, not a regular file; name a file (or - for stdout)", file=path)
    if hasattr(os, "O_NONBLOCK"):
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    if binary:
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", newline="\n")


def _is_stdout(path: str) -> bool:
    """True when ``path`` names the stream on fd 1 (``/dev/stdout``, ``/proc/self/fd/1``)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(1))
    except (OSError, ValueError):
        return False
