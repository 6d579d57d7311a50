"""``ktrdr.daemon.v1.DataService`` over the bar cache (:class:`ktrdrd.data.cache.BarCache`).

- ``ImportBars`` (client stream): a header (series, mode, format, source name, calendar, named
  fixes), then the file's bytes in ``data`` messages. The daemon parses, repairs as asked
  (:mod:`ktrdrd.data.repair`, each fix reported) and validates the whole file in a worker thread;
  bad input is INVALID_ARGUMENT (reason ``BARS_INVALID``) naming the line or row, and nothing is
  written. More than ``max_import_bytes`` is RESOURCE_EXHAUSTED (reason ``IMPORT_TOO_LARGE``). The
  files of every import in progress share ``max_import_inflight_bytes`` (the bytes the daemon holds
  for them, until each import has been written or refused): a chunk that would go over it fails its
  import with RESOURCE_EXHAUSTED (reason ``IMPORTS_BUSY``, retry later), so that imports opened
  together and left unfinished cannot take the daemon's memory.
- ``GetBars`` (server stream): chunks of at most :data:`GRPC_CHUNK_BARS` bars over gRPC
  (< 4 MiB), :data:`CTL_CHUNK_BARS` over ctl (its JSON frames are larger per bar), in time order;
  ``[start_time, end_time)`` and ``tail``. A range is read from the file as it is sent, a row group
  at a time (:meth:`BarCache.read_pieces`), so a client that stops reading holds about one group
  and one chunk, not the series; a ``tail`` is read at once.
- ``ExportBars`` (server stream): a range rendered by :mod:`ktrdrd.data.export` as CSV (the
  predecessor's layout, which ``ImportBars`` reads back exactly), Parquet or JSON Lines, in pieces
  of at most 1 MiB; the client writes the file.
- ``GetCoverage``, ``ListSeries`` (pages of ``page_size``, default 100, at most 1000),
  ``DeleteSeries``. An unknown series is NOT_FOUND (reason ``SERIES_NOT_FOUND``).
- ``GetGaps``: what a load of one series would fetch (:mod:`ktrdrd.data.gaps`). ``LoadData`` is
  :mod:`ktrdrd.services.data_load` (served by the lazy stand-in without this module).
"""

from __future__ import annotations

import asyncio
import time
import zoneinfo
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf import timestamp_pb2

from ktrdr import calendars, symbols, timeframes
from ktrdr.common.v1 import common_pb2
from ktrdr.daemon.v1 import data_pb2 as pb
from ktrdr.research.bars import FIELDS, Bars, BarsError
from ktrdr.rpc.errors import ApiError, invalid_argument, not_found
from ktrdr.rpc.registry import Call
from ktrdr.wire import StatusCode
from ktrdrd.data import export, parse, repair
from ktrdrd.data.cache import BarCache, series_key
from ktrdrd.data.catalog import SeriesEntry

#: The source of imported series.
SOURCE = "IMPORT"
GRPC_CHUNK_BARS = 65_536  # 48 bytes a bar packed: about 3 MiB
CTL_CHUNK_BARS = 16_384  # JSON spells an int64 as a string: about 100 bytes a bar
#: A last chunk this small is built on the loop (~0.1 ms), not in a thread: a hop costs more than
#: the work, and `data show --tail 5` pays it on every call (bench cli_startup).
INLINE_CHUNK_BARS = 256
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_MODES = {
    pb.IMPORT_MODE_UNSPECIFIED: "merge",
    pb.IMPORT_MODE_MERGE: "merge",
    pb.IMPORT_MODE_CREATE: "create",
    pb.IMPORT_MODE_REPLACE: "replace",
}
_FORMATS = {pb.IMPORT_FORMAT_CSV: "csv", pb.IMPORT_FORMAT_PARQUET: "parquet"}
_EXPORT_FORMATS = {
    pb.EXPORT_FORMAT_UNSPECIFIED: "csv",
    pb.EXPORT_FORMAT_CSV: "csv",
    pb.EXPORT_FORMAT_PARQUET: "parquet",
    pb.EXPORT_FORMAT_JSONL: "jsonl",
}
_SOURCES = {"IB": pb.DATA_SOURCE_IB, "IMPORT": pb.DATA_SOURCE_IMPORT, "SIMULATOR": pb.DATA_SOURCE_SIMULATOR}


