"""``hostd ib`` as a process: the IB host on the shared lifecycle (:mod:`hostd.lifecycle`).

Phases: bind (a unix socket, chmod 0660, loopback TCP, or TCP with TLS + a bearer token:
:mod:`ktrdr.rpc.hostauth`) → start serving; print one JSON line
``{"listening": "unix:PATH" | "HOST:PORT"}``, send ``READY=1`` and start the watchdog pings (when
systemd asks for them) → the connection's reconnect loop
runs; health ``""`` and ``ktrdr.hostd.marketdata.v1.MarketDataService`` (and its short alias
``ktrdr.hostd.ib``) are SERVING exactly while the gateway is usable, and sd_notify STATUS follows
the connection → SIGTERM/SIGINT: ``STOPPING=1``, health NOT_SERVING, calls in flight get
:data:`hostd.lifecycle.STOP_GRACE_S`, the gateway connection closes, the socket file is removed,
exit 0. A bind failure exits 1 (the reason is logged).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from grpc_health.v1 import health

from hostd import lifecycle
from hostd.ib.connection import Connection, ConnectionConfig, ConnectionState
from hostd.ib.fetch import FetchConfig, Fetcher
from hostd.ib.pacer import Pacer
from hostd.ib.service import MarketDataService
from hostd.lifecycle import NOT_SERVING, SERVING
from ktrdr.rpc import hostauth
from ktrdr.rpc.registry import Registry
from ktrdr.sdnotify import Notifier

log = logging.getLogger("hostd.ib")

#: The health names that follow the gateway ("" = overall).
HEALTH_ALIAS = "ktrdr.hostd.ib"


@dataclass(frozen=True)
class HostConfig:
    listen: str
    gateway_host: str
    gateway_port: int
    client_id: int = 1
    clock_scale: float = 1.0
    gateway_wait_s: float = 30.0
    request_timeout_s: float = 60.0
    simulated: bool = False
    #: TLS + bearer token for TCP listening (None: unix socket, or plain TCP on loopback only).
    auth: hostauth.ServerAuth | None = None


async def _follow(
    connection: Connection, servicer: health.aio.HealthServicer, names: list[str], notifier: Notifier
) -> None:
    """Keep health and sd_notify STATUS in step with the connection (runs until cancelled)."""
    changed = asyncio.Event()

    def on_change(_state: ConnectionState) -> None:
        changed.set()

    connection.on_change(on_change)
    while True:
        serving = connection.usable
        for name in names:
            await servicer.set(name, SERVING if serving else NOT_SERVING)
        notifier.status(f"gateway {connection.status.state}: {connection.status.message}")
        await changed.wait()
        changed.clear()


class IbHost:
    """The IB host as a :class:`hostd.lifecycle.HostApp`: health follows the gateway connection."""

    health_aliases = (HEALTH_ALIAS,)

    def __init__(self, config: HostConfig) -> None:
        self.connection = Connection(
            ConnectionConfig(
                config.gateway_host, config.gateway_port, config.client_id, wait_s=config.gateway_wait_s
            )
        )
        fetcher = Fetcher(
            self.connection,
            Pacer(clock_scale=config.clock_scale),
            FetchConfig(request_timeout_s=config.request_timeout_s),
        )
        self.registry = Registry([MarketDataService(self.connection, fetcher, simulated=config.simulated)])
        self._tasks: list[asyncio.Task[None]] = []
        self._health: health.aio.HealthServicer | None = None

    async def start(self, health_servicer: health.aio.HealthServicer, notifier: Notifier) -> str:
        self._health = health_servicer
        names = lifecycle.health_names(self)
        self._tasks = [
            asyncio.create_task(_follow(self.connection, health_servicer, names, notifier)),
            asyncio.create_task(self.connection.run()),
        ]
        log.info(
            "ib host starting",
            extra={"gateway": self.connection.config.address, "client_id": self.connection.config.client_id},
        )
        return f"gateway {self.connection.config.address}"

    async def drain(self) -> None:
        follower = self._tasks[0]
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        if self._health is not None:  # the follower may have raced the lifecycle's NOT_SERVING
            await lifecycle.set_health(self._health, lifecycle.health_names(self), False)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.connection.close()
