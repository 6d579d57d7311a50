""":class:`BarCache`: the series files and their catalog, one writer per series, files off the loop.

Writes of one series (import, delete; later loads) hold that series' ``asyncio.Lock``, so they run
one at a time; reads take no lock (a file is only ever replaced whole, atomically). Every file
operation runs in a worker thread; catalog writes go through the journal's writer thread.

Imports (``mode``):

- ``create``: refused (ALREADY_EXISTS) when the series exists;
- ``replace``: the file becomes exactly the imported bars;
- ``merge`` (the default): the imported bars replace the stored bars from the import's first to its
  last bar; stored bars outside that range are kept, so a bar is never duplicated.

A series never mixes sources: importing into a series of another source is FAILED_PRECONDITION.
The catalog is written after the file; should that write fail, the call fails and the catalog keeps
describing the previous file until the next write of the series.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from ktrdr import symbols, timeframes
from ktrdr.excerpts import echo
from ktrdr.research.bars import FIELDS, Bars
from ktrdr.rpc.errors import ApiError, failed_precondition, invalid_argument, not_found
from ktrdr.wire import StatusCode
from ktrdrd.data import calendars, catalog, files, reconcile
from ktrdrd.data.catalog import SeriesEntry
from ktrdrd.data.intervals import Interval, union, without_bars
from ktrdrd.journal import Journal


def series_key(symbol: str, timeframe: str, field_prefix: str = "series") -> tuple[str, str]:
    """``(SYMBOL, timeframe)`` checked: INVALID_ARGUMENT naming the field otherwise."""
    symbol = symbols.normalize(symbol)
    if not symbols.is_symbol(symbol):
        raise invalid_argument(f"{field_prefix}.symbol", f"{echo(symbol)} is not a symbol: {symbols.RULE}")
    try:
        timeframes.parse(timeframe)
    except timeframes.TimeframeError as exc:
        raise invalid_argument(f"{field_prefix}.timeframe", str(exc)) from None
    return symbol, timeframe.strip()


class BarCache:
    """The cache under ``root`` (``<state dir>/data``) with its catalog in ``journal``."""

    def __init__(self, root: Path, journal: Journal) -> None:
        self.root = root
        self._journal = journal
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def open(self) -> list[Path]:
        """Create the directory and remove temporary files a crash left; returns those removed."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        return await asyncio.to_thread(files.remove_temporaries, self.root)

    async def reconcile(self) -> list[reconcile.Finding]:
        """Make the catalog agree with the files (:mod:`ktrdrd.data.reconcile`): a series whose file
        and entry disagree is fixed under its lock; returns what was found and done."""
        listed = await self._journal.read(lambda conn: catalog.select(conn, "1", (), limit=2**62))
        keys = sorted({(e.symbol, e.timeframe) for e in listed} | set(await asyncio.to_thread(
            reconcile.stored_series, self.root
        )))  # fmt: skip
        findings = []
        for key in keys:
            async with self._lock(key):
                finding = await asyncio.to_thread(reconcile.check, self.root, key, await self.entry(*key))
                if finding is None:
                    continue
                await self._journal.submit(functools.partial(_apply_finding, finding))
                findings.append(finding)
        return findings

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def entry(self, symbol: str, timeframe: str) -> SeriesEntry | None:
        """The catalog entry of the series, or None."""
        return await self._journal.read(lambda conn: catalog.get(conn, symbol, timeframe))

    async def entries(
        self, symbol: str, *, limit: int, after: tuple[str, str] = ("", "")
    ) -> list[SeriesEntry]:
        """Up to ``limit`` entries (of ``symbol`` only, unless it is ``""``) after the key ``after``."""
        where, args = ("symbol = ?", (symbol,)) if symbol else ("1", ())
        return await self._journal.read(
            lambda conn: catalog.select(conn, where, args, limit=limit, after=after)
        )

    async def check_import(
        self, symbol: str, timeframe: str, *, source: str, mode: str
    ) -> SeriesEntry | None:
        """The series' entry if an import of ``source`` bars in ``mode`` may go ahead: FAILED_PRECONDITION
        (reason ``SOURCE_MISMATCH``) for a series of another source, ALREADY_EXISTS (``SERIES_EXISTS``)
        for an existing series in ``create`` mode. A caller may check early; the import checks again."""
        previous = await self.entry(symbol, timeframe)
        if previous is not None and previous.source != source:
            raise failed_precondition(
                f"{symbol} {timeframe} holds {previous.source} bars; a series never mixes sources "
                f"(delete it first to import {source} bars)",
                "SOURCE_MISMATCH",
            )
        if previous is not None and mode == "create":
            raise ApiError(
                StatusCode.ALREADY_EXISTS,
                f"{symbol} {timeframe} already exists ({previous.bar_count} bars); use merge or replace",
                "SERIES_EXISTS",
            )
        return previous

    async def import_bars(self, bars: Bars, *, source: str, mode: str, calendar: str) -> SeriesEntry:
        """Store ``bars`` (validated, non-empty) as described in the module docstring."""
        key = (bars.symbol, bars.timeframe)
        async with self._lock(key):
            previous = await self.check_import(*key, source=source, mode=mode)
            merge_into = previous if mode == "merge" else None
            try:
                entry = await asyncio.to_thread(self._write, bars, source, calendar, merge_into)
            except OSError as exc:
                raise write_failed(files.series_path(self.root, *key), exc) from None
            await self._journal.submit(lambda conn: catalog.save(conn, entry))
            return entry

    def _write(self, bars: Bars, source: str, calendar: str, previous: SeriesEntry | None) -> SeriesEntry:
        path = files.series_path(self.root, bars.symbol, bars.timeframe)
        step = timeframes.parse(bars.timeframe).ns
        first, last = int(bars.time[0]), int(bars.time[-1])
        new = pa.table(
            [pa.array(bars.time), *(pa.array(getattr(bars, f)) for f in FIELDS)], schema=files.SCHEMA
        )
        covered = [(first, last + step)]
        if previous is not None:
            old = files.read(path)
            times = old.column("time").to_numpy()
            lo, hi = int(np.searchsorted(times, first, "left")), int(np.searchsorted(times, last, "right"))
            new = pa.concat_tables([old.slice(0, lo), new, old.slice(hi)])
            covered = union(previous.covered, covered)
        written = files.write_atomic(path, new)
        return _described(bars.symbol, bars.timeframe, source, calendar, written.digest, new, covered, [])

    async def merge_fetched(
        self, bars: Bars, span: Interval, empty: list[Interval], *, source: str, calendar: str
    ) -> SeriesEntry:
        """Store ``bars`` fetched for ``span`` (``[start, end)`` ns; bars sorted, unique, inside it):
        they replace every stored bar in ``span``, which joins the covered intervals; ``empty``
        (intervals the source confirmed to hold no bars) joins the known-empty ones. ``bars`` may be
        empty. One atomic replace of the file, under the series' writer lock; FAILED_PRECONDITION
        (``SOURCE_MISMATCH``) for a series of another source."""
        key = (bars.symbol, bars.timeframe)
        async with self._lock(key):
            previous = await self.check_import(*key, source=source, mode="merge")
            if previous is None and len(bars) == 0:  # no file without a bar: nothing is stored
                return _described(*key, source, calendar, "", None, [span], empty)
            try:
                entry = await asyncio.to_thread(
                    self._write_fetched, bars, span, empty, source, calendar, previous
                )
            except OSError as exc:
                raise write_failed(files.series_path(self.root, *key), exc) from None
            await self._journal.submit(lambda conn: catalog.save(conn, entry))
            return entry

    def _write_fetched(
        self,
        bars: Bars,
        span: Interval,
        empty: list[Interval],
        source: str,
        calendar: str,
        previous: SeriesEntry | None,
    ) -> SeriesEntry:
        path = files.series_path(self.root, bars.symbol, bars.timeframe)
        new = pa.table(
            [pa.array(bars.time), *(pa.array(getattr(bars, f)) for f in FIELDS)], schema=files.SCHEMA
        )
        covered, known_empty = [span], empty
        if previous is not None:
            old = files.read(path)
            times = old.column("time").to_numpy()
            lo, hi = (
                int(np.searchsorted(times, span[0], "left")),
                int(np.searchsorted(times, span[1], "left")),
            )
            new = pa.concat_tables([old.slice(0, lo), new, old.slice(hi)])
            covered, known_empty = union(previous.covered, covered), union(previous.known_empty, empty)
        if new.num_rows == 0 and previous is not None:
            return previous  # a refresh of every stored bar came back empty: keep them
        written = files.write_atomic(path, new)
        return _described(
            bars.symbol, bars.timeframe, source, calendar, written.digest, new, covered, known_empty
        )

    async def read(
        self, symbol: str, timeframe: str, start_ns: int | None, end_ns: int | None, tail: int
    ) -> Bars:
        """Bars with open time in ``[start_ns, end_ns)`` (None: open side), the last ``tail`` if > 0.

        NOT_FOUND when the series is not in the cache.
        """
        # Existence only (not the entry with its intervals: thousands for a long XNYS series), read
        # on the loop: `data show --tail 5` pays one thread hop, for the file (bench cli_startup).
        if not await self._journal.point_read(catalog.EXISTS_SQL, (symbol, timeframe)):
            raise not_found(f"series {symbol} {timeframe}", "SERIES_NOT_FOUND")
        path = files.series_path(self.root, symbol, timeframe)
        return await asyncio.to_thread(_read_range, path, symbol, timeframe, start_ns, end_ns, tail)

    async def read_pieces(
        self, symbol: str, timeframe: str, start_ns: int | None, end_ns: int | None
    ) -> AsyncIterator[Bars]:
        """The bars of ``read(symbol, timeframe, start_ns, end_ns, 0)`` in order, in pieces of at most
        :data:`files.ROW_GROUP_BARS`, each read (in a worker thread) when the next is asked for: a
        stream whose client stops reading holds one piece, whatever the series' length.

        NOT_FOUND when the series is not in the cache (checked before the first piece)."""
        if not await self._journal.point_read(catalog.EXISTS_SQL, (symbol, timeframe)):
            raise not_found(f"series {symbol} {timeframe}", "SERIES_NOT_FOUND")
        path = files.series_path(self.root, symbol, timeframe)
        return _pieces(files.iter_range(path, start_ns, end_ns), symbol, timeframe)

    async def delete(self, symbol: str, timeframe: str) -> SeriesEntry:
        """Remove the series (catalog first, then the file); returns its last entry. NOT_FOUND if absent."""
        key = (symbol, timeframe)
        async with self._lock(key):
            entry = await self.entry(*key)
            if entry is None:
                raise not_found(f"series {symbol} {timeframe}", "SERIES_NOT_FOUND")
            await self._journal.submit(lambda conn: catalog.delete(conn, *key))
            await asyncio.to_thread(files.remove, files.series_path(self.root, *key))
            return entry


