"""The training host's input store: blobs kept under their SHA-256, with a size cap and LRU eviction.

Layout: ``<dir>/<sha256>`` (64 lowercase hex characters), one file per blob, plus ``.tmp-*`` files
of uploads in progress (removed at start-up). A blob's last use is its file's mtime (set when it
is stored and whenever a job takes it), so the LRU order survives a restart.

Caps: a single blob larger than ``max_blob_bytes``, or one that cannot fit in ``max_total_bytes``
once every evictable blob is gone, is refused (:class:`StoreFull`). Eviction removes the least
recently used blobs first and never one in the pinned set (the inputs of queued and running jobs,
given by a callable). An upload is written to a temporary file while it is hashed; only a blob whose
size and SHA-256 match its header is renamed into place (:class:`BlobMismatch` otherwise, nothing
kept). Blocking file work: callers run these methods in a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DIGEST = re.compile(r"[0-9a-f]{64}")


class StoreFull(Exception):
    """The blob does not fit under the store's caps."""


class BlobMismatch(ValueError):
    """The uploaded bytes do not match the header's size or digest; ``field`` names the header field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Limits:
    max_blob_bytes: int
    max_total_bytes: int


class Upload:
    """One upload in progress: feed :meth:`write` the chunks, then :meth:`finish` or :meth:`abort`."""

    def __init__(self, store: BlobStore, sha256: str, size: int) -> None:
        self.store, self.sha256, self.size = store, sha256, size
        self.path = store.root / f".tmp-{sha256}-{os.getpid()}-{id(self)}"
        self._fh = open(self.path, "wb")  # noqa: SIM115 (closed in finish/abort)
        self._hash = hashlib.sha256()
        self.received = 0

    def write(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > self.size:
            raise BlobMismatch("header.blob.size_bytes", f"more data than the {self.size} bytes declared")
        self._hash.update(data)
        self._fh.write(data)

    def finish(self, pinned: Iterable[str]) -> None:
        """Check size and digest, make room, store. Raises BlobMismatch or StoreFull (nothing kept)."""
        try:
            if self.received != self.size:
                raise BlobMismatch(
                    "header.blob.size_bytes", f"declared {self.size} bytes, received {self.received}"
                )
            got = self._hash.hexdigest()
            if got != self.sha256:
                raise BlobMismatch(
                    "header.blob.sha256", f"declared sha256 {self.sha256}, the data hash to {got}"
                )
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self.store.admit(self.path, self.sha256, self.size, pinned)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    """See the module docstring. Thread-safe."""

    def __init__(self, root: Path, limits: Limits) -> None:
        self.root = root
        self.limits = limits
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        for path in root.iterdir():
            if path.name.startswith(".tmp-"):
                path.unlink(missing_ok=True)
            elif DIGEST.fullmatch(path.name):
                self._sizes[path.name] = path.stat().st_size

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def path(self, sha256: str) -> Path:
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        with self._lock:
            return sha256 in self._sizes

    def missing(self, digests: Iterable[str]) -> list[str]:
        """The digests not in the store, in order, each once."""
        with self._lock:
            return list(dict.fromkeys(d for d in digests if d not in self._sizes))

    def check_size(self, size: int) -> None:
        """StoreFull when a blob of ``size`` bytes can never be stored."""
        cap = min(self.limits.max_blob_bytes, self.limits.max_total_bytes)
        if size > cap:
            raise StoreFull(f"a blob of {size} bytes exceeds the host's cap of {cap} bytes per blob")

    def begin(self, sha256: str, size: int) -> Upload:
        self.check_size(size)
        return Upload(self, sha256, size)

    def touch(self, digests: Iterable[str]) -> None:
        """Mark blobs used now (LRU)."""
        for d in digests:
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path(d))

    def admit(self, src: Path, sha256: str, size: int, pinned: Iterable[str]) -> None:
        """Move the verified file ``src`` into the store as ``sha256`` after making room."""
        keep = set(pinned)
        with self._lock:
            if sha256 in self._sizes:
                src.unlink(missing_ok=True)
                os.utime(self.path(sha256))
                return
            self._make_room(size, keep)
            os.replace(src, self.path(sha256))
            self._sizes[sha256] = size

    def add_file(self, src: Path, pinned: Iterable[str]) -> tuple[str, int]:
        """Copy a file the host made (a checkpoint) into the store; returns (sha256, size).
        StoreFull when it does not fit."""
        h = hashlib.sha256()
        with open(src, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        sha256, size = h.hexdigest(), src.stat().st_size
        self.check_size(size)
        tmp = self.root / f".tmp-{sha256}-{os.getpid()}-copy"
        shutil.copyfile(src, tmp)
        try:
            self.admit(tmp, sha256, size, pinned)
        finally:
            tmp.unlink(missing_ok=True)
        return sha256, size

    def _make_room(self, size: int, keep: set[str]) -> None:
        free = self.limits.max_total_bytes - sum(self._sizes.values())
        if free >= size:
            return
        candidates = sorted(
            (d for d in self._sizes if d not in keep), key=lambda d: self.path(d).stat().st_mtime_ns
        )
        victims: list[str] = []
        for d in candidates:
            if free >= size:
                break
            victims.append(d)
            free += self._sizes[d]
        if free < size:
            raise StoreFull(
                f"no room for {size} bytes: the store holds {sum(self._sizes.values())} of "
                f"{self.limits.max_total_bytes} bytes, and the blobs of queued and running jobs stay"
            )
        for d in victims:
            self.path(d).unlink(missing_ok=True)
            del self._sizes[d]
