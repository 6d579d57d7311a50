"""The operations journal: SQLite (WAL) tables for operations and their events.

Durability: ``synchronous=FULL`` by default. With WAL, NORMAL already keeps every committed
transaction across ``kill -9`` of the process (the OS holds the WAL pages); FULL also keeps them
across power loss, and group commit (see :mod:`ktrdrd.journal.writer`) makes its fsync per batch
cheap. An event is *acknowledged* when the transaction holding it committed.

All methods are called from the event loop. Writes go to the single writer thread. Scans (lists,
event ranges, start-up loads) run on one reader thread with its own connection. A point read by
primary key (:meth:`Journal.get_operation`) runs on the loop thread itself, on a third, read-only
connection, because handing it to a thread costs more than the read; see :class:`_PointReader`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ktrdr.wire import NAME_PREFIX, TERMINAL_STATES, EventType, OperationState
from ktrdrd.journal.errors import JournalOpenError
from ktrdrd.journal.migrations import migrate
from ktrdrd.journal.preflight import check_existing
from ktrdrd.journal.records import EventRecord, OperationRecord
from ktrdrd.journal.writer import Writer, connect

T = TypeVar("T")

_OP_COLUMNS = (
    "id, kind, state, stage, progress, labels, params, parent, request_id, create_time, start_time,"
    " update_time, end_time, error, result, last_seq"
)
_EVENT_COLUMNS = "op_id, seq, time, type, state, stage, progress, message"
_GET_OP_SQL = f"SELECT {_OP_COLUMNS} FROM operations WHERE id = ?"
_TERMINAL_SQL = ", ".join(f"'{state}'" for state in sorted(TERMINAL_STATES))


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _op_from_row(row: tuple[Any, ...]) -> OperationRecord:
    return OperationRecord(
        name=NAME_PREFIX + row[0],
        kind=row[1],
        state=OperationState(row[2]),
        stage=row[3],
        progress=json.loads(row[4]),
        labels=json.loads(row[5]),
        params=json.loads(row[6]),
        parent=row[7],
        request_id=row[8],
        create_time=row[9],
        start_time=row[10],
        update_time=row[11],
        end_time=row[12],
        error=_loads(row[13]),
        result=_loads(row[14]),
        last_seq=row[15],
    )


def _event_from_row(row: tuple[Any, ...]) -> EventRecord:
    return EventRecord(
        operation=NAME_PREFIX + row[0],
        seq=row[1],
        time=row[2],
        type=EventType(row[3]),
        state=OperationState(row[4]),
        stage=row[5],
        progress=json.loads(row[6]),
        message=row[7],
    )


def _op_values(rec: OperationRecord) -> tuple[Any, ...]:
    return (
        rec.id,
        rec.kind,
        rec.state,
        rec.stage,
        _dumps(rec.progress),
        _dumps(rec.labels),
        _dumps(rec.params),
        rec.parent,
        rec.request_id,
        rec.create_time,
        rec.start_time,
        rec.update_time,
        rec.end_time,
        _dumps(rec.error),
        _dumps(rec.result),
        rec.last_seq,
    )


def _insert_event(conn: sqlite3.Connection, event: EventRecord) -> None:
    conn.execute(
        f"INSERT INTO operation_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.operation.removeprefix(NAME_PREFIX),
            event.seq,
            event.time,
            event.type,
            event.state,
            event.stage,
            _dumps(event.progress),
            event.message,
        ),
    )


def _select_op(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> OperationRecord | None:
    row = conn.execute(f"SELECT {_OP_COLUMNS} FROM operations WHERE {where}", args).fetchone()
    return None if row is None else _op_from_row(row)


def _delete_expired(conn: sqlite3.Connection, cutoff: float) -> int:
    """Delete terminal operations that ended before ``cutoff`` (epoch s); events and labels cascade."""
    return conn.execute(
        f"DELETE FROM operations WHERE end_time IS NOT NULL AND end_time < ? AND state IN ({_TERMINAL_SQL})",
        (cutoff,),
    ).rowcount


class _PointReader:
    """A read-only connection used on the event loop thread for single-row reads by primary key.

    Why the loop may run these reads itself: such a read touches a handful of pages (the table's
    B-tree by ``id``) that sit in SQLite's or the OS's cache, and costs tens of µs, well under the
    loop's ~1 ms budget, while the hop to the reader thread and back costs more than the read. It
    cannot wait on the writer: in WAL mode a reader works from the last committed snapshot and
    never takes a lock the writer holds. The rare moments a reader could wait (WAL recovery, every
    read-mark slot taken) give SQLITE_BUSY at once (busy timeout 0) and :meth:`read` returns None,
    so the caller falls back to the reader thread. The connection never writes (``query_only``),
    so it never runs an automatic checkpoint; it is closed while the writer is still open, so
    closing it does not checkpoint either (only the last connection to close does that).
    Each read runs its statement to the end (``fetchall``), so no read transaction stays open to
    hold back checkpoints or to pin an old snapshot for the next read.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, path: Path) -> _PointReader:
        """Open (in any thread; the connection is then used by the loop thread only)."""
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=0.0, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        return cls(conn)

    def read(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]] | None:
        """Every row of ``sql``, or None if SQLite would have to wait (the caller reads elsewhere)."""
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if (exc.sqlite_errorcode & 0xFF) in (
                sqlite3.SQLITE_BUSY,
                sqlite3.SQLITE_LOCKED,
            ):  # extended codes too
                return None
            raise

    def close(self) -> None:
        self._conn.close()


