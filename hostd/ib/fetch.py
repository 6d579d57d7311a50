"""Fetch one range of bars through the pacer: resolve, check against the head timestamp, split into
requests, send each when the pacer allows, retry what failed, keep each bar once, in time order.

What a fetch guarantees (``FetchBars``):

- every bar the gateway has in ``[start, end)`` arrives once, in time order, whatever requests were
  retried (a dropped socket, a 162 pacing violation): a bar is kept only if it is later than the last
  one kept (requests overlap by a bar on each side; see :mod:`hostd.ib.requests`);
- an empty answer is never taken on trust: an interval is reported *empty* only when the gateway
  said so ("HMDS query returned no data", or an answer with no bar in the request's own interval) or
  when it lies before the head timestamp; an answer with no bars and no error (ib_async's timeout)
  is retried, then fails DEADLINE_EXCEEDED;
- a 162 pacing violation holds every request for a back-off (the identical-request window, doubling,
  at most the 10-minute window) and retries, up to ``pacing_retries`` times, then RESOURCE_EXHAUSTED
  with RetryInfo; a dropped connection waits for the reconnect (UNAVAILABLE with RetryInfo after the
  connection's ``wait_s``) and retries, up to ``attempts`` times.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf import duration_pb2, timestamp_pb2
from ib_async import IB, BarData, ContractDetails, RequestError

from hostd.ib import columns, contracts, ib_errors, requests
from hostd.ib.connection import Connection
from hostd.ib.pacer import Pacer
from ktrdr import timeframes
from ktrdr.common.v1 import common_pb2
from ktrdr.hostd.marketdata.v1 import marketdata_pb2 as pb
from ktrdr.rpc.errors import ApiError
from ktrdr.wire import StatusCode

log = logging.getLogger("hostd.ib")

T = TypeVar("T")
Emit = Callable[[pb.FetchBarsResponse], None]

DAY_S = 86_400
WHAT_TO_SHOW: dict[int, str] = {
    pb.WHAT_TO_SHOW_TRADES: "TRADES",
    pb.WHAT_TO_SHOW_MIDPOINT: "MIDPOINT",
    pb.WHAT_TO_SHOW_BID: "BID",
    pb.WHAT_TO_SHOW_ASK: "ASK",
}


@dataclass(frozen=True)
class FetchConfig:
    #: Seconds the gateway has to answer one request (ib_async then cancels it and returns nothing).
    request_timeout_s: float = 60.0
    #: 162 pacing violations tolerated per request before RESOURCE_EXHAUSTED.
    pacing_retries: int = 6
    #: Dropped connections / unanswered requests tolerated per request.
    attempts: int = 5


class NoData(Exception):
    """The gateway answered "HMDS query returned no data"."""


def what_to_show(value: int, details: ContractDetails) -> str:
    """The requested type, or the default: MIDPOINT for forex (IB has no TRADES there), else TRADES."""
    if value:
        return WHAT_TO_SHOW[value]
    assert details.contract is not None
    return "MIDPOINT" if details.contract.secType == "CASH" else "TRADES"


def _timestamp(epoch_s: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=epoch_s)


def _range(start_s: int, end_s: int) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=_timestamp(start_s), end_time=_timestamp(end_s))


class Fetcher:
    """Resolution, head timestamps and historical requests over one connection and one pacer."""

    def __init__(self, connection: Connection, pacer: Pacer, config: FetchConfig | None = None) -> None:
        self.connection = connection
        self.pacer = pacer
        self.config = config or FetchConfig()
        self._resolved: dict[contracts.SpecKey, ContractDetails] = {}
        self._heads: dict[tuple[int, str, bool], int | None] = {}
        #: 162 pacing violations the gateway answered (0 in normal operation).
        self.pacing_violations = 0

    # -- resolution -------------------------------------------------------------------------------
    async def resolve(self, spec: pb.ContractSpec) -> ContractDetails:
        """The gateway's details for ``spec`` (cached). NOT_FOUND naming the symbol when it has none;
        FAILED_PRECONDITION listing the candidates when several match."""
        key = contracts.spec_key(spec)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        query = contracts.to_ib(spec)
        subject = contracts.describe(spec)

        async def call(ib: IB) -> list[ContractDetails]:
            return await self._bounded(subject, ib.reqContractDetailsAsync(query))

        found = await self._with_retries(subject, call)
        if not found:
            raise ApiError(
                StatusCode.NOT_FOUND,
                f"{subject}: the gateway has no security definition for it",
                "IB_NO_SECURITY",
            )
        if len(found) > 1:
            names = ", ".join(
                f"{d.contract.symbol} {d.contract.secType} {d.contract.exchange} {d.contract.currency} "
                f"conId {d.contract.conId}"
                for d in found[:10]
                if d.contract is not None
            )
            raise ApiError(
                StatusCode.FAILED_PRECONDITION,
                f"{subject} is ambiguous ({len(found)} contracts): {names}; give sec_type, exchange, "
                "currency or con_id",
                "IB_AMBIGUOUS_CONTRACT",
            )
        self._resolved[key] = found[0]
        return found[0]

    # -- head timestamp ---------------------------------------------------------------------------
    async def head_timestamp(self, details: ContractDetails, what: str, use_rth: bool) -> int | None:
        """The earliest bar time (UTC epoch s) the gateway has, or None when it has no data of that
        type at all. Paced like a historical request (conservative); cached."""
        contract = details.contract
        assert contract is not None
        key = (contract.conId, what, use_rth)
        if key in self._heads:
            return self._heads[key]
        subject = f"{contract.symbol} {what} head timestamp"

        async def call(ib: IB) -> dt.datetime:
            return await self._bounded(
                subject, ib.reqHeadTimeStampAsync(contracts.for_request(details), what, use_rth, 2)
            )

        try:
            head = await self._paced(subject, ("head", *key), (contract.conId, contract.exchange, what), call)
        except NoData:
            self._heads[key] = None
            return None
        if not isinstance(head, dt.datetime):
            raise ApiError(
                StatusCode.DEADLINE_EXCEEDED, f"{subject}: the gateway did not answer", "IB_NO_ANSWER"
            )
        value = int(head.replace(tzinfo=head.tzinfo or dt.UTC).timestamp())
        self._heads[key] = value
        return value

    # -- historical data --------------------------------------------------------------------------
    async def stream(self, request: pb.FetchBarsRequest, emit: Emit) -> None:
        """Fetch ``request``'s range, handing each response to ``emit`` in time order."""
        tf = timeframes.parse(request.timeframe)
        start_s = request.range.start_time.seconds
        end_s = request.range.end_time.seconds
        details = await self.resolve(request.contract)
        assert details.contract is not None
        symbol = contracts.series_name(details)
        what = what_to_show(request.what_to_show, details)
        head = await self.head_timestamp(details, what, request.use_rth)
        # A bar may be stamped up to a bar (or, for sessions, a day) before the first traded minute.
        first_possible = None if head is None else head - int(tf.seconds) - DAY_S
        if first_possible is None or first_possible >= end_s:
            emit(pb.FetchBarsResponse(empty=_range(start_s, end_s)))
            return
        if first_possible > start_s:
            emit(pb.FetchBarsResponse(empty=_range(start_s, first_possible)))
            start_s = first_possible
        plan = requests.plan(tf.text, start_s, end_s)
        bar_size = requests.bar_size(tf.text)
        last_ns = -1
        fetched = 0
        for done, item in enumerate(plan, start=1):
            try:
                bars = await self._historical(details, item, bar_size, what, request.use_rth, emit)
            except NoData:
                bars = []
            kept = columns.select(bars, last_ns, start_s * columns.NS, end_s * columns.NS)
            core = (item.core_start_s * columns.NS, item.core_end_s * columns.NS)
            if not any(core[0] <= columns.time_ns(bar.date) < core[1] for bar in bars):
                emit(pb.FetchBarsResponse(empty=_range(item.core_start_s, item.core_end_s)))
            for chunk in kept.chunks(symbol, tf.text):
                emit(pb.FetchBarsResponse(chunk=chunk))
            if len(kept):
                last_ns = kept.time_ns[-1]
                fetched += len(kept)
            emit(self._progress(done, len(plan), fetched))

    def _progress(self, done: int, total: int, fetched: int) -> pb.FetchBarsResponse:
        eta = duration_pb2.Duration()
        eta.FromNanoseconds(round(self.pacer.eta_s(total - done + self.pacer.queued) * 1e9))
        progress = common_pb2.Progress(
            fraction=done / total,
            message=f"fetched {done}/{total} requests",
            current=done,
            total=total,
            eta=eta,
            metrics={"bars_fetched": float(fetched)},
        )
        return pb.FetchBarsResponse(
            progress=pb.FetchProgress(
                progress=progress, bars_fetched=fetched, requests_done=done, requests_total=total
            )
        )

    async def _historical(
        self,
        details: ContractDetails,
        item: requests.Request,
        bar_size: str,
        what: str,
        use_rth: bool,
        emit: Emit,
    ) -> list[BarData]:
        contract = details.contract
        assert contract is not None
        end = dt.datetime.fromtimestamp(item.end_s, dt.UTC)
        subject = f"{contract.symbol} {bar_size} ending {end:%Y-%m-%d %H:%M} UTC"
        timeout = self.config.request_timeout_s

        async def call(ib: IB) -> list[BarData]:
            ask = contracts.for_request(details)
            with self.connection.request_warnings(ask) as warning:
                answer = asyncio.ensure_future(
                    ib.reqHistoricalDataAsync(
                        ask, end, item.duration, bar_size, what, use_rth, 2, timeout=timeout
                    )
                )
                await asyncio.wait({answer, warning}, return_when=asyncio.FIRST_COMPLETED)
                if not answer.done():
                    answer.cancel()
                    code, text = warning.result()
                    raise RequestError(-1, code, text)
                bars = list(answer.result())
            if not bars:
                # ib_async returns nothing, without an error, when the request timed out: not "no data".
                raise _Unanswered(f"{subject}: no answer within {timeout:g} s")
            return bars

        def on_wait(seconds: float, reason: str) -> None:
            wait = pb.PacingWait(reason=reason)
            wait.wait.FromNanoseconds(round(min(seconds, 86_400.0) * 1e9))
            emit(pb.FetchBarsResponse(pacing_wait=wait))

        identity: Hashable = (
            contract.conId,
            contract.exchange,
            item.end_s,
            item.duration,
            bar_size,
            what,
            use_rth,
        )
        return await self._paced(subject, identity, (contract.conId, contract.exchange, what), call, on_wait)

    # -- retries ----------------------------------------------------------------------------------
    async def _bounded(self, subject: str, request: Awaitable[T]) -> T:
        """``request``'s answer, or :class:`_Unanswered` after ``request_timeout_s`` (ib_async waits
        for contract details and head timestamps without a limit)."""
        timeout = self.config.request_timeout_s
        try:
            return await asyncio.wait_for(request, timeout)
        except TimeoutError:
            raise _Unanswered(f"{subject}: no answer within {timeout:g} s") from None

    async def _paced(
        self,
        subject: str,
        identity: Hashable,
        burst_key: Hashable,
        call: Callable[[IB], Awaitable[T]],
        on_wait: Callable[[float, str], None] | None = None,
    ) -> T:
        """``call`` once the pacer allows, retried after pacing violations and lost answers."""

        async def paced(ib: IB) -> T:
            slot = await self.pacer.acquire(identity, burst_key, on_wait=on_wait)
            try:
                return await call(ib)
            finally:
                self.pacer.release(slot)

        return await self._with_retries(subject, paced)

    async def _with_retries(self, subject: str, call: Callable[[IB], Awaitable[T]]) -> T:
        """Run ``call`` on the live connection; map IB errors; retry what may succeed later."""
        violations = lost = 0
        rules = self.pacer.rules
        while True:
            ib = await self.connection.ready()
            try:
                return await call(ib)
            except RequestError as exc:
                if exc.code != ib_errors.PACING:
                    raise ib_errors.to_api_error(exc.code, exc.message, subject) from None
                kind = ib_errors.classify_162(exc.message)
                if kind == ib_errors.HMDS_NO_DATA:
                    raise NoData(exc.message) from None
                if kind != ib_errors.HMDS_PACING:
                    raise ib_errors.to_api_error(exc.code, exc.message, subject) from None
                self.pacing_violations += 1
                violations += 1
                backoff = min(
                    self.pacer.window(rules.identical_window_s * 2 ** (violations - 1)),
                    self.pacer.window(rules.rolling_window_s),
                )
                if violations > self.config.pacing_retries:
                    raise ib_errors.to_api_error(
                        exc.code, exc.message, subject, retry_after_s=backoff
                    ) from None
                log.warning(
                    "pacing violation from the gateway; backing off",
                    extra={"subject": subject, "backoff_s": round(backoff, 3), "violations": violations},
                )
                self.pacer.hold(backoff, "back-off after a pacing violation (IB error 162)")
            except (ConnectionError, _Unanswered) as exc:
                lost += 1
                log.warning(
                    "request lost; retrying", extra={"subject": subject, "error": str(exc), "attempt": lost}
                )
                if lost >= self.config.attempts:
                    if isinstance(exc, _Unanswered):
                        raise ApiError(StatusCode.DEADLINE_EXCEEDED, str(exc), "IB_NO_ANSWER") from None
                    raise ib_errors.unavailable(
                        f"{subject}: the connection to the gateway dropped {lost} times", retry_after_s=1.0
                    ) from None


class _Unanswered(Exception):
    """The gateway did not answer a request in time (ib_async returned nothing, without an error)."""
