"""``ktrdrctl data import|show|coverage|delete`` as users run them, against a real ktrdrd; the same
DataService over gRPC. Every bad file is refused naming its line, and nothing is written."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import grpc
import pandas as pd
import pytest

from ktrdr.common.v1 import common_pb2
from ktrdr.daemon.v1 import data_pb2, data_pb2_grpc
from ktrdr.research import synthetic
from tests.support.ctlserver import run_ktrdrctl

HOUR_NS = 3600 * 10**9
START = pd.Timestamp("2024-03-04T00:00:00Z")  # a Monday


def bars_frame(
    count: int, start: pd.Timestamp = START, step: str = "1h", base: float = 100.0
) -> pd.DataFrame:
    """``count`` consistent bars; prices depend on the bar's index so that overlaps are recognisable."""
    times = pd.date_range(start, periods=count, freq=step, tz="UTC")
    close = [base + i * 0.5 for i in range(count)]
    return pd.DataFrame(
        {
            "open": close,
            "high": [c + 1 for c in close],
            "low": [c - 1 for c in close],
            "close": close,
            "volume": [10.0 + i for i in range(count)],
        },
        index=pd.DatetimeIndex(times, name=None),
    )


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """The predecessor's layout: an unnamed ISO index column, then the OHLCV columns."""
    frame.to_csv(path)
    return path


def ctl(daemon, *argv: str, **env: str):
    return run_ktrdrctl("--runtime-dir", str(daemon.runtime_dir), *argv, **env)


def shown_csv(daemon, symbol: str, tf: str, *extra: str) -> pd.DataFrame:
    out = ctl(daemon, "data", "show", symbol, tf, "--format", "csv", *extra)
    assert out.returncode == 0, out.stderr
    return pd.read_csv(io.StringIO(out.stdout), index_col=0, parse_dates=True)


