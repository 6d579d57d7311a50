"""A version directory as a tar archive, produced in bounded chunks (``ExportModelVersion``).

:func:`plan` lists the members and the archive's exact size; :func:`chunks` then yields the archive
in pieces of at most :data:`CHUNK_BYTES`, reading one piece of one file at a time, so memory stays
bounded whatever the weights weigh. Both are blocking (the service advances them in a thread).
Members are ``<prefix>/<file>`` (ustar headers, mode 0644, the files' modification times),
followed by the two zero blocks that end a tar archive.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ktrdr.research.modeldir import FILES

#: Largest piece of the archive per message: 1 MiB (a ctl frame carries it as base64, 4/3 of it,
#: well under the 4 MiB frame cap).
CHUNK_BYTES = 1024 * 1024
_BLOCK = tarfile.BLOCKSIZE


@dataclass(frozen=True)
class Plan:
    """The members of the archive (header bytes, file, size) and its total size in bytes."""

    members: list[tuple[bytes, Path, int]]
    total_bytes: int


def plan(directory: Path, prefix: str) -> Plan:
    """The archive of ``directory``'s model files under ``prefix``."""
    members = []
    total = 0
    for name in FILES:
        path = directory / name
        info = tarfile.TarInfo(f"{prefix}/{name}")
        status = path.stat()
        info.size, info.mtime, info.mode = status.st_size, int(status.st_mtime), 0o644
        header = info.tobuf(format=tarfile.USTAR_FORMAT)
        members.append((header, path, info.size))
        total += len(header) + _padded(info.size)
    return Plan(members, total + 2 * _BLOCK)


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def chunks(archive: Plan) -> Iterator[bytes]:
    """The archive's bytes in pieces of at most :data:`CHUNK_BYTES` (the last may be shorter).

    A file that changed size since :func:`plan` raises ``OSError`` (versions are immutable, so only
    a deletion during the export does that)."""
    pending = bytearray()
    for header, path, size in archive.members:
        pending += header
        with open(path, "rb") as fh:
            left = size
            while left:
                piece = fh.read(min(CHUNK_BYTES, left))
                if not piece:
                    raise OSError(f"{path}: shorter than when the export began")
                left -= len(piece)
                pending += piece
                while len(pending) >= CHUNK_BYTES:
                    yield bytes(pending[:CHUNK_BYTES])
                    del pending[:CHUNK_BYTES]
        pending += b"\0" * (_padded(size) - size)
    pending += b"\0" * (2 * _BLOCK)
    while pending:
        yield bytes(pending[:CHUNK_BYTES])
        del pending[:CHUNK_BYTES]
