"""Loading one series from the IB host into the bar cache: the work of a ``data.load.series``
operation (:func:`load_series`; the kinds are registered by :mod:`ktrdrd.services.data_load`).

A series load:

1. waits for the IB host (the daemon's link, :class:`ktrdrd.hosts.link.ReadyChannel`); meanwhile
   its stage is ``waiting for the IB host`` and its progress message the link's reason
   (``waiting for the IB host 'ib' at unix:/…: <why>``);
2. takes the series' source from the host (``GetStatus().simulated`` → ``SIMULATOR``, else ``IB``)
   and refuses a series that holds bars of another source (FAILED_PRECONDITION ``SOURCE_MISMATCH``);
3. resolves the contract: an unknown symbol is the host's NOT_FOUND, which names it;
4. takes the series' fetch lock: one fetch per series in the daemon at a time; a second load of
   the series waits for the first, then finds only what is still missing;
5. finds the gaps from the catalog (:mod:`ktrdrd.data.gaps`) and fetches each with ``FetchBars``,
   merging into the cache (:meth:`~ktrdrd.data.cache.BarCache.merge_fetched`, one atomic replace)
   at the first request boundary after every :data:`MERGE_EVERY_BARS` bars and at the end of each
   range. A merge covers only what is complete: the range's start up to the later of the last bar
   (plus one bar) and the last interval the host confirmed empty; the host's empty intervals
   become known-empty. Daily and weekly bars and their empty intervals come dated (00:00 UTC of
   the session's date) and are restamped as the cache stamps them (:class:`_Dated`).

Cancel: what arrived completely is merged, the load returns (→ CANCELLED). Restart (``reattach``):
the same steps again; the gaps come from the catalog, so what was merged is not fetched again. The
IB host lost mid-load (UNAVAILABLE): what arrived is merged and the load waits for the host and
goes on, up to :data:`HOST_RETRIES` times in a row without a merged bar.

Progress: ``current``/``total`` are the host's historical-data requests done/known (ranges not
started yet are not counted), ``eta_s`` the host's estimate for the current range; ``metrics``
``bars_fetched``, ``bars_merged``, ``requests_done``, ``requests_total``, ``ranges_done``,
``ranges_total`` and ``pacing_wait_s`` (the pacer's current hold, 0 when none).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import numpy as np
from google.protobuf import json_format, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ktrdr import calendars, timeframes
from ktrdr.calendars import DAY_NS
from ktrdr.common.v1 import common_pb2
from ktrdr.daemon.v1 import data_pb2
from ktrdr.hostd.marketdata.v1 import marketdata_pb2 as mpb
from ktrdr.hostd.marketdata.v1 import marketdata_pb2_grpc
from ktrdr.research.bars import FIELDS, Bars, BarsError
from ktrdr.rpc.errors import ApiError
from ktrdr.wire import StatusCode
from ktrdrd.data import gaps
from ktrdrd.data.cache import BarCache
from ktrdrd.data.calendars import Undated, dated_empty, restamp
from ktrdrd.data.catalog import SeriesEntry
from ktrdrd.data.intervals import Interval
from ktrdrd.operations import OperationContext

if TYPE_CHECKING:  # grpc loads with the daemon's servers, not with this module
    from ktrdrd.hosts.link import ReadyChannel

T = TypeVar("T")

#: Bars held in memory before a merge (at the next request boundary).
MERGE_EVERY_BARS = 5000
#: Times in a row the IB host may go away without a bar merged in between before the load fails.
HOST_RETRIES = 5
#: Seconds between two "waiting for …" progress updates.
REPORT_S = 0.5
_NS = 10**9


class Cancelled(Exception):
    """The operation was cancelled while the load waited."""


@dataclass
class Tally:
    """What the load did so far, for its progress and result."""

    ranges_total: int = 0
    ranges_done: int = 0
    bars_fetched: int = 0
    bars_merged: int = 0
    requests_done_before: int = 0  # in finished ranges (and attempts)
    requests_total_before: int = 0
    requests_done: int = 0  # in the range being fetched
    requests_total: int = 0
    eta_s: float | None = None
    pacing_wait_s: float = 0.0

    def close_range(self) -> None:
        """Count the current range's requests as finished (a range done, or an attempt lost)."""
        self.requests_done_before += self.requests_done
        self.requests_total_before += self.requests_done  # what was not sent is planned again
        self.requests_done = self.requests_total = 0
        self.eta_s = None

    @property
    def all_requests_done(self) -> int:
        return self.requests_done_before + self.requests_done

    async def report(self, ctx: OperationContext, message: str) -> None:
        done, total = self.all_requests_done, self.requests_total_before + self.requests_total
        part = self.requests_done / self.requests_total if self.requests_total else 0.0
        fraction = (self.ranges_done + part) / self.ranges_total if self.ranges_total else 0.0
        await ctx.progress(
            fraction,
            message,
            done,
            total,
            self.eta_s,
            {
                "bars_fetched": self.bars_fetched,
                "bars_merged": self.bars_merged,
                "requests_done": done,
                "requests_total": total,
                "ranges_done": self.ranges_done,
                "ranges_total": self.ranges_total,
                "pacing_wait_s": self.pacing_wait_s,
            },
        )