def _described(
    symbol: str,
    timeframe: str,
    source: str,
    calendar: str,
    digest: str,
    table: pa.Table | None,
    covered: list[Interval],
    confirmed_empty: list[Interval],
) -> SeriesEntry:
    """The catalog entry of a series written as ``table`` (None: no file, no bar): its known-empty
    intervals are the calendar's closures within ``covered`` plus ``confirmed_empty`` (what the
    source said holds no bars), less the slots that hold a bar."""
    step = timeframes.parse(timeframe).ns
    bar_times = table.column("time").to_numpy() if table is not None else np.empty(0, np.int64)
    known_empty = union(
        *(calendars.known_empty(calendar, step, s, e, bar_times) for s, e in covered),
        without_bars(confirmed_empty, bar_times, step),
    )
    return SeriesEntry(
        symbol=symbol,
        timeframe=timeframe,
        source=source,
        calendar=calendar,
        digest=digest,
        bar_count=len(bar_times),
        first_ns=int(bar_times[0]) if len(bar_times) else 0,
        last_ns=int(bar_times[-1]) if len(bar_times) else 0,
        update_time=time.time(),
        covered=covered,
        known_empty=known_empty,
    )


def _apply_finding(finding: reconcile.Finding, conn: sqlite3.Connection) -> None:
    """The catalog change a reconcile finding calls for: save a re-derived entry, drop a gone one."""
    if finding.entry is not None:
        catalog.save(conn, finding.entry)
    elif finding.action in ("dropped", "unreadable"):
        catalog.delete(conn, finding.symbol, finding.timeframe)


