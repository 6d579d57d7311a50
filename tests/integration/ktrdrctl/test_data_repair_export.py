"""``ktrdrctl data import --repair/--fix``, ``data export`` and a disk-full import, as users run them
against a real ktrdrd: fixes are named and reported, an export imports back exactly, and a write
that cannot complete leaves the previous file as it was."""

from __future__ import annotations

import io
import json
import resource
from pathlib import Path

import grpc
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ktrdr.common.v1 import common_pb2
from ktrdr.daemon.v1 import data_pb2, data_pb2_grpc
from ktrdr.research import synthetic
from tests.integration.ktrdrctl.test_data_cli import bars_frame, ctl, write_csv

HEADER = "time,open,high,low,close,volume\n"
MESSY = HEADER + "".join(
    f"2024-03-04T{hour:02d}:00:00Z,{values}\n"
    for hour, values in [
        (0, "10,11,9,10,1"),
        (2, "12,13,11,12,3"),
        (1, "11,12,10,11,2"),  # early: sort
        (2, "12,13,11,12,3"),  # identical to the other 02:00 row: dedupe-exact
        (3, "13,12,14,13,4"),  # high < low: swap-high-low
    ]
)


def test_repair_applies_named_fixes_and_reports_them(daemon, tmp_path: Path) -> None:
    messy = tmp_path / "messy.csv"
    messy.write_text(MESSY)
    refused = ctl(daemon, "data", "import", str(messy), "--symbol", "SPY", "--timeframe", "1h")
    assert refused.returncode == 1 and "line 4: timestamp 2024-03-04T01:00:00Z is unsorted" in refused.stderr
    assert not (daemon.state_dir / "data" / "SPY").exists()

    out = ctl(daemon, "data", "import", str(messy), "--symbol", "SPY", "--timeframe", "1h", "--repair")
    assert out.returncode == 0, out.stderr
    assert "imported 4 bars" in out.stdout
    assert "repaired swap-high-low: 1 row (line 6)" in out.stdout
    assert "repaired sort: 1 row (line 4)" in out.stdout
    assert "repaired dedupe-exact: 1 row (line 5)" in out.stdout
    shown = ctl(daemon, "data", "show", "SPY", "1h", "--format", "csv")
    stored = pd.read_csv(io.StringIO(shown.stdout), index_col=0)
    assert stored["volume"].tolist() == [1, 2, 3, 4]
    assert stored["high"].tolist()[-1] == 14 and stored["low"].tolist()[-1] == 12

    conflicting = tmp_path / "conflict.csv"
    conflicting.write_text(HEADER + "2024-03-05T00:00:00Z,1,2,0.5,1,7\n2024-03-05T00:00:00Z,1,2,0.5,1,8\n")
    standard = ctl(
        daemon, "data", "import", str(conflicting), "--symbol", "SPY", "--timeframe", "1h", "--repair"
    )
    assert (
        standard.returncode == 1 and "line 3: timestamp 2024-03-05T00:00:00Z is duplicated" in standard.stderr
    )
    kept_last = ctl(daemon, "data", "import", str(conflicting), "--symbol", "SPY", "--timeframe", "1h",
                    "--fix", "dedupe-keep-last", "--json")  # fmt: skip
    assert kept_last.returncode == 0, kept_last.stderr
    response = json.loads(kept_last.stdout)
    assert response["repairs"] == [{"name": "dedupe-keep-last", "rows": "1", "examples": ["line 2"]}]
    unknown = ctl(daemon, "data", "import", str(conflicting), "--symbol", "SPY", "--timeframe", "1h",
                  "--fix", "interpolate")  # fmt: skip
    assert unknown.returncode == 2 and "'interpolate' is not one of" in unknown.stderr
    header = data_pb2.ImportBarsHeader(series=common_pb2.SeriesKey(symbol="SPY", timeframe="1h"),
                                       repairs=["interpolate"])  # fmt: skip
    with grpc.insecure_channel(daemon.grpc_target) as channel, pytest.raises(grpc.RpcError) as refused_fix:
        data_pb2_grpc.DataServiceStub(channel).ImportBars(iter([data_pb2.ImportBarsRequest(header=header)]))
    assert refused_fix.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown fix 'interpolate'; known: standard, swap-high-low" in refused_fix.value.details()