class Journal:
    """The store. Create with :meth:`open`; finish with :meth:`close`."""

    def __init__(self, path: Path, writer: Writer, point: _PointReader) -> None:
        self.path = path
        self._writer = writer
        self._point = point
        self._local = threading.local()
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-read")

    @classmethod
    async def open(
        cls, path: Path, *, retention_cutoff: float | None = None, synchronous: str = "FULL"
    ) -> Journal:
        """Check ``path`` read-only, then open it for writing, migrate and apply retention.

        ``retention_cutoff``: terminal operations that ended before it (epoch s) are deleted.
        ``synchronous``: ``FULL`` (survives power loss) or ``NORMAL`` (survives process crashes).
        Raises :class:`JournalOpenError` (the file left unmodified) when it cannot be used.
        """
        path = Path(path)
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        await asyncio.to_thread(check_existing, path)
        writer = Writer(path, synchronous, asyncio.get_running_loop())

        def init(conn: sqlite3.Connection) -> None:
            migrate(conn)
            if retention_cutoff is not None:
                conn.execute("BEGIN IMMEDIATE")
                _delete_expired(conn, retention_cutoff)
                conn.execute("COMMIT")

        try:
            await writer.start(init)
        except sqlite3.Error as exc:
            raise JournalOpenError(path, f"SQLite refused it ({exc})") from exc
        except ValueError as exc:
            raise JournalOpenError(path, str(exc)) from exc
        try:
            point = await asyncio.to_thread(_PointReader.open, path)
        except BaseException:
            await writer.close()
            raise
        return cls(path, writer, point)

    async def close(self) -> None:
        """Commit queued writes, stop both threads and close the connections."""
        self._point.close()
        await self._writer.close()
        await asyncio.get_running_loop().run_in_executor(self._reader, self._close_reader)
        self._reader.shutdown(wait=True)

    # ---- reads (reader thread) -------------------------------------------------------------------

    def _read_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, "NORMAL")
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
        return conn

    def _close_reader(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader, lambda: fn(self._read_conn()))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the reader thread (a read-only connection) and return its value."""
        return await self._read(fn)

    async def point_read(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Every row of ``sql``, a read of one row by primary key: on the loop thread (see
        :class:`_PointReader`), on the reader thread only if that would wait."""
        rows = self._point.read(sql, args)
        if rows is None:
            return await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return rows

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue the write ``fn(conn)`` for the writer thread; the future resolves once it is committed
        (see :class:`~ktrdrd.journal.writer.Writer`). Loop thread only."""
        return self._writer.submit(fn)

    async def get_operation(self, op_id: str) -> OperationRecord | None:
        """The operation with id ``op_id`` (``op_...``) as last committed, or None.

        Read on the loop thread (see :class:`_PointReader`); on the reader thread only if that would wait.
        """
        rows = self._point.read(_GET_OP_SQL, (op_id,))
        if rows is None:
            return await self._read(lambda conn: _select_op(conn, "id = ?", (op_id,)))
        return _op_from_row(rows[0]) if rows else None

    async def get_by_request_id(self, request_id: str) -> OperationRecord | None:
        """The operation started with the non-empty ``request_id``, or None."""
        return await self._read(
            lambda conn: _select_op(conn, "request_id = ? AND request_id != ''", (request_id,))
        )

    async def load_nonterminal(self) -> list[OperationRecord]:
        """Every operation not in a terminal state, oldest first."""

        def read(conn: sqlite3.Connection) -> list[OperationRecord]:
            rows = conn.execute(
                f"SELECT {_OP_COLUMNS} FROM operations WHERE state NOT IN ({_TERMINAL_SQL}) ORDER BY id"
            ).fetchall()
            return [_op_from_row(row) for row in rows]

        return await self._read(read)

    async def list_operations(
        self,
        *,
        kind: str = "",
        states: Iterable[str] = (),
        labels: dict[str, str] | None = None,
        parent: str = "",
        before_id: str = "",
        limit: int = 100,
    ) -> list[OperationRecord]:
        """Operations matching every given filter, newest (largest id) first, ids < ``before_id`` if set."""
        where: list[str] = []
        args: list[Any] = []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        states = list(states)
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args.extend(states)
        if parent:
            where.append("parent = ?")
            args.append(parent)
        for key, value in (labels or {}).items():
            where.append(
                "EXISTS (SELECT 1 FROM operation_labels l WHERE l.op_id = operations.id"
                " AND l.key = ? AND l.value = ?)"
            )
            args.extend((key, value))
        if before_id:
            where.append("id < ?")
            args.append(before_id)
        sql = f"SELECT {_OP_COLUMNS} FROM operations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return await self._read(lambda conn: [_op_from_row(r) for r in conn.execute(sql, args).fetchall()])

    async def read_events(self, op_id: str, after_seq: int, limit: int = 500) -> list[EventRecord]:
        """Up to ``limit`` events of ``op_id`` with seq > ``after_seq``, in seq order."""

        def read(conn: sqlite3.Connection) -> list[EventRecord]:
            rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM operation_events WHERE op_id = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (op_id, after_seq, limit),
            ).fetchall()
            return [_event_from_row(row) for row in rows]

        return await self._read(read)

    # ---- writes (writer thread) ------------------------------------------------------------------

    async def insert_operation(self, rec: OperationRecord, first: EventRecord) -> OperationRecord | None:
        """Insert ``rec`` with its first event, unless ``rec.request_id`` is taken.

        Returns None when inserted, or the existing operation holding that request id (nothing written).
        The check and the insert are one transaction of the single writer, so concurrent starts with
        one request id create one operation.
        """

        def write(conn: sqlite3.Connection) -> OperationRecord | None:
            if rec.request_id:
                # "!= ''" lets SQLite use the partial unique index (a bound value cannot imply it).
                existing = _select_op(conn, "request_id = ? AND request_id != ''", (rec.request_id,))
                if existing is not None:
                    return existing
            conn.execute(
                f"INSERT INTO operations ({_OP_COLUMNS}) VALUES ({', '.join('?' * 16)})", _op_values(rec)
            )
            conn.executemany(
                "INSERT INTO operation_labels (op_id, key, value) VALUES (?, ?, ?)",
                [(rec.id, key, value) for key, value in rec.labels.items()],
            )
            _insert_event(conn, first)
            return None

        return await self._writer.submit(write)

    def write_event(self, event: EventRecord, rec: OperationRecord) -> asyncio.Future[None]:
        """Append ``event`` and store ``rec``'s mutable fields; the future resolves once committed.

        Not a coroutine: the write is queued in call order, before this returns.
        """

        def write(conn: sqlite3.Connection) -> None:
            _insert_event(conn, event)
            conn.execute(
                "UPDATE operations SET state = ?, stage = ?, progress = ?, start_time = ?, update_time = ?,"
                " end_time = ?, error = ?, result = ?, last_seq = ? WHERE id = ?",
                (
                    rec.state,
                    rec.stage,
                    _dumps(rec.progress),
                    rec.start_time,
                    rec.update_time,
                    rec.end_time,
                    _dumps(rec.error),
                    _dumps(rec.result),
                    rec.last_seq,
                    rec.id,
                ),
            )

        return self._writer.submit(write)

    async def delete_operation(self, op_id: str) -> str:
        """Delete a terminal operation with its events. Returns ``deleted``, ``not_done`` or ``missing``."""

        def write(conn: sqlite3.Connection) -> str:
            row = conn.execute("SELECT state FROM operations WHERE id = ?", (op_id,)).fetchone()
            if row is None:
                return "missing"
            if row[0] not in TERMINAL_STATES:
                return "not_done"
            conn.execute("DELETE FROM operations WHERE id = ?", (op_id,))
            return "deleted"

        return await self._writer.submit(write)

    async def probe(self) -> None:
        """Commit one small write (the ``journal_probe`` row): proves the disk takes writes."""
        await self._writer.submit(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO journal_probe (id, time) VALUES (1, ?)", (time.time(),)
            )
        )

    async def delete_expired(self, cutoff: float) -> int:
        """Delete terminal operations that ended before ``cutoff`` (epoch s); returns how many."""
        return await self._writer.submit(lambda conn: _delete_expired(conn, cutoff))
