"""The journal's single writer: one thread owns the write connection and group-commits queued writes.

Callers on the event loop ``submit`` a function ``fn(conn) -> value``; the thread takes everything
queued (up to ``MAX_BATCH``), runs each in its own SAVEPOINT inside one transaction, COMMITs once and
then resolves the callers' futures on the loop, in submission order. A future resolving means its
write is committed (durable as ``synchronous`` allows), so "acknowledged" == "committed". A function
that raises rolls back only its own savepoint; a failed transaction (disk full, I/O error: any
``sqlite3.Error`` outside a function) fails the whole batch with a
:class:`~ktrdrd.journal.errors.JournalWriteError`, and the thread goes on serving: the next batch
tries again, so the journal recovers when the disk does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ktrdrd.journal.errors import JournalWriteError

log = logging.getLogger(__name__)

MAX_BATCH = 1024
_STOP = object()

WriteFn = Callable[[sqlite3.Connection], Any]


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode (explicit BEGIN) with the journal's pragmas: WAL, ``synchronous``."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=5.0)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class Writer:
    """The write thread. Start with :meth:`start` (runs ``init(conn)`` first, in the thread)."""

    def __init__(self, path: Path, synchronous: str, loop: asyncio.AbstractEventLoop) -> None:
        self._path = path
        self._synchronous = synchronous
        self._loop = loop
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def start(self, init: WriteFn) -> Any:
        """Open the connection in the writer thread, run ``init(conn)`` there and return its value.

        If opening or ``init`` raises, the thread ends and the exception propagates.
        """
        ready: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(init, ready), name="journal-writer", daemon=True
        )
        self._thread.start()
        try:
            return await asyncio.wrap_future(ready)
        except BaseException:
            self._closed = True
            await asyncio.to_thread(self._thread.join)
            raise

    def submit(self, fn: WriteFn) -> asyncio.Future[Any]:
        """Queue ``fn``; the returned future resolves (on the loop) once its transaction committed.

        Call from the event loop thread only. Raises RuntimeError after :meth:`close` began.
        """
        if self._closed:
            raise RuntimeError("the journal is closed")
        future = self._loop.create_future()
        self._queue.put((fn, future))
        return future

    async def close(self) -> None:
        """Commit everything queued so far, then stop the thread and close the connection."""
        if self._closed or self._thread is None:
            return
        self._closed = True
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def _main(self, init: WriteFn, ready: concurrent.futures.Future[Any]) -> None:
        try:
            conn = connect(self._path, self._synchronous)
        except BaseException as exc:
            ready.set_exception(exc)
            return
        try:
            try:
                ready.set_result(init(conn))
            except BaseException as exc:
                ready.set_exception(exc)
                return
            self._serve(conn)
        finally:
            conn.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [item for item in batch if item is not _STOP]
            if batch:
                self._commit(conn, batch)

    def _commit(self, conn: sqlite3.Connection, batch: list[tuple[WriteFn, asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, future in batch:
                conn.execute("SAVEPOINT item")
                try:
                    value = fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO item")
                    if isinstance(exc, sqlite3.OperationalError):  # the disk, not the function's logic
                        exc = JournalWriteError.from_sqlite(self._path, exc)
                    outcomes.append((future, None, exc))
                else:
                    outcomes.append((future, value, None))
                conn.execute("RELEASE item")
            conn.execute("COMMIT")
        except Exception as exc:  # the transaction failed as a whole: nothing of the batch is on disk
            log.warning("journal commit failed: %s", exc)
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            error = JournalWriteError.from_sqlite(self._path, exc)
            outcomes = [(future, None, error) for _, future in batch]
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(_resolve, outcomes)


def _resolve(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, exc in outcomes:
        if future.cancelled():
            continue
        if exc is None:
            future.set_result(value)
        else:
            future.set_exception(exc)
