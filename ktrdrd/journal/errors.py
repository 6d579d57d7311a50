"""The errors of the journal: it cannot be opened safely, or a write did not commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ktrdr.rpc.errors import ApiError
from ktrdr.wire import StatusCode

#: Seconds a client is told to wait before retrying a start while the journal cannot write.
RETRY_AFTER_S = 5.0


class JournalOpenError(Exception):
    """The journal at ``path`` is unreadable, corrupt, foreign or too new; the file was not modified.

    ``str(error)`` is a complete sentence for people: the path, what is wrong and what to do.
    """

    def __init__(self, path: Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"cannot open the operations journal {self.path}: {problem}")


class JournalWriteError(ApiError):
    """A journal write did not commit (disk full, I/O error, …): nothing of it is on disk.

    RESOURCE_EXHAUSTED with reason ``JOURNAL_FULL`` when the disk (or the file size limit) is full,
    else UNAVAILABLE with reason ``JOURNAL_WRITE_FAILED``; the message names the database and
    SQLite's reason. Retrying later may succeed (``retry_after_s``).
    """

    @classmethod
    def from_sqlite(cls, path: Path, exc: BaseException) -> JournalWriteError:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code == sqlite3.SQLITE_FULL:
            return cls(
                StatusCode.RESOURCE_EXHAUSTED,
                f"the operations journal {path} cannot grow: {exc}; free disk space",
                "JOURNAL_FULL",
                retry_after_s=RETRY_AFTER_S,
            )
        return cls(
            StatusCode.UNAVAILABLE,
            f"the operations journal {path} cannot be written: {exc}",
            "JOURNAL_WRITE_FAILED",
            retry_after_s=RETRY_AFTER_S,
        )
