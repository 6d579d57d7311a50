"""ktrdrd.hosts.link.HostLink against a real grpc.aio server with standard health on a unix socket:
CONNECTING → READY (round trip measured) → UNAVAILABLE when the host stops serving (with its reason)
→ READY → UNAVAILABLE when the host goes away ("connection refused" / "no socket") → READY when a
host serves on the socket again; ready_channel waits exactly while the host is not READY."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ktrdrd.appstate import AppState, HostStatus
from ktrdrd.hosts import link as link_mod
from ktrdrd.hosts.link import HostLink

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
TIMEOUT_S = 30.0


async def _host(socket: Path, status: int) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    assert server.add_insecure_port(f"unix:{socket}") != 0
    await servicer.set("", status)
    await server.start()
    return server, servicer


async def _until(state: AppState, check: Callable[[HostStatus], bool]) -> HostStatus:
    async with asyncio.timeout(TIMEOUT_S):
        while not check(state.hosts["h"]):
            await asyncio.sleep(0.01)
    return state.hosts["h"]


def test_status_follows_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_mod, "RETRY_MAX_S", 0.5)
    socket = tmp_path / "h.sock"
    state = AppState(tmp_path, tmp_path, tmp_path / "g", tmp_path / "c", tmp_path / "db")
    seen: list[str] = []
    state.on_change(lambda s: seen.append(s.hosts["h"].state))

    async def scenario() -> None:
        server, servicer = await _host(socket, SERVING)
        link = HostLink(
            name="h", kind="training", address=f"unix:{socket}", app_state=state, probe_interval_s=0.05
        )
        assert link.status.state == "CONNECTING" and link.describe_wait().endswith(": connecting")
        follower = asyncio.create_task(link.run())
        channel = await asyncio.wait_for(link.ready_channel(), TIMEOUT_S)
        assert channel is link.channel and link.describe_wait() == ""
        ready = await _until(state, lambda h: h.round_trip_s is not None)
        assert ready.state == "READY" and ready.round_trip_s > 0

        await servicer.set("", NOT_SERVING)
        down = await _until(state, lambda h: h.state == "UNAVAILABLE")
        assert down.message == "the host reports NOT_SERVING" and down.since >= ready.since
        assert "training host 'h'" in link.describe_wait() and "NOT_SERVING" in link.describe_wait()
        waiter = asyncio.create_task(link.ready_channel())
        await asyncio.sleep(0.2)
        assert not waiter.done()  # waits while the host is not READY
        await servicer.set("", SERVING)
        assert await asyncio.wait_for(waiter, TIMEOUT_S) is link.channel

        await server.stop(0)
        gone = await _until(state, lambda h: h.state == "UNAVAILABLE")
        assert gone.message in ("the host shut down", "connection refused", f"no socket at {socket}")
        gone = await _until(state, lambda h: h.message in ("connection refused", f"no socket at {socket}"))
        socket.unlink(missing_ok=True)
        server, servicer = await _host(socket, SERVING)
        await _until(state, lambda h: h.state == "READY")
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await link.close()
        await server.stop(0)

    asyncio.run(scenario())
    assert seen == ["CONNECTING", "READY", "UNAVAILABLE", "READY", "UNAVAILABLE", "READY"]


def test_a_tcp_address_without_credentials_is_refused(tmp_path: Path) -> None:
    state = AppState(tmp_path, tmp_path, tmp_path / "g", tmp_path / "c", tmp_path / "db")

    async def make() -> None:
        HostLink(name="h", kind="marketdata", address="gpu1:7443", app_state=state)

    with pytest.raises(ValueError, match="TCP links need TLS credentials"):
        asyncio.run(make())
