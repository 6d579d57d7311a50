"""Known-empty intervals from the trading calendars, and the guess of a symbol's calendar."""

from __future__ import annotations

import pandas as pd
import pytest

from ktrdrd.data import calendars

DAY = 86400 * 10**9
HOUR = 3600 * 10**9


def ns(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


def test_us_equities_daily_weekend_and_holiday() -> None:
    # 2024-07-04 (Thursday) is Independence Day; 6-7 July a weekend.
    empty = calendars.known_empty("XNYS", DAY, ns("2024-07-01"), ns("2024-07-10"))
    assert empty == [(ns("2024-07-04"), ns("2024-07-05")), (ns("2024-07-06"), ns("2024-07-08"))]


def test_us_equities_intraday_nights_follow_early_closes() -> None:
    # 2024-07-03 closes early (13:00 New York; extended hours until 17:00 = 21:00 UTC).
    empty = calendars.known_empty("XNYS", HOUR, ns("2024-07-03T12:00"), ns("2024-07-05T12:00"))
    assert empty == [(ns("2024-07-03T21:00"), ns("2024-07-05T08:00"))]


def test_forex_closes_over_the_weekend_only() -> None:
    empty = calendars.known_empty("forex", HOUR, ns("2024-03-04"), ns("2024-03-12"))
    # Friday 17:00 New York (EST, 22:00 UTC) to Sunday 17:00 New York (EDT from 10 March: 21:00 UTC).
    assert empty == [(ns("2024-03-08T22:00"), ns("2024-03-10T21:00"))]


def test_crypto_never_closes() -> None:
    assert calendars.known_empty("crypto", HOUR, ns("2024-03-04"), ns("2024-04-04")) == []


@pytest.mark.parametrize(
    ("symbol", "calendar"),
    [("EURUSD", "forex"), ("usdjpy", "forex"), ("BTCUSD", "crypto"), ("ETH-USD", "crypto"), ("AAPL", "XNYS"),
     ("USDOLLAR", "XNYS")],
)  # fmt: skip
def test_guess(symbol: str, calendar: str) -> None:
    assert calendars.guess(symbol) == calendar
