"""The daemon's persistent link to one host: one gRPC channel for the daemon's lifetime.

``link = HostLink(name="ib", kind="marketdata", address="unix:/run/ktrdr/hostd-ib.sock",
app_state=state)`` (inside the running loop) opens the channel; it connects lazily and reconnects by
itself (HTTP/2 keepalive pings every :data:`KEEPALIVE_S`, reconnect back-off from
:data:`RECONNECT_INITIAL_S` to :data:`RECONNECT_MAX_S`). ``await link.run()`` (a background task
until cancelled) follows the host and publishes a :class:`~ktrdrd.appstate.HostStatus` into
``app_state`` at every change:

- it watches the host's standard health service (``Watch("")``): SERVING → ``READY``; NOT_SERVING →
  ``UNAVAILABLE`` with the host's own reason (the IB host: "gateway away: …");
- it times a health ``Check("")`` every :data:`PROBE_INTERVAL_S` seconds: the round-trip time;
- on each (re)connection it asks the host for its version (the IB host: ``GetStatus``, which also
  says whether it serves simulated data);
- when a call fails (no socket, connection refused, TLS or token refused, the host went away) →
  ``UNAVAILABLE`` with that reason; it tries again after a back-off (:data:`RETRY_INITIAL_S` doubling
  to :data:`RETRY_MAX_S`, reset once READY).

The state starts ``CONNECTING`` and is never CONNECTING again: after the first answer it is READY or
UNAVAILABLE (with the reason).

Users of a host (the data loader for the IB host) hold the link as a :class:`ReadyChannel`:
``channel = await link.ready_channel()`` returns the persistent channel once the host is READY and
waits otherwise (callers bound the wait with their own timeout or cancellation; the channel is never
closed by them); ``link.describe_wait()`` says in words what such a wait is waiting for.

Addresses: ``unix:/PATH`` (plain; the socket's file mode guards it) or ``HOST:PORT`` (TLS with the
CA of ``credentials`` pinned and the bearer token on every call, :mod:`ktrdr.rpc.hostauth`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.hostd.marketdata.v1 import marketdata_pb2
from ktrdrd.appstate import AppState, HostStatus
from ktrdrd.hosts.backoff import Backoff

log = logging.getLogger("ktrdrd.hosts")

CONNECTING, READY, UNAVAILABLE = "CONNECTING", "READY", "UNAVAILABLE"
#: Seconds between round-trip probes (health Check) while the health stream is open.
PROBE_INTERVAL_S = 5.0
#: Seconds a probe or a version request may take before the host counts as unavailable.
CALL_TIMEOUT_S = 10.0
#: HTTP/2 keepalive: a ping after this many seconds without traffic; the connection is dropped when
#: the ping is not answered within :data:`KEEPALIVE_TIMEOUT_S`.
KEEPALIVE_S = 20.0
KEEPALIVE_TIMEOUT_S = 10.0
#: The channel's own reconnect back-off (grpc core), in seconds.
RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 5.0
#: The link's retry back-off after a failed watch, in seconds.
RETRY_INITIAL_S = 0.2
RETRY_MAX_S = 5.0
#: Largest message either way on a host link (bars arrive in chunks under 4 MiB).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", int(KEEPALIVE_S * 1000)),
    ("grpc.keepalive_timeout_ms", int(KEEPALIVE_TIMEOUT_S * 1000)),
    ("grpc.initial_reconnect_backoff_ms", int(RECONNECT_INITIAL_S * 1000)),
    ("grpc.min_reconnect_backoff_ms", int(RECONNECT_INITIAL_S * 1000)),
    ("grpc.max_reconnect_backoff_ms", int(RECONNECT_MAX_S * 1000)),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]

SERVING = health_pb2.HealthCheckResponse.SERVING


class ReadyChannel(Protocol):
    """What code that uses a host depends on (the data loader holds the IB link as one)."""

    async def ready_channel(self) -> grpc.aio.Channel: ...

    def describe_wait(self) -> str: ...


@dataclass(frozen=True)
class HostFacts:
    """What a host says about itself: its version, whether its data are simulated, and (when it is
    not serving) why, in words."""

    version: str = ""
    simulated: bool = False
    not_serving_reason: str = "the host reports NOT_SERVING"


async def _ib_host_facts(channel: grpc.aio.Channel) -> HostFacts:
    rpc = channel.unary_unary(
        "/ktrdr.hostd.marketdata.v1.MarketDataService/GetStatus",
        request_serializer=marketdata_pb2.GetStatusRequest.SerializeToString,
        response_deserializer=marketdata_pb2.GetStatusResponse.FromString,
    )
    status = await rpc(marketdata_pb2.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    return HostFacts(status.version, status.simulated, f"gateway away: {status.message}")


#: How to ask a host of each kind about itself (a kind not listed: no version).
FACTS_BY_KIND: dict[str, Callable[[grpc.aio.Channel], Awaitable[HostFacts]]] = {
    "marketdata": _ib_host_facts,
}
#: How describe_wait names a host of each kind.
LABELS = {"marketdata": "IB host", "training": "training host"}


def failure_reason(error: grpc.aio.AioRpcError) -> str:
    """A failed call's cause in words: "connection refused", "no socket at /run/…", "the host shut
    down", "the host refused our credentials: …" or grpc's own text."""
    details = error.details() or ""
    if error.code() == grpc.StatusCode.UNAUTHENTICATED:
        return f"the host refused our credentials: {details}"
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer within {CALL_TIMEOUT_S:g} s"
    last = details.rpartition("last error: ")[2] or details
    lowered = last.lower()
    if "connection refused" in lowered:
        return "connection refused"
    if "no such file or directory" in lowered:
        path = re.search(r"unix:(/[^\s:]+)", last)
        return f"no socket at {path.group(1)}" if path else "no socket"
    if "ssl" in lowered or "handshake" in lowered:
        return f"TLS handshake failed (is the pinned CA the host's?): {last}"
    if "cancelling all calls" in lowered:  # the server's GOAWAY when it stops
        return "the host shut down"
    if error.code() == grpc.StatusCode.UNAVAILABLE and ("socket closed" in lowered or "goaway" in lowered):
        return "the host closed the connection"
    return last or error.code().name


