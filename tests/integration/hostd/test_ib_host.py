"""``hostd ib`` as a real process against the gateway simulator (in-process on its own thread, real
TCP), served on a real unix socket: bars exactly as the gateway has them across split requests,
pacing without a single 162, reconnects mid-fetch, error mapping, health and a clean stop."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from ib_async import IB, Stock

from hostd.gatewaysim.server import SimConfig
from hostd.ib import requests
from ktrdr.hostd.marketdata.v1 import marketdata_pb2 as pb
from tests.support.ibhost import NOT_SERVING, SERVING, IbHost, SimThread, fetch_request

JAN_2 = int(dt.datetime(2024, 1, 2, tzinfo=dt.UTC).timestamp())
DAY = 86_400


def sim_bars(port: int, symbol: str, bar_size: str, start_s: int, end_s: int) -> list[tuple]:
    """The simulator's bars for [start, end) in one direct ib_async request (client id 99)."""

    async def main() -> list[tuple]:
        ib = IB()
        ib.RaiseRequestErrors = True
        await ib.connectAsync("127.0.0.1", port, clientId=99, readonly=True, timeout=10)
        try:
            end = dt.datetime.fromtimestamp(end_s, dt.UTC)
            bars = await ib.reqHistoricalDataAsync(
                Stock(symbol, "SMART", "USD"), end, f"{end_s - start_s} S", bar_size, "TRADES", False, 2
            )
        finally:
            ib.disconnect()
        return [(int(b.date.timestamp()) * 10**9, b.open, b.high, b.low, b.close, b.volume) for b in bars]

    return asyncio.run(main())


@pytest.fixture
def sim() -> Iterator[SimThread]:
    thread = SimThread(SimConfig(port=0, seed=5, clock_scale=100))
    yield thread
    thread.stop()


def start_host(tmp_path: Path, port: int, *flags: str) -> IbHost:
    host = IbHost(tmp_path, port, "--clock-scale", "100", *flags)
    return host


def test_fetch_bars_equals_the_simulator_over_split_requests(tmp_path: Path, sim: SimThread) -> None:
    host = start_host(tmp_path, sim.port)
    try:
        host.wait_health(SERVING)
        start, end = JAN_2, JAN_2 + 17 * DAY
        got = host.fetch(fetch_request("AAPL", "5m", start, end))
        assert len(requests.plan("5m", start, end)) == 3  # 5-min bars: one week per request
        assert got.progress[-1].requests_done == got.progress[-1].requests_total == 3
        expected = sim_bars(sim.port, "AAPL", "5 mins", start, end)
        assert len(expected) > 1000
        assert got.bars == expected
        assert host.stop() == 0
    finally:
        host.stop()


def test_pacing_with_a_compressed_clock_never_draws_a_162(tmp_path: Path) -> None:
    sim = SimThread(SimConfig(port=0, seed=5, clock_scale=300))  # 10 minutes last 2 s
    rejected = sim.pacing_rejections()
    host = IbHost(tmp_path, sim.port, "--clock-scale", "300")
    try:
        host.wait_health(SERVING)
        symbols = [f"S{i}" for i in range(8)]

        def one(symbol: str) -> int:
            return len(host.fetch(fetch_request(symbol, "1h", JAN_2, JAN_2 + 250 * DAY)).bars)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(symbols)) as pool:
            counts = list(pool.map(one, symbols))
        assert all(count > 1000 for count in counts)
        status = host.status()
        # 8 series × (1 head + 9 monthly requests) = 80 requests: more than the 60 a window allows.
        assert status.pacer.pacing_violations == 0
        assert rejected == []
    finally:
        host.stop()
        sim.stop()


