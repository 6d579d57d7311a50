"""One client connection: the handshake, the start-up exchange, and the data requests.

Exchanges (client → server ⇒ server → client), field lists after the message id:

- hello ``API\\0`` + ``v<min>..<max>`` ⇒ ``[serverVersion, "YYYYMMDD HH:MM:SS UTC"]``
- START_API 71 ``[2, clientId, optCapab]`` ⇒ MANAGED_ACCOUNTS 15 ``[1, account]``, NEXT_VALID_ID 9
  ``[1, 1]`` and the farm-status notices 2104/2106/2158 (error messages with id -1). A client id in
  use (or reserved) ⇒ error 326 with id -1, then the connection is closed.
- start-up sync: REQ_POSITIONS 61 ⇒ POSITION_END 62; REQ_OPEN_ORDERS 5 ⇒ OPEN_ORDER_END 53;
  REQ_COMPLETED_ORDERS 99 ⇒ COMPLETED_ORDERS_END 102; REQ_ACCOUNT_UPDATES 6 (subscribe) ⇒
  ACCOUNT_DOWNLOAD_END 54; REQ_ACCOUNT_UPDATES_MULTI 76 ⇒ ACCOUNT_UPDATE_MULTI_END 74; REQ_EXECUTIONS 7
  ⇒ EXECUTION_DATA_END 55; REQ_IDS 8 ⇒ NEXT_VALID_ID 9; REQ_CURRENT_TIME 49 ⇒ CURRENT_TIME 49.
- REQ_CONTRACT_DETAILS 9 ``[8, reqId, C12, includeExpired, secIdType, secId(, issuerId)]`` ⇒
  CONTRACT_DATA 10 then CONTRACT_DATA_END 52 ``[1, reqId]``; unknown ⇒ error 200.
- REQ_HEAD_TIMESTAMP 87 ``[reqId, C12, includeExpired, useRTH, whatToShow, formatDate]`` ⇒
  HEAD_TIMESTAMP 88 ``[reqId, "YYYYMMDD-HH:MM:SS" (UTC) | epoch]``.
- REQ_HISTORICAL_DATA 20 ``[reqId, C12, includeExpired, end, barSize, duration, useRTH, whatToShow,
  formatDate, keepUpToDate, chartOptions]`` ⇒ HISTORICAL_DATA 17 (see :mod:`.history`), or error
  200 (unknown contract), 321 (invalid field), 162 (pacing violation, no data of that type, or no
  data in the span). ``keepUpToDate`` is ignored: the answer ends the request.
- CANCEL_HISTORICAL_DATA 25 ``[1, reqId]``: the request is dropped unanswered.
- Errors: ERR_MSG 4 ``[2, reqId, code, text, advancedOrderRejectJson]``.

Each data request runs in its own task, so a slow answer (latency, connectivity loss) never holds up
the next request or a cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hostd.gatewaysim import history
from hostd.gatewaysim.contracts import Instrument, contract_data_fields
from hostd.gatewaysim.wire import (
    SERVER_VERSIONS,
    In,
    Out,
    ProtocolError,
    WireContract,
    encode,
    read_frame,
    read_hello,
)
from ktrdr.calendars import DAY_S, Sessions, calendar_for

if TYPE_CHECKING:
    from hostd.gatewaysim.server import GatewaySim

log = logging.getLogger("hostd.gatewaysim")

NEXT_VALID_ID = 1
_C12 = WireContract.FIELD_COUNT
_FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
MSG_NO_SECURITY = "No security definition has been found for the request"
MSG_PACING = "Historical Market Data Service error message:Historical data request pacing violation"
MSG_NO_DATA = "Historical Market Data Service error message:HMDS query returned no data"
MSG_CLIENT_ID = "Unable to connect as the client id is already in use.  Retry with a unique client id."


class Session:
    """Serves one TCP connection until the peer leaves, a fault drops it, or the simulator stops."""

    def __init__(self, sim: GatewaySim, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sim = sim
        self._reader = reader
        self._writer = writer
        self.peer = writer.get_extra_info("peername")
        self.client_id: int | None = None
        self.server_version = 0
        self._data_requests = 0
        self._requests: dict[int, asyncio.Task[None]] = {}
        self._closed = False
        self._drop_timer: asyncio.TimerHandle | None = None
        self._route = self._routes()

    # -- output ---------------------------------------------------------------------------------
    def send(self, *fields: object) -> None:
        self.send_frame(encode(*fields))

    def send_frame(self, frame: bytes) -> None:
        if not self._closed:
            self._writer.write(frame)

    def send_error(self, req_id: int, code: int, text: str) -> None:
        log.info(
            "error sent", extra={"client_id": self.client_id, "req_id": req_id, "code": code, "text": text}
        )
        self.send(Out.ERROR, 2, req_id, code, text, "")

    def close(self, reason: str) -> None:
        """Close the connection now (idempotent); the read loop ends and pending requests are cancelled."""
        if self._closed:
            return
        self._closed = True
        if self._drop_timer is not None:
            self._drop_timer.cancel()
        log.info(
            "connection closed", extra={"peer": str(self.peer), "client_id": self.client_id, "reason": reason}
        )
        self._writer.close()

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._handshake()
            while not self._closed:
                fields = await read_frame(self._reader)
                if fields:
                    self._dispatch(fields)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close("peer closed the connection")
        except ProtocolError as exc:
            self.close(f"protocol error: {exc}")
        finally:
            self.close("session ended")
            for task in self._requests.values():
                task.cancel()
            await asyncio.gather(*self._requests.values(), return_exceptions=True)
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    async def _handshake(self) -> None:
        hello = await read_hello(self._reader)
        version = min(self.sim.config.server_version, hello.max_version)
        if version < max(hello.min_version, SERVER_VERSIONS.start):
            raise ProtocolError(
                f"client accepts server versions {hello.min_version}..{hello.max_version}; "
                f"the simulator speaks {SERVER_VERSIONS.start}..{self.sim.config.server_version}"
            )
        self.server_version = version
        self.send(version, time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime()))

    # -- dispatch -------------------------------------------------------------------------------
    def _routes(self) -> dict[int, Callable[[list[str]], None]]:
        """Message id → handler (given the message's fields); ids not here are logged and ignored."""
        return {
            In.START_API: self._start_api,
            In.REQ_POSITIONS: lambda _: self.send(Out.POSITION_END, 1),
            In.REQ_OPEN_ORDERS: lambda _: self.send(Out.OPEN_ORDER_END, 1),
            In.REQ_COMPLETED_ORDERS: lambda _: self.send(Out.COMPLETED_ORDERS_END),
            In.REQ_ACCOUNT_UPDATES: self._account_updates,
            In.REQ_ACCOUNT_UPDATES_MULTI: lambda f: self.send(Out.ACCOUNT_UPDATE_MULTI_END, 1, int(f[2])),
            In.REQ_EXECUTIONS: lambda f: self.send(Out.EXECUTION_DATA_END, 1, int(f[2])),
            In.REQ_IDS: lambda _: self.send(Out.NEXT_VALID_ID, 1, NEXT_VALID_ID),
            In.REQ_CURRENT_TIME: lambda _: self.send(Out.CURRENT_TIME, 1, int(time.time())),
            In.REQ_CONTRACT_DETAILS: self._counted(self._contract_details),
            In.REQ_HEAD_TIMESTAMP: self._counted(self._head_timestamp),
            In.REQ_HISTORICAL_DATA: self._counted(self._historical_data),
            In.CANCEL_HISTORICAL_DATA: lambda f: self._cancel(int(f[2])),
            In.CANCEL_HEAD_TIMESTAMP: lambda f: self._cancel(int(f[1])),
            # Acknowledged by doing nothing, as TWS does for a data-only session.
            In.REQ_AUTO_OPEN_ORDERS: lambda _: None,
            In.REQ_MARKET_DATA_TYPE: lambda _: None,
            In.CANCEL_POSITIONS: lambda _: None,
            In.CANCEL_ACCOUNT_UPDATES_MULTI: lambda _: None,
        }

    def _dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except ValueError:
            raise ProtocolError(f"message id {fields[0]!r} is not an integer") from None
        handler = self._route.get(msg_id)
        if handler is None:
            log.warning("unsupported message ignored", extra={"msg_id": msg_id, "fields": len(fields)})
            return
        if self.client_id is None and msg_id != In.START_API:
            log.warning("request before START_API ignored", extra={"msg_id": msg_id})
            return
        try:
            handler(fields)
        except (IndexError, ValueError) as exc:
            raise ProtocolError(f"malformed message {msg_id}: {exc}") from None

    def _account_updates(self, fields: list[str]) -> None:
        if fields[2] == "1":  # subscribe
            self.send(Out.ACCOUNT_DOWNLOAD_END, 1, fields[3])

    def _start_api(self, fields: list[str]) -> None:
        client_id = int(fields[2])
        if not self.sim.claim_client_id(client_id, self):
            self.send_error(-1, 326, MSG_CLIENT_ID)
            self.close(f"client id {client_id} in use")
            return
        self.client_id = client_id
        log.info(
            "api started",
            extra={"peer": str(self.peer), "client_id": client_id, "version": self.server_version},
        )
        self.send(Out.MANAGED_ACCOUNTS, 1, self.sim.config.account)
        self.send(Out.NEXT_VALID_ID, 1, NEXT_VALID_ID)
        for code, text in _FARM_NOTICES:
            self.send_error(-1, code, text)
        drop_after_s = self.sim.faults.drop_after_s
        if drop_after_s is not None:
            self._drop_timer = asyncio.get_running_loop().call_later(
                drop_after_s, self.close, f"fault: dropped after {drop_after_s} s"
            )

    def _counted(self, handler: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
        """``handler`` for a data request, counted for the drop-after-N-requests fault."""

        def counted(fields: list[str]) -> None:
            self._data_requests += 1
            limit = self.sim.faults.drop_after_requests
            if limit is not None and self._data_requests > limit:
                self.close(f"fault: dropped at data request {self._data_requests} (after {limit})")
                return
            handler(fields)

        return counted

    def _spawn(
        self, req_id: int, work: Coroutine[None, None, None], on_done: Callable[[], None] | None = None
    ) -> None:
        """Answer ``req_id`` in its own task; ``on_done`` runs however the task ends (even cancelled unstarted)."""
        task = asyncio.get_running_loop().create_task(work)
        self._requests[req_id] = task

        def done(_: asyncio.Task[None]) -> None:
            if self._requests.get(req_id) is task:
                del self._requests[req_id]
            if on_done is not None:
                on_done()
            error = None if task.cancelled() else task.exception()
            if error is not None:
                log.error("request failed", exc_info=error, extra={"req_id": req_id})
                self.send_error(req_id, 322, f"Error processing request: {error}")

        task.add_done_callback(done)

    async def _answer_delay(self) -> None:
        """Hold an answer while connectivity is lost, then for the configured latency."""
        await self.sim.connected.wait()
        if self.sim.faults.latency_s:
            await asyncio.sleep(self.sim.faults.latency_s)

    def _resolve(self, req_id: int, contract_fields: list[str]) -> Instrument | None:
        instrument = self.sim.directory.resolve(WireContract.parse(contract_fields))
        if instrument is None:
            self.send_error(req_id, 200, MSG_NO_SECURITY)
        return instrument

    # -- contract details -----------------------------------------------------------------------
    def _contract_details(self, fields: list[str]) -> None:
        req_id = int(fields[2])
        instrument = self._resolve(req_id, fields[3 : 3 + _C12])
        if instrument is not None:
            self._spawn(req_id, self._send_contract_details(req_id, instrument))

    async def _send_contract_details(self, req_id: int, instrument: Instrument) -> None:
        await self._answer_delay()
        calendar = calendar_for(instrument.asset_class)
        now_s = int(time.time())
        week = (now_s, now_s + 7 * DAY_S)
        tz = instrument.traits.time_zone_id
        trading = hours_text(calendar.sessions(*week, rth=False), tz)
        liquid = hours_text(calendar.sessions(*week, rth=True), tz)
        self.send(*contract_data_fields(req_id, instrument, trading, liquid))
        self.send(Out.CONTRACT_DATA_END, 1, req_id)

    # -- head timestamp -------------------------------------------------------------------------
    def _head_timestamp(self, fields: list[str]) -> None:
        req_id = int(fields[1])
        rest = fields[2 + _C12 :]
        use_rth, format_date = rest[1] == "1", int(rest[3] or 1)
        instrument = self._resolve(req_id, fields[2 : 2 + _C12])
        if instrument is not None:
            self._spawn(req_id, self._send_head_timestamp(req_id, instrument, use_rth, format_date))

    async def _send_head_timestamp(
        self, req_id: int, instrument: Instrument, use_rth: bool, format_date: int
    ) -> None:
        await self._answer_delay()
        head_s = await asyncio.to_thread(self.sim.source.head_timestamp, instrument, use_rth)
        if head_s is None:
            self.send_error(req_id, 162, MSG_NO_DATA)
            return
        text = str(head_s) if format_date == 2 else time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(head_s))
        self.send(Out.HEAD_TIMESTAMP, req_id, text)

    # -- historical data ------------------------------------------------------------------------
    def _historical_data(self, fields: list[str]) -> None:
        req_id = int(fields[1])
        contract_fields = fields[2 : 2 + _C12]
        rest = fields[2 + _C12 :]
        request = history.HistoricalRequest(
            end=rest[1],
            bar_size=rest[2],
            duration=rest[3],
            use_rth=rest[4] == "1",
            what_to_show=rest[5].upper(),
            format_date=int(rest[6] or 1),
        )
        instrument = self._resolve(req_id, contract_fields)
        if instrument is None:
            return
        try:
            history.validate(request)
        except history.RequestInvalid as exc:
            self.send_error(req_id, 321, f"Error validating request.-'bP' : cause - {exc}")
            return
        faults = self.sim.faults
        if faults.reject_321 > 0:
            faults.reject_321 -= 1
            self.send_error(req_id, 321, "Error validating request.-'bP' : cause - injected by the simulator")
            return
        if request.what_to_show not in instrument.traits.whats_to_show:
            self.send_error(
                req_id,
                162,
                f"Historical Market Data Service error message:No data of type {request.what_to_show} "
                f"is available for the exchange '{instrument.exchange}' and the security type "
                f"'{instrument.traits.sec_type}'",
            )
            return
        violation = self.sim.pacer.admit(
            identity=(instrument.con_id, instrument.exchange, request),
            burst_key=(instrument.con_id, instrument.exchange, request.what_to_show),
        )
        if violation is not None:
            log.warning(
                "pacing violation", extra={"client_id": self.client_id, "req_id": req_id, "rule": violation}
            )
            self.send_error(req_id, 162, MSG_PACING)
            return
        self._spawn(
            req_id, self._send_historical_data(req_id, instrument, request), on_done=self.sim.pacer.close
        )

    async def _send_historical_data(
        self, req_id: int, instrument: Instrument, request: history.HistoricalRequest
    ) -> None:
        await self._answer_delay()
        calendar = calendar_for(instrument.asset_class)
        now_s = int(time.time())
        end_s = history.parse_end(request.end, now_s)
        start_s = history.span_start(request, end_s, calendar)
        if request.bar_minutes < history.DAY and end_s - start_s > history.MAX_INTRADAY_SPAN_S:
            self.send_error(
                req_id, 162, "Historical Market Data Service error message:Time length exceed max."
            )
            return

        def build() -> tuple[int, bytes]:
            """(number of bars, the encoded HISTORICAL_DATA frame): off the loop, as both take time."""
            bars = self.sim.source.bars(instrument, request, start_s, end_s, now_s)
            tz = instrument.traits.time_zone_id
            return len(bars), encode(
                *history.historical_data_fields(req_id, request, bars, start_s, end_s, tz)
            )

        count, frame = await asyncio.to_thread(build)
        if count == 0:
            self.send_error(req_id, 162, f"{MSG_NO_DATA}: {instrument.series} {request.bar_size}")
            return
        self.send_frame(frame)
        log.debug(
            "historical data sent", extra={"req_id": req_id, "bars": count, "series": instrument.series}
        )

    def _cancel(self, req_id: int) -> None:
        task = self._requests.pop(req_id, None)
        if task is not None:
            task.cancel()


def hours_text(sessions: Sessions, time_zone: str) -> str:
    """IB's ``tradingHours``/``liquidHours`` text: ``YYYYMMDD:HHMM-YYYYMMDD:HHMM;…`` in ``time_zone``."""

    def wall(epoch_s: np.ndarray) -> pd.Index:
        return pd.to_datetime(epoch_s, unit="s", utc=True).tz_convert(time_zone).strftime("%Y%m%d:%H%M")

    opens, closes = wall(sessions.open_s), wall(sessions.close_s)
    return ";".join(f"{start}-{stop}" for start, stop in zip(opens, closes, strict=True))
