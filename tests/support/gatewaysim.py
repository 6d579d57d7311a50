"""Test support for the gateway simulator: run a scenario against a real in-process simulator with
the real ib_async client over TCP on 127.0.0.1 (an ephemeral port).

``scenario(body, **config)`` starts :class:`hostd.gatewaysim.server.GatewaySim` on its own event loop,
awaits ``body(sim)`` and stops the simulator whatever happens. ``connect(sim)`` gives an ``IB`` that
raises request errors (``RaiseRequestErrors``) and is disconnected at the end of the scenario.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from ib_async import IB, BarData

from hostd.gatewaysim.faults import Faults
from hostd.gatewaysim.server import GatewaySim, SimConfig

SCENARIO_TIMEOUT_S = 60.0


def scenario(
    body: Callable[[GatewaySim], Awaitable[Any]], faults: Faults | None = None, **config: Any
) -> Any:
    """Run ``body(sim)`` against a started simulator; returns what ``body`` returns."""

    async def main() -> Any:
        sim = GatewaySim(SimConfig(port=0, **config), faults)
        await sim.start()
        try:
            return await asyncio.wait_for(body(sim), SCENARIO_TIMEOUT_S)
        finally:
            await sim.stop()

    return asyncio.run(main())


async def connect(sim: GatewaySim, client_id: int = 1, **kwargs: Any) -> IB:
    """A connected ib_async client (read-only unless ``readonly=False``) that raises request errors."""
    ib = IB()
    ib.RaiseRequestErrors = True
    kwargs.setdefault("readonly", True)
    kwargs.setdefault("timeout", 10)
    await ib.connectAsync("127.0.0.1", sim.port, clientId=client_id, **kwargs)
    return ib


def utc(text: str) -> dt.datetime:
    """A UTC datetime from ``YYYY-MM-DD[ HH:MM]``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def epoch_s(bar: BarData) -> int:
    """A bar's date as UTC epoch seconds (intraday bars with formatDate=2 arrive as aware datetimes)."""
    assert isinstance(bar.date, dt.datetime), bar.date
    return int(bar.date.timestamp())


def ohlcv(bar: BarData) -> tuple[float, float, float, float, float]:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume)
