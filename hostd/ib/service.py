"""``ktrdr.hostd.marketdata.v1.MarketDataService``: the RPCs, served through :mod:`ktrdr.rpc.registry`.

Requests are checked first (INVALID_ARGUMENT naming the field; nothing is sent to the gateway);
then :class:`~hostd.ib.fetch.Fetcher` does the work. ``FetchBars`` runs the fetch as a task that
hands responses to the stream through a queue, so pacing waits can be reported while the fetch waits;
the task is cancelled when the client goes away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from google.protobuf import timestamp_pb2

from hostd.ib import connection as conn
from hostd.ib import contracts
from hostd.ib.fetch import Fetcher, what_to_show
from ktrdr import __version__, timeframes
from ktrdr.hostd.marketdata.v1 import marketdata_pb2 as pb
from ktrdr.rpc.errors import ApiError, invalid_argument
from ktrdr.rpc.registry import Call
from ktrdr.wire import StatusCode

_STATES = {
    conn.CONNECTING: pb.CONNECTION_STATE_CONNECTING,
    conn.CONNECTED: pb.CONNECTION_STATE_CONNECTED,
    conn.DISCONNECTED: pb.CONNECTION_STATE_DISCONNECTED,
}


def _check_contract(spec: pb.ContractSpec, field: str = "contract") -> None:
    if not spec.symbol.strip() and spec.con_id == 0:
        raise invalid_argument(f"{field}.symbol", "a symbol or a con_id is required")


def _check_fetch(request: pb.FetchBarsRequest) -> None:
    _check_contract(request.contract)
    try:
        timeframes.parse(request.timeframe)
    except timeframes.TimeframeError as exc:
        raise invalid_argument("timeframe", str(exc)) from None
    if not request.range.HasField("start_time") or not request.range.HasField("end_time"):
        raise invalid_argument("range", "start_time and end_time are both required")
    if request.range.start_time.ToNanoseconds() >= request.range.end_time.ToNanoseconds():
        raise invalid_argument("range", "start_time must be before end_time")
    if request.what_to_show not in pb.WhatToShow.values():
        raise invalid_argument("what_to_show", f"unknown value {request.what_to_show}")


class MarketDataService:
    descriptor = pb.DESCRIPTOR.services_by_name["MarketDataService"]

    def __init__(self, connection: conn.Connection, fetcher: Fetcher, simulated: bool = False) -> None:
        self.connection = connection
        self.fetcher = fetcher
        self.simulated = simulated

    async def FetchBars(
        self, request: pb.FetchBarsRequest, call: Call
    ) -> AsyncIterator[pb.FetchBarsResponse]:
        _check_fetch(request)
        queue: asyncio.Queue[pb.FetchBarsResponse | BaseException | None] = asyncio.Queue()

        async def produce() -> None:
            try:
                await self.fetcher.stream(request, queue.put_nowait)
            except Exception as exc:  # handed to the stream, which raises it to the client
                queue.put_nowait(exc)
            else:
                queue.put_nowait(None)

        task = asyncio.create_task(produce(), name=f"FetchBars {request.contract.symbol} {request.timeframe}")
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            task.cancel()

    async def GetHeadTimestamp(
        self, request: pb.GetHeadTimestampRequest, call: Call
    ) -> pb.GetHeadTimestampResponse:
        _check_contract(request.contract)
        details = await self.fetcher.resolve(request.contract)
        what = what_to_show(request.what_to_show, details)
        head = await self.fetcher.head_timestamp(details, what, request.use_rth)
        if head is None:
            raise ApiError(
                StatusCode.NOT_FOUND,
                f"{request.contract.symbol or request.contract.con_id}: the gateway has no {what} data",
                "IB_NO_DATA",
            )
        return pb.GetHeadTimestampResponse(head_time=timestamp_pb2.Timestamp(seconds=head))

    async def ResolveContract(
        self, request: pb.ResolveContractRequest, call: Call
    ) -> pb.ResolveContractResponse:
        _check_contract(request.contract)
        details = await self.fetcher.resolve(request.contract)
        return pb.ResolveContractResponse(contract=contracts.to_proto(details))

    async def GetStatus(self, request: pb.GetStatusRequest, call: Call) -> pb.GetStatusResponse:
        status = self.connection.status
        config = self.connection.config
        pacer = self.fetcher.pacer.snapshot()
        response = pb.GetStatusResponse(
            state=_STATES[status.state],
            gateway_address=config.address,
            client_id=config.client_id,
            server_version=status.server_version,
            since=timestamp_pb2.Timestamp(seconds=int(status.since)),
            message=status.message,
            pacer=pb.PacerStatus(
                requests_in_window=pacer.requests_in_window,
                open_requests=pacer.open_requests,
                queued_requests=pacer.queued_requests,
                budget_left=max(0, self.fetcher.pacer.rules.rolling_max - pacer.requests_in_window),
                pacing_violations=self.fetcher.pacing_violations,
            ),
            simulated=self.simulated,
            farms=[pb.FarmStatus(code=code, message=text) for code, text in sorted(status.farms.items())],
            ib_connectivity=not status.connectivity_lost,
            version=__version__,
        )
        if pacer.next_slot_s > 0:
            response.pacer.next_slot_time.FromNanoseconds(round((time.time() + pacer.next_slot_s) * 1e9))
        if pacer.queued_requests:
            response.pacer.queue_eta.FromNanoseconds(round(pacer.queue_eta_s * 1e9))
        return response
