"""Read-only inspection of an existing journal file before anything opens it for writing.

A database that is unreadable, corrupt, not a ktrdr journal or from a newer ktrdrd must be refused
without being touched, so the check opens it with ``mode=ro`` and only reads.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path

from ktrdrd.journal.errors import JournalOpenError
from ktrdrd.journal.migrations import APPLICATION_ID, LATEST_VERSION

_MOVE_ASIDE = "move it aside (ktrdrd then starts with an empty journal) or restore a backup"


def check_existing(path: Path) -> None:
    """Raise :class:`JournalOpenError` unless ``path`` is missing, empty or a healthy journal ktrdrd can use.

    Never writes to ``path`` (reading a ``-wal`` left by a crash may create its ``-shm`` index).
    """
    if not path.exists():
        if not path.parent.is_dir():
            raise JournalOpenError(path, f"the directory {path.parent} does not exist")
        return
    if not path.is_file():
        raise JournalOpenError(path, "it exists but is not a regular file")
    if not os.access(path, os.R_OK | os.W_OK):
        raise JournalOpenError(path, f"no read/write permission for uid {os.getuid()}")
    if path.stat().st_size == 0:
        return
    # Without a -wal file the database is complete in the main file: read it as immutable, which creates
    # no side files. With one (after a crash), read through it so committed transactions count.
    has_wal = Path(f"{path}-wal").exists()
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + ("?mode=ro" if has_wal else "?immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
            application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise JournalOpenError(path, f"not a readable SQLite database ({exc}); {_MOVE_ASIDE}") from exc
    if problems != ["ok"]:
        raise JournalOpenError(path, f"integrity check failed ({'; '.join(problems)}); {_MOVE_ASIDE}")
    if application_id not in (0, APPLICATION_ID) or (application_id == 0 and tables):
        raise JournalOpenError(
            path, f"it is an SQLite database but not a ktrdr journal (tables: {', '.join(tables) or 'none'})"
        )
    if version > LATEST_VERSION:
        raise JournalOpenError(
            path,
            f"schema version {version} was written by a newer ktrdrd; this one knows versions up to "
            f"{LATEST_VERSION}. Run the newer ktrdrd, or {_MOVE_ASIDE}",
        )