def test_a_162_from_someone_else_is_backed_off_and_retried(tmp_path: Path) -> None:
    sim = SimThread(SimConfig(port=0, seed=5, clock_scale=5))
    host = IbHost(tmp_path, sim.port, "--clock-scale", "5")
    try:
        host.wait_health(SERVING)
        start, end = JAN_2, JAN_2 + 10 * DAY
        first = requests.plan("1h", start, end)[0]

        async def steal() -> None:  # another client sends exactly the host's first request
            ib = IB()
            await ib.connectAsync("127.0.0.1", sim.port, clientId=42, readonly=True, timeout=10)
            try:
                when = dt.datetime.fromtimestamp(first.end_s, dt.UTC)
                contract = Stock("AAPL", "SMART", "USD")
                await ib.qualifyContractsAsync(contract)
                await ib.reqHistoricalDataAsync(contract, when, first.duration, "1 hour", "TRADES", False, 2)
            finally:
                ib.disconnect()

        asyncio.run(steal())
        got = host.fetch(fetch_request("AAPL", "1h", start, end))
        assert host.status().pacer.pacing_violations >= 1
        assert got.bars == sim_bars(sim.port, "AAPL", "1 hour", start, end)
    finally:
        host.stop()
        sim.stop()


def test_gateway_dropped_mid_fetch_reconnects_without_duplicate_or_missing_bar(
    tmp_path: Path, sim: SimThread
) -> None:
    host = start_host(tmp_path, sim.port)
    try:
        host.wait_health(SERVING)
        sim.call(lambda s: setattr(s.faults, "drop_after_requests", 4))
        start, end = JAN_2, JAN_2 + 12 * DAY
        got = host.fetch(fetch_request("MSFT", "1m", start, end))
        sim.call(lambda s: setattr(s.faults, "drop_after_requests", None))
        assert "the gateway at" in host.log() and "closed the connection" in host.log()
        times = [bar[0] for bar in got.bars]
        assert times == sorted(set(times))
        assert got.bars == sim_bars(sim.port, "MSFT", "1 min", start, end)
    finally:
        host.stop()