@dataclass(frozen=True)
class SeriesRequest:
    """A ``data.load.series`` operation's params, checked by :func:`series_params`."""

    symbol: str
    timeframe: str
    start_ns: int
    end_ns: int  # 0: until now
    mode: str


def series_params(params: dict[str, Any]) -> SeriesRequest:
    """The params of a ``data.load.series`` operation (written by the daemon itself)."""
    return SeriesRequest(
        str(params["symbol"]),
        str(params["timeframe"]),
        int(params["startNs"]),
        int(params["endNs"]),
        str(params.get("mode", "full")),
    )


@dataclass(frozen=True)
class _Dated:
    """Daily and weekly bars come from the host dated (00:00 UTC of the session's date), and so do
    the intervals it confirms empty: both become the cache's stamps (:mod:`ktrdrd.data.calendars`)."""

    calendar: str
    timeframe: str

    def stamps(self, times: np.ndarray) -> np.ndarray:
        """The cache's stamps of the host's dates; DATA_LOSS for a bar dated a closed day."""
        try:
            return restamp(times, self.calendar, self.timeframe)
        except Undated as exc:
            raise ApiError(StatusCode.DATA_LOSS, f"the IB host sent a bar the calendar cannot place: {exc}",
                           "BARS_INVALID") from None  # fmt: skip

    def empty(self, span: Interval) -> Interval | None:
        return dated_empty(span, self.calendar, self.timeframe)


@dataclass
class _Pending:
    """Bars and confirmed-empty intervals of the range being fetched, not merged yet."""

    start_ns: int  # the range's part not merged yet starts here
    #: For daily and weekly bars: how the host's dates become the cache's stamps; None: the host's
    #: times are stamps already.
    dated: _Dated | None = None
    columns: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {"time": [], **{f: [] for f in FIELDS}}
    )
    count: int = 0
    empty: list[Interval] = field(default_factory=list)
    complete_to: int = 0  # everything before this arrived

    def add(self, chunk: common_pb2.BarsChunk, step: int) -> int:
        times = np.asarray(chunk.time_ns, dtype=np.int64)
        if self.dated is not None:
            times = self.dated.stamps(times)
        self.columns["time"].append(times)
        for name in FIELDS:
            self.columns[name].append(np.asarray(getattr(chunk, name), dtype=np.float64))
        self.count += len(times)
        if len(times):
            self.complete_to = max(self.complete_to, int(times[-1]) + step)
        return len(times)

    def confirm_empty(self, empty: common_pb2.TimeRange) -> None:
        span: Interval | None = (empty.start_time.ToNanoseconds(), empty.end_time.ToNanoseconds())
        if self.dated is not None and span is not None:  # dates: the sessions dated inside, as stamps
            span = self.dated.empty(span)
        if span is None:  # no whole session dated inside: nothing to record
            return
        self.empty.append(span)
        self.complete_to = max(self.complete_to, span[1])

    def take(self, symbol: str, timeframe: str, end_ns: int) -> tuple[Bars, Interval, list[Interval]]:
        """The bars (validated: DATA_LOSS naming the first bad one otherwise), span and empty
        intervals to merge up to ``end_ns``; the buffer starts again there."""
        arrays = {
            name: np.concatenate(parts) if parts else np.empty(0) for name, parts in self.columns.items()
        }
        try:  # the cache's invariants hold for every bar stored (docs/data.md)
            bars = Bars.from_arrays(
                symbol,
                timeframe,
                arrays["time"],
                *(arrays[f] for f in FIELDS),
                source=f"{symbol} {timeframe}",
            )
        except BarsError as exc:
            raise ApiError(
                StatusCode.DATA_LOSS, f"the IB host sent invalid bars: {exc}", "BARS_INVALID"
            ) from None
        span = (self.start_ns, end_ns)
        empty = [(max(s, span[0]), min(e, end_ns)) for s, e in self.empty if s < end_ns and e > span[0]]
        self.columns = {name: [] for name in self.columns}
        self.count, self.empty, self.start_ns = 0, [], end_ns
        return bars, span, empty