def test_export_round_trips_through_import(daemon, tmp_path: Path) -> None:
    bars = synthetic.gbm_bars("EURUSD", "5m", "2024-03-04", "2024-03-09", seed=5)
    source = synthetic.write_csv(bars, tmp_path)
    assert (
        ctl(daemon, "data", "import", str(source), "--symbol", "EURUSD", "--timeframe", "5m").returncode == 0
    )

    exported = tmp_path / "out" / "eurusd.csv"
    exported.parent.mkdir()
    out = ctl(daemon, "data", "export", "EURUSD", "5m", "-o", str(exported))
    assert out.returncode == 0, out.stderr
    assert exported.read_text().startswith(",open,high,low,close,volume\n2024-03-04T00:00:00Z,")
    assert list(exported.parent.iterdir()) == [exported]  # no temporary file left
    back = ctl(daemon, "data", "import", str(exported), "--symbol", "COPY", "--timeframe", "5m")
    assert back.returncode == 0, back.stderr
    original = ctl(daemon, "data", "show", "EURUSD", "5m", "--format", "json").stdout
    copied = ctl(daemon, "data", "show", "COPY", "5m", "--format", "json").stdout
    assert copied.replace('"COPY"', '"EURUSD"') == original  # every bar, bit for bit
    assert (
        len(original.splitlines()) >= 1 and str(len(bars)) in ctl(daemon, "data", "coverage", "COPY").stdout
    )

    parquet = tmp_path / "window.parquet"
    out = ctl(daemon, "data", "export", "EURUSD", "5m", "--start", "2024-03-05T00:00:00",
              "--end", "2024-03-06T00:00:00", "-o", str(parquet))  # fmt: skip
    assert out.returncode == 0, out.stderr
    table = pq.read_table(parquet)
    day = bars.between(pd.Timestamp("2024-03-05", tz="UTC").value, pd.Timestamp("2024-03-06", tz="UTC").value)
    assert table.column("time").to_pylist() == day.time.tolist()
    assert table.column("close").to_pylist() == day.close.tolist()

    lines = ctl(
        daemon, "data", "export", "EURUSD", "5m", "--format", "json", "--start", "2024-03-08T23:50:00"
    )
    assert lines.returncode == 0, lines.stderr
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [r["time"] for r in records] == ["2024-03-08T23:50:00Z", "2024-03-08T23:55:00Z"]
    assert records[-1]["close"] == bars.close.tolist()[-1]

    missing = ctl(daemon, "data", "export", "NOPE", "5m", "-o", str(tmp_path / "nope.csv"))
    assert missing.returncode == 4 and not (tmp_path / "nope.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_disk_full_import_fails_with_the_reason_and_keeps_the_previous_file(daemon, tmp_path: Path) -> None:
    small = write_csv(tmp_path / "small.csv", bars_frame(3))
    assert ctl(daemon, "data", "import", str(small), "--symbol", "SPY", "--timeframe", "1m").returncode == 0
    series_file = daemon.state_dir / "data" / "SPY" / "1m.parquet"
    before = series_file.read_bytes()
    large = write_csv(tmp_path / "large.csv", bars_frame(100_000, step="1min"))
    pid = daemon.proc.pid
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1 << 20, hard))  # files of at most 1 MiB
    try:
        out = ctl(daemon, "data", "import", str(large), "--symbol", "SPY", "--timeframe", "1m")
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, hard))
    assert out.returncode == 1
    assert "RESOURCE_EXHAUSTED" in out.stderr and "reason: DATA_DISK_FULL" in out.stderr
    assert str(series_file) in out.stderr and "the previous file is intact" in out.stderr
    assert series_file.read_bytes() == before
    assert [p.name for p in series_file.parent.iterdir()] == ["1m.parquet"]
    listing = json.loads(ctl(daemon, "data", "coverage", "SPY", "--json").stdout)
    assert [int(s["barCount"]) for s in listing["series"]] == [3]


