"""IB's pacing rules as the real ib_async client meets them: error 162 raised as a RequestError.

The simulator's ``clock_scale`` compresses the windows where a test must wait one out."""

from __future__ import annotations

import asyncio

from ib_async import IB, RequestError, Stock

from hostd.gatewaysim.faults import Faults
from hostd.gatewaysim.server import GatewaySim
from tests.support.gatewaysim import connect, scenario

AAPL = Stock("AAPL", "SMART", "USD")


async def history(ib: IB, symbol: str = "AAPL", duration: str = "1 D", timeout: float = 30) -> int:
    """Bars of one request, or the error code it was answered with."""
    try:
        bars = await ib.reqHistoricalDataAsync(
            Stock(symbol, "SMART", "USD"),
            "20240304 23:00:00 UTC",
            duration,
            "1 hour",
            "TRADES",
            True,
            2,
            timeout=timeout,
        )
    except RequestError as exc:
        return -exc.code
    return len(bars)


def test_identical_request_within_15_s_gets_162_and_is_served_after_the_window() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        assert await history(ib) == 7
        assert await history(ib) == -162
        await asyncio.sleep(15 / sim.config.clock_scale + 0.05)
        assert await history(ib) == 7
        ib.disconnect()

    scenario(body, clock_scale=30)  # 15 s → 0.5 s


def test_sixth_request_for_one_contract_within_2_s_gets_162() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        answers = [await history(ib, duration=f"{days} D") for days in range(1, 7)]
        assert answers[:5] == [7, 14, 21, 28, 35] and answers[5] == -162
        assert await history(ib, symbol="MSFT") == 7  # another contract is not affected
        ib.disconnect()

    scenario(body)


def test_61st_request_in_10_minutes_gets_162_until_the_window_moves_on() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        symbols = [f"S{i:02d}" for i in range(13)]  # 5 per contract stays under the 2-s rule
        answers = [await history(ib, symbol, f"{days} D") for days in range(1, 6) for symbol in symbols]
        assert answers[:60] == [7 * days for days in range(1, 6) for _ in symbols][:60]
        assert answers[60:] == [-162] * 5
        await asyncio.sleep(600 / sim.config.clock_scale + 0.1)
        assert await history(ib, "S12", "5 D") == 35
        ib.disconnect()

    scenario(body, clock_scale=300)  # 10 min → 2 s (2 s → 7 ms: the burst rule stays out of the way)


def test_51st_open_request_gets_162() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        ib.client.MaxRequests = 0  # no client-side throttle: all 51 must be open at once
        requests = [(f"S{i:02d}", f"{days} D") for i in range(11) for days in range(1, 6)][:51]
        answers = await asyncio.gather(*(history(ib, symbol, duration) for symbol, duration in requests))
        assert sorted(answers)[0] == -162 and answers.count(-162) == 1
        assert all(answer > 0 for answer in answers if answer != -162)
        ib.disconnect()

    scenario(body, faults=Faults(latency_s=1.0))