class SeriesLoad:
    """One run of a ``data.load.series`` operation (see the module docstring)."""

    def __init__(
        self,
        ctx: OperationContext,
        cache: BarCache,
        link: ReadyChannel,
        fetch_locks: dict[tuple[str, str], asyncio.Lock],
    ) -> None:
        self.ctx = ctx
        self.cache = cache
        self.link = link
        self.fetch_locks = fetch_locks
        self.request = series_params(ctx.params)
        self.step = timeframes.parse(self.request.timeframe).ns
        self.tally = Tally()
        self.entry: SeriesEntry | None = None

    @property
    def name(self) -> str:
        return f"{self.request.symbol} {self.request.timeframe}"

    async def run(self) -> dict[str, Any] | None:
        """The operation's result (``LoadDataResult`` as Any JSON), or None once cancelled."""
        failures = 0
        try:
            while True:
                merged_before = self.tally.bars_merged
                try:
                    return await self._attempt()
                except grpc.aio.AioRpcError as exc:
                    failures = 0 if self.tally.bars_merged > merged_before else failures + 1
                    if exc.code() != grpc.StatusCode.UNAVAILABLE or failures > HOST_RETRIES:
                        raise api_error(exc) from None
                    self.tally.close_range()
                    await self.ctx.message(
                        f"{self.name}: the IB host went away ({exc.details()}); waiting for it"
                    )
        except Cancelled:
            return None

    async def _attempt(self) -> dict[str, Any]:
        ctx, request = self.ctx, self.request
        await ctx.set_stage("waiting for the IB host")
        channel = await self._until(
            self.link.ready_channel(),
            lambda: self.tally.report(ctx, self.link.describe_wait()),
        )
        stub = marketdata_pb2_grpc.MarketDataServiceStub(channel)
        await ctx.set_stage("resolving")
        status = await self._until(stub.GetStatus(mpb.GetStatusRequest()))
        source = "SIMULATOR" if status.simulated else "IB"
        if status.state != mpb.CONNECTION_STATE_CONNECTED:  # the host waits for its gateway; say why
            await self.tally.report(ctx, f"waiting for the IB host's gateway: {status.message}")
        await self.cache.check_import(request.symbol, request.timeframe, source=source, mode="merge")
        contract = mpb.ContractSpec(symbol=request.symbol)
        await self._until(stub.ResolveContract(mpb.ResolveContractRequest(contract=contract)))
        lock = self.fetch_locks.setdefault((request.symbol, request.timeframe), asyncio.Lock())
        if lock.locked():
            await ctx.set_stage("waiting for another load of the series")
        await self._until(
            lock.acquire(), lambda: self.tally.report(ctx, f"waiting for another load of {self.name}")
        )
        try:
            await ctx.set_stage("fetching")
            self.entry = await self.cache.entry(request.symbol, request.timeframe)
            calendar = self.entry.calendar if self.entry is not None else calendars.guess(request.symbol)
            now = time.time_ns() // self.step * self.step  # bars not finished yet are not fetched
            end_ns = min(request.end_ns or now, now)
            found = await asyncio.to_thread(
                gaps.find, self.entry, calendar, self.step, request.start_ns, end_ns, request.mode
            )
            self.tally.ranges_total = self.tally.ranges_done + len(found)
            await self.tally.report(ctx, f"{len(found)} ranges to fetch" if found else "nothing is missing")
            for gap in found:
                await self._fetch(stub, contract, gap, source, calendar)
                self.tally.ranges_done += 1
                self.tally.close_range()
        finally:
            lock.release()
        await self.tally.report(ctx, f"done: {self.tally.bars_fetched:,} bars fetched")
        await ctx.flush()
        return await asyncio.to_thread(self.result)  # a long series has thousands of intervals

    async def _fetch(
        self, stub: marketdata_pb2_grpc.MarketDataServiceStub, contract: mpb.ContractSpec, gap: gaps.Gap,
        source: str, calendar: str,
    ) -> None:  # fmt: skip
        request, tally = self.request, self.tally
        asked = (gap.start_ns, gap.end_ns)
        dated = None
        if request.timeframe in ("1d", "1w"):  # the host dates these bars: ask a day more each side
            asked = ((gap.start_ns // DAY_NS - 1) * DAY_NS, (-(-gap.end_ns // DAY_NS) + 1) * DAY_NS)
            dated = _Dated(calendar, request.timeframe)
        fetch = mpb.FetchBarsRequest(
            contract=contract,
            timeframe=request.timeframe,
            range=common_pb2.TimeRange(start_time=_timestamp(asked[0]), end_time=_timestamp(asked[1])),
            use_rth=calendar == "XNYS",  # the calendar knows the regular session only
            request_id=f"{self.ctx.name}/{gap.start_ns}",
        )
        pending = _Pending(gap.start_ns, dated, complete_to=gap.start_ns)
        what = f"{self.name} {_iso(gap.start_ns)} .. {_iso(gap.end_ns)}"
        stream = stub.FetchBars(fetch)
        responses = stream.__aiter__()
        try:
            while True:
                try:
                    response = await self._until(anext(responses))
                except StopAsyncIteration:
                    break
                item = response.WhichOneof("item")
                if item == "chunk":
                    tally.bars_fetched += pending.add(response.chunk, self.step)
                elif item == "empty":
                    pending.confirm_empty(response.empty)
                elif item == "progress":
                    tally.requests_done = response.progress.requests_done
                    tally.requests_total = response.progress.requests_total
                    eta = response.progress.progress.eta
                    tally.eta_s = eta.seconds + eta.nanos / 1e9
                    tally.pacing_wait_s = 0.0
                    if pending.count >= MERGE_EVERY_BARS:
                        await self._merge(pending, min(pending.complete_to, gap.end_ns), source, calendar)
                elif item == "pacing_wait":
                    wait = response.pacing_wait
                    tally.pacing_wait_s = wait.wait.seconds + wait.wait.nanos / 1e9
                    await tally.report(
                        self.ctx, f"{what}: pacing, waiting {tally.pacing_wait_s:.0f} s ({wait.reason})"
                    )
                    continue
                await tally.report(self.ctx, f"{what}: {tally.bars_fetched:,} bars")
        except (Cancelled, grpc.aio.AioRpcError):
            stream.cancel()
            await asyncio.shield(self._merge(pending, min(pending.complete_to, gap.end_ns), source, calendar))
            raise
        await self._merge(pending, gap.end_ns, source, calendar)

    async def _merge(self, pending: _Pending, end_ns: int, source: str, calendar: str) -> None:
        if end_ns <= pending.start_ns:
            return
        bars, span, empty = pending.take(self.request.symbol, self.request.timeframe, end_ns)
        bars = _within(bars, span)
        self.entry = await self.cache.merge_fetched(bars, span, empty, source=source, calendar=calendar)
        self.tally.bars_merged += len(bars)

    async def _until(self, awaitable: Awaitable[T], report: Callable[[], Awaitable[None]] | None = None) -> T:
        """``await awaitable``, calling ``report()`` every :data:`REPORT_S` it waits; :class:`Cancelled`
        (after cancelling it) when the operation is cancelled first."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self.ctx.cancelled.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {task, stop}, timeout=REPORT_S if report else None, return_when=asyncio.FIRST_COMPLETED
                )
                if task in done:
                    return task.result()
                if stop in done:
                    raise Cancelled
                if report is not None:
                    await report()
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def result(self) -> dict[str, Any]:
        """``LoadDataResult`` (this series) as the JSON of a ``google.protobuf.Any``."""
        from ktrdrd.services.data import coverage_to_proto

        result = data_pb2.LoadDataResult(
            bars_fetched=self.tally.bars_fetched, requests_done=self.tally.all_requests_done
        )
        if self.entry is not None:
            result.series.append(coverage_to_proto(self.entry))
        return {"@type": RESULT_TYPE, **json_format.MessageToDict(result)}


RESULT_TYPE = "type.googleapis.com/" + data_pb2.LoadDataResult.DESCRIPTOR.full_name


def api_error(exc: grpc.aio.AioRpcError) -> ApiError:
    """The IB host's error as an :class:`ApiError` with its code, message and ErrorInfo reason."""
    reason = ""
    status = rpc_status.from_call(exc)
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reason = info.reason
    code = exc.code().value[0]
    return ApiError(code, f"the IB host: {exc.details()}", reason or StatusCode(code).name)


def _within(bars: Bars, span: Interval) -> Bars:
    lo, hi = np.searchsorted(bars.time, span[0], "left"), np.searchsorted(bars.time, span[1], "left")
    return bars.slice(int(lo), int(hi))


def _timestamp(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // _NS, nanos=ns % _NS)


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ns // _NS))
