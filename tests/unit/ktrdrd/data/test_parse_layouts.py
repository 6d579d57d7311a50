"""Real-world file layouts (tests/fixtures/bars, one file per layout users bring) through the
daemon's reader: each lands on the same UTC bar-open times and prices, or is refused naming the
file, the line and what was expected. The daemon path is tested in
tests/integration/ktrdrctl/test_data_layouts.py."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ktrdr import calendars
from ktrdr.research.bars import Bars, BarsError
from ktrdrd.data.parse import parse

FIXTURES = Path(__file__).parents[3] / "fixtures" / "bars"
HOUR_NS = 3600 * 10**9
# AAPL, January 2023 (2023-01-16 was Martin Luther King Jr. Day): the dates and closes of every
# AAPL 1d fixture; the cache stamps a US equity daily bar at 04:00 New York (09:00 UTC in winter).
AAPL_DATES = ["2023-01-03", "2023-01-04", "2023-01-05", "2023-01-06", "2023-01-09", "2023-01-10",
              "2023-01-11", "2023-01-12", "2023-01-13", "2023-01-17", "2023-01-18", "2023-01-19",
              "2023-01-20"]  # fmt: skip
AAPL_CLOSES = [125.07, 126.36, 125.02, 129.62, 130.15, 130.73, 133.49, 133.41, 134.76, 135.94, 135.21,
               135.27, 137.87]  # fmt: skip
# AAPL 1h on 2023-01-03: the regular session 09:30..16:00 New York = 14:30..21:00 UTC.
AAPL_HOURS = [128.61, 127.85, 126.71, 125.84, 125.12, 124.49, 125.07]
EURUSD_CLOSES = [1.06733, 1.06718, 1.06561, 1.06455, 1.06540, 1.06597]
BTC_CLOSES = [16529.67, 16551.47, 16548.19, 16533.04, 16521.85, 16513.51]


def ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def hourly(first: str, count: int) -> list[int]:
    return [ns(first) + i * HOUR_NS for i in range(count)]


AAPL_DAILY = ([ns(f"{d}T09:00") for d in AAPL_DATES], AAPL_CLOSES)
EXPECTED = {
    "yahoo_aapl_1d.csv": ("AAPL", "1d", None, AAPL_DAILY),
    "yfinance_aapl_1d_offset.csv": ("AAPL", "1d", None, AAPL_DAILY),
    "predecessor_aapl_1d.csv": ("AAPL", "1d", None, AAPL_DAILY),
    "ib_aapl_1d.csv": ("AAPL", "1d", None, AAPL_DAILY),
    "excel_aapl_1d_semicolon.csv": ("AAPL", "1d", None, AAPL_DAILY),
    "predecessor_aapl_1h.csv": ("AAPL", "1h", None, (hourly("2023-01-03T14:30", 7), AAPL_HOURS)),
    "ib_aapl_1h_offset.csv": ("AAPL", "1h", None, (hourly("2023-01-03T14:30", 7), AAPL_HOURS)),
    "tws_aapl_1h_zone.csv": ("AAPL", "1h", None, (hourly("2023-01-03T14:30", 7), AAPL_HOURS)),
    "local_aapl_1h_naive.csv": (
        "AAPL",
        "1h",
        "America/New_York",
        (hourly("2023-01-03T14:30", 7), AAPL_HOURS),
    ),
    "metatrader5_eurusd_1h.csv": ("EURUSD", "1h", None, (hourly("2023-01-03T00:00", 6), EURUSD_CLOSES)),
    "metatrader4_eurusd_1h.csv": ("EURUSD", "1h", None, (hourly("2023-01-03T00:00", 6), EURUSD_CLOSES)),
    "dukascopy_eurusd_1h.csv": ("EURUSD", "1h", None, (hourly("2023-01-03T00:00", 6), EURUSD_CLOSES)),
    "dukascopy_eurusd_1h_local.csv": ("EURUSD", "1h", None, (hourly("2023-01-03T00:00", 6), EURUSD_CLOSES)),
    "binance_btcusdt_1h.csv": ("BTCUSDT", "1h", None, (hourly("2023-01-01T00:00", 6), BTC_CLOSES)),
    "binance_btcusdt_1h_header.csv": ("BTCUSDT", "1h", None, (hourly("2023-01-01T00:00", 6), BTC_CLOSES)),
    "utc_z_btcusd_1h_novolume.csv": ("BTCUSD", "1h", None, (hourly("2023-01-01T00:00", 6), BTC_CLOSES)),
}


def read(
    data: bytes, symbol: str, timeframe: str, name: str, fmt: str = "csv", timezone: str | None = None
) -> Bars:
    return parse(data, fmt, symbol, timeframe, name, None, calendars.guess(symbol), timezone)[0]


def test_every_fixture_file_is_listed() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.csv")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_layout_lands_on_the_same_bars(name: str) -> None:
    symbol, timeframe, timezone, (times, closes) = EXPECTED[name]
    bars = read((FIXTURES / name).read_bytes(), symbol, timeframe, name, timezone=timezone)
    assert bars.time.tolist() == times
    assert bars.close.tolist() == closes
    assert (bars.volume > 0).all() or name.endswith("novolume.csv")


def test_metatrader_volume_is_tick_volume_when_real_volume_is_zero() -> None:
    bars = read((FIXTURES / "metatrader5_eurusd_1h.csv").read_bytes(), "EURUSD", "1h", "mt5.csv")
    assert bars.volume.tolist()[:2] == [3412.0, 2987.0]


def test_naive_local_times_without_a_zone_are_utc() -> None:
    bars = read((FIXTURES / "local_aapl_1h_naive.csv").read_bytes(), "AAPL", "1h", "naive.csv")
    assert bars.time[0] == ns("2023-01-03T09:30")


def test_a_zone_applies_across_a_daylight_saving_change() -> None:
    text = "time,open,high,low,close\n2023-03-10 09:30,1,2,0.5,1\n2023-03-13 09:30,1,2,0.5,1\n"
    bars = read(text.encode(), "AAPL", "1h", "f.csv", timezone="America/New_York")
    assert bars.time.tolist() == [ns("2023-03-10T14:30"), ns("2023-03-13T13:30")]


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def aapl_daily_table(time_column: str, times: pa.Array) -> pa.Table:
    prices = pa.array(AAPL_CLOSES, pa.float64())
    return pa.table({time_column: times, "Open": prices, "High": prices, "Low": prices, "Close": prices,
                     "Volume": pa.array([1e6] * len(AAPL_CLOSES))})  # fmt: skip


@pytest.mark.parametrize(
    "times",
    [
        pa.array([dt.date.fromisoformat(d) for d in AAPL_DATES], pa.date32()),
        pa.array([ns(d) for d in AAPL_DATES], pa.timestamp("ns")),
        # yfinance's DataFrame.to_parquet: local midnight in the exchange's zone
        pa.array([ns(d) + 5 * HOUR_NS for d in AAPL_DATES], pa.timestamp("ns", "America/New_York")),
    ],
    ids=["date32", "naive", "tz-aware"],
)
def test_parquet_daily_dates_in_any_time_type(times: pa.Array) -> None:
    for column in ("Date", "__index_level_0__"):
        bars = read(parquet_bytes(aapl_daily_table(column, times)), "AAPL", "1d", "f.parquet", "parquet")
        assert (bars.time.tolist(), bars.close.tolist()) == AAPL_DAILY


@pytest.mark.parametrize(
    ("text", "timeframe", "message"),
    [
        ("Date,Open,High,Low,Close\n01/03/2023,1,2,0.5,1\n", "1d",
         r"f\.csv: line 2: timestamp '01/03/2023' is not an ISO-8601 time .*expected a date YYYY-MM-DD"),
        ("Date;Open;High;Low;Close\n2023-01-03;130,28;131;129;130\n", "1d",
         r"f\.csv: line 2: open is '130,28', not a finite number"),
        ("Date,Open,High,Low,Close\n2023-01-03,1,2,0.5,1\n2023-01-16,1,2,0.5,1\n", "1d",
         r"f\.csv: line 3: 2023-01-16 has no XNYS session"),
        ("Date,Open,High,Low,Close\n2023-01-03T14:30:00Z,1,2,0.5,1\n", "1d",
         r"f\.csv: line 2: a 1d bar at 2023-01-03T14:30 UTC is neither a date .* nor the open of its XNYS session"),
        ("date,open,high,low,close\n20230103 09:30:00 Mars/Olympus,1,2,0.5,1\n", "1h",
         r"f\.csv: line 2: unknown time zone 'Mars/Olympus'"),
        ("Date,Open,High,Low,Close,Adj Close,Volume\n2023-01-03,1,2,0.5,1,1,9\n2023-01-04,null,null,null,null,null,null\n",
         "1d", r"f\.csv: line 3: open is 'null', not a finite number"),
        ("2023.01.03,00:00,1.1,1.2\n", "1h", r"f\.csv: line 1: 4 fields and no header line; .*date, time, open"),
        ("1672531200000,1,2,0.5,1\n1672534800000,1,2,0.5\n", "1h",
         r"f\.csv: line 2: 4 fields, expected 5 \(the first line's\)"),
    ],
    ids=["ambiguous-slashes", "decimal-comma", "holiday", "intraday-time-as-daily", "unknown-zone", "yahoo-null",
         "headerless-short", "headerless-ragged"],
)  # fmt: skip
def test_refused_naming_the_line_and_what_was_expected(text: str, timeframe: str, message: str) -> None:
    with pytest.raises(BarsError, match=message):
        read(text.encode(), "AAPL", timeframe, "f.csv")


def test_empty_lines_after_the_last_bar_are_ignored_but_not_between_bars() -> None:
    ok = read(b"time,open,high,low,close\r\n2023-01-03T14:30Z,1,2,0.5,1\r\n\r\n\r\n", "AAPL", "1h", "f.csv")
    assert len(ok) == 1
    with pytest.raises(BarsError, match=r"f\.csv: line 3: timestamp '' is not"):
        read(
            b"time,open,high,low,close\n2023-01-03T14:30Z,1,2,0.5,1\n\n2023-01-03T15:30Z,1,2,0.5,1\n",
            "AAPL",
            "1h",
            "f.csv",
        )


@pytest.mark.parametrize(
    ("start", "what"),
    [
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x1f\x8b\x08", "a gzip file"),
        (b"PAR1", "a Parquet file: import it with --format parquet"),
    ],
)
def test_a_file_that_is_not_csv_text_says_what_it_is(start: bytes, what: str) -> None:
    with pytest.raises(BarsError, match=rf"f\.csv: not a CSV file but {what}"):
        read(start + b"\x00" * 64, "AAPL", "1d", "f.csv")