class DataService:
    """The cache's API; ``max_import_bytes`` bounds one import's file, ``max_import_inflight_bytes``
    the files of all imports in progress together."""

    descriptor = pb.DESCRIPTOR.services_by_name["DataService"]

    def __init__(self, cache: BarCache, *, max_import_bytes: int, max_import_inflight_bytes: int) -> None:
        self.cache = cache
        self.max_import_bytes = max_import_bytes
        self.max_import_inflight_bytes = max_import_inflight_bytes
        self.import_inflight_bytes = 0  # held by imports in progress (loop thread only)

    async def ImportBars(
        self, requests: AsyncIterator[pb.ImportBarsRequest], call: Call
    ) -> pb.ImportBarsResponse:
        data = bytearray()
        try:
            return await self._import(requests, data)
        finally:
            self.import_inflight_bytes -= len(data)

    def _hold(self, data: bytearray, chunk: bytes, name: str) -> None:
        """Append ``chunk`` to the import's ``data`` within both caps (RESOURCE_EXHAUSTED otherwise)."""
        if len(data) + len(chunk) > self.max_import_bytes:
            raise ApiError(
                StatusCode.RESOURCE_EXHAUSTED,
                f"{name}: larger than the import limit of {self.max_import_bytes:,} bytes "
                "(daemon config key data_import_max_bytes); nothing was written",
                "IMPORT_TOO_LARGE",
            )
        if self.import_inflight_bytes + len(chunk) > self.max_import_inflight_bytes:
            raise ApiError(
                StatusCode.RESOURCE_EXHAUSTED,
                f"{name}: the imports in progress hold {self.import_inflight_bytes:,} bytes, and this "
                f"chunk would take them over {self.max_import_inflight_bytes:,} (daemon config key "
                "data_import_inflight_bytes); nothing was written: retry once they are done",
                "IMPORTS_BUSY",
                retry_after_s=5.0,
            )
        data += chunk
        self.import_inflight_bytes += len(chunk)

    async def _import(
        self, requests: AsyncIterator[pb.ImportBarsRequest], data: bytearray
    ) -> pb.ImportBarsResponse:
        plan: _ImportPlan | None = None
        async for request in requests:
            item = request.WhichOneof("item")
            if item == "header":
                if plan is not None:
                    raise invalid_argument("header", "only the first message may be a header")
                plan = _plan(request.header)
                # Refused at once rather than after the whole file arrived; checked again when writing.
                await self.cache.check_import(plan.symbol, plan.timeframe, source=SOURCE, mode=plan.mode)
            elif plan is None:
                raise invalid_argument("header", "the first message of an import must be the header")
            elif item == "data":
                self._hold(data, request.data, plan.name)
            else:
                raise invalid_argument(
                    "chunk", "parsed bar chunks are not accepted yet; send the file in data"
                )
        if plan is None:
            raise invalid_argument("header", "required: the import sent no message")
        try:
            bars, fixed, naive_as_utc = await asyncio.to_thread(
                parse.parse,
                data,
                plan.fmt,
                plan.symbol,
                plan.timeframe,
                plan.name,
                plan.fixes,
                plan.calendar,
                plan.timezone,
            )
        except BarsError as exc:
            raise invalid_argument("data", f"{exc}; nothing was imported", "BARS_INVALID") from None
        if len(bars) == 0:
            raise invalid_argument(
                "data", f"{plan.name}: the file holds no bars; nothing was imported", "BARS_INVALID"
            )
        entry = await self.cache.import_bars(bars, source=SOURCE, mode=plan.mode, calendar=plan.calendar)
        return pb.ImportBarsResponse(
            coverage=coverage_to_proto(entry),
            bars_imported=len(bars),
            repairs=[pb.ImportRepair(name=f.name, rows=f.rows, examples=f.examples) for f in fixed],
            naive_times_as_utc=naive_as_utc,
        )

    async def GetBars(self, request: pb.GetBarsRequest, call: Call) -> AsyncIterator[pb.GetBarsResponse]:
        symbol, timeframe = series_key(request.series.symbol, request.series.timeframe)
        start, end = _range(request)
        if request.tail < 0:
            raise invalid_argument("tail", f"must be >= 0, got {request.tail}")
        if request.chunk_bars < 0:
            raise invalid_argument("chunk_bars", f"must be >= 0, got {request.chunk_bars}")
        limit = CTL_CHUNK_BARS if call.transport == "ctl" else GRPC_CHUNK_BARS
        size = min(request.chunk_bars or limit, limit)
        if request.tail:  # the last bars: read at once (the file's end is where they are)
            pieces = _one(await self.cache.read(symbol, timeframe, start, end, request.tail))
        else:  # a range is read as it is sent: a client that stops reading holds a piece, not the series
            pieces = await self.cache.read_pieces(symbol, timeframe, start, end)
        async for bars in _sized(pieces, size):
            if len(bars) <= INLINE_CHUNK_BARS:
                yield _chunk(bars)
            else:
                yield await asyncio.to_thread(_chunk, bars)

    async def GetCoverage(self, request: pb.GetCoverageRequest, call: Call) -> pb.GetCoverageResponse:
        symbol, timeframe = series_key(request.series.symbol, request.series.timeframe)
        entry = await self.cache.entry(symbol, timeframe)
        if entry is None:
            raise not_found(f"series {symbol} {timeframe}", "SERIES_NOT_FOUND")
        return pb.GetCoverageResponse(coverage=coverage_to_proto(entry))

    async def ListSeries(self, request: pb.ListSeriesRequest, call: Call) -> pb.ListSeriesResponse:
        if request.page_size < 0:
            raise invalid_argument("page_size", f"must be >= 0, got {request.page_size}")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = ("", "")
        if request.page_token:  # the last series of the previous page, "SYMBOL/timeframe"
            symbol, sep, timeframe = request.page_token.partition("/")
            if not (sep and symbols.is_symbol(symbol) and timeframe in timeframes.SUPPORTED):
                raise invalid_argument("page_token", "not a token this daemon gave out")
            after = (symbol, timeframe)
        entries = await self.cache.entries(symbols.normalize(request.symbol), limit=size + 1, after=after)
        token = f"{entries[size - 1].symbol}/{entries[size - 1].timeframe}" if len(entries) > size else ""
        return pb.ListSeriesResponse(
            series=[coverage_to_proto(e) for e in entries[:size]], next_page_token=token
        )

    async def GetGaps(self, request: pb.GetGapsRequest, call: Call) -> pb.GetGapsResponse:
        return await gaps_response(self.cache, request)

    async def DeleteSeries(self, request: pb.DeleteSeriesRequest, call: Call) -> pb.DeleteSeriesResponse:
        symbol, timeframe = series_key(request.series.symbol, request.series.timeframe)
        return pb.DeleteSeriesResponse(coverage=coverage_to_proto(await self.cache.delete(symbol, timeframe)))

    async def ExportBars(
        self, request: pb.ExportBarsRequest, call: Call
    ) -> AsyncIterator[pb.ExportBarsResponse]:
        symbol, timeframe = series_key(request.series.symbol, request.series.timeframe)
        start, end = _range(request)
        fmt = _EXPORT_FORMATS.get(request.format)
        if fmt is None:
            raise invalid_argument("format", f"unknown export format {request.format}")
        bars = await self.cache.read(symbol, timeframe, start, end, 0)
        rendered = export.pieces(bars, fmt)  # a generator: each piece is rendered in a worker thread
        first = True
        while (piece := await asyncio.to_thread(next, rendered, None)) is not None:
            yield pb.ExportBarsResponse(data=piece, bar_count=len(bars) if first else 0)
            first = False


