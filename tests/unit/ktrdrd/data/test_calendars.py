"""Known-empty intervals from the trading calendars, and the guess of a symbol's calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr import calendars
from ktrdrd.data.calendars import known_empty

DAY = 86400 * 10**9
HOUR = 3600 * 10**9
NO_BARS = np.empty(0, np.int64)


def ns(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


def test_us_equities_daily_weekend_and_holiday() -> None:
    # 2024-07-04 (Thursday) is Independence Day; 6-7 July a weekend.
    empty = known_empty("XNYS", DAY, ns("2024-07-01"), ns("2024-07-10"), NO_BARS)
    assert empty == [(ns("2024-07-04"), ns("2024-07-05")), (ns("2024-07-06"), ns("2024-07-08"))]


def test_us_equities_intraday_follows_early_closes() -> None:
    # 2024-07-03 opens 09:30 New York (13:30 UTC) and closes early, 13:00 (17:00 UTC); 5 July opens
    # 13:30 UTC. Only whole hours before an open count.
    empty = known_empty("XNYS", HOUR, ns("2024-07-03T12:00"), ns("2024-07-05T20:00"), NO_BARS)
    assert empty == [
        (ns("2024-07-03T12:00"), ns("2024-07-03T13:00")),
        (ns("2024-07-03T17:00"), ns("2024-07-05T13:00")),
    ]


def test_bars_outside_the_regular_session_are_never_known_empty() -> None:
    bars = np.array([ns("2024-07-03T18:00"), ns("2024-07-03T19:00"), ns("2024-07-05T09:00")])
    empty = known_empty("XNYS", HOUR, ns("2024-07-03T12:00"), ns("2024-07-05T20:00"), bars)
    assert empty == [
        (ns("2024-07-03T12:00"), ns("2024-07-03T13:00")),
        (ns("2024-07-03T17:00"), ns("2024-07-03T18:00")),
        (ns("2024-07-03T20:00"), ns("2024-07-05T09:00")),
        (ns("2024-07-05T10:00"), ns("2024-07-05T13:00")),
    ]


def test_forex_closes_over_the_weekend_only() -> None:
    empty = known_empty("forex", HOUR, ns("2024-03-04"), ns("2024-03-12"), NO_BARS)
    # Friday 17:00 New York (EST, 22:00 UTC) to Sunday 17:00 New York (EDT from 10 March: 21:00 UTC).
    assert empty == [(ns("2024-03-08T22:00"), ns("2024-03-10T21:00"))]
    daily = known_empty("forex", DAY, ns("2024-03-04"), ns("2024-03-12"), NO_BARS)
    assert daily == [(ns("2024-03-09"), ns("2024-03-11"))]


def test_crypto_and_weekly_bars_are_never_known_empty() -> None:
    assert known_empty("crypto", HOUR, ns("2024-03-04"), ns("2024-04-04"), NO_BARS) == []
    assert known_empty("XNYS", 7 * DAY, ns("2024-03-04"), ns("2024-04-04"), NO_BARS) == []


@pytest.mark.parametrize(
    ("symbol", "calendar"),
    [("EURUSD", "forex"), ("usdjpy", "forex"), ("BTCUSD", "crypto"), ("ETH-USD", "crypto"), ("AAPL", "XNYS"),
     ("USDOLLAR", "XNYS")],
)  # fmt: skip
def test_guess(symbol: str, calendar: str) -> None:
    assert calendars.guess(symbol) == calendar
