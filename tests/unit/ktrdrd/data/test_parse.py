"""The daemon's file reader: CSV variants and Parquet; every error names the line (CSV) or row."""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ktrdr.research.bars import BarsError
from ktrdrd.data.parse import parse

NS = pd.Timestamp("2024-03-04T00:00:00Z").value


def csv(text: str):
    return parse(text.encode(), "csv", "AAPL", "1h", "f.csv")[0]


def test_predecessor_layout_and_offsets() -> None:
    got = csv(
        ",open,high,low,close,volume\n2024-03-04 00:00:00+00:00,1,2,0.5,1,7\n2024-03-04T02:00:00+01:00,1,2,0.5,1,7\n"
    )
    assert got.time.tolist() == [NS, NS + 3600 * 10**9] and got.volume.tolist() == [7.0, 7.0]


@pytest.mark.parametrize(
    ("stamp", "scale"), [("1709510400", 1), ("1709510400000", 10**3), ("1709510400000000000", 10**9)]
)
def test_epoch_units_follow_the_size(stamp: str, scale: int) -> None:
    assert csv(f"timestamp,open,high,low,close\n{stamp},1,2,0.5,1\n").time.tolist() == [NS]


def test_date_and_time_columns_join() -> None:
    assert csv("Date,Time,Open,High,Low,Close\n2024-03-04,00:00,1,2,0.5,1\n").time.tolist() == [NS]


def test_a_blank_line_keeps_line_numbers_right() -> None:
    with pytest.raises(BarsError, match=r"f\.csv: line 3: timestamp '' is not"):
        csv("time,open,high,low,close\n2024-03-04T00:00Z,1,2,0.5,1\n\n2024-03-04T01:00Z,1,2,0.5,1\n")


def test_missing_time_column() -> None:
    with pytest.raises(BarsError, match="missing the time column: found when, open"):
        csv("when,open,high,low,close\n2024-03-04,1,2,0.5,1\n")


def test_parquet_rows_are_numbered_from_one() -> None:
    frame = pd.DataFrame({"time": pd.to_datetime([NS, NS], utc=True), "open": [1.0, 1.0], "high": [2.0, 2.0],
                          "low": [0.5, 0.5], "close": [1.0, 1.0]})  # fmt: skip
    sink = io.BytesIO()
    frame.to_parquet(sink)
    with pytest.raises(BarsError, match=r"f\.parquet: row 2: timestamp 2024-03-04T00:00:00Z is duplicated"):
        parse(sink.getvalue(), "parquet", "AAPL", "1h", "f.parquet")
    with pytest.raises(BarsError, match="not a readable Parquet file"):
        parse(b"PAR1 nonsense", "parquet", "AAPL", "1h", "f.parquet")


@pytest.mark.parametrize(
    ("stamp", "offset_s"),
    [
        ("2024-03-04", 0),
        ("2024-3-4 00:00", 0),
        ("2024-03-04 01", 3600),
        ("20240304T010000", 3600),
        ("2024-03-04T00:00:00.5", 0.5),
        ("2024-03-04T01:00:00+0100", 0),
        ("2024-03-04T00:00:00 -05", 5 * 3600),
        (" 2024-03-04T00:00:00.000000001Z ", 1e-9),
        ("2024-03-04 00:00 UTC", 0),
        ("04.03.2024 01:00:00.000 GMT+0100", 0),
        ("2024.03.04 00:00", 0),
        ("20240303  19:00:00 US/Eastern", 0),
        ("2024-03-03 19:00:00 America/New_York", 0),
        ("2024-03-04 1:00:00", 3600),
    ],
)
def test_iso_variants(stamp: str, offset_s: float) -> None:
    got = csv(f"time,open,high,low,close\n{stamp},1,2,0.5,1\n").time.tolist()
    assert got == [NS + round(offset_s * 10**9)]


@pytest.mark.parametrize(
    "stamp", ["2023-02-29", "2024-03-04T24:00", "2024-03-04t00:00", "03/04/2024 00:00", "2024-03-04 EST"]
)
def test_not_iso(stamp: str) -> None:
    with pytest.raises(BarsError, match=rf"f\.csv: line 3: timestamp '{stamp}' is not an ISO-8601 time"):
        csv(f"time,open,high,low,close\n2024-03-01,1,2,0.5,1\n{stamp},1,2,0.5,1\n")


def test_a_line_with_another_number_of_fields_is_named() -> None:
    with pytest.raises(BarsError, match=r"f\.csv: line 3: 6 fields, expected 5 \(the header's\)"):
        csv("time,open,high,low,close\n2024-03-04T00:00Z,1,2,0.5,1\n2024-03-04T01:00Z,1,2,0.5,1,9\n")


def test_number_text_and_header_only() -> None:
    got = csv("time,open,high,low,close,volume\n2024-03-04T00:00Z, 1.5 ,2e0,.5,+1,7\n")
    assert [got.open[0], got.high[0], got.low[0], got.close[0]] == [1.5, 2.0, 0.5, 1.0]
    assert len(csv("time,open,high,low,close\n")) == 0
    with pytest.raises(BarsError, match=r"f\.csv: line 2: open is '1,5'"):
        csv('time,open,high,low,close\n2024-03-04T00:00Z,"1,5",2,0.5,1\n')


def test_times_of_day_without_an_offset_are_counted_as_read_as_utc() -> None:
    rows = "time,open,high,low,close,volume\n{},1,2,0.5,1,5\n{},1,2,0.5,1,5\n"
    naive = rows.format("2023-01-03 14:00", "2023-01-03 15:00").encode()
    assert parse(naive, "csv", "AAPL", "1h", "f.csv").naive_as_utc == 2
    assert parse(naive, "csv", "AAPL", "1h", "f.csv", timezone="America/New_York").naive_as_utc == 0
    offsets = rows.format("2023-01-03 14:00Z", "2023-01-03T15:00:00+00:00").encode()
    assert parse(offsets, "csv", "AAPL", "1h", "f.csv").naive_as_utc == 0
    dates = rows.format("2023-01-03", "2023-01-04").encode()  # dates, not times of day
    assert parse(dates, "csv", "AAPL", "1d", "f.csv").naive_as_utc == 0


def test_a_parquet_timestamp_without_a_zone_is_counted_as_read_as_utc() -> None:
    times = pa.array([dt.datetime(2023, 1, 3, 14), dt.datetime(2023, 1, 3, 15)], pa.timestamp("ns"))
    prices = {k: [1.0, 1.0] for k in ("open", "close", "volume")}
    table = pa.table({"time": times, "high": [2.0, 2.0], "low": [0.5, 0.5], **prices})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    assert parse(sink.getvalue(), "parquet", "AAPL", "1h", "f.parquet").naive_as_utc == 2
    zoned = table.set_column(0, "time", times.cast(pa.timestamp("ns", "UTC")))
    sink = io.BytesIO()
    pq.write_table(zoned, sink)
    assert parse(sink.getvalue(), "parquet", "AAPL", "1h", "f.parquet").naive_as_utc == 0
