"""The life of a host process, shared by every ``hostd`` host (``ib``, ``training``).

Phases, in order:

1. **bind**: ``unix:PATH`` (a stale socket file is removed, a live one refused, the new socket made
   mode 0660) or ``HOST:PORT`` TCP (port 0 = any free port). With ``auth``
   (:class:`ktrdr.rpc.hostauth.ServerAuth`, from the host's TLS flags: :mod:`hostd.listen`) the
   port is TLS and every call must carry the bearer token. A bind failure is logged and the
   process exits 1.
2. **serve**: the :class:`~ktrdr.rpc.registry.Registry`'s services, health and reflection
   (:func:`ktrdr.rpc.grpc_adapter.registry_server`) start; :meth:`HostApp.start` starts the host's
   own work and says what the host is doing; one JSON line ``{"listening": ADDRESS}`` is printed on
   stdout; sd_notify ``READY=1`` with that status is sent and the watchdog pings start (when systemd
   asks for them).
3. **stop** on SIGTERM or SIGINT: sd_notify ``STOPPING=1``, every health name NOT_SERVING,
   :meth:`HostApp.drain` (finish or save work), calls in flight get ``grace_s`` seconds, the server
   stops, :meth:`HostApp.close`, the socket file is removed, exit 0.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import grpc
from grpc_health.v1 import health, health_pb2

from ktrdr import logs
from ktrdr.rpc import hostauth
from ktrdr.rpc.grpc_adapter import registry_server
from ktrdr.rpc.registry import Registry
from ktrdr.sdnotify import Notifier

log = logging.getLogger("hostd")

SOCKET_MODE = 0o660
#: Seconds calls in flight get to finish once the host stops.
STOP_GRACE_S = 2.0
#: The largest gRPC message a host sends or receives: a 1 MiB chunk (bars, checkpoints, blobs) plus
#: framing, and uploads' chunks (< 4 MiB), fit.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HostApp(Protocol):
    """What a host adds to the lifecycle: its services and its own work."""

    @property
    def registry(self) -> Registry:
        """The services to serve."""
        ...

    @property
    def health_aliases(self) -> Sequence[str]:
        """Health names the host reports on besides the registry's service names ("" = overall)."""
        ...

    async def start(self, health_servicer: health.aio.HealthServicer, notifier: Notifier) -> str:
        """Start the host's work once the server serves (set the health names, start tasks);
        returns the READY status line."""
        ...

    async def drain(self) -> None:
        """After STOPPING, before the server stops: bring work in flight to a safe stop."""
        ...

    async def close(self) -> None:
        """After the server stopped: release what the host holds."""
        ...


class Listening(Protocol):
    """What :func:`serve` reads of a host's configuration."""

    @property
    def listen(self) -> str:
        """``unix:PATH`` or ``HOST:PORT``."""
        ...

    @property
    def auth(self) -> hostauth.ServerAuth | None:
        """TLS + bearer token for TCP listening (None: unix socket, or plain TCP on loopback only)."""
        ...


def health_names(app: HostApp) -> list[str]:
    """Every name the host's health service answers for: ``""``, the aliases, the services."""
    return ["", *app.health_aliases, *app.registry.service_names]


def claim_unix_socket(path: Path) -> None:
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


def bind(server: grpc.aio.Server, listen: str, credentials: grpc.ServerCredentials | None = None) -> str:
    """Bind ``listen`` (secure when ``credentials`` are given); the address as it is reachable
    (the chosen port for ``:0``). Raises OSError when the address cannot be bound."""

    def add(address: str) -> int:
        if credentials is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, credentials)

    if listen.startswith("unix:"):
        path = Path(listen.removeprefix("unix:"))
        claim_unix_socket(path)
        if add(listen) == 0:
            raise OSError(f"cannot bind {listen}")
        os.chmod(path, SOCKET_MODE)
        return listen
    host, _, _port = listen.rpartition(":")
    port = add(listen)
    if port == 0:
        raise OSError(f"cannot bind {listen}")
    return f"{host}:{port}"


async def set_health(servicer: health.aio.HealthServicer, names: Sequence[str], serving: bool) -> None:
    """Set every name in ``names`` SERVING or NOT_SERVING."""
    for name in names:
        await servicer.set(name, SERVING if serving else NOT_SERVING)


async def run_host(
    app: HostApp,
    listen: str,
    notifier: Notifier,
    *,
    max_message_bytes: int,
    grace_s: float,
    auth: hostauth.ServerAuth | None = None,
) -> int:
    """Run ``app`` through the phases of the module docstring; the exit status (0 stopped, 1 bind)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server, servicer = registry_server(
        app.registry, max_message_bytes=max_message_bytes, interceptors=hostauth.server_interceptors(auth)
    )
    try:
        address = bind(server, listen, auth.credentials() if auth else None)
    except (OSError, RuntimeError) as exc:
        log.error("cannot listen", extra={"listen": listen, "error": str(exc)})
        await app.close()
        return 1
    await server.start()
    status = await app.start(servicer, notifier)
    log.info("host listening", extra={"listen": address, "status": status})
    print(json.dumps({"listening": address}), flush=True)
    notifier.ready(f"listening on {address}; {status}")
    notifier.start_watchdog(loop)
    await stop.wait()
    notifier.stopping("stopping")
    log.info("stopping on signal")
    await set_health(servicer, health_names(app), False)
    await app.drain()
    await servicer.enter_graceful_shutdown()
    await server.stop(grace_s)
    await app.close()
    if listen.startswith("unix:"):
        Path(listen.removeprefix("unix:")).unlink(missing_ok=True)
    log.info("stopped")
    return 0


def serve(
    make_app: Callable[[], HostApp],
    config: Listening,
    *,
    log_format: str,
    log_level: str,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    grace_s: float = STOP_GRACE_S,
) -> int:
    """Set up logging and sd_notify, build the app inside the event loop and run it on
    ``config.listen`` (with ``config.auth``); the exit status. Every host's process entry."""
    logs.setup(log_format, log_level)
    notifier = Notifier()

    async def main() -> int:
        return await run_host(
            make_app(),
            config.listen,
            notifier,
            max_message_bytes=max_message_bytes,
            grace_s=grace_s,
            auth=config.auth,
        )

    try:
        return asyncio.run(main())
    finally:
        notifier.close()
        sys.stdout.flush()
