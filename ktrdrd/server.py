"""Assemble the daemon's two front doors on one :class:`~ktrdrd.services.Registry`.

``servers = await build_servers(core=..., app_state=..., grpc_socket=..., ctl_socket=...)`` creates
(inside the running loop) a ``grpc.aio`` server bound to ``unix:<grpc_socket>`` serving every daemon
service, standard health (``grpc.health.v1.Health``) and reflection, plus the ctl NDJSON server on
``ctl_socket``. Sockets are chmod 0660 after binding. Then ``await servers.start()``; on shutdown
``await servers.stop(grace)``: health NOT_SERVING for everything, no new calls, calls in flight get
``grace`` seconds, then are cancelled; both socket files are removed. ``await servers.abort()``
drops everything at once (a second stop signal).

Limits: the ctl server's :class:`~ktrdrd.ctl.server.Limits`; on gRPC, ``maximum_concurrent_rpcs``
(calls beyond it get RESOURCE_EXHAUSTED from grpcio), ``grpc.max_concurrent_streams`` per HTTP/2
connection, and the message size cap.

Health entries: ``""`` (overall), one per served service, ``ktrdr.journal`` (SERVING while journal
writes succeed) and one per host of ``app_state.hosts`` named ``ktrdr.host.<name>`` (SERVING when
the host is READY), kept in step by :meth:`Servers.follow_health`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2

from ktrdr.rpc.grpc_adapter import registry_server
from ktrdrd.appstate import AppState
from ktrdrd.ctl import CtlServer
from ktrdrd.ctl.server import Limits
from ktrdrd.rundirs import SOCKET_MODE, remove_socket
from ktrdrd.services import Registry, build_registry

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
JOURNAL_HEALTH = "ktrdr.journal"
HOST_HEALTH_PREFIX = "ktrdr.host."

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Servers:
    """The running front doors. Create with :func:`build_servers`."""

    app_state: AppState
    registry: Registry
    grpc_server: grpc.aio.Server
    ctl_server: CtlServer
    health: health.aio.HealthServicer
    grpc_socket: Path
    core: Any = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def start(self) -> None:
        """Start serving gRPC and ctl; every health entry SERVING (journal and hosts per their state)."""
        await self.grpc_server.start()
        await self.ctl_server.start()
        await self.set_health("", True)
        for name in self.registry.service_names:
            await self.set_health(name, True)
        await self.sync_dependencies()
        self.app_state.on_change(lambda _state: self._changed.set())
        if self.core is not None:
            self.core.on_journal_change(self._changed.set)

    async def follow_health(self) -> None:
        """Keep the journal's and hosts' health entries in step with their states (runs until cancelled)."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self.sync_dependencies()

    async def set_health(self, service: str, serving: bool) -> None:
        """Set one health entry (``""`` = overall) to SERVING or NOT_SERVING."""
        await self.health.set(service, SERVING if serving else NOT_SERVING)

    async def sync_dependencies(self) -> None:
        """``ktrdr.journal``: SERVING while journal writes succeed; ``ktrdr.host.<name>`` of each host:
        SERVING iff its state is READY."""
        if self.core is not None:
            await self.set_health(JOURNAL_HEALTH, self.core.journal_error is None)
        for name, host in list(self.app_state.hosts.items()):
            await self.set_health(HOST_HEALTH_PREFIX + name, host.state.upper() == "READY")

    async def stop(self, grace: float) -> None:
        """Health NOT_SERVING, stop accepting, drain calls in flight for ``grace`` s, remove sockets."""
        await self.health.enter_graceful_shutdown()
        await asyncio.gather(self.grpc_server.stop(grace), self.ctl_server.stop(grace))
        remove_socket(self.grpc_socket)

    async def abort(self) -> None:
        """Drop every connection and call now (a no-op after :meth:`stop` completed)."""
        self.ctl_server.abort_all()
        await self.grpc_server.stop(0)
        remove_socket(self.grpc_socket)


async def build_servers(
    *,
    core: Any,
    app_state: AppState,
    grpc_socket: Path,
    ctl_socket: Path,
    extra_ctl_methods: Mapping[str, Any] | None = None,
    ctl_limits: Limits | None = None,
    grpc_max_concurrent_rpcs: int | None = None,
    grpc_max_streams: int = 128,
    data_service: object | None = None,
    models_service: object | None = None,
    training_service: object | None = None,
    backtests_service: object | None = None,
    resumers: dict[str, Any] | None = None,
) -> Servers:
    """Create (not start) both servers; the gRPC socket is bound here, the ctl socket at start().

    Must be called inside the running event loop. ``extra_ctl_methods`` (ctl-only methods of test
    plugins, ``name -> async callable(params dict)``) is read at call time, so it may grow later.
    ``data_service``: the DataService over the daemon's bar cache (None: UNIMPLEMENTED).
    ``models_service``: the ModelsService over the daemon's model registry (None: UNIMPLEMENTED).
    ``training_service``, ``backtests_service``, ``resumers``: see :func:`ktrdrd.services.build_registry`.
    """
    registry = build_registry(
        app_state, core, data_service, models_service, training_service, resumers, backtests_service
    )
    server, health_servicer = registry_server(
        registry,
        max_message_bytes=MAX_MESSAGE_BYTES,
        options=[("grpc.max_concurrent_streams", grpc_max_streams)],
        maximum_concurrent_rpcs=grpc_max_concurrent_rpcs,
    )
    if server.add_insecure_port(f"unix:{grpc_socket}") == 0:
        raise OSError(f"cannot bind the gRPC socket {grpc_socket}")
    os.chmod(grpc_socket, SOCKET_MODE)
    return Servers(
        app_state=app_state,
        registry=registry,
        grpc_server=server,
        ctl_server=CtlServer(ctl_socket, registry, extra_ctl_methods, ctl_limits),
        health=health_servicer,
        grpc_socket=grpc_socket,
        core=core,
    )
