"""How a load reaches the IB host: the :class:`IbLink` protocol, and :class:`InterimIbLink`, a
stand-in until the daemon's persistent host link (``ktrdrd/hosts/link.py``, ``HostLink``) is wired.

Loads depend only on :class:`IbLink`. :class:`InterimIbLink` opens one insecure channel to a
``hosts.ib`` address (``unix:/path`` or ``host:port``) and waits for it to connect; it does no TLS,
no token and no health watching, which is what ``HostLink`` adds. ``ktrdrd/app.py`` builds it;
replace that call (and this class) by the real link.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # ktrdrd imports this module at start-up, before it needs grpc
    import grpc

#: Seconds one connection attempt may take before :meth:`InterimIbLink.describe_wait` says so.
CONNECT_ATTEMPT_S = 1.0
#: Reconnect back-off bounds (ms): gRPC's default grows to 120 s, too slow to notice a host that
#: has just started.
_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 2000)]


class IbLink(Protocol):
    """The daemon's link to its IB host (``hostd ib``)."""

    async def ready_channel(self) -> grpc.aio.Channel:
        """The channel once the host is reachable; waits (without limit) otherwise."""
        ...

    def describe_wait(self) -> str:
        """Why :meth:`ready_channel` is waiting, for people ("the IB host at unix:/…: …")."""
        ...


class InterimIbLink:
    """An :class:`IbLink` over one ``grpc.aio.insecure_channel(address)``; close with :meth:`close`."""

    def __init__(self, address: str) -> None:
        import grpc

        self.address = address
        self._channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._problem = "not connected yet"

    async def ready_channel(self) -> grpc.aio.Channel:
        while True:
            try:
                await asyncio.wait_for(self._channel.channel_ready(), CONNECT_ATTEMPT_S)
            except TimeoutError:
                state = self._channel.get_state(try_to_connect=True)
                self._problem = f"no connection ({state.name.lower().replace('_', ' ')})"
                continue
            self._problem = ""
            return self._channel

    def describe_wait(self) -> str:
        return f"the IB host at {self.address}: {self._problem or 'connected'}"

    async def close(self) -> None:
        await self._channel.close()
