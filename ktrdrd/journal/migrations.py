"""Versioned schema migrations of the journal database.

The schema version is ``PRAGMA user_version``: version N means ``MIGRATIONS[:N]`` have run. Each
migration runs in its own transaction together with the version bump, so a failed migration leaves
the database at the previous version. ``PRAGMA application_id`` marks the file as a ktrdr journal.
Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

APPLICATION_ID = 0x6B747264  # "ktrd"

Migration = Callable[[sqlite3.Connection], None]


def _execute_all(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated DDL statements inside the current transaction.

    (``executescript`` would COMMIT the migration's transaction first; the DDL here has no ``;`` in
    literals, so a plain split is exact.)
    """
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v1_operations(conn: sqlite3.Connection) -> None:
    """Operations, their labels (for label filters) and their events."""
    _execute_all(
        conn,
        """
        CREATE TABLE operations (
            id          TEXT PRIMARY KEY,
            kind        TEXT NOT NULL,
            state       TEXT NOT NULL,
            stage       TEXT NOT NULL DEFAULT '',
            progress    TEXT NOT NULL DEFAULT '{}',
            labels      TEXT NOT NULL DEFAULT '{}',
            params      TEXT NOT NULL DEFAULT '{}',
            parent      TEXT NOT NULL DEFAULT '',
            request_id  TEXT NOT NULL DEFAULT '',
            create_time REAL NOT NULL,
            start_time  REAL,
            update_time REAL NOT NULL,
            end_time    REAL,
            error       TEXT,
            result      TEXT,
            last_seq    INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX operations_request_id ON operations (request_id) WHERE request_id != '';
        CREATE INDEX operations_kind ON operations (kind, id);
        CREATE INDEX operations_state ON operations (state, id);
        CREATE INDEX operations_parent ON operations (parent, id);
        CREATE INDEX operations_end_time ON operations (end_time) WHERE end_time IS NOT NULL;

        CREATE TABLE operation_labels (
            op_id TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
            key   TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (op_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX operation_labels_kv ON operation_labels (key, value, op_id);

        CREATE TABLE operation_events (
            op_id    TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
            seq      INTEGER NOT NULL,
            time     REAL NOT NULL,
            type     TEXT NOT NULL,
            state    TEXT NOT NULL,
            stage    TEXT NOT NULL,
            progress TEXT NOT NULL,
            message  TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (op_id, seq)
        ) WITHOUT ROWID;
        """,
    )


def _v2_write_probe(conn: sqlite3.Connection) -> None:
    """One row the daemon rewrites to learn whether the disk takes writes again after a failure."""
    _execute_all(
        conn,
        """
        CREATE TABLE journal_probe (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            time REAL NOT NULL
        );
        """,
    )


def _v3_bar_catalog(conn: sqlite3.Connection) -> None:
    """The bar cache's catalog: one row per stored series, and its covered and known-empty intervals
    (``kind`` ``covered`` or ``empty``; ``[start_ns, end_ns)``, UTC ns)."""
    _execute_all(
        conn,
        """
        CREATE TABLE bar_series (
            symbol      TEXT NOT NULL,
            timeframe   TEXT NOT NULL,
            source      TEXT NOT NULL,
            calendar    TEXT NOT NULL,
            digest      TEXT NOT NULL,
            bar_count   INTEGER NOT NULL,
            first_ns    INTEGER NOT NULL,
            last_ns     INTEGER NOT NULL,
            update_time REAL NOT NULL,
            PRIMARY KEY (symbol, timeframe)
        ) WITHOUT ROWID;

        CREATE TABLE bar_intervals (
            symbol    TEXT NOT NULL,
            timeframe TEXT NOT NULL,
            kind      TEXT NOT NULL CHECK (kind IN ('covered', 'empty')),
            start_ns  INTEGER NOT NULL,
            end_ns    INTEGER NOT NULL,
            PRIMARY KEY (symbol, timeframe, kind, start_ns),
            FOREIGN KEY (symbol, timeframe) REFERENCES bar_series (symbol, timeframe) ON DELETE CASCADE
        ) WITHOUT ROWID;
        """,
    )


def _v4_model_registry(conn: sqlite3.Connection) -> None:
    """The model registry's catalog (:mod:`ktrdrd.models`): one row per model (strategy name) with
    the next version number to give (numbers are never reused), one per version (its summary: key
    metrics, manifest, normalized strategy and feature names as JSON), and the aliases. An alias
    keeps its version from being deleted (no cascade)."""
    _execute_all(
        conn,
        """
        CREATE TABLE models (
            strategy     TEXT PRIMARY KEY,
            next_version INTEGER NOT NULL,
            create_time  REAL NOT NULL,
            update_time  REAL NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE model_versions (
            strategy            TEXT NOT NULL REFERENCES models (strategy),
            version             INTEGER NOT NULL,
            create_time         REAL NOT NULL,
            operation           TEXT NOT NULL DEFAULT '',
            size_bytes          INTEGER NOT NULL,
            metrics             TEXT NOT NULL,
            manifest            TEXT NOT NULL,
            strategy_normalized TEXT NOT NULL,
            feature_names       TEXT NOT NULL,
            PRIMARY KEY (strategy, version)
        ) WITHOUT ROWID;

        CREATE TABLE model_aliases (
            strategy    TEXT NOT NULL,
            alias       TEXT NOT NULL,
            version     INTEGER NOT NULL,
            update_time REAL NOT NULL,
            PRIMARY KEY (strategy, alias),
            FOREIGN KEY (strategy, version) REFERENCES model_versions (strategy, version)
        ) WITHOUT ROWID;
        """,
    )


MIGRATIONS: tuple[Migration, ...] = (_v1_operations, _v2_write_probe, _v3_bar_catalog, _v4_model_registry)
LATEST_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's schema version (``PRAGMA user_version``)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring ``conn`` (autocommit mode, ``isolation_level=None``) up to ``len(migrations)``.

    Returns the number of migrations applied. Raises ``ValueError`` when the database is newer than
    ``migrations``; a migration that raises is rolled back and the error propagates.
    """
    current = schema_version(conn)
    if current > len(migrations):
        raise ValueError(f"schema version {current} is newer than this ktrdrd knows ({len(migrations)})")
    for version in range(current, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            migrations[version](conn)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(migrations) - current
