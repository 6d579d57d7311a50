"""The registry's catalog in the journal database (tables of migration v4): plain functions of a
connection, run by the journal's writer thread (writes) or reader thread (reads).

A version exists when its row exists; its directory is placed before the row is written and
removed after the row is deleted, so the catalog never names a directory that is not complete.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

_VERSION_COLUMNS = (
    "strategy, version, create_time, operation, size_bytes, metrics, manifest, strategy_normalized,"
    " feature_names"
)


@dataclass(frozen=True)
class VersionRecord:
    """One registered version. ``aliases``: the names pointing at it, sorted."""

    strategy: str
    version: int
    create_time: float
    operation: str
    size_bytes: int
    metrics: dict[str, float]
    manifest: dict[str, Any]
    strategy_normalized: dict[str, Any]
    feature_names: list[str]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelRecord:
    """A strategy with at least one version. ``aliases``: alias → version number."""

    strategy: str
    version_count: int
    latest_version: int
    create_time: float
    update_time: float
    aliases: dict[str, int] = field(default_factory=dict)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _aliases_of(conn: sqlite3.Connection, strategy: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT alias, version FROM model_aliases WHERE strategy = ? ORDER BY alias", (strategy,)
    ).fetchall()
    return {alias: version for alias, version in rows}


def _version(conn: sqlite3.Connection, row: tuple[Any, ...]) -> VersionRecord:
    aliases = conn.execute(
        "SELECT alias FROM model_aliases WHERE strategy = ? AND version = ? ORDER BY alias", (row[0], row[1])
    ).fetchall()
    return VersionRecord(
        strategy=row[0],
        version=row[1],
        create_time=row[2],
        operation=row[3],
        size_bytes=row[4],
        metrics=json.loads(row[5]),
        manifest=json.loads(row[6]),
        strategy_normalized=json.loads(row[7]),
        feature_names=json.loads(row[8]),
        aliases=tuple(a for (a,) in aliases),
    )


# ---- writes ---------------------------------------------------------------------------------------


def reserve_version(conn: sqlite3.Connection, strategy: str, now: float) -> int:
    """The next version number of ``strategy`` (creating its model row); never given out again."""
    conn.execute(
        "INSERT INTO models (strategy, next_version, create_time, update_time) VALUES (?, 1, ?, ?)"
        " ON CONFLICT (strategy) DO NOTHING",
        (strategy, now, now),
    )
    (version,) = conn.execute("SELECT next_version FROM models WHERE strategy = ?", (strategy,)).fetchone()
    conn.execute("UPDATE models SET next_version = ? WHERE strategy = ?", (version + 1, strategy))
    return int(version)


def insert_version(conn: sqlite3.Connection, record: VersionRecord) -> None:
    """Write ``record``'s row (its model row exists: :func:`reserve_version`)."""
    conn.execute(
        f"INSERT INTO model_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.strategy,
            record.version,
            record.create_time,
            record.operation,
            record.size_bytes,
            _dumps(record.metrics),
            _dumps(record.manifest),
            _dumps(record.strategy_normalized),
            _dumps(record.feature_names),
        ),
    )
    conn.execute(
        "UPDATE models SET update_time = ? WHERE strategy = ?", (record.create_time, record.strategy)
    )


def delete_version(conn: sqlite3.Connection, strategy: str, version: int) -> list[str] | None:
    """Delete the row unless an alias points at it. Returns None when there is no such version,
    the aliases pointing at it (nothing deleted), or ``[]`` once deleted."""
    exists = conn.execute(
        "SELECT 1 FROM model_versions WHERE strategy = ? AND version = ?", (strategy, version)
    ).fetchone()
    if exists is None:
        return None
    aliases = [
        a
        for (a,) in conn.execute(
            "SELECT alias FROM model_aliases WHERE strategy = ? AND version = ? ORDER BY alias",
            (strategy, version),
        )
    ]
    if aliases:
        return aliases
    conn.execute("DELETE FROM model_versions WHERE strategy = ? AND version = ?", (strategy, version))
    return []


