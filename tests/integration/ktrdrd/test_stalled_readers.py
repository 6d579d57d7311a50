"""Clients that start a bulk server stream and stop reading it, against a real ktrdrd.

``GetBars`` of a long series used to read the whole series into memory before its first chunk, and
a client that then stops reading (gRPC flow control, or a ctl socket nobody reads) kept all of it
pinned: ten such streams of a 400,000-bar series took 500 MB. A range is now read as it is sent,
so each stalled stream holds about one row group and one chunk whatever the series' length; a
client cancelling such a stream is no error in the daemon's log; and a ctl connection whose writes
waited for its departed client is closed. The bounds asserted are on memory and outcomes, never
on speed.
"""

from __future__ import annotations

import fcntl
import io
import termios
import time
from typing import TYPE_CHECKING

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ktrdr.common.v1 import common_pb2
from ktrdr.daemon.v1 import data_pb2, data_pb2_grpc
from tests.support.rawctl import RawConn, request_line, vm_rss_mib, wait_until

if TYPE_CHECKING:
    from tests.integration.conftest import Daemon, DaemonFactory

BARS = 1_000_000  # 48 MB as arrays: what each stalled stream used to hold, many times its chunk
STALLED = 3  # per transport
#: What STALLED gRPC plus STALLED ctl streams may add to the daemon's memory: each holds a row
#: group and a chunk (about 14 MB over gRPC, 6 MB over ctl); holding the series took 50-60 MB each.
GROWTH_LIMIT_MIB = 160
SERIES = common_pb2.SeriesKey(symbol="EURUSD", timeframe="1m")
GET_BARS = request_line(
    1, "ktrdr.daemon.v1.DataService/GetBars", {"series": {"symbol": "EURUSD", "timeframe": "1m"}}
)


def _parquet(bars: int) -> bytes:
    minutes = np.arange(bars, dtype=np.int64) * 60_000_000_000 + 1_500_000_000 * 10**9
    prices = np.full(bars, 1.5)
    table = pa.table(
        {
            "time": pa.array(minutes, pa.timestamp("ns", "UTC")),
            **{name: prices for name in ("open", "high", "low", "close", "volume")},
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _import(stub: data_pb2_grpc.DataServiceStub, data: bytes, bars: int = BARS) -> None:
    header = data_pb2.ImportBarsHeader(series=SERIES, source_name="bars.parquet")
    messages = [data_pb2.ImportBarsRequest(header=header)] + [
        data_pb2.ImportBarsRequest(data=data[i : i + (1 << 20)]) for i in range(0, len(data), 1 << 20)
    ]
    assert stub.ImportBars(iter(messages), timeout=120).bars_imported == bars


def _settled_rss(pid: int) -> float:
    """The daemon's RSS (MiB) once two readings half a second apart agree within 1 MiB."""
    readings = [vm_rss_mib(pid)]

    def settled() -> bool:
        time.sleep(0.5)
        readings.append(vm_rss_mib(pid))
        return abs(readings[-1] - readings[-2]) < 1

    wait_until(settled, 30, "the daemon's memory settling", interval_s=0)
    return readings[-1]


def test_bar_streams_whose_clients_stop_reading_hold_a_chunk_not_the_series(daemon: Daemon) -> None:
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        stub = data_pb2_grpc.DataServiceStub(channel)
        _import(stub, _parquet(BARS))
        whole = sum(len(m.chunk.time_ns) for m in stub.GetBars(data_pb2.GetBarsRequest(series=SERIES)))
        assert whole == BARS  # one complete read first: the allocator's steady state
    before = _settled_rss(daemon.proc.pid)

    channels = [grpc.insecure_channel(daemon.grpc_target) for _ in range(STALLED)]
    streams = [
        data_pb2_grpc.DataServiceStub(ch).GetBars(data_pb2.GetBarsRequest(series=SERIES), timeout=120)
        for ch in channels
    ]
    for stream in streams:
        assert len(next(stream).chunk.time_ns) > 0  # the first chunk, then no more reading
    conns = [RawConn(daemon.ctl_socket) for _ in range(STALLED)]
    for conn in conns:
        conn.send(
            request_line(
                1, "ktrdr.daemon.v1.DataService/GetBars", {"series": {"symbol": "EURUSD", "timeframe": "1m"}}
            )
        )
    try:
        growth = _settled_rss(daemon.proc.pid) - before
        assert growth <= GROWTH_LIMIT_MIB, f"{2 * STALLED} stalled streams took {growth:.0f} MiB"
        assert daemon.info()["pid"] == daemon.proc.pid  # other clients are served meanwhile
    finally:
        for stream in streams:
            stream.cancel()
        for ch in channels:
            ch.close()
        for conn in conns:
            conn.close()
    # Clients cancelling streams whose writes wait (or leaving) is no error of the daemon's.
    assert daemon.stop() == 0
    errors = [r for r in daemon.log_records() if r.get("level") in ("error", "critical")]
    assert not errors, errors[:3]


def test_a_ctl_client_that_stops_reading_a_stream_then_leaves_frees_its_connection(
    daemon_factory: DaemonFactory,
) -> None:
    """A connection whose stream waited for the client to read (its writes paused) was never closed
    once the client left: it counted against ``ctl_max_connections`` until the daemon stopped (and
    the stop waited its whole grace period). With a cap of 2, three such clients in a row must each
    find a free slot."""
    daemon = daemon_factory.start(args=("--ctl-max-connections", "2"))
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        _import(data_pb2_grpc.DataServiceStub(channel), _parquet(200_000), 200_000)  # ~20 MB of JSON

    def stalled_client_served() -> bool:
        conn = RawConn(daemon.ctl_socket)
        try:
            conn.send(GET_BARS)
            # Read nothing until the daemon's writes are blocked: the bytes waiting for us stop growing.
            waiting = [-1]

            def blocked() -> bool:
                time.sleep(0.2)
                waiting.append(int.from_bytes(fcntl.ioctl(conn.sock, termios.FIONREAD, b"\0" * 4), "little"))
                return waiting[-1] == waiting[-2] > 0

            wait_until(blocked, 20, "the daemon blocked on a client that does not read", interval_s=0)
            return "result" in conn.recv()  # a stream, not TOO_MANY_CONNECTIONS; then the client leaves
        finally:
            conn.close()

    for round_ in range(3):
        wait_until(stalled_client_served, 20, f"a free ctl connection for client {round_ + 1}")
