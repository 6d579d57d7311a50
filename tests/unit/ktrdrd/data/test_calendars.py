"""Known-empty intervals from the trading calendars, and the guess of a symbol's calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr import calendars
from ktrdrd.data.calendars import Undated, dated_empty, known_empty, restamp

DAY = 86400 * 10**9
HOUR = 3600 * 10**9
NO_BARS = np.empty(0, np.int64)


def ns(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


def test_us_equities_daily_weekend_and_holiday() -> None:
    # Daily bars open with the extended session, 04:00 New York (08:00 UTC in July) and last a day.
    # 2024-07-04 (Thursday) is Independence Day; 6-7 July a weekend; Friday 28 June's bar ends 29 June.
    empty = known_empty("XNYS", DAY, ns("2024-07-01"), ns("2024-07-10"), NO_BARS)
    assert empty == [
        (ns("2024-07-01T00:00"), ns("2024-07-01T08:00")),
        (ns("2024-07-04T08:00"), ns("2024-07-05T08:00")),
        (ns("2024-07-06T08:00"), ns("2024-07-08T08:00")),
    ]


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
    # A daily bar is its session, so the daily closure is the same.
    daily = known_empty("forex", DAY, ns("2024-03-04"), ns("2024-03-12"), NO_BARS)
    assert daily == [(ns("2024-03-08T22:00"), ns("2024-03-10T21:00"))]


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


def test_daily_and_weekly_dates_become_session_opens() -> None:
    dates = np.array([ns("2024-03-08"), ns("2024-03-11"), ns("2024-07-05")])
    assert restamp(dates, "XNYS", "1d").tolist() == [ns("2024-03-08T09:00"), ns("2024-03-11T08:00"),
                                                       ns("2024-07-05T08:00")]  # fmt: skip
    assert restamp(dates, "forex", "1d").tolist() == [ns("2024-03-07T22:00"), ns("2024-03-10T21:00"),
                                                        ns("2024-07-04T21:00")]  # fmt: skip
    assert restamp(dates, "crypto", "1d").tolist() == dates.tolist()
    # A weekly bar dated any day of its week opens with the week's first session (1 July: Monday).
    assert restamp(dates, "XNYS", "1w").tolist() == [ns("2024-03-04T09:00"), ns("2024-03-11T08:00"),
                                                       ns("2024-07-01T08:00")]  # fmt: skip
    # Stamps that are not dates, and other timeframes, pass through: restamping is idempotent.
    opens = restamp(dates, "XNYS", "1d")
    assert restamp(opens, "XNYS", "1d").tolist() == opens.tolist()
    assert restamp(dates, "XNYS", "1h") is dates
    with pytest.raises(Undated, match="2024-07-04 has no XNYS session") as undated:
        restamp(np.array([ns("2024-07-03"), ns("2024-07-04")]), "XNYS", "1d")
    assert undated.value.index == 1


def test_a_daily_bar_opens_before_every_intraday_bar_of_its_session() -> None:
    start_s, end_s = ns("2024-03-01") // 10**9, ns("2024-03-20") // 10**9
    for calendar in calendars.CALENDARS:
        full = calendars.named(calendar).sessions(start_s, end_s, rth=False)
        regular = calendars.named(calendar).sessions(start_s, end_s, rth=True)
        stamps = restamp(calendars.label_days(full.label) * DAY, calendar, "1d")
        assert stamps.tolist() == (full.open_s * 10**9).tolist(), calendar
        regular_open = dict(zip(regular.label.tolist(), (regular.open_s * 10**9).tolist(), strict=True))
        for label, stamp, close_s in zip(
            full.label.tolist(), stamps.tolist(), full.close_s.tolist(), strict=True
        ):
            assert stamp <= regular_open.get(label, stamp) and stamp + DAY >= close_s * 10**9, (
                calendar,
                label,
            )


def test_a_session_open_stamp_is_dated_by_its_session() -> None:
    """What the gateway simulator sends for a daily bar the cache stamped (forex: 17:00 New York on
    Sunday is Monday's session); a stamp outside every session keeps its UTC date."""
    stamps_s = np.array([ns("2024-03-03T22:00"), ns("2024-03-09T12:00")]) // 10**9
    assert calendars.session_labels(calendars.named("forex"), stamps_s).tolist() == [20240304, 20240309]


def test_a_time_that_is_neither_a_date_nor_a_session_open_is_refused() -> None:
    stamps = np.array([ns("2024-03-08T09:00"), ns("2024-03-11T14:30")], np.int64)
    with pytest.raises(Undated, match="1d bar at 2024-03-11T14:30 UTC is neither a date") as undated:
        restamp(stamps, "XNYS", "1d")
    assert undated.value.index == 1
    # A date given as a mask (midnight in the file's own offset) is a date wherever it lands in UTC.
    local_midnight = np.array([ns("2024-03-08T05:00")], np.int64)
    assert restamp(local_midnight - 5 * HOUR, "XNYS", "1d", np.array([True])).tolist() == [
        ns("2024-03-08T09:00")
    ]


def test_dated_empty_intervals_become_the_sessions_stamps() -> None:
    # The host said: no daily bar dated 2024-03-06 .. 2024-03-11 (Wed, Thu, Fri; Mon excluded).
    span = (ns("2024-03-06"), ns("2024-03-11"))
    assert dated_empty(span, "XNYS", "1d") == (ns("2024-03-06T09:00"), ns("2024-03-08T09:00") + DAY)
    assert dated_empty((ns("2024-03-09"), ns("2024-03-11")), "XNYS", "1d") is None  # a weekend only
    assert dated_empty((ns("2024-03-06T12:00"), ns("2024-03-07")), "XNYS", "1d") is None  # no whole date
    # Weekly: only whole Monday-to-Sunday weeks; 2024-03-04 and 2024-03-11 are Mondays.
    weeks = (ns("2024-03-01"), ns("2024-03-18"))
    assert dated_empty(weeks, "XNYS", "1w") == (ns("2024-03-04T09:00"), ns("2024-03-11T08:00") + 7 * DAY)
