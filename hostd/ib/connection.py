"""The one connection to IB Gateway/TWS: read-only, a fixed client id, ``RaiseRequestErrors``, and
its own reconnect loop with exponential back-off.

:meth:`Connection.run` (a task for the host's lifetime) connects, waits for the socket to close,
then reconnects after ``backoff`` (doubling up to ``backoff_max_s``, reset by a successful connect).
Each attempt uses a fresh :class:`ib_async.IB`, so no state survives a dropped socket.

The connection is *usable* while the socket is up and IB's own connectivity is not lost (error 1100
until 1101/1102). :meth:`Connection.ready` returns the live ``IB`` or waits for one, at most
``wait_s`` (or the caller's limit); then it raises UNAVAILABLE with RetryInfo, or
FAILED_PRECONDITION naming the client id while the gateway refuses it (326).

Listeners registered with :meth:`on_change` run after every state change (health, sd_notify STATUS).
Farm status notices (2100–2199) are kept by code for ``GetStatus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ib_async import IB

from hostd.ib import ib_errors
from ktrdr.rpc.errors import ApiError
from ktrdr.wire import StatusCode

log = logging.getLogger("hostd.ib")

CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class ConnectionConfig:
    host: str
    port: int
    client_id: int = 1
    #: Seconds one connect attempt may take (ib_async's start-up exchange included).
    connect_timeout_s: float = 10.0
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    #: How long a call waits for the gateway before failing UNAVAILABLE.
    wait_s: float = 30.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class ConnectionState:
    """What :meth:`Connection.state` reports."""

    state: str = CONNECTING
    since: float = field(default_factory=time.time)  # wall clock, epoch seconds
    message: str = "connecting"
    server_version: int = 0
    #: Last farm status notice by code: code → IB's text.
    farms: dict[int, str] = field(default_factory=dict)
    connectivity_lost: bool = False
    client_id_refused: bool = False


class Connection:
    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config
        self.status = ConnectionState()
        self._ib: IB | None = None
        self._usable = asyncio.Event()
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[ConnectionState], None]] = []
        self._warnings: dict[int, asyncio.Future[tuple[int, str]]] = {}

    # -- state ------------------------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return self._usable.is_set()

    def on_change(self, listener: Callable[[ConnectionState], None]) -> None:
        self._listeners.append(listener)

    def _set(self, state: str, message: str) -> None:
        changed = (state, message) != (self.status.state, self.status.message)
        if state != self.status.state:
            self.status.since = time.time()
        self.status.state, self.status.message = state, message
        if state == CONNECTED and not self.status.connectivity_lost:
            self._usable.set()
        else:
            self._usable.clear()
        self._changed.set()
        self._changed = asyncio.Event()
        if changed:
            log.info("gateway connection", extra={"state": state, "detail": message})
            for listener in list(self._listeners):
                listener(self.status)

    # -- the reconnect loop -----------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, stay connected, reconnect with back-off; runs until cancelled."""
        backoff = self.config.backoff_s
        while True:
            ib = IB()
            ib.RaiseRequestErrors = True
            closed = asyncio.Event()
            ib.errorEvent += self._on_error
            ib.disconnectedEvent += closed.set
            self.status.connectivity_lost = False
            self.status.farms.clear()
            if not self.status.client_id_refused:  # else the refusal stays the news until a connect succeeds
                self._set(
                    CONNECTING, f"connecting to {self.config.address} as client id {self.config.client_id}"
                )
            try:
                await ib.connectAsync(
                    self.config.host,
                    self.config.port,
                    clientId=self.config.client_id,
                    timeout=self.config.connect_timeout_s,
                    readonly=True,
                )
            except (OSError, TimeoutError, ConnectionError) as exc:
                ib.disconnect()
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Python 3.11's wait_for (inside ib_async's connect) can swallow our cancellation
                    # when the connection fails at the same moment: then the host never stopped.
                    raise asyncio.CancelledError from exc
                reason = (
                    self._refusal()
                    if self.status.client_id_refused
                    else f"cannot connect to {self.config.address}: {exc or type(exc).__name__}"
                )
                self._set(DISCONNECTED, f"{reason}; retrying in {backoff:g} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.config.backoff_max_s)
                continue
            backoff = self.config.backoff_s
            self.status.client_id_refused = False
            self.status.server_version = int(ib.client.serverVersion())
            self._ib = ib
            self._set(CONNECTED, f"connected to {self.config.address} as client id {self.config.client_id}")
            try:
                await closed.wait()
            finally:
                self._ib = None
                ib.disconnect()
            self._set(
                DISCONNECTED, f"the gateway at {self.config.address} closed the connection; reconnecting"
            )

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        if code == ib_errors.CLIENT_ID_IN_USE:
            self.status.client_id_refused = True
            self._set(DISCONNECTED, self._refusal())
        elif code == ib_errors.CONNECTIVITY_LOST:
            self.status.connectivity_lost = True
            self._set(self.status.state, f"IB connectivity lost (1100): {message}")
        elif code in ib_errors.CONNECTIVITY_RESTORED:
            self.status.connectivity_lost = False
            self._set(self.status.state, f"IB connectivity restored ({code})")
        elif ib_errors.is_farm_notice(code):
            self.status.farms[code] = message
        warning = self._warnings.get(id(contract)) if contract is not None else None
        if warning is not None and not warning.done() and code == 321:
            warning.set_result((code, message))

    def _refusal(self) -> str:
        return f"client id {self.config.client_id} is in use at {self.config.address} (IB error 326)"

    @contextlib.contextmanager
    def request_warnings(self, contract: Any) -> Any:
        """A future resolved with (code, text) if the gateway answers a request for ``contract`` (this
        very object) with error 321, which ib_async treats as a warning and would leave pending."""
        future: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._warnings[id(contract)] = future
        try:
            yield future
        finally:
            del self._warnings[id(contract)]
            future.cancel()

    # -- for callers ------------------------------------------------------------------------------
    async def ready(self, limit_s: float | None = None) -> IB:
        """The live ``IB``; waits for the gateway up to ``min(wait_s, limit_s)`` seconds."""
        wait = self.config.wait_s if limit_s is None else min(self.config.wait_s, limit_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not (self._usable.is_set() or self.status.client_id_refused) and loop.time() < deadline:
            changed = self._changed  # every state change wakes the waiters, a refusal included
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), deadline - loop.time())
        if self._usable.is_set() and self._ib is not None:
            return self._ib
        if self.status.client_id_refused:
            raise ApiError(
                StatusCode.FAILED_PRECONDITION,
                f"the gateway at {self.config.address} refuses client id {self.config.client_id}: "
                "another application holds it (IB error 326); choose another --client-id",
                "IB_CLIENT_ID_IN_USE",
            )
        raise ib_errors.unavailable(
            f"the IB gateway is not available after {wait:g} s: {self.status.message}",
            retry_after_s=max(self.config.backoff_s, 1.0),
        )

    def close(self) -> None:
        if self._ib is not None:
            self._ib.disconnect()
