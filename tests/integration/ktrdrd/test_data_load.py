"""``data load`` / ``data gaps`` end to end with real processes: the gateway simulator (in-process,
real TCP, seeded generator), ``hostd ib`` as a subprocess on a unix socket, and ktrdrd with
``KTRDR_HOSTS_IB=unix:<that socket>``. The simulator and host pace with ``--clock-scale 100`` (IB's
windows divided by 100) so that dozens of requests fit in a test.

The oracle is the host itself: the bars a direct ``FetchBars`` of the same range returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from ib_async import IB, Stock

from hostd.gatewaysim.faults import Faults
from hostd.gatewaysim.server import SimConfig
from hostd.ib import requests
from ktrdr.hostd.marketdata.v1 import marketdata_pb2 as pb
from ktrdrd.data.calendars import restamp
from tests.integration.conftest import REPO, CtlError, Daemon, DaemonFactory
from tests.support.ctlserver import run_ktrdrctl
from tests.support.ibhost import SERVING, IbHost, SimThread, fetch_request

DATA = "ktrdr.daemon.v1.DataService/"
OPS = "ktrdr.daemon.v1.OperationsService/"
SCALE = "100"
DAY_S = 86_400
MON_JAN_8 = 1_704_672_000  # 2024-01-08 00:00 UTC, a Monday
LOAD_TIMEOUT_S = 120.0


def iso(epoch_s: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    thread = SimThread(SimConfig(port=0, seed=11, clock_scale=float(SCALE)), Faults())
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def host(sim: SimThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IbHost]:
    ib = IbHost(tmp_path_factory.mktemp("ib"), sim.port, "--simulated", "--clock-scale", SCALE)
    try:
        ib.wait_health(SERVING)
        yield ib
    finally:
        ib.stop()


def reset_faults(running: Any) -> None:
    for knob in dataclasses.fields(Faults):
        setattr(running.faults, knob.name, getattr(Faults(), knob.name))


@pytest.fixture(autouse=True)
def clear_faults(sim: SimThread) -> Iterator[None]:
    yield
    sim.call(reset_faults)


def start_daemon(factory: DaemonFactory, host: IbHost, **kwargs: Any) -> Daemon:
    env = {"KTRDR_HOSTS_IB": f"unix:{host.socket}", "KTRDR_HOSTS_EMBEDDED": "false"}
    return factory.start(env=env, **kwargs)


def load(daemon: Daemon, symbols: list[str], timeframes: list[str], start_s: int, end_s: int,
         mode: str = "LOAD_MODE_MISSING") -> str:  # fmt: skip
    response = daemon.ctl(DATA + "LoadData", {
        "symbols": symbols, "timeframes": timeframes, "startTime": iso(start_s), "endTime": iso(end_s),
        "mode": mode,
    })  # fmt: skip
    return response["operation"]["name"]


def wait(daemon: Daemon, name: str, timeout_s: float = LOAD_TIMEOUT_S) -> dict[str, Any]:
    op = daemon.ctl(OPS + "WaitOperation", {"name": name, "timeout": f"{timeout_s}s"}, timeout_s + 10)
    assert op["operation"].get("done"), f"{name} not done: {op}\n{daemon.logs()[-3000:]}"
    return op["operation"]


def children(daemon: Daemon, parent: str) -> list[dict[str, Any]]:
    return daemon.ctl(OPS + "ListOperations", {"filter": {"parent": parent}})["operations"]


def stored(daemon: Daemon, symbol: str, tf: str) -> list[tuple[int, float, float, float, float, float]]:
    frames = daemon.ctl_stream(DATA + "GetBars", {"series": {"symbol": symbol, "timeframe": tf}})
    bars = []
    for frame in frames:
        chunk = frame.get("result", {}).get("chunk")
        if chunk:
            columns = [chunk[k] for k in ("open", "high", "low", "close", "volume")]
            bars += [(int(t), *(float(c[i]) for c in columns)) for i, t in enumerate(chunk["timeNs"])]
    return bars


def served(host: IbHost, symbol: str, tf: str, start_s: int, end_s: int) -> list[tuple]:
    """The host's bars as the cache stamps them (daily bars at their session's open, not their date)."""
    bars = host.fetch(fetch_request(symbol, tf, start_s, end_s, use_rth=True)).bars
    times = restamp(np.array([bar[0] for bar in bars], dtype=np.int64), "XNYS", tf)
    return [(int(t), *bar[1:]) for t, bar in zip(times, bars, strict=True)]


def metric(op: dict[str, Any], key: str) -> float:
    return float((op.get("progress") or {}).get("metrics", {}).get(key, 0.0))


def test_load_stores_exactly_what_the_host_serves_and_a_second_load_fetches_nothing(
    daemon_factory: DaemonFactory, host: IbHost
) -> None:
    daemon = start_daemon(daemon_factory, host)
    start, end = MON_JAN_8, MON_JAN_8 + 60 * DAY_S
    parent = wait(daemon, load(daemon, ["AAPL"], ["1h", "1d"], start, end))
    assert parent["state"] == "OPERATION_STATE_SUCCEEDED", parent
    result = parent["result"]
    assert {s["series"]["timeframe"] for s in result["series"]} == {"1h", "1d"}
    for tf in ("1h", "1d"):
        bars = stored(daemon, "AAPL", tf)
        assert bars == served(host, "AAPL", tf, start, end)
        times = [bar[0] for bar in bars]
        assert times == sorted(set(times)) and len(times) > 30
    coverage = daemon.ctl(DATA + "GetCoverage", {"series": {"symbol": "AAPL", "timeframe": "1h"}})["coverage"]
    assert coverage["source"] == "DATA_SOURCE_SIMULATOR"
    assert int(result["requestsDone"]) > 0

    again = wait(daemon, load(daemon, ["AAPL"], ["1h", "1d"], start, end))
    assert again["state"] == "OPERATION_STATE_SUCCEEDED"
    assert int(again["result"].get("requestsDone", 0)) == 0 and int(again["result"]["barsFetched"]) == 0
    gaps = daemon.ctl(DATA + "GetGaps", {"series": {"symbol": "AAPL", "timeframe": "1h"},
                                         "startTime": iso(start), "endTime": iso(end)})  # fmt: skip
    assert gaps.get("gaps", []) == [] and gaps["calendar"] == "XNYS"


def test_tail_fetches_only_after_the_last_bar_and_weekends_are_not_fetched(
    daemon_factory: DaemonFactory, host: IbHost
) -> None:
    daemon = start_daemon(daemon_factory, host)
    first_end = MON_JAN_8 + 5 * DAY_S  # Saturday 13 January
    wait(daemon, load(daemon, ["MSFT"], ["1d"], MON_JAN_8, first_end))
    before = stored(daemon, "MSFT", "1d")
    assert len(before) == 5  # Monday..Friday

    # Only a weekend (and 15 January, Martin Luther King Day): nothing to fetch, no request sent.
    weekend = wait(daemon, load(daemon, ["MSFT"], ["1d"], first_end, first_end + 3 * DAY_S))
    assert int(weekend["result"].get("requestsDone", 0)) == 0

    end = MON_JAN_8 + 28 * DAY_S
    gaps = daemon.ctl(DATA + "GetGaps", {"series": {"symbol": "MSFT", "timeframe": "1d"},
                                         "startTime": iso(MON_JAN_8 - 7 * DAY_S), "endTime": iso(end),
                                         "mode": "LOAD_MODE_TAIL"})["gaps"]  # fmt: skip
    assert len(gaps) == 1 and gaps[0]["range"]["startTime"] == "2024-01-16T09:00:00Z"  # 04:00 New York
    tail = wait(daemon, load(daemon, ["MSFT"], ["1d"], MON_JAN_8 - 7 * DAY_S, end, "LOAD_MODE_TAIL"))
    assert tail["state"] == "OPERATION_STATE_SUCCEEDED", tail
    shown = run_ktrdrctl("--runtime-dir", str(daemon.runtime_dir), "data", "gaps", "MSFT", "1d",
                         "--start", "2024-01-01", "--end", "2024-02-12")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    rows = [line.split()[:3] for line in shown.stdout.splitlines()[1:3]]
    assert rows == [  # 1 January is a holiday
        ["2024-01-02T09:00:00Z", "2024-01-06T09:00:00Z", "4"],
        ["2024-02-05T09:00:00Z", "2024-02-10T09:00:00Z", "5"],
    ]
    assert "2 gaps, 9 bars expected (XNYS calendar)" in shown.stdout
    after = stored(daemon, "MSFT", "1d")
    assert after[: len(before)] == before
    assert after[0][0] == before[0][0]  # nothing before the first bar was fetched (tail)
    assert after == served(host, "MSFT", "1d", MON_JAN_8, end)


def test_what_the_host_confirms_empty_is_known_empty_and_not_fetched_again(
    daemon_factory: DaemonFactory, host: IbHost
) -> None:
    daemon = start_daemon(daemon_factory, host)
    head = host.unary(
        "GetHeadTimestamp",
        pb.GetHeadTimestampRequest(contract=pb.ContractSpec(symbol="KO"), use_rth=True),
        pb.GetHeadTimestampResponse,
    ).head_time.seconds  # the simulator's first KO trade
    start = (head // DAY_S - 30) * DAY_S
    end = start + 60 * DAY_S
    first = wait(daemon, load(daemon, ["KO"], ["1h"], start, end))
    assert first["state"] == "OPERATION_STATE_SUCCEEDED", first
    coverage = daemon.ctl(DATA + "GetCoverage", {"series": {"symbol": "KO", "timeframe": "1h"}})["coverage"]
    assert coverage["firstBarTime"] == iso(head)
    empty = coverage["knownEmpty"][0]  # trading days before the first trade: the host said so
    assert empty["startTime"] == coverage["covered"][0]["startTime"]
    assert seconds(empty["endTime"]) - seconds(empty["startTime"]) > 20 * DAY_S
    again = wait(daemon, load(daemon, ["KO"], ["1h"], start, end))
    assert int(again["result"].get("requestsDone", 0)) == 0


def test_daily_sessions_the_host_confirms_empty_are_known_empty_and_imports_are_not_topped_up(
    daemon_factory: DaemonFactory, host: IbHost
) -> None:
    daemon = start_daemon(daemon_factory, host)
    head = host.unary(
        "GetHeadTimestamp",
        pb.GetHeadTimestampRequest(contract=pb.ContractSpec(symbol="PEP"), use_rth=True),
        pb.GetHeadTimestampResponse,
    ).head_time.seconds
    start, end = (head // DAY_S - 40) * DAY_S, (head // DAY_S + 30) * DAY_S
    first = wait(daemon, load(daemon, ["PEP"], ["1d"], start, end))
    assert first["state"] == "OPERATION_STATE_SUCCEEDED", first
    coverage = daemon.ctl(DATA + "GetCoverage", {"series": {"symbol": "PEP", "timeframe": "1d"}})["coverage"]
    # The sessions before the first trade, as the cache stamps them (04:00 New York), up to that bar.
    empty = coverage["knownEmpty"][0]
    assert empty["startTime"].endswith(("T09:00:00Z", "T08:00:00Z"))
    first_bar = seconds(coverage["firstBarTime"])
    assert seconds(empty["endTime"]) <= first_bar < seconds(empty["endTime"]) + 4 * DAY_S
    assert first_bar - seconds(empty["startTime"]) > 30 * DAY_S
    bars = stored(daemon, "PEP", "1d")
    assert bars == served(host, "PEP", "1d", start, end)
    again = wait(daemon, load(daemon, ["PEP"], ["1d"], start, end))
    assert int(again["result"].get("requestsDone", 0)) == 0  # before the first trade: not asked again
    assert stored(daemon, "PEP", "1d") == bars

    # Imported daily bars are never topped up with simulated ones: the load fails naming the series.
    fixture = REPO / "tests" / "fixtures" / "bars" / "yahoo_aapl_1d.csv"
    imported = run_ktrdrctl("--runtime-dir", str(daemon.runtime_dir), "data", "import", str(fixture),
                            "--symbol", "AAPL", "--timeframe", "1d")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    before = stored(daemon, "AAPL", "1d")
    january = 1_672_531_200  # 2023-01-01: the load would extend the imported series to March
    refused = wait(daemon, load(daemon, ["AAPL"], ["1d"], january, january + 60 * DAY_S))
    assert refused["state"] == "OPERATION_STATE_FAILED"
    assert "AAPL 1d holds IMPORT bars" in refused["error"]["message"], refused["error"]
    assert stored(daemon, "AAPL", "1d") == before


def test_gateway_drops_mid_load_and_the_load_completes_without_duplicates(
    daemon_factory: DaemonFactory, sim: SimThread, host: IbHost
) -> None:
    daemon = start_daemon(daemon_factory, host)
    start, end = MON_JAN_8, MON_JAN_8 + 12 * DAY_S
    expected = served(host, "IBM", "1m", start, end)
    sim.call(lambda s: setattr(s.faults, "drop_after_requests", 3))
    op = wait(daemon, load(daemon, ["IBM"], ["1m"], start, end))
    assert op["state"] == "OPERATION_STATE_SUCCEEDED", op
    assert stored(daemon, "IBM", "1m") == expected


def test_unknown_symbol_is_not_found_naming_it_and_other_series_still_load(
    daemon_factory: DaemonFactory, sim: SimThread, host: IbHost
) -> None:
    daemon = start_daemon(daemon_factory, host)
    sim.call(lambda s: s.faults.unknown_symbols.add("ZZZZ"))
    parent = wait(daemon, load(daemon, ["ZZZZ", "ORCL"], ["1d"], MON_JAN_8, MON_JAN_8 + 20 * DAY_S))
    assert parent["state"] == "OPERATION_STATE_FAILED"
    assert parent["error"]["code"] == 5 and "ZZZZ" in parent["error"]["message"]
    by_state = {c["state"]: c for c in children(daemon, parent["name"])}
    assert set(by_state) == {"OPERATION_STATE_FAILED", "OPERATION_STATE_SUCCEEDED"}
    failed = by_state["OPERATION_STATE_FAILED"]
    assert failed["error"]["code"] == 5 and "ZZZZ" in failed["error"]["message"]
    assert len(stored(daemon, "ORCL", "1d")) > 10


def test_the_load_waits_for_an_ib_host_that_is_not_running_yet(
    daemon_factory: DaemonFactory, sim: SimThread, tmp_path: Path
) -> None:
    socket = tmp_path / "ib.sock"
    daemon = daemon_factory.start(env={"KTRDR_HOSTS_IB": f"unix:{socket}", "KTRDR_HOSTS_EMBEDDED": "false"})
    request = {"symbols": ["AMZN"], "timeframes": ["1d"], "startTime": iso(MON_JAN_8), "requestId": "r-1"}
    parent = daemon.ctl(DATA + "LoadData", request)["operation"]["name"]  # until now
    time.sleep(0.01)
    assert daemon.ctl(DATA + "LoadData", request)["operation"]["name"] == parent  # idempotent
    deadline = time.monotonic() + 30
    while True:
        child = children(daemon, parent)
        message = child[0].get("progress", {}).get("message", "") if child else ""
        if message.startswith("waiting for the IB host 'ib' at unix:") and str(socket) in message:
            break
        assert time.monotonic() < deadline, f"never said it waits for the host: {child}"
        time.sleep(0.1)
    assert child[0]["stage"] == "waiting for the IB host"
    late = IbHost(tmp_path, sim.port, "--simulated", "--clock-scale", SCALE, "--client-id", "8")
    try:
        op = wait(daemon, parent)
        assert op["state"] == "OPERATION_STATE_SUCCEEDED", late.log()[-6000:]
        bars = stored(daemon, "AMZN", "1d")
        assert bars == served(late, "AMZN", "1d", MON_JAN_8, bars[-1][0] // 10**9 + DAY_S)
        assert len(bars) > 100
    finally:
        late.stop()


def test_without_an_ib_host_load_data_is_failed_precondition(daemon: Daemon) -> None:
    with pytest.raises(CtlError) as caught:
        load(daemon, ["AAPL"], ["1d"], MON_JAN_8, MON_JAN_8 + DAY_S)
    assert caught.value.code == 9 and "hosts.ib" in str(caught.value)


def test_injected_pacing_violation_is_backed_off_and_the_load_completes(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    # Another client sends the load's first request just before it: the simulator answers the
    # identical request with 162 (its 15 s window is 3 s at --clock-scale 5).
    sim = SimThread(SimConfig(port=0, seed=5, clock_scale=5))
    host = IbHost(tmp_path, sim.port, "--simulated", "--clock-scale", "5")
    try:
        host.wait_health(SERVING)
        daemon = start_daemon(daemon_factory, host)
        start, end = MON_JAN_8 - 60 * DAY_S, MON_JAN_8
        planned = daemon.ctl(DATA + "GetGaps", {"series": {"symbol": "NVDA", "timeframe": "1h"},
                                                "startTime": iso(start), "endTime": iso(end)})["gaps"]  # fmt: skip
        gap_start, gap_end = (int(seconds(planned[0]["range"][k])) for k in ("startTime", "endTime"))
        first = requests.plan("1h", gap_start, gap_end)[0]

        async def steal() -> None:
            ib = IB()
            await ib.connectAsync("127.0.0.1", sim.port, clientId=42, readonly=True, timeout=10)
            try:
                contract = Stock("NVDA", "SMART", "USD")
                await ib.qualifyContractsAsync(contract)
                when = dt.datetime.fromtimestamp(first.end_s, dt.UTC)
                await ib.reqHistoricalDataAsync(contract, when, first.duration, "1 hour", "TRADES", True, 2)
            finally:
                ib.disconnect()

        asyncio.run(steal())
        op = wait(daemon, load(daemon, ["NVDA"], ["1h"], start, end))
        assert op["state"] == "OPERATION_STATE_SUCCEEDED", op
        assert host.status().pacer.pacing_violations >= 1
        assert stored(daemon, "NVDA", "1h") == served(host, "NVDA", "1h", start, end)
    finally:
        host.stop()
        sim.stop()


def seconds(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def test_two_loads_of_one_series_share_one_fetch(
    daemon_factory: DaemonFactory, sim: SimThread, host: IbHost
) -> None:
    daemon = start_daemon(daemon_factory, host)
    sim.call(lambda s: setattr(s.faults, "latency_s", 0.05))
    start, end = MON_JAN_8, MON_JAN_8 + 10 * DAY_S
    first = load(daemon, ["TSLA"], ["1m"], start, end)
    second = load(daemon, ["TSLA"], ["1m"], start, end)
    done = [wait(daemon, first), wait(daemon, second)]
    assert [op["state"] for op in done] == ["OPERATION_STATE_SUCCEEDED"] * 2
    requests = sorted(int(op["result"].get("requestsDone", 0)) for op in done)
    assert requests[0] == 0 and requests[1] > 0  # one fetched, the other found nothing missing
    assert stored(daemon, "TSLA", "1m") == served(host, "TSLA", "1m", start, end)


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_load_interrupted_by_a_daemon_stop_resumes_after_restart(
    daemon_factory: DaemonFactory, sim: SimThread, host: IbHost, stop: int
) -> None:
    daemon = start_daemon(daemon_factory, host)
    sim.call(lambda s: setattr(s.faults, "latency_s", 0.15))
    start, end = MON_JAN_8, MON_JAN_8 + 30 * DAY_S
    parent = load(daemon, ["AMD"], ["1m"], start, end)
    deadline = time.monotonic() + 60
    while True:  # until a first merge reached the file
        child = children(daemon, parent)
        if child and metric(child[0], "bars_merged") > 0:
            break
        assert time.monotonic() < deadline, f"nothing merged: {child}"
        time.sleep(0.05)
    total_requests = metric(child[0], "requests_total")
    daemon.proc.send_signal(stop)
    daemon.proc.wait(60)
    sim.call(lambda s: setattr(s.faults, "latency_s", 0.0))
    again = start_daemon(daemon_factory, host, runtime_dir=daemon.runtime_dir, state_dir=daemon.state_dir)
    op = wait(again, parent)
    assert op["state"] == "OPERATION_STATE_SUCCEEDED", op
    resumed = children(again, parent)[0]
    assert 0 < int(resumed["result"]["requestsDone"]) < total_requests  # only what was missing
    bars = stored(again, "AMD", "1m")
    assert bars == served(host, "AMD", "1m", start, end)
    table = pq.read_table(again.state_dir / "data" / "AMD" / "1m.parquet")
    assert table.num_rows == len(bars)


def test_ctrl_c_on_ktrdrctl_data_load_cancels_and_keeps_the_merged_bars(
    daemon_factory: DaemonFactory, sim: SimThread, host: IbHost
) -> None:
    daemon = start_daemon(daemon_factory, host)
    sim.call(lambda s: setattr(s.faults, "latency_s", 0.15))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ktrdrctl", "--runtime-dir", str(daemon.runtime_dir), "data", "load", "INTC",
         "--timeframe", "1m", "--start", "2024-01-08", "--end", "2024-02-07"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        ops = daemon.ctl(OPS + "ListOperations", {"filter": {"kind": "data.load.series"}})["operations"]
        if ops and metric(ops[0], "bars_merged") > 0:
            break
        assert time.monotonic() < deadline and proc.poll() is None, "nothing merged"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "CANCELLED" in err and "bars kept" in err, err
    parent = daemon.ctl(OPS + "ListOperations", {"filter": {"kind": "data.load"}})["operations"][0]
    assert parent["state"] == "OPERATION_STATE_CANCELLED"
    kept = stored(daemon, "INTC", "1m")
    assert len(kept) >= 5000
    full = served(host, "INTC", "1m", MON_JAN_8, MON_JAN_8 + 30 * DAY_S)
    assert kept == full[: len(kept)]
