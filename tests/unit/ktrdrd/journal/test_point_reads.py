"""Point reads by primary key on the loop thread: fresh after every commit, and never waiting."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from ktrdr.wire import EventType, OperationState
from ktrdrd.journal import Journal
from ktrdrd.journal.records import EventRecord, OperationRecord, empty_progress


def _record(op_id: str) -> tuple[OperationRecord, EventRecord]:
    now = time.time()
    name = "operations/" + op_id
    rec = OperationRecord(
        name=name,
        kind="k",
        state=OperationState.PENDING,
        stage="",
        progress=empty_progress(),
        labels={},
        parent="",
        request_id="",
        create_time=now,
        start_time=None,
        update_time=now,
        end_time=None,
        error=None,
        result=None,
        last_seq=1,
    )
    return rec, event(name, 1, OperationState.PENDING, rec.progress)


def event(name: str, seq: int, state: OperationState, progress: dict[str, Any]) -> EventRecord:
    """A state event of ``name``."""
    return EventRecord(
        operation=name,
        seq=seq,
        time=time.time(),
        type=EventType.STATE,
        state=state,
        stage="",
        progress=progress,
        message="",
    )


def test_point_read_sees_each_commit_and_delete_without_the_reader_thread(db_path: Path) -> None:
    async def scenario() -> None:
        journal = await Journal.open(db_path)
        reads: list[Any] = []
        original = journal._read

        async def spy(fn: Any) -> Any:
            reads.append(fn)
            return await original(fn)

        journal._read = spy  # type: ignore[method-assign]
        try:
            op_id = "op_" + "1" * 26
            rec, first = _record(op_id)
            assert await journal.insert_operation(rec, first) is None
            assert (await journal.get_operation(op_id)).state == "PENDING"
            for seq, state in ((2, OperationState.RUNNING), (3, OperationState.SUCCEEDED)):
                rec.state, rec.last_seq = state, seq
                rec.end_time = time.time() if state == "SUCCEEDED" else None
                await journal.write_event(event(rec.name, seq, state, rec.progress), rec)
                got = await journal.get_operation(op_id)
                assert (got.state, got.last_seq) == (state, seq)
            assert await journal.delete_operation(op_id) == "deleted"
            assert await journal.get_operation(op_id) is None
            assert reads == []  # every one of those reads ran on the loop thread
        finally:
            await journal.close()

    asyncio.run(scenario())


class _BusyConnection:
    """Stands in for the point connection at a moment SQLite answers SQLITE_BUSY (WAL recovery, all
    read-mark slots taken): that state cannot be produced on demand while the journal is open."""

    def execute(self, sql: str, args: Any) -> Any:
        exc = sqlite3.OperationalError("database is locked")
        exc.sqlite_errorcode = sqlite3.SQLITE_BUSY_RECOVERY  # an extended code of SQLITE_BUSY
        raise exc

    def close(self) -> None:
        pass


def test_point_read_falls_back_to_the_reader_thread_when_sqlite_is_busy(db_path: Path) -> None:
    async def scenario() -> None:
        journal = await Journal.open(db_path)
        op_id = "op_" + "2" * 26
        rec, first = _record(op_id)
        await journal.insert_operation(rec, first)
        real = journal._point._conn
        journal._point._conn = _BusyConnection()  # type: ignore[assignment]
        try:
            got = await journal.get_operation(op_id)
            assert got is not None and got.name == rec.name and got.state == "PENDING"
            assert await journal.get_operation("op_" + "3" * 26) is None
        finally:
            journal._point._conn = real
            await journal.close()

    asyncio.run(scenario())
