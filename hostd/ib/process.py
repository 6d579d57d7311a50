"""``hostd ib`` as a process: the gRPC server, health, reflection, sd_notify and a clean stop.

Phases: bind (a unix socket, chmod 0660, or loopback TCP) → start serving; print one JSON line
``{"listening": "unix:PATH" | "HOST:PORT"}``, send ``READY=1`` and start the watchdog pings (when
systemd asks for them) → the connection's reconnect loop
runs; health ``""`` and ``ktrdr.hostd.marketdata.v1.MarketDataService`` (and its short alias
``ktrdr.hostd.ib``) are SERVING exactly while the gateway is usable, and sd_notify STATUS follows
the connection → SIGTERM/SIGINT: ``STOPPING=1``, health NOT_SERVING, calls in flight get
:data:`STOP_GRACE_S`, the gateway connection closes, the socket file is removed, exit 0. A bind
failure exits 1 (the reason is logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2

from hostd.ib.connection import Connection, ConnectionConfig, ConnectionState
from hostd.ib.fetch import FetchConfig, Fetcher
from hostd.ib.pacer import Pacer
from hostd.ib.service import MarketDataService
from ktrdr import logs
from ktrdr.rpc import hostauth
from ktrdr.rpc.grpc_adapter import registry_server
from ktrdr.rpc.registry import Registry
from ktrdr.sdnotify import Notifier

log = logging.getLogger("hostd.ib")

#: The health names that follow the gateway ("" = overall).
HEALTH_ALIAS = "ktrdr.hostd.ib"
STOP_GRACE_S = 2.0
SOCKET_MODE = 0o660
MAX_MESSAGE_BYTES = 8 * 1024 * 1024

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


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


def _claim_unix_socket(path: Path) -> None:
    """Remove a stale socket file; refuse a live one (another process answers on it) or a non-socket."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()
        return
    finally:
        probe.close()
    raise OSError(f"{path} is in use by another process")


def _bind(server: grpc.aio.Server, listen: str, auth: hostauth.ServerAuth | None) -> str:
    """Bind ``listen`` (TCP with TLS when ``auth`` is given); the address as it is reachable (the
    chosen port for ``:0``)."""
    if listen.startswith("unix:"):
        path = Path(listen.removeprefix("unix:"))
        _claim_unix_socket(path)
        if server.add_insecure_port(listen) == 0:
            raise OSError(f"cannot bind {listen}")
        os.chmod(path, SOCKET_MODE)
        return listen
    host, _, _port = listen.rpartition(":")
    port = hostauth.add_port(server, listen, auth)
    if port == 0:
        raise OSError(f"cannot bind {listen}")
    return f"{host}:{port}"


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


async def _main(config: HostConfig, notifier: Notifier) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    connection = Connection(
        ConnectionConfig(
            config.gateway_host, config.gateway_port, config.client_id, wait_s=config.gateway_wait_s
        )
    )
    fetcher = Fetcher(
        connection,
        Pacer(clock_scale=config.clock_scale),
        FetchConfig(request_timeout_s=config.request_timeout_s),
    )
    service = MarketDataService(connection, fetcher, simulated=config.simulated)
    registry = Registry([service])
    server, servicer = registry_server(
        registry, max_message_bytes=MAX_MESSAGE_BYTES, interceptors=hostauth.server_interceptors(config.auth)
    )
    try:
        address = _bind(server, config.listen, config.auth)
    except (OSError, RuntimeError) as exc:
        log.error("cannot listen", extra={"listen": config.listen, "error": str(exc)})
        return 1
    await server.start()
    names = ["", HEALTH_ALIAS, *registry.service_names]
    follower = asyncio.create_task(_follow(connection, servicer, names, notifier))
    runner = asyncio.create_task(connection.run())
    log.info(
        "ib host listening",
        extra={"listen": address, "gateway": connection.config.address, "client_id": config.client_id},
    )
    print(json.dumps({"listening": address}), flush=True)
    notifier.ready(f"listening on {address}; gateway {connection.config.address}")
    notifier.start_watchdog(loop)
    await stop.wait()
    notifier.stopping("stopping")
    log.info("stopping on signal")
    follower.cancel()
    await servicer.enter_graceful_shutdown()
    await server.stop(STOP_GRACE_S)
    runner.cancel()
    await asyncio.gather(follower, runner, return_exceptions=True)
    connection.close()
    if config.listen.startswith("unix:"):
        Path(config.listen.removeprefix("unix:")).unlink(missing_ok=True)
    log.info("stopped")
    return 0


def serve(config: HostConfig, *, log_format: str, log_level: str) -> int:
    logs.setup(log_format, log_level)
    notifier = Notifier()
    try:
        return asyncio.run(_main(config, notifier))
    finally:
        notifier.close()
        sys.stdout.flush()
