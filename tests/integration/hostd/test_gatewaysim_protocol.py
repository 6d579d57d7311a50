"""The gateway simulator speaks the TWS API to the real ib_async 2.1.0: connect and start-up sync,
contract details, head timestamps, errors 200/321/326/1100/1102, cancels and dropped connections."""

from __future__ import annotations

import asyncio
import datetime as dt
import struct

import pytest
from ib_async import IB, Contract, Crypto, Forex, RequestError, Stock

from hostd.gatewaysim.contracts import con_id_for
from hostd.gatewaysim.faults import Faults
from hostd.gatewaysim.server import GatewaySim
from tests.support.gatewaysim import connect, scenario

AAPL = Stock("AAPL", "SMART", "USD")


def errors_of(ib: IB) -> list[tuple[int, int, str]]:
    """(reqId, code, text) of every error message ib_async receives from now on."""
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
    return seen


def test_connect_completes_the_full_startup_sync() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = IB()
        # Not read-only: positions, open and completed orders, account updates and executions are all
        # requested; raiseSyncErrors turns any unanswered one into an error.
        await ib.connectAsync("127.0.0.1", sim.port, clientId=7, timeout=10, raiseSyncErrors=True)
        assert ib.isConnected()
        assert ib.client.serverVersion() == 176
        assert ib.managedAccounts() == ["DU0000001"]
        assert ib.positions() == [] and ib.openTrades() == []
        assert (await ib.reqCurrentTimeAsync()).year >= 2024
        ib.disconnect()

    scenario(body)


def test_contract_details_for_stock_forex_and_crypto() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        [stock] = await ib.reqContractDetailsAsync(AAPL)
        assert (stock.contract.symbol, stock.contract.secType, stock.contract.exchange) == (
            "AAPL",
            "STK",
            "SMART",
        )
        assert stock.contract.conId == con_id_for("STK", "AAPL") and stock.timeZoneId == "US/Eastern"
        assert stock.contract.primaryExchange == "NASDAQ" and stock.minTick == 0.01
        assert ":0930-" in stock.liquidHours and ":0400-" in stock.tradingHours

        [fx] = await ib.reqContractDetailsAsync(Forex("EURUSD"))
        assert (fx.contract.secType, fx.contract.exchange, fx.contract.localSymbol) == (
            "CASH",
            "IDEALPRO",
            "EUR.USD",
        )
        [btc] = await ib.reqContractDetailsAsync(Crypto("BTC", "PAXOS", "USD"))
        assert (btc.contract.secType, btc.contract.exchange) == ("CRYPTO", "PAXOS")

        [qualified] = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
        assert qualified is not None and qualified.conId == con_id_for("STK", "MSFT")
        [by_con_id] = await ib.reqContractDetailsAsync(Contract(conId=qualified.conId))
        assert by_con_id.contract.symbol == "MSFT"
        ib.disconnect()

    scenario(body)


def test_unknown_symbols_and_security_types_get_error_200() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        for contract in (
            Stock("NOPE", "SMART", "USD"),  # named unknown
            Contract(symbol="ES", secType="FUT", exchange="CME"),  # a type the simulator has no data for
            Stock("AAPL", "SMART", "EUR"),  # wrong currency
            Contract(conId=12345),  # a conId never handed out
        ):
            with pytest.raises(RequestError) as caught:
                await ib.reqContractDetailsAsync(contract)
            assert caught.value.code == 200, contract
            assert "No security definition" in caught.value.message
        with pytest.raises(RequestError) as history:
            await ib.reqHistoricalDataAsync(
                Stock("NOPE", "SMART", "USD"), "", "1 D", "1 hour", "TRADES", True, 2
            )
        assert history.value.code == 200
        ib.disconnect()

    scenario(body, faults=Faults(unknown_symbols={"NOPE"}))


def test_head_timestamp_is_deterministic_and_a_session_open() -> None:
    async def body(sim: GatewaySim) -> tuple[dt.datetime, dt.datetime]:
        ib = await connect(sim)
        rth = await ib.reqHeadTimeStampAsync(AAPL, "TRADES", True, 2)
        eth = await ib.reqHeadTimeStampAsync(AAPL, "TRADES", False, 1)  # formatDate 1: naive UTC text
        ib.disconnect()
        return rth, eth

    rth, eth = scenario(body, seed=5)
    assert scenario(body, seed=5) == (rth, eth)
    assert rth.tzinfo is not None and rth.astimezone(dt.UTC).time() in (dt.time(14, 30), dt.time(13, 30))
    assert eth.tzinfo is None and eth.date() == rth.date() and eth.time() in (dt.time(9, 0), dt.time(8, 0))