def test_import_show_merge_coverage_delete(daemon, tmp_path: Path) -> None:
    first = bars_frame(48)
    imported = ctl(daemon, "data", "import", str(write_csv(tmp_path / "a.csv", first)), "--symbol", "AAPL",
                   "--timeframe", "1h")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "imported 48 bars" in imported.stdout

    stored = shown_csv(daemon, "AAPL", "1h")
    assert list(stored.index) == list(first.index)
    assert stored["close"].tolist() == first["close"].tolist()
    tail = shown_csv(daemon, "AAPL", "1h", "--tail", "3")
    assert list(tail.index) == list(first.index[-3:])
    window = shown_csv(daemon, "AAPL", "1h", "--start", "2024-03-04T05:00:00", "--end", "2024-03-04T08:00:00")
    assert list(window.index) == list(first.index[5:8])

    # Merge: the last 8 hours again with other prices, plus 16 new hours.
    overlap = bars_frame(24, start=first.index[40], base=500.0)
    merged = ctl(daemon, "data", "import", str(write_csv(tmp_path / "b.csv", overlap)), "--symbol", "AAPL",
                 "--timeframe", "1h")  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    stored = shown_csv(daemon, "AAPL", "1h")
    assert stored.index.is_unique and stored.index.is_monotonic_increasing
    assert len(stored) == 40 + 24
    assert stored["close"].tolist() == first["close"].tolist()[:40] + overlap["close"].tolist()

    listing = ctl(daemon, "data", "coverage", "--json")
    assert listing.returncode == 0, listing.stderr
    [entry] = json.loads(listing.stdout)["series"]
    assert entry["series"] == {"symbol": "AAPL", "timeframe": "1h"}
    assert entry["source"] == "DATA_SOURCE_IMPORT"
    assert int(entry["barCount"]) == 64
    file = daemon.state_dir / "data" / "AAPL" / "1h.parquet"
    assert entry["digest"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert entry["covered"] == [{"startTime": "2024-03-04T00:00:00Z", "endTime": "2024-03-06T16:00:00Z"}]
    assert entry.get("knownEmpty", []) == []  # every hour holds a bar: none is known-empty
    table = ctl(daemon, "data", "coverage", "AAPL")
    assert table.returncode == 0 and "AAPL" in table.stdout and "IMPORT" in table.stdout

    deleted = ctl(daemon, "data", "delete", "AAPL", "1h")
    assert deleted.returncode == 0, deleted.stderr
    assert not file.exists()
    gone = ctl(daemon, "data", "show", "AAPL", "1h")
    assert gone.returncode == 4 and "not found" in gone.stderr
    assert ctl(daemon, "data", "coverage", "AAPL").returncode == 4


def test_csv_variants_and_parquet(daemon, tmp_path: Path) -> None:
    frame = bars_frame(10, step="B")  # weekdays from Monday 2024-03-04 to Friday 2024-03-15
    epoch = tmp_path / "epoch.csv"
    lines = ["Timestamp,Open,High,Low,Close"] + [
        f"{t.value // 10**9},{r.open},{r.high},{r.low},{r.close}" for t, r in frame.iterrows()
    ]
    epoch.write_text("\n".join(lines) + "\n")
    out = ctl(daemon, "data", "import", str(epoch), "--symbol", "EURUSD", "--timeframe", "1d")
    assert out.returncode == 0, out.stderr
    stored = shown_csv(daemon, "EURUSD", "1d")
    # Daily bars dated D are stamped with their session's open: 17:00 New York on D-1 (EST until 10 March).
    opens = [
        t - pd.Timedelta(hours=2 if t < pd.Timestamp("2024-03-10", tz="UTC") else 3) for t in frame.index
    ]
    assert list(stored.index) == opens and stored["volume"].tolist() == [0.0] * 10
    listing = json.loads(ctl(daemon, "data", "coverage", "EURUSD", "--json").stdout)
    [entry] = listing["series"]
    assert entry["knownEmpty"] == [{"startTime": "2024-03-08T22:00:00Z", "endTime": "2024-03-10T21:00:00Z"}]

    parquet = tmp_path / "btc.parquet"
    frame.rename_axis("time").reset_index().to_parquet(parquet)
    out = ctl(daemon, "data", "import", str(parquet), "--symbol", "BTCUSD", "--timeframe", "1d", "--json")
    assert out.returncode == 0, out.stderr
    coverage = json.loads(out.stdout)["coverage"]
    assert int(coverage["barCount"]) == 10
    assert coverage.get("knownEmpty", []) == []  # crypto trades 24x7: the weekend is a gap, not closed


BAD_FILES = {
    "missing": ("time,open,high,close\n2024-03-04T00:00:00Z,1,2,1\n", "missing column(s) low"),
    "timestamp": (
        "time,open,high,low,close\n2024-03-04T00:00:00Z,1,2,0.5,1\nyesterday,1,2,0.5,1\n",
        "line 3: timestamp 'yesterday' is not an ISO-8601 time",
    ),
    "unsorted": (
        "time,open,high,low,close\n2024-03-04T02:00:00Z,1,2,0.5,1\n2024-03-04T01:00:00Z,1,2,0.5,1\n",
        "line 3: timestamp 2024-03-04T01:00:00Z is unsorted",
    ),
    "duplicate": (
        "time,open,high,low,close\n2024-03-04T01:00:00Z,1,2,0.5,1\n2024-03-04T01:00:00Z,1,2,0.5,1\n",
        "line 3: timestamp 2024-03-04T01:00:00Z is duplicated",
    ),
    "high_low": (
        "time,open,high,low,close\n2024-03-04T01:00:00Z,1,2,0.5,1\n2024-03-04T02:00:00Z,1,0.5,2,1\n",
        "line 3 (2024-03-04T02:00:00Z): inconsistent OHLC",
    ),
    "volume": (
        "time,open,high,low,close,volume\n2024-03-04T01:00:00Z,1,2,0.5,1,-3\n",
        "line 2 (2024-03-04T01:00:00Z): volume is -3.0",
    ),
    "nan": (
        "time,open,high,low,close\n2024-03-04T01:00:00Z,1,2,0.5,1\n2024-03-04T02:00:00Z,1,NaN,0.5,1\n",
        "line 3: high is 'NaN', not a finite number",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_names_the_line_and_writes_nothing(daemon, tmp_path: Path, case: str) -> None:
    good = write_csv(tmp_path / "good.csv", bars_frame(3))
    assert ctl(daemon, "data", "import", str(good), "--symbol", "SPY", "--timeframe", "1h").returncode == 0
    file = daemon.state_dir / "data" / "SPY" / "1h.parquet"
    before = file.read_bytes()
    text, expected = BAD_FILES[case]
    bad = tmp_path / f"{case}.csv"
    bad.write_text(text)
    for symbol in ("SPY", "QQQ"):  # into an existing series and into a new one
        out = ctl(daemon, "data", "import", str(bad), "--symbol", symbol, "--timeframe", "1h")
        assert out.returncode == 1, out.stderr
        assert "INVALID_ARGUMENT" in out.stderr and str(bad) in out.stderr and expected in out.stderr
        assert "nothing was imported" in out.stderr
    assert file.read_bytes() == before
    assert not (daemon.state_dir / "data" / "QQQ").exists()
    assert ctl(daemon, "data", "coverage", "QQQ").returncode == 4


def test_import_refuses_what_is_not_a_regular_file(daemon, tmp_path: Path) -> None:
    out = ctl(daemon, "data", "import", str(tmp_path), "--symbol", "SPY", "--timeframe", "1h")
    assert out.returncode == 2 and "a directory, not a regular file" in out.stderr
    assert ctl(daemon, "data", "coverage").stdout.strip() == "the cache holds no series"


def test_import_over_the_size_cap(daemon_factory, tmp_path: Path) -> None:
    daemon = daemon_factory.start(env={"KTRDR_DATA_IMPORT_MAX_BYTES": "1000"})
    big = write_csv(tmp_path / "big.csv", bars_frame(100))
    out = ctl(daemon, "data", "import", str(big), "--symbol", "SPY", "--timeframe", "1h")
    assert out.returncode == 1
    assert "RESOURCE_EXHAUSTED" in out.stderr and "1,000 bytes" in out.stderr
    assert "data_import_max_bytes" in out.stderr
    assert not (daemon.state_dir / "data" / "SPY").exists()


def test_grpc_import_and_get_bars(daemon) -> None:
    frame = bars_frame(200_000, step="1min")
    sink = io.BytesIO()
    frame.rename_axis("timestamp").reset_index().to_parquet(sink)
    payload = sink.getvalue()
    key = common_pb2.SeriesKey(symbol="msft", timeframe="1m")

    def requests(mode: int = data_pb2.IMPORT_MODE_UNSPECIFIED):
        yield data_pb2.ImportBarsRequest(
            header=data_pb2.ImportBarsHeader(
                series=key, format=data_pb2.IMPORT_FORMAT_PARQUET, source_name="m", mode=mode
            )
        )
        for i in range(0, len(payload), 1 << 20):
            yield data_pb2.ImportBarsRequest(data=payload[i : i + (1 << 20)])

    with grpc.insecure_channel(daemon.grpc_target) as channel:
        stub = data_pb2_grpc.DataServiceStub(channel)
        response = stub.ImportBars(requests(), timeout=60)
        assert response.bars_imported == 200_000 and response.coverage.series.symbol == "MSFT"
        chunks = [r.chunk for r in stub.GetBars(data_pb2.GetBarsRequest(series=key), timeout=60)]
        assert len(chunks) > 1 and all(c.ByteSize() < 4 * 1024 * 1024 for c in chunks)
        times = [t for c in chunks for t in c.time_ns]
        assert times == frame.index.as_unit("ns").asi8.tolist()
        assert [v for c in chunks for v in c.close] == frame["close"].tolist()
        tail = list(stub.GetBars(data_pb2.GetBarsRequest(series=key, tail=2), timeout=60))
        assert list(tail[0].chunk.time_ns) == times[-2:]
        with pytest.raises(grpc.RpcError) as refused:
            stub.ImportBars(requests(data_pb2.IMPORT_MODE_CREATE), timeout=60)
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetCoverage(
                data_pb2.GetCoverageRequest(series=common_pb2.SeriesKey(symbol="X", timeframe="1h"))
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpc_bad_files_are_invalid_argument_naming_the_line(daemon) -> None:
    key = common_pb2.SeriesKey(symbol="IWM", timeframe="1h")
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        stub = data_pb2_grpc.DataServiceStub(channel)
        for case, (text, expected) in sorted(BAD_FILES.items()):
            header = data_pb2.ImportBarsHeader(series=key, source_name=f"{case}.csv")
            requests = [
                data_pb2.ImportBarsRequest(header=header),
                data_pb2.ImportBarsRequest(data=text.encode()),
            ]
            with pytest.raises(grpc.RpcError) as refused:
                stub.ImportBars(iter(requests), timeout=30)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
            assert f"{case}.csv: " in refused.value.details() and expected in refused.value.details(), case
        with pytest.raises(grpc.RpcError) as headless:
            stub.ImportBars(iter([data_pb2.ImportBarsRequest(data=b"time,open\n")]), timeout=30)
        assert headless.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "first message of an import must be the header" in headless.value.details()
        listed = stub.ListSeries(data_pb2.ListSeriesRequest(), timeout=30)
        assert list(listed.series) == []
    assert not (daemon.state_dir / "data" / "IWM").exists()


def test_the_files_make_run_writes_import_exactly_and_list_in_pages(daemon, tmp_path: Path) -> None:
    """``ktrdr.research.synthetic.write_csv`` (the predecessor's layout, as ``make run`` writes it)
    round-trips bit for bit; ListSeries pages through the series."""
    written = {}
    for symbol in ("EURUSD", "GBPUSD"):
        bars = synthetic.gbm_bars(symbol, "5m", "2024-03-04", "2024-03-08", seed=3)
        path = synthetic.write_csv(bars, tmp_path)
        out = ctl(daemon, "data", "import", str(path), "--symbol", symbol, "--timeframe", "5m")
        assert out.returncode == 0, out.stderr
        written[symbol] = bars
    shown = ctl(daemon, "data", "show", "EURUSD", "5m", "--format", "json")
    chunks = [json.loads(line)["chunk"] for line in shown.stdout.splitlines()]
    bars = written["EURUSD"]
    assert [int(t) for c in chunks for t in c["timeNs"]] == bars.time.tolist()
    for name in ("open", "high", "low", "close", "volume"):
        assert [v for c in chunks for v in c[name]] == getattr(bars, name).tolist(), name

    first = daemon.ctl("ktrdr.daemon.v1.DataService/ListSeries", {"pageSize": 1})
    assert [s["series"]["symbol"] for s in first["series"]] == ["EURUSD"] and first["nextPageToken"]
    second = daemon.ctl(
        "ktrdr.daemon.v1.DataService/ListSeries", {"pageSize": 1, "pageToken": first["nextPageToken"]}
    )
    assert [s["series"]["symbol"] for s in second["series"]] == ["GBPUSD"]
    assert not second.get("nextPageToken")
