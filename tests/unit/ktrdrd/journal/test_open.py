"""Opening the journal: migrations, and refusal of files it must not touch."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from ktrdrd.journal import JournalOpenError
from ktrdrd.journal.migrations import APPLICATION_ID, LATEST_VERSION, migrate
from ktrdrd.operations import OperationsCore
from tests.support.journal import opened


def _open(path: Path) -> None:
    async def scenario() -> None:
        core = await OperationsCore.open(path)
        await core.close()

    asyncio.run(scenario())


def _refused(path: Path) -> JournalOpenError:
    before = path.read_bytes() if path.is_file() else None
    siblings = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(JournalOpenError) as info:
        _open(path)
    if before is not None:
        assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == siblings
    assert str(path) in str(info.value)
    return info.value


def test_new_database_is_migrated_to_latest(db_path: Path) -> None:
    _open(db_path)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"operations", "operation_events", "operation_labels"} <= tables
    _open(db_path)  # reopening an up-to-date journal works and keeps the version
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION


def test_migrations_run_in_order_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    order: list[int] = []
    steps = [lambda c: order.append(1), lambda c: order.append(2)]
    assert migrate(conn, steps) == 2
    assert migrate(conn, steps) == 0
    assert order == [1, 2]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2


def test_failed_migration_rolls_back_to_previous_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)

    def create(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE one (x)")

    def broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE two (x)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        migrate(conn, [create, broken])
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"one"}


def test_garbage_file_is_refused_and_untouched(db_path: Path) -> None:
    db_path.write_bytes(b"this is not a database\x00\xff" * 300)
    error = _refused(db_path)
    assert "not a readable SQLite database" in str(error)


def test_newer_schema_is_refused_and_untouched(db_path: Path) -> None:
    _open(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 5}")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    error = _refused(db_path)
    assert "newer ktrdrd" in str(error)
    assert f"schema version {LATEST_VERSION + 5}" in str(error)


def test_foreign_sqlite_database_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    error = _refused(db_path)
    assert "not a ktrdr journal" in str(error)
    assert "customers" in str(error)


def test_damaged_journal_is_refused_and_untouched(db_path: Path) -> None:
    async def fill() -> None:
        async with opened(db_path) as core:
            for _ in range(30):
                await core.start("test.ticker", params={"steps": 0, "pad": "x" * 2000})

    asyncio.run(fill())
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(db_path.read_bytes())
    assert len(data) > 8 * 4096
    data[3 * 4096 : 6 * 4096] = b"\xa5" * (3 * 4096)  # scribble over interior b-tree pages
    db_path.write_bytes(bytes(data))
    error = _refused(db_path)
    assert "integrity check failed" in str(error) or "not a readable SQLite database" in str(error)


def test_directory_and_missing_parent_are_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalOpenError, match="not a regular file"):
        _open(tmp_path)
    with pytest.raises(JournalOpenError, match="does not exist"):
        _open(tmp_path / "missing" / "ktrdr.db")
