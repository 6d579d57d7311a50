"""Crash-safe file replacement, standard library only (hosts and the research core share it).

:func:`write_atomic` writes a temporary file next to the target, fsyncs it, renames it over the
target and fsyncs the directory: a reader, or the file system after a crash, sees the old content or
the new, never a mix.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(d: Path) -> None:
    """Flush directory ``d`` itself (its entries: a rename or a new file in it) to disk."""
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (module docstring)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
