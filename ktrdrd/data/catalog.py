"""The catalog's rows (tables ``bar_series`` and ``bar_intervals``, journal migration v3).

Functions take a ``sqlite3.Connection``: :func:`save` and :func:`delete` run on the journal's
writer thread (``journal.submit``), the readers on its reader thread (``journal.read``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from ktrdrd.data.intervals import Interval


@dataclass(frozen=True)
class SeriesEntry:
    """One stored series. Times are UTC ns since the epoch; ``update_time`` epoch seconds.

    ``covered``/``known_empty``: sorted, disjoint ``[start, end)`` intervals. ``first_ns``/``last_ns``:
    open time of the first and last bar. ``digest``: SHA-256 (hex) of the Parquet file.
    """

    symbol: str
    timeframe: str
    source: str
    calendar: str
    digest: str
    bar_count: int
    first_ns: int
    last_ns: int
    update_time: float
    covered: list[Interval] = field(default_factory=list)
    known_empty: list[Interval] = field(default_factory=list)


_COLUMNS = "symbol, timeframe, source, calendar, digest, bar_count, first_ns, last_ns, update_time"


def save(conn: sqlite3.Connection, entry: SeriesEntry) -> None:
    """Insert or replace the series' row and its intervals."""
    key = (entry.symbol, entry.timeframe)
    conn.execute(f"INSERT OR REPLACE INTO bar_series ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (
        *key, entry.source, entry.calendar, entry.digest, entry.bar_count, entry.first_ns, entry.last_ns,
        entry.update_time,
    ))  # fmt: skip
    conn.execute("DELETE FROM bar_intervals WHERE symbol = ? AND timeframe = ?", key)
    conn.executemany(
        "INSERT INTO bar_intervals (symbol, timeframe, kind, start_ns, end_ns) VALUES (?, ?, ?, ?, ?)",
        [(*key, "covered", s, e) for s, e in entry.covered]
        + [(*key, "empty", s, e) for s, e in entry.known_empty],
    )


def delete(conn: sqlite3.Connection, symbol: str, timeframe: str) -> None:
    """Remove the series' row (its intervals go with it)."""
    conn.execute("DELETE FROM bar_intervals WHERE symbol = ? AND timeframe = ?", (symbol, timeframe))
    conn.execute("DELETE FROM bar_series WHERE symbol = ? AND timeframe = ?", (symbol, timeframe))


#: Whether a series is stored: one row by primary key, cheap enough for ``journal.point_read``.
EXISTS_SQL = "SELECT 1 FROM bar_series WHERE symbol = ? AND timeframe = ?"


def get(conn: sqlite3.Connection, symbol: str, timeframe: str) -> SeriesEntry | None:
    """The series' entry, or None."""
    found = select(conn, "symbol = ? AND timeframe = ?", (symbol, timeframe), limit=1)
    return found[0] if found else None


def select(
    conn: sqlite3.Connection,
    where: str,
    args: tuple[object, ...],
    *,
    limit: int,
    after: tuple[str, str] = ("", ""),
) -> list[SeriesEntry]:
    """Entries matching ``where``, ordered by (symbol, timeframe), after the key ``after``."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM bar_series WHERE ({where}) AND (symbol, timeframe) > (?, ?) "
        "ORDER BY symbol, timeframe LIMIT ?",
        (*args, *after, limit),
    ).fetchall()
    entries = []
    for row in rows:
        intervals: dict[str, list[Interval]] = {"covered": [], "empty": []}
        for kind, start, end in conn.execute(
            "SELECT kind, start_ns, end_ns FROM bar_intervals WHERE symbol = ? AND timeframe = ? "
            "ORDER BY kind, start_ns",
            row[:2],
        ):
            intervals[kind].append((start, end))
        symbol, timeframe, source, calendar, digest, bar_count, first_ns, last_ns, update_time = row
        entries.append(
            SeriesEntry(
                symbol, timeframe, source, calendar, digest, bar_count, first_ns, last_ns, update_time,
                covered=intervals["covered"], known_empty=intervals["empty"],
            )
        )  # fmt: skip
    return entries
