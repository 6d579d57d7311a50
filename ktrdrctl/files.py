"""Reading the user's files for the daemon (which opens no path): regular files only, size-capped.

:func:`read_text` opens without blocking and without taking a terminal (``O_NONBLOCK | O_NOCTTY``),
then checks the opened file itself (``fstat``: no gap between check and read), so a FIFO, a device
such as ``/dev/zero``, a directory or a socket is refused at once instead of hanging or reading
without end, and reads at most :data:`MAX_FILE_BYTES` + 1 bytes (a file that grows while read is
still refused). Problems are :class:`FileProblem` with a message naming the file.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator

from ktrdr import wire

#: Largest file sent, in bytes: the daemon's limit for a strategy document (2 MiB).
MAX_FILE_BYTES = wire.MAX_STRATEGY_BYTES

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileProblem(Exception):
    """A file that cannot be sent; the message names it and says what is wrong."""


def _kind(mode: int) -> str:
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def _open_regular(name: str) -> int:
    """An open descriptor of the regular file ``name``; :class:`FileProblem` otherwise (nothing left open)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise FileProblem(f"cannot read {name}: {e.strerror or e}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        os.close(fd)
        raise FileProblem(f"cannot read {name}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FileProblem(f"cannot read {name}: it is {_kind(mode)}, not a regular file")
    return fd


def read_chunks(name: str, chunk_bytes: int) -> Iterator[bytes]:
    """The bytes of the regular file ``name`` in pieces of at most ``chunk_bytes``.

    The file is opened and checked now (:class:`FileProblem` at once); it is read as the pieces are
    taken and closed when the iterator is exhausted or closed. A read error mid-way is a FileProblem.
    """
    fd = _open_regular(name)

    def pieces() -> Iterator[bytes]:
        try:
            while chunk := os.read(fd, chunk_bytes):
                yield chunk
        except OSError as e:
            raise FileProblem(f"cannot read {name}: {e.strerror or e}") from None
        finally:
            os.close(fd)

    return pieces()


def read_text(name: str, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of the regular file ``name``, at most ``limit`` bytes; :class:`FileProblem` otherwise."""
    fd = _open_regular(name)
    try:
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise FileProblem(f"cannot read {name}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileProblem(f"cannot read {name}: larger than the limit of {limit:,} bytes")
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileProblem(f"cannot read {name}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def write_replacing(name: str, pieces: Iterator[bytes]) -> int:
    """Write ``pieces`` to ``name`` through a temporary file beside it, renamed over ``name`` only
    once all arrived: an interrupted or failed export leaves no partial file (and an older file as
    it was). Returns the bytes written. :class:`FileProblem` naming the file when it cannot be
    written; an exception from ``pieces`` propagates after the temporary file is removed."""
    import tempfile

    directory = os.path.dirname(os.path.abspath(name))
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(name)}.", suffix=".part")
    except OSError as e:
        raise FileProblem(f"cannot write {name}: {e.strerror or e}") from None
    written = 0
    try:
        mask = os.umask(0)  # mkstemp makes 0600; the file gets the mode a plain open would give
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as out:
            for piece in pieces:
                out.write(piece)
                written += len(piece)
        os.replace(temp, name)
    except OSError as e:
        _unlink_quietly(temp)
        raise FileProblem(f"cannot write {name}: {e.strerror or e}") from None
    except BaseException:
        _unlink_quietly(temp)
        raise
    return written


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
