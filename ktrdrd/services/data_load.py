"""``DataService.LoadData`` and its operation kinds: ``data.load`` (the parent, one per call) and
``data.load.series`` (one child per symbol × timeframe; the work is :mod:`ktrdrd.data.load`).

:class:`Loads` is built by the daemon at start-up, before pending operations resume, and registers
both kinds; it imports nothing heavy (the cache, numpy and pyarrow load with the data service on
the first load or data call).

The parent starts its children with request ids derived from its own name, so a parent that is
reattached after a restart finds the children it had already started (each child reattaches by
itself). It ends when every child has ended: SUCCEEDED with ``LoadDataResult`` (every series) when
all succeeded; CANCELLED when cancelled (the core cancels the children with it); else FAILED with
the first failed child's code and a message listing each failed series. It journals one message
per finished child ("AAPL 1h SUCCEEDED: 1,234 bars fetched", "ZZZZ 1h FAILED: NOT_FOUND: …").
Its progress sums the children's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from google.protobuf import timestamp_pb2

from ktrdr import timeframes
from ktrdr.daemon.v1 import data_pb2 as pb
from ktrdr.excerpts import echo
from ktrdr.rpc.errors import ApiError, failed_precondition, invalid_argument
from ktrdr.symbols import RULE as SYMBOL_RULE
from ktrdr.symbols import is_symbol
from ktrdr.symbols import normalize as normalize_symbol
from ktrdr.wire import StatusCode
from ktrdrd.operations import OperationContext, OperationsCore
from ktrdrd.services.convert import operation_to_proto

if TYPE_CHECKING:  # grpc loads with the daemon's servers, not with this module
    from ktrdrd.hosts.link import ReadyChannel

PARENT_KIND = "data.load"
SERIES_KIND = "data.load.series"
#: Seconds between two looks of the parent at its children (at once when one ends).
POLL_S = 0.25
#: Series (symbols × timeframes) one LoadData call may ask for.
MAX_SERIES = 256
MODES = {
    pb.LOAD_MODE_UNSPECIFIED: "full",
    pb.LOAD_MODE_MISSING: "full",
    pb.LOAD_MODE_REFRESH: "refresh",
    pb.LOAD_MODE_TAIL: "tail",
    pb.LOAD_MODE_BACKFILL: "backfill",
}
_SUMMED = ("bars_fetched", "bars_merged", "requests_done", "requests_total")

#: Returns the bar cache (``ktrdrd.data.cache.BarCache``), loading it on first use.
CacheGetter = Callable[[], Awaitable[Any]]


class Loads:
    """LoadData and the load kinds, over ``core``, the IB host ``link`` (None: no IB host) and the
    cache that ``cache_of`` returns."""

    def __init__(self, core: OperationsCore, link: ReadyChannel | None, cache_of: CacheGetter) -> None:
        self.core = core
        self.link = link
        self.cache_of = cache_of
        #: One fetch per series in the daemon (see :mod:`ktrdrd.data.load`).
        self.fetch_locks: dict[tuple[str, str], asyncio.Lock] = {}

    def register(self) -> None:
        self.core.register_kind(PARENT_KIND, _ParentKind(self))
        self.core.register_kind(SERIES_KIND, _SeriesKind(self))

    async def LoadData(self, request: pb.LoadDataRequest) -> pb.LoadDataResponse:
        """Start a ``data.load`` operation for the request (checked: INVALID_ARGUMENT naming the
        field); FAILED_PRECONDITION (``NO_IB_HOST``) when the daemon has no IB host."""
        await self.cache_of()  # loads the cache's modules (load_params checks symbols with them)
        params = load_params(request)
        if self.link is None:
            raise failed_precondition(
                "ktrdrd has no IB host to load from: set hosts.ib (the address of a running `hostd ib`, "
                "e.g. unix:/run/ktrdr/ib.sock) or hosts.embedded = true in the daemon's configuration, "
                "or import files with `ktrdrctl data import`",
                "NO_IB_HOST",
            )
        record = await self.core.start(
            PARENT_KIND, params=params, labels=dict(request.labels), request_id=request.request_id
        )
        return pb.LoadDataResponse(operation=operation_to_proto(record))


def load_params(request: pb.LoadDataRequest) -> dict[str, Any]:
    """The ``data.load`` params of a request; INVALID_ARGUMENT naming the first bad field."""
    symbols = []
    for i, raw in enumerate(request.symbols):
        symbol = normalize_symbol(raw)
        if not is_symbol(symbol):
            raise invalid_argument(f"symbols[{i}]", f"{echo(raw)} is not a symbol: {SYMBOL_RULE}")
        if symbol not in symbols:
            symbols.append(symbol)
    if not symbols:
        raise invalid_argument("symbols", "at least one symbol is required")
    frames: list[str] = []
    for i, raw in enumerate(request.timeframes):
        try:
            text = timeframes.parse(raw).text
        except timeframes.TimeframeError as exc:
            raise invalid_argument(f"timeframes[{i}]", str(exc)) from None
        if text not in frames:
            frames.append(text)
    if not frames:
        raise invalid_argument("timeframes", "at least one timeframe is required")
    if len(symbols) * len(frames) > MAX_SERIES:
        raise invalid_argument(
            "symbols", f"{len(symbols) * len(frames)} series asked for; one load takes at most {MAX_SERIES}"
        )
    if not request.HasField("start_time"):
        raise invalid_argument("start_time", "required: the first bar time wanted")
    start = _ns(request.start_time)
    now = time.time_ns()
    end = _ns(request.end_time) if request.HasField("end_time") else now
    if end <= start:
        raise invalid_argument("end_time", "must be after start_time")
    if start >= now:
        raise invalid_argument("start_time", "is in the future: there are no bars to load yet")
    mode = MODES.get(request.mode)
    if mode is None:
        raise invalid_argument("mode", f"unknown load mode {request.mode}")
    # endNs 0: "until now" when the load runs (so that a retried request id matches its first call).
    end_ns = min(end, now) if request.HasField("end_time") else 0
    return {"symbols": symbols, "timeframes": frames, "startNs": start, "endNs": end_ns, "mode": mode}


class _SeriesKind:
    """``data.load.series``: :class:`ktrdrd.data.load.SeriesLoad` on the loaded cache."""

    def __init__(self, loads: Loads) -> None:
        self.loads = loads

    async def run(self, ctx: OperationContext) -> dict[str, Any] | None:
        if self.loads.link is None:
            raise failed_precondition(
                "ktrdrd has no IB host to load from (set hosts.ib or hosts.embedded)", "NO_IB_HOST"
            )
        cache = await self.loads.cache_of()
        module = await asyncio.to_thread(importlib.import_module, "ktrdrd.data.load")
        load = module.SeriesLoad(ctx, cache, self.loads.link, self.loads.fetch_locks)
        return await load.run()

    async def reattach(self, ctx: OperationContext) -> dict[str, Any] | None:
        """After a restart: the same run; the gaps come from the catalog, so merged bars stay."""
        return await self.run(ctx)


class _ParentKind:
    """``data.load``: one child per series; see the module docstring."""

    def __init__(self, loads: Loads) -> None:
        self.loads = loads

    async def run(self, ctx: OperationContext) -> dict[str, Any] | None:
        core, params = self.loads.core, ctx.params
        children: dict[str, str] = {}  # operation name → "SYMBOL TF"
        await ctx.set_stage("loading")
        for symbol in params["symbols"]:
            for timeframe in params["timeframes"]:
                child = {
                    "symbol": symbol,
                    "timeframe": timeframe,
                    "startNs": params["startNs"],
                    "endNs": params["endNs"],
                    "mode": params["mode"],
                }
                record = await core.start(
                    SERIES_KIND, params=child, parent=ctx.name, request_id=f"{ctx.name}/{symbol}/{timeframe}"
                )
                children[record.name] = f"{symbol} {timeframe}"
        finished: dict[str, Any] = {}
        cancelling = False
        reported: dict[str, Any] = {}
        while True:
            if ctx.cancelled.is_set() and not cancelling:  # children started after the cancel, too
                cancelling = True
                for name in children:
                    with contextlib.suppress(ApiError):
                        await core.cancel(name)
            records = {name: await core.get(name) for name in children}
            for name, record in records.items():
                if record.done and name not in finished:
                    finished[name] = record
                    await ctx.message(_outcome(children[name], record))
            summary = _summary(list(records.values()))
            if summary != reported:  # a progress event only when something changed
                await ctx.progress(**summary)
                reported = summary
            if len(finished) == len(children):
                break
            await _next_look(core, [name for name in children if name not in finished], ctx.cancelled)
        await ctx.flush()
        if ctx.cancelled.is_set():
            return None
        failed = [(children[name], r) for name, r in finished.items() if r.state != "SUCCEEDED"]
        if failed:
            first = failed[0][1].error or {}
            raise ApiError(
                int(first.get("code", StatusCode.ABORTED)),
                f"{len(failed)} of {len(children)} series failed: "
                + "; ".join(_outcome(series, record) for series, record in failed),
                "SERIES_LOAD_FAILED",
            )
        return _combined([finished[name].result for name in children])

    async def reattach(self, ctx: OperationContext) -> dict[str, Any] | None:
        """After a restart: the children it started are found again by their request ids."""
        return await self.run(ctx)


async def _next_look(core: OperationsCore, running: list[str], cancelled: asyncio.Event) -> None:
    """Return after :data:`POLL_S`, or sooner when one of the ``running`` children ends or the
    parent is cancelled: the last child's end is noticed at once, not up to a poll later (bench
    data_load)."""
    waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(core.wait(name, POLL_S)) for name in running}
    waits.add(asyncio.ensure_future(cancelled.wait()))
    try:
        await asyncio.wait(waits, timeout=POLL_S, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _outcome(series: str, record: Any) -> str:
    if record.state == "SUCCEEDED":
        metrics = record.progress.get("metrics") or {}
        return f"{series} SUCCEEDED: {int(metrics.get('bars_fetched', 0)):,} bars fetched"
    error = record.error or {}
    code = StatusCode(int(error.get("code", StatusCode.UNKNOWN))).name
    return f"{series} {record.state}: {code}: {error.get('message', '')}"


def _summary(records: list[Any]) -> dict[str, Any]:
    """The parent's progress from its children's."""
    totals = dict.fromkeys(_SUMMED, 0.0)
    for record in records:
        metrics = record.progress.get("metrics") or {}
        for key in _SUMMED:
            totals[key] += float(metrics.get(key, 0.0))
    done = sum(1 for r in records if r.done)
    etas = [r.progress["eta_s"] for r in records if not r.done and r.progress.get("eta_s") is not None]
    waiting = [
        r.progress.get("message", "")
        for r in records
        if not r.done and "waiting" in r.progress.get("message", "")
    ]
    message = f"{done}/{len(records)} series done; {int(totals['bars_fetched']):,} bars fetched"
    if waiting:
        message += f"; {waiting[0]}"
    return {
        "fraction": sum(r.progress.get("fraction", 0.0) if not r.done else 1.0 for r in records)
        / len(records),
        "message": message,
        "current": int(totals["requests_done"]),
        "total": int(totals["requests_total"]),
        "eta_s": max(etas) if etas else None,
        "metrics": {**totals, "series_done": float(done), "series_total": float(len(records))},
    }


def _combined(results: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The children's ``LoadDataResult`` JSONs as one."""
    series: list[Any] = []
    bars = requests = 0
    for result in results:
        if result:
            series += result.get("series", [])
            bars += int(result.get("barsFetched", 0))
            requests += int(result.get("requestsDone", 0))
    return {
        "@type": "type.googleapis.com/" + pb.LoadDataResult.DESCRIPTOR.full_name,
        "series": series,
        "barsFetched": str(bars),
        "requestsDone": requests,
    }


def _ns(stamp: timestamp_pb2.Timestamp) -> int:
    return stamp.seconds * 10**9 + stamp.nanos