def test_daily_bars_are_stamped_at_their_session_open_and_undated_days_refused(
    daemon, tmp_path: Path
) -> None:
    dates = tmp_path / "aapl_1d.csv"
    dates.write_text("Date,Open,High,Low,Close,Volume\n2024-07-03,10,11,9,10,5\n2024-07-05,10,11,9,10,5\n")
    out = ctl(daemon, "data", "import", str(dates), "--symbol", "AAPL", "--timeframe", "1d")
    assert out.returncode == 0, out.stderr
    # 04:00 New York (EDT): the extended session's open, before any intraday bar of the day.
    stored = ctl(daemon, "data", "show", "AAPL", "1d", "--format", "csv").stdout.splitlines()
    assert [line.split(",")[0] for line in stored[1:]] == ["2024-07-03T08:00:00Z", "2024-07-05T08:00:00Z"]
    entry = json.loads(ctl(daemon, "data", "coverage", "AAPL", "--json").stdout)["series"][0]
    assert entry["knownEmpty"] == [{"startTime": "2024-07-04T08:00:00Z", "endTime": "2024-07-05T08:00:00Z"}]
    exported = tmp_path / "again.csv"
    assert ctl(daemon, "data", "export", "AAPL", "1d", "-o", str(exported)).returncode == 0
    again = ctl(daemon, "data", "import", str(exported), "--symbol", "AAPL", "--timeframe", "1d", "--json")
    assert json.loads(again.stdout)["coverage"]["digest"] == entry["digest"]  # the stamps pass through

    holiday = tmp_path / "holiday.csv"
    holiday.write_text("Date,Open,High,Low,Close\n2024-07-03,10,11,9,10\n2024-07-04,10,11,9,10\n")
    refused = ctl(daemon, "data", "import", str(holiday), "--symbol", "MSFT", "--timeframe", "1d")
    assert refused.returncode == 1
    assert f"{holiday}: line 3: 2024-07-04 has no XNYS session" in refused.stderr


def test_a_large_export_arrives_in_pieces_over_grpc_and_ctl(daemon, tmp_path: Path) -> None:
    frame = bars_frame(200_000, step="1min")
    source = tmp_path / "big.parquet"
    frame.rename_axis("time").reset_index().to_parquet(source)
    assert ctl(daemon, "data", "import", str(source), "--symbol", "QQQ", "--timeframe", "1m").returncode == 0
    key = common_pb2.SeriesKey(symbol="QQQ", timeframe="1m")
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        stub = data_pb2_grpc.DataServiceStub(channel)
        request = data_pb2.ExportBarsRequest(series=key, format=data_pb2.EXPORT_FORMAT_CSV)
        pieces = list(stub.ExportBars(request, timeout=120))
    assert len(pieces) > 1 and all(len(p.data) <= 1 << 20 for p in pieces)
    assert [p.bar_count for p in pieces] == [200_000] + [0] * (len(pieces) - 1)
    exported = pd.read_csv(io.BytesIO(b"".join(p.data for p in pieces)), index_col=0)
    assert exported["close"].tolist() == frame["close"].tolist()
    assert pd.DatetimeIndex(exported.index).equals(frame.index)

    written = tmp_path / "qqq.parquet"
    out = ctl(daemon, "data", "export", "QQQ", "1m", "-o", str(written))
    assert out.returncode == 0, out.stderr
    table = pq.read_table(written)
    assert table.column("time").to_pylist() == frame.index.as_unit("ns").asi8.tolist()
    assert table.column("volume").to_pylist() == frame["volume"].tolist()