def _details(error: grpc.RpcError) -> tuple[str, list[error_details_pb2.ErrorInfo]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    infos = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            infos.append(info)
    return status.message, infos


def test_unknown_symbol_is_not_found_naming_it(tmp_path: Path, sim: SimThread) -> None:
    sim.call(lambda s: s.faults.unknown_symbols.add("NOSUCH"))
    host = start_host(tmp_path, sim.port)
    try:
        host.wait_health(SERVING)
        with pytest.raises(grpc.RpcError) as caught:
            host.fetch(fetch_request("NOSUCH", "1h", JAN_2, JAN_2 + DAY))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        message, infos = _details(caught.value)
        assert "NOSUCH" in message and [i.reason for i in infos] == ["IB_NO_SECURITY"]
        with pytest.raises(grpc.RpcError) as again:
            host.unary(
                "ResolveContract",
                pb.ResolveContractRequest(contract=pb.ContractSpec(symbol="NOSUCH")),
                pb.ResolveContractResponse,
            )
        assert again.value.code() == grpc.StatusCode.NOT_FOUND
        resolved = host.unary(
            "ResolveContract",
            pb.ResolveContractRequest(contract=pb.ContractSpec(symbol="AAPL")),
            pb.ResolveContractResponse,
        )
        assert resolved.contract.symbol == "AAPL" and resolved.contract.con_id > 0
    finally:
        host.stop()


def test_client_id_in_use_is_a_clear_error_naming_it(tmp_path: Path, sim: SimThread) -> None:
    sim.call(lambda s: s.faults.reserved_client_ids.add(7))
    host = start_host(tmp_path, sim.port, "--client-id", "7")
    try:
        with pytest.raises(grpc.RpcError) as caught:
            host.fetch(fetch_request("AAPL", "1h", JAN_2, JAN_2 + DAY))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        message, infos = _details(caught.value)
        assert "client id 7" in message and "326" in message
        assert [i.reason for i in infos] == ["IB_CLIENT_ID_IN_USE"]
        assert host.health() == NOT_SERVING
        assert "client id 7 is in use" in host.status().message
    finally:
        host.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_health_follows_the_gateway_and_calls_fail_unavailable_with_retry_info(tmp_path: Path) -> None:
    port = _free_port()
    host = IbHost(tmp_path, port, "--gateway-wait", "0.5")
    try:
        assert host.health() == NOT_SERVING and host.health("") == NOT_SERVING
        with pytest.raises(grpc.RpcError) as caught:
            host.unary(
                "GetHeadTimestamp",
                pb.GetHeadTimestampRequest(contract=pb.ContractSpec(symbol="AAPL")),
                pb.GetHeadTimestampResponse,
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
        retry = error_details_pb2.RetryInfo()
        assert status is not None and any(d.Unpack(retry) for d in status.details)
        assert (
            host.status().state == pb.CONNECTION_STATE_DISCONNECTED
            or host.status().state == pb.CONNECTION_STATE_CONNECTING
        )
        sim = SimThread(SimConfig(port=port, seed=1))
        try:
            host.wait_health(SERVING)
            assert host.health("") == SERVING
            sim.call(lambda s: s.connectivity_lost())
            host.wait_health(NOT_SERVING)
            sim.call(lambda s: s.connectivity_restored())
            host.wait_health(SERVING)
            sim.call(lambda s: s.drop_connections())
            host.wait_health(SERVING)  # reconnected
        finally:
            sim.stop()
        host.wait_health(NOT_SERVING)
        assert host.stop() == 0
    finally:
        host.stop()


def test_empty_answers_are_checked_not_trusted(tmp_path: Path, sim: SimThread) -> None:
    host = start_host(tmp_path, sim.port, "--request-timeout", "0.3")
    try:
        host.wait_health(SERVING)
        saturday = int(dt.datetime(2024, 1, 6, tzinfo=dt.UTC).timestamp())
        weekend = host.fetch(fetch_request("AAPL", "1h", saturday, saturday + 2 * DAY, use_rth=True))
        assert weekend.bars == [] and weekend.empty == [
            (saturday, saturday + 2 * DAY)
        ]  # "no data", confirmed
        head = host.unary(
            "GetHeadTimestamp",
            pb.GetHeadTimestampRequest(contract=pb.ContractSpec(symbol="AAPL")),
            pb.GetHeadTimestampResponse,
        ).head_time.seconds
        before = host.fetch(fetch_request("AAPL", "1d", head - 400 * DAY, head - 10 * DAY))
        assert before.bars == [] and before.empty == [(head - 400 * DAY, head - 10 * DAY)]
        assert before.progress == []  # known empty from the head timestamp: no request sent
        assert host.status().pacer.pacing_violations == 0
        sim.call(lambda s: setattr(s.faults, "latency_s", 1.0))  # answers later than the host waits
        with pytest.raises(grpc.RpcError) as caught:
            host.fetch(fetch_request("AAPL", "1h", JAN_2, JAN_2 + DAY))
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # never "no data"
        assert "no answer within 0.3 s" in (caught.value.details() or "")
    finally:
        host.stop()


def test_a_rejected_request_field_fails_at_once_as_invalid_argument(tmp_path: Path, sim: SimThread) -> None:
    host = start_host(tmp_path, sim.port)
    try:
        host.wait_health(SERVING)
        sim.call(lambda s: setattr(s.faults, "reject_321", 1))  # ib_async treats 321 as a mere warning
        with pytest.raises(grpc.RpcError) as caught:
            host.fetch(fetch_request("AAPL", "1h", JAN_2, JAN_2 + DAY), timeout=20)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        message, infos = _details(caught.value)
        assert "321" in message and [i.reason for i in infos] == ["IB_VALIDATION"]
        with pytest.raises(grpc.RpcError) as bad:
            host.fetch(fetch_request("AAPL", "2h", JAN_2, JAN_2 + DAY))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "timeframe" in (
            bad.value.details() or ""
        )
    finally:
        host.stop()
