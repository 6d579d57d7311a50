"""Bars served by the gateway simulator, as the real ib_async client receives them.

Files: the answer equals the file's bars exactly. Generator: the answer follows the NYSE calendar
(holidays, early closes, RTH vs extended hours, checked against exchange-calendars directly),
forex's 24×5 week and crypto's 24×7, and is a pure function of (seed, symbol, time).
"""

from __future__ import annotations

import datetime as dt
import itertools
import warnings
from pathlib import Path

import exchange_calendars
import numpy as np
import pandas as pd
import pytest
from ib_async import Contract, Crypto, Forex, RequestError, Stock

from hostd.gatewaysim.server import GatewaySim
from ktrdr.research import synthetic
from tests.support.gatewaysim import connect, epoch_s, ohlcv, scenario, utc

AAPL = Stock("AAPL", "SMART", "USD")
NEW_YORK = "America/New_York"


@pytest.fixture(scope="module")
def nyse() -> exchange_calendars.ExchangeCalendar:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Series.values returning an ndarray"
        )  # library vs pandas 3.1
        return exchange_calendars.get_calendar("XNYS", start="2023-01-01", end="2024-12-31")


# -- files -----------------------------------------------------------------------------------------
def test_file_bars_arrive_exactly_as_the_file_has_them(tmp_path: Path) -> None:
    hourly = synthetic.gbm_bars("AAPL", "1h", "2024-03-04", "2024-03-09", seed=3)
    synthetic.write_csv(hourly, tmp_path)
    daily = synthetic.gbm_bars("EURUSD", "1d", "2024-01-01", "2024-03-01", seed=4, s0=1.1)
    frame = daily.to_frame().reset_index(names="time")
    frame.to_parquet(tmp_path / "EURUSD_1d.parquet")

    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        bars = await ib.reqHistoricalDataAsync(
            AAPL, "20240309 00:00:00 UTC", "432000 S", "1 hour", "TRADES", False, 2
        )
        assert [epoch_s(b) for b in bars] == [int(t) // 10**9 for t in hourly.time]
        assert [ohlcv(b) for b in bars] == list(
            zip(hourly.open, hourly.high, hourly.low, hourly.close, hourly.volume, strict=True)
        )
        head = await ib.reqHeadTimeStampAsync(AAPL, "TRADES", False, 2)
        assert int(head.timestamp()) == int(hourly.time[0]) // 10**9

        fx = await ib.reqHistoricalDataAsync(
            Forex("EURUSD"), "20240301 00:00:00 UTC", "2 M", "1 day", "MIDPOINT", True, 2
        )
        expected_days = [pd.Timestamp(t, tz="UTC").date() for t in daily.time]
        assert [b.date for b in fx] == expected_days
        assert [(b.open, b.high, b.low, b.close) for b in fx] == list(
            zip(daily.open, daily.high, daily.low, daily.close, strict=True)
        )
        assert {b.volume for b in fx} == {-1.0}  # MIDPOINT bars carry no volume, as IB's

        with pytest.raises(RequestError) as unknown:
            await ib.reqContractDetailsAsync(Stock("MSFT", "SMART", "USD"))  # no file for MSFT
        assert unknown.value.code == 200
        ib.disconnect()

    scenario(body, data_dir=tmp_path)


def test_a_missing_bar_size_is_resampled_from_a_faster_file(tmp_path: Path) -> None:
    minutes = synthetic.gbm_bars("AAPL", "1m", "2024-03-04 14:00", "2024-03-04 16:00", seed=5)
    synthetic.write_csv(minutes, tmp_path)

    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        bars = await ib.reqHistoricalDataAsync(
            AAPL, "20240304 16:00:00 UTC", "7200 S", "15 mins", "TRADES", False, 2
        )
        assert len(bars) == 8
        first = minutes.between(None, minutes.time[0] + 15 * 60 * 10**9)
        assert ohlcv(bars[0]) == (
            first.open[0],
            first.high.max(),
            first.low.min(),
            first.close[-1],
            first.volume.sum(),
        )
        ib.disconnect()

    scenario(body, data_dir=tmp_path)


# -- generator: calendars --------------------------------------------------------------------------
def _minute_set(opens: pd.Series, closes: pd.Series) -> set[int]:
    minutes: set[int] = set()
    for open_, close in zip(opens, closes, strict=True):
        minutes.update(range(int(open_.timestamp()), int(close.timestamp()), 60))
    return minutes


def test_stock_minutes_follow_the_nyse_calendar_with_holiday_and_early_close(nyse) -> None:
    # 2024-07-03 closes at 13:00, 2024-07-04 is a holiday, 2024-07-05 a normal day.
    sessions = nyse.schedule.loc["2024-07-02":"2024-07-05"]
    assert list(sessions.index.day) == [2, 3, 5]

    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        rth = await ib.reqHistoricalDataAsync(
            AAPL, "20240706 00:00:00 UTC", "3 D", "1 min", "TRADES", True, 2
        )
        got = {epoch_s(b) for b in rth}
        assert got == _minute_set(sessions["open"], sessions["close"])
        assert not any(dt.datetime.fromtimestamp(t, dt.UTC).day == 4 for t in got)

        eth = await ib.reqHistoricalDataAsync(
            AAPL, "20240706 00:00:00 UTC", "3 D", "1 min", "TRADES", False, 2
        )
        local = {
            dt.datetime.fromtimestamp(epoch_s(b), dt.UTC).astimezone(pd.Timestamp(0, tz=NEW_YORK).tzinfo)
            for b in eth
        }
        assert min(t.time() for t in local) == dt.time(4, 0)
        last_on = {day: max(t.time() for t in local if t.day == day) for day in (2, 3, 5)}
        assert last_on == {2: dt.time(19, 59), 3: dt.time(16, 59), 5: dt.time(19, 59)}
        assert got < {epoch_s(b) for b in eth}

        daily = await ib.reqHistoricalDataAsync(
            AAPL, "20240706 00:00:00 UTC", "3 D", "1 day", "TRADES", True, 2
        )
        assert [b.date for b in daily] == [dt.date(2024, 7, d) for d in (2, 3, 5)]
        by_day = {
            d: [b for b in rth if dt.datetime.fromtimestamp(epoch_s(b), dt.UTC).day == d] for d in (2, 3, 5)
        }
        for bar in daily:  # a daily bar aggregates its session's minutes
            day = by_day[bar.date.day]
            assert (bar.open, bar.close) == (day[0].open, day[-1].close)
            assert (bar.high, bar.low) == (max(b.high for b in day), min(b.low for b in day))
            assert bar.volume == sum(b.volume for b in day)

        with pytest.raises(RequestError) as holiday:
            await ib.reqHistoricalDataAsync(
                AAPL, "20240705 00:00:00 UTC", "86400 S", "1 hour", "TRADES", False, 2
            )
        assert holiday.value.code == 162 and "no data" in holiday.value.message
        ib.disconnect()

    scenario(body, seed=11)


def test_hourly_stock_bars_align_to_the_clock_and_start_at_the_open() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        bars = await ib.reqHistoricalDataAsync(
            AAPL, "20240304 23:00:00 UTC", "1 D", "1 hour", "TRADES", True, 1
        )
        assert [b.date.strftime("%H:%M") for b in bars] == ["09:30"] + [f"{h}:00" for h in range(10, 16)]
        assert all(str(b.date.tzinfo) == "US/Eastern" for b in bars)
        ib.disconnect()

    scenario(body, seed=11)


def test_forex_trades_24x5_with_a_weekend_gap() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        bars = await ib.reqHistoricalDataAsync(
            Forex("EURUSD"), "20240311 00:00:00 UTC", "1 W", "1 hour", "MIDPOINT", True, 2
        )
        times = [epoch_s(b) for b in bars]
        gaps = [(a, b) for a, b in itertools.pairwise(times) if b - a != 3600]
        # Friday 17:00 New York (22:00 UTC) to Sunday 17:00 New York (21:00 UTC after the DST change).
        assert [
            (dt.datetime.fromtimestamp(a, dt.UTC), dt.datetime.fromtimestamp(b, dt.UTC)) for a, b in gaps
        ] == [(utc("2024-03-08 21:00"), utc("2024-03-10 21:00"))]
        # From Monday 00:00 UTC: Monday to Friday 22:00 UTC, then Sunday 21:00 to Monday 00:00.
        assert len(times) == 4 * 24 + 22 + 3
        with pytest.raises(RequestError) as trades:
            await ib.reqHistoricalDataAsync(
                Forex("EURUSD"), "20240311 00:00:00 UTC", "1 D", "1 hour", "TRADES", True, 2
            )
        assert trades.value.code == 162 and "TRADES" in trades.value.message
        ib.disconnect()

    scenario(body, seed=11)


def test_crypto_trades_24x7() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        btc = Crypto("BTC", "PAXOS", "USD")
        bars = await ib.reqHistoricalDataAsync(
            btc, "20240311 00:00:00 UTC", "1 W", "1 hour", "TRADES", True, 2
        )
        times = [epoch_s(b) for b in bars]
        assert times == list(
            range(int(utc("2024-03-04").timestamp()), int(utc("2024-03-11").timestamp()), 3600)
        )
        ib.disconnect()

    scenario(body, seed=11)


# -- generator: determinism ------------------------------------------------------------------------
async def _fetch(sim: GatewaySim, requests: list[tuple[str, str]]) -> dict[int, tuple]:
    ib = await connect(sim)
    found: dict[int, tuple] = {}
    for end, duration in requests:
        for bar in await ib.reqHistoricalDataAsync(AAPL, end, duration, "5 mins", "TRADES", False, 2):
            found.setdefault(epoch_s(bar), ohlcv(bar))
            assert found[epoch_s(bar)] == ohlcv(bar), "a bar changed between overlapping requests"
    ib.disconnect()
    return found


def test_same_seed_same_bars_whatever_the_request_order_and_overlap() -> None:
    forward = [("20240306 00:00:00 UTC", "2 D"), ("20240308 00:00:00 UTC", "3 D")]
    backward = [
        ("20240308 00:00:00 UTC", "1 D"),
        ("20240307 12:00:00 UTC", "86400 S"),
        ("20240306 00:00:00 UTC", "2 D"),
    ]
    first = scenario(lambda sim: _fetch(sim, forward), seed=42)
    again = scenario(lambda sim: _fetch(sim, backward), seed=42)
    common = first.keys() & again.keys()
    assert len(common) > 500
    assert {t: first[t] for t in common} == {t: again[t] for t in common}
    other_seed = scenario(lambda sim: _fetch(sim, backward), seed=43)
    assert {t: other_seed[t] for t in common} != {t: again[t] for t in common}
    closes = np.array([first[t][3] for t in sorted(first)])
    assert np.all(np.abs(np.diff(np.log(closes))) < 0.05)  # a walk, not noise


def test_unqualified_symbol_takes_its_declared_asset_class() -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        [details] = await ib.reqContractDetailsAsync(Contract(symbol="ETH", currency="USD"))
        assert details.contract.secType == "CRYPTO"
        with pytest.raises(RequestError) as mismatch:
            await ib.reqContractDetailsAsync(Stock("ETH", "SMART", "USD"))
        assert mismatch.value.code == 200
        ib.disconnect()

    from ktrdr.calendars import AssetClass

    scenario(body, declared={"ETH": AssetClass.CRYPTO})


def test_weekly_bars_are_dated_by_the_first_session_of_each_week(nyse) -> None:
    async def body(sim: GatewaySim) -> None:
        ib = await connect(sim)
        bars = await ib.reqHistoricalDataAsync(
            AAPL, "20240201 00:00:00 UTC", "2 M", "1 week", "TRADES", True, 2
        )
        sessions = nyse.sessions_in_range("2023-12-04", "2024-01-31")
        first_of_week = sessions.to_series().groupby(sessions.to_period("W-SUN")).min()
        assert [b.date for b in bars] == [day.date() for day in first_of_week]
        assert dt.date(2024, 1, 16) in [b.date for b in bars]  # Monday the 15th was a holiday
        ib.disconnect()

    scenario(body, seed=2)