def _failure(probe: asyncio.Task[None] | None) -> BaseException | None:
    """The error a finished probe task ended with (None while it runs, or when it was cancelled)."""
    if probe is None or not probe.done() or probe.cancelled():
        return None
    return probe.exception()


class HostLink:
    """One host's persistent channel and its followed status (see the module docstring).

    Construct inside the running event loop. ``credentials`` (for ``HOST:PORT`` addresses) come from
    :func:`ktrdr.rpc.hostauth.channel_credentials`; a TCP address without them is refused (a host
    link never goes over TCP in clear). ``simulated`` marks a host known to serve simulated data
    before it says so itself (the embedded one).
    """

    def __init__(
        self,
        *,
        name: str,
        kind: str,
        address: str,
        app_state: AppState,
        credentials: grpc.ChannelCredentials | None = None,
        simulated: bool = False,
        probe_interval_s: float = PROBE_INTERVAL_S,
    ) -> None:
        self.name, self.kind, self.address = name, kind, address
        self._app_state = app_state
        self._probe_interval_s = probe_interval_s
        if address.startswith("unix:"):
            self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        elif credentials is None:
            raise ValueError(f"host {name} at {address}: TCP links need TLS credentials and a token")
        else:
            self.channel = grpc.aio.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self._facts = FACTS_BY_KIND.get(kind)
        self._ready = asyncio.Event()
        self._status = HostStatus(
            name=name, kind=kind, address=address, state=CONNECTING, message="connecting", simulated=simulated
        )
        app_state.set_host(self._status)

    # -- what users of the host call -------------------------------------------------------------

    @property
    def status(self) -> HostStatus:
        """The host as last seen (the same object AppState holds)."""
        return self._status

    async def ready_channel(self) -> grpc.aio.Channel:
        """The persistent channel, once the host is READY (waits while it is not; never times out)."""
        while True:
            await self._ready.wait()
            if self._status.state == READY:
                return self.channel

    def describe_wait(self) -> str:
        """What a caller of :meth:`ready_channel` waits for, in words ("" when the host is READY)."""
        if self._status.state == READY:
            return ""
        label = LABELS.get(self.kind, "host")
        return f"waiting for the {label} {self.name!r} at {self.address}: {self._status.message}"

    # -- the follower ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the host until cancelled (see the module docstring)."""
        retry = Backoff(RETRY_INITIAL_S, RETRY_MAX_S)
        while True:
            try:
                await self._follow(retry)
                reason = "the host ended its health stream"
            except grpc.aio.AioRpcError as exc:
                reason = failure_reason(exc)
            except Exception as exc:  # a bug here must not end the daemon: report it as the reason
                log.exception("host link failed", extra={"host": self.name})
                reason = f"internal error: {exc!r}"
            self._publish(UNAVAILABLE, reason)
            await asyncio.sleep(retry.next())

    async def close(self) -> None:
        """Close the channel (at daemon shutdown; calls still on it are cancelled)."""
        self._ready.clear()
        await self.channel.close()

    async def _follow(self, retry: Backoff) -> None:
        """One health Watch with its probes; returns or raises when the stream ends (a failed probe
        cancels the watch, and its error is raised here)."""
        watch = self._health.Watch(health_pb2.HealthCheckRequest(service=""))
        facts = HostFacts()
        probe: asyncio.Task[None] | None = None
        try:
            async for response in watch:
                if probe is None:  # connected: ask who it is once, then time a check now and then
                    facts = await self._facts(self.channel) if self._facts else facts
                    self._publish(self._status.state, self._status.message, facts)
                    probe = asyncio.create_task(self._probe(), name=f"host-probe-{self.name}")
                    probe.add_done_callback(lambda _task: watch.cancel())
                if response.status == SERVING:
                    retry.reset()
                    self._publish(READY, "")
                else:
                    self._publish(UNAVAILABLE, await self._not_serving_reason(facts))
        except asyncio.CancelledError:
            if _failure(probe) is None:
                raise
        finally:
            watch.cancel()
            if probe is not None and not probe.done():
                probe.cancel()
        error = _failure(probe)
        if error is not None:
            raise error

    async def _not_serving_reason(self, facts: HostFacts) -> str:
        if self._facts is None:
            return facts.not_serving_reason
        fresh = await self._facts(self.channel)  # the host's reason now (the gateway's state)
        return fresh.not_serving_reason

    async def _probe(self) -> None:
        """Time a health Check every probe interval; raises (ending the watch) when one fails."""
        while True:
            started = time.monotonic()
            await self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT_S)
            self._publish(self._status.state, self._status.message, round_trip_s=time.monotonic() - started)
            await asyncio.sleep(self._probe_interval_s)

    def _publish(
        self, state: str, message: str, facts: HostFacts | None = None, *, round_trip_s: float | None = None
    ) -> None:
        """Record the host's status (``since`` moves only when the state changes) and tell AppState."""
        old = self._status
        changes: dict[str, object] = {"state": state, "message": message}
        if state != old.state:
            changes["since"] = time.time()
            log.log(
                logging.INFO if state == READY else logging.WARNING,
                "host " + state.lower(),
                extra={"host": self.name, "address": self.address, "reason": message},
            )
        if facts is not None:
            changes.update(version=facts.version, simulated=old.simulated or facts.simulated)
        if round_trip_s is not None:
            changes["round_trip_s"] = round_trip_s
        self._status = dataclasses.replace(old, **changes)  # type: ignore[arg-type]
        self._app_state.set_host(self._status)
        if state == READY:
            self._ready.set()
        else:
            self._ready.clear()
