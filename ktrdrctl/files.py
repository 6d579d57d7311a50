"""Reading the user's files for the daemon (which opens no path): regular files only, size-capped.

:func:`read_text` opens without blocking and without taking a terminal (``O_NONBLOCK | O_NOCTTY``),
then checks the opened file itself (``fstat``: no gap between check and read), so a FIFO, a device
such as ``/dev/zero``, a directory or a socket is refused at once instead of hanging or reading
without end, and reads at most :data:`MAX_FILE_BYTES` + 1 bytes (a file that grows while read is
still refused). Problems are :class:`FileProblem` with a message naming the file.
"""

from __future__ import annotations

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