@dataclass(frozen=True)
class _ImportPlan:
    """What an import's header asks for, checked."""

    symbol: str
    timeframe: str
    name: str  # the file's name for messages
    fmt: str  # "csv" or "parquet"
    calendar: str
    mode: str  # "create", "replace" or "merge"
    fixes: list[str]  # named fixes to apply, in the order they run (ktrdrd.data.repair)
    timezone: str | None  # IANA zone of the file's naive times; None: UTC


def _plan(header: pb.ImportBarsHeader) -> _ImportPlan:
    """The header checked: INVALID_ARGUMENT naming the field otherwise."""
    symbol, timeframe = series_key(header.series.symbol, header.series.timeframe, "header.series")
    name = header.source_name or f"<{symbol} {timeframe}>"
    fmt = _FORMATS.get(header.format) or ("parquet" if name.lower().endswith(".parquet") else "csv")
    mode = _MODES.get(header.mode)
    if mode is None:
        raise invalid_argument("header.mode", f"unknown import mode {header.mode}")
    try:
        fixes = repair.resolve(list(header.repairs))
    except repair.UnknownFix as exc:
        raise invalid_argument("header.repairs", str(exc)) from None
    calendar = _calendar(header.calendar, symbol)
    return _ImportPlan(symbol, timeframe, name, fmt, calendar, mode, fixes, _timezone(header.timezone))


def _timezone(requested: str) -> str | None:
    """The IANA zone of the file's naive times (None: UTC); INVALID_ARGUMENT for an unknown name."""
    if not requested:
        return None
    try:
        zoneinfo.ZoneInfo(requested)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise invalid_argument(
            "header.timezone",
            f"unknown time zone {requested!r}; expected an IANA name such as America/New_York",
        ) from None
    return requested


def _calendar(requested: str, symbol: str) -> str:
    if not requested:
        return calendars.guess(symbol)
    by_lower = {name.lower(): name for name in calendars.CALENDARS}
    found = by_lower.get(requested.strip().lower())
    if found is None:
        raise invalid_argument(
            "header.calendar", f"unknown calendar {requested!r}; known: {', '.join(calendars.CALENDARS)}"
        )
    return found