def write_failed(path: Path, exc: OSError) -> ApiError:
    """The error of a series write that failed (the previous file is intact): RESOURCE_EXHAUSTED
    (reason ``DATA_DISK_FULL``) when the disk, a quota or the file-size limit is full, else
    UNAVAILABLE (reason ``DATA_WRITE_FAILED``); the message names the file and the system's reason."""
    problem = f"cannot write {path}: {exc.strerror or exc}; the previous file is intact"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return ApiError(StatusCode.RESOURCE_EXHAUSTED, problem, "DATA_DISK_FULL")
    return ApiError(StatusCode.UNAVAILABLE, problem, "DATA_WRITE_FAILED")


def _read_range(
    path: Path, symbol: str, timeframe: str, start_ns: int | None, end_ns: int | None, tail: int
) -> Bars:
    return _bars(files.read_range(path, start_ns, end_ns, tail), symbol, timeframe)


def _bars(table: pa.Table, symbol: str, timeframe: str) -> Bars:
    return Bars(symbol, timeframe, **{name: table.column(name).to_numpy() for name in files.COLUMNS})


async def _pieces(tables: Iterator[pa.Table], symbol: str, timeframe: str) -> AsyncIterator[Bars]:
    while (table := await asyncio.to_thread(next, tables, None)) is not None:
        yield _bars(table, symbol, timeframe)