def test_duplicate_client_id_gets_326_and_is_disconnected() -> None:
    async def body(sim: GatewaySim) -> None:
        first = await connect(sim, client_id=3)
        second = IB()
        seen = errors_of(second)
        with pytest.raises((TimeoutError, ConnectionError)):
            await second.connectAsync("127.0.0.1", sim.port, clientId=3, timeout=2)
        assert [code for _, code, _ in seen] == [326]
        assert not second.isConnected()
        assert first.isConnected()  # the holder keeps its connection
        reserved = IB()
        seen = errors_of(reserved)
        with pytest.raises((TimeoutError, ConnectionError)):
            await reserved.connectAsync("127.0.0.1", sim.port, clientId=9, timeout=2)
        assert [code for _, code, _ in seen] == [326]
        first.disconnect()
        await asyncio.sleep(0.05)
        again = await connect(sim, client_id=3)  # freed when its holder left
        again.disconnect()

    scenario(body, faults=Faults(reserved_client_ids={9}))


def test_dropped_connection_fails_pending_requests_and_fires_disconnected() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        disconnected = asyncio.Event()
        ib.disconnectedEvent += disconnected.set
        await ib.reqContractDetailsAsync(AAPL)  # request 1 answered
        with pytest.raises(ConnectionError):
            await ib.reqHistoricalDataAsync(AAPL, "20240304 23:00:00 UTC", "1 D", "1 hour", "TRADES", True, 2)
        await asyncio.wait_for(disconnected.wait(), 5)
        assert not ib.isConnected()
        reconnected = await connect(sim)  # each connection gets its own budget of requests
        assert len(await reconnected.reqContractDetailsAsync(AAPL)) == 1
        reconnected.disconnect()

        sim.faults.drop_after_requests = None
        sim.faults.drop_after_s = 0.2
        timed = await connect(sim)
        gone = asyncio.Event()
        timed.disconnectedEvent += gone.set
        await asyncio.wait_for(gone.wait(), 5)

    scenario(body, faults=Faults(drop_after_requests=1))


def test_connectivity_lost_and_restored_reach_the_client_and_hold_answers() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        seen = errors_of(ib)
        sim.connectivity_lost()
        pending = asyncio.ensure_future(
            ib.reqHistoricalDataAsync(AAPL, "20240304 23:00:00 UTC", "1 D", "1 hour", "TRADES", True, 2)
        )
        await asyncio.sleep(0.2)
        assert not pending.done()  # held while the gateway has no connectivity
        sim.connectivity_restored()
        bars = await asyncio.wait_for(pending, 5)
        assert len(bars) == 7
        assert [(req_id, code) for req_id, code, _ in seen] == [(-1, 1100), (-1, 1102)]
        ib.disconnect()

    scenario(body)


def test_321_on_demand_and_for_an_invalid_bar_size() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        seen = errors_of(ib)
        # ib_async counts 321 as a warning: the request is not ended, so it times out empty.
        for bar_size in ("1 hour", "7 mins"):
            bars = await ib.reqHistoricalDataAsync(
                AAPL, "20240304 23:00:00 UTC", "1 D", bar_size, "TRADES", True, 2, timeout=0.5
            )
            assert list(bars) == []
        assert [code for _, code, _ in seen] == [321, 321]
        assert "injected" in seen[0][2] and "bar size" in seen[1][2]
        assert sim.pacer.open == 0
        ib.disconnect()

    scenario(body, faults=Faults(reject_321=1))


def test_latency_and_a_cancelled_request() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        sim.faults.latency_s = 2.0
        # ib_async cancels (CANCEL_HISTORICAL_DATA) when its timeout passes and returns an empty list.
        bars = await ib.reqHistoricalDataAsync(
            AAPL, "20240304 23:00:00 UTC", "1 D", "1 hour", "TRADES", True, 2, timeout=0.3
        )
        assert list(bars) == []
        for _ in range(100):
            if sim.pacer.open == 0:
                break
            await asyncio.sleep(0.02)
        assert sim.pacer.open == 0  # the cancel closed the open request
        sim.faults.latency_s = 0.05
        bars = await ib.reqHistoricalDataAsync(
            AAPL, "20240305 23:00:00 UTC", "1 D", "1 hour", "TRADES", True, 2
        )
        assert len(bars) == 7
        ib.disconnect()

    scenario(body)


def test_a_bad_handshake_closes_only_that_connection() -> None:
    async def exchange(sim: GatewaySim, payload: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        writer.write(payload)
        answer = await asyncio.wait_for(reader.read(), 5)  # until the simulator closes
        writer.close()
        return answer

    async def body(sim: GatewaySim) -> None:
        too_old = b"API\0" + struct.pack(">I", 9) + b"v100..120"
        assert await exchange(sim, too_old) == b""
        assert await exchange(sim, b"GET / HTTP/1.1\r\n\r\n") == b""
        ib = await connect(sim)  # the simulator still serves well-behaved clients
        assert ib.isConnected()
        ib.disconnect()

    scenario(body)