def forget_versions(conn: sqlite3.Connection, keys: list[tuple[str, int]]) -> None:
    """Delete the rows (and aliases) of versions whose directory is gone (start-up reconcile)."""
    for strategy, version in keys:
        conn.execute("DELETE FROM model_aliases WHERE strategy = ? AND version = ?", (strategy, version))
        conn.execute("DELETE FROM model_versions WHERE strategy = ? AND version = ?", (strategy, version))


def set_alias(conn: sqlite3.Connection, strategy: str, alias: str, version: int, now: float) -> bool:
    """Point ``alias`` at ``version`` (created or moved); False when that version does not exist."""
    exists = conn.execute(
        "SELECT 1 FROM model_versions WHERE strategy = ? AND version = ?", (strategy, version)
    ).fetchone()
    if exists is None:
        return False
    conn.execute(
        "INSERT INTO model_aliases (strategy, alias, version, update_time) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (strategy, alias) DO UPDATE SET version = excluded.version,"
        " update_time = excluded.update_time",
        (strategy, alias, version, now),
    )
    conn.execute("UPDATE models SET update_time = ? WHERE strategy = ?", (now, strategy))
    return True


def delete_alias(conn: sqlite3.Connection, strategy: str, alias: str) -> bool:
    """Remove ``alias``; False when it does not exist."""
    return (
        conn.execute("DELETE FROM model_aliases WHERE strategy = ? AND alias = ?", (strategy, alias)).rowcount
        > 0
    )


# ---- reads ----------------------------------------------------------------------------------------

_MODEL_SQL = (
    "SELECT m.strategy, COUNT(v.version), MAX(v.version), m.create_time, m.update_time"
    " FROM models m JOIN model_versions v ON v.strategy = m.strategy"
)


def _model(conn: sqlite3.Connection, row: tuple[Any, ...]) -> ModelRecord:
    return ModelRecord(row[0], row[1], row[2], row[3], row[4], _aliases_of(conn, row[0]))


def list_models(conn: sqlite3.Connection, after: str, limit: int) -> list[ModelRecord]:
    """Models with at least one version, by strategy name, names > ``after``."""
    rows = conn.execute(
        f"{_MODEL_SQL} WHERE m.strategy > ? GROUP BY m.strategy ORDER BY m.strategy LIMIT ?", (after, limit)
    ).fetchall()
    return [_model(conn, row) for row in rows]


def get_model(conn: sqlite3.Connection, strategy: str) -> ModelRecord | None:
    row = conn.execute(f"{_MODEL_SQL} WHERE m.strategy = ? GROUP BY m.strategy", (strategy,)).fetchone()
    return None if row is None else _model(conn, row)


def list_versions(conn: sqlite3.Connection, strategy: str, before: int, limit: int) -> list[VersionRecord]:
    """Versions of ``strategy`` newest first, numbers < ``before``."""
    rows = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE strategy = ? AND version < ?"
        " ORDER BY version DESC LIMIT ?",
        (strategy, before, limit),
    ).fetchall()
    return [_version(conn, row) for row in rows]


def get_version(conn: sqlite3.Connection, strategy: str, version: int) -> VersionRecord | None:
    row = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE strategy = ? AND version = ?",
        (strategy, version),
    ).fetchone()
    return None if row is None else _version(conn, row)


def alias_target(conn: sqlite3.Connection, strategy: str, alias: str) -> int | None:
    row = conn.execute(
        "SELECT version FROM model_aliases WHERE strategy = ? AND alias = ?", (strategy, alias)
    ).fetchone()
    return None if row is None else int(row[0])


def all_versions(conn: sqlite3.Connection) -> set[tuple[str, int]]:
    """Every ``(strategy, version)`` in the catalog."""
    return {(s, v) for s, v in conn.execute("SELECT strategy, version FROM model_versions")}