def _range(request: pb.GetBarsRequest | pb.ExportBarsRequest) -> tuple[int | None, int | None]:
    """``[start_time, end_time)`` in ns (None where unset); INVALID_ARGUMENT unless end > start."""
    start = _ns(request.start_time) if request.HasField("start_time") else None
    end = _ns(request.end_time) if request.HasField("end_time") else None
    if start is not None and end is not None and end <= start:
        raise invalid_argument("end_time", "must be after start_time")
    return start, end


def _ns(stamp: timestamp_pb2.Timestamp) -> int:
    return stamp.seconds * 10**9 + stamp.nanos


def _timestamp(ns: int) -> timestamp_pb2.Timestamp:
    seconds, nanos = divmod(ns, 10**9)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _ranges(intervals: list[tuple[int, int]]) -> list[common_pb2.TimeRange]:
    return [common_pb2.TimeRange(start_time=_timestamp(s), end_time=_timestamp(e)) for s, e in intervals]


def coverage_to_proto(entry: SeriesEntry) -> pb.SeriesCoverage:
    """The catalog entry as the API's ``SeriesCoverage``."""
    return pb.SeriesCoverage(
        series=common_pb2.SeriesKey(symbol=entry.symbol, timeframe=entry.timeframe),
        source=_SOURCES.get(entry.source, pb.DATA_SOURCE_UNSPECIFIED),
        covered=_ranges(entry.covered),
        known_empty=_ranges(entry.known_empty),
        bar_count=entry.bar_count,
        first_bar_time=_timestamp(entry.first_ns),
        last_bar_time=_timestamp(entry.last_ns),
        digest=entry.digest,
        update_time=_timestamp(int(entry.update_time * 10**9)),
    )


async def gaps_response(cache: BarCache, request: pb.GetGapsRequest) -> pb.GetGapsResponse:
    """``GetGaps``: the fetch ranges of the request's series and range (INVALID_ARGUMENT naming the
    field otherwise); the end is never after now; the start defaults to the series' first bar."""
    from ktrdrd.data import gaps
    from ktrdrd.services.data_load import MODES

    symbol, timeframe = series_key(request.series.symbol, request.series.timeframe)
    step = timeframes.parse(timeframe).ns
    mode = MODES.get(request.mode)
    if mode is None:
        raise invalid_argument("mode", f"unknown load mode {request.mode}")
    entry = await cache.entry(symbol, timeframe)
    if request.HasField("start_time"):
        start = _ns(request.start_time)
    elif entry is not None:
        start = entry.first_ns
    else:
        raise invalid_argument("start_time", f"required: {symbol} {timeframe} is not in the cache")
    now = time.time_ns() // step * step
    end = min(_ns(request.end_time), now) if request.HasField("end_time") else now
    if end <= start:
        raise invalid_argument("end_time", "must be after start_time (and not after now)")
    calendar = entry.calendar if entry is not None else calendars.guess(symbol)
    found = await asyncio.to_thread(gaps.find, entry, calendar, step, start, end, mode)
    return pb.GetGapsResponse(
        gaps=[
            pb.Gap(range=_ranges([(g.start_ns, g.end_ns)])[0], expected_bars=g.expected_bars) for g in found
        ],
        expected_bars=sum(g.expected_bars for g in found),
        calendar=calendar,
    )


async def _one(bars: Bars) -> AsyncIterator[Bars]:
    yield bars


async def _sized(pieces: AsyncIterator[Bars], size: int) -> AsyncIterator[Bars]:
    """``pieces`` (consecutive bars of one series) regrouped in chunks of ``size`` bars, the last
    one shorter; empty pieces give nothing. Holds at most one piece plus ``size`` bars."""
    rest: Bars | None = None
    async for piece in pieces:
        if rest is not None:
            piece = _joined(rest, piece)
        whole = len(piece) - len(piece) % size
        for lo in range(0, whole, size):
            yield piece.slice(lo, lo + size)
        rest = piece.slice(whole, len(piece)) if whole < len(piece) else None
    if rest is not None:
        yield rest


def _joined(first: Bars, second: Bars) -> Bars:
    return Bars(
        first.symbol,
        first.timeframe,
        np.concatenate((first.time, second.time)),
        *(np.concatenate((getattr(first, name), getattr(second, name))) for name in FIELDS),
    )


def _chunk(bars: Bars) -> pb.GetBarsResponse:
    columns: dict[str, Any] = {"time_ns": bars.time, **{name: getattr(bars, name) for name in FIELDS}}
    chunk = common_pb2.BarsChunk(symbol=bars.symbol, timeframe=bars.timeframe)
    for name, values in columns.items():
        getattr(chunk, name).extend(values.tolist())
    return pb.GetBarsResponse(chunk=chunk)
