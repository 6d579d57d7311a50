"""The cache's calendar rules (:mod:`ktrdr.calendars`): where daily and weekly bars are stamped, and
the known-empty intervals of a series (its market was closed and it has no bar).

**Daily and weekly stamps.** A ``1d`` bar is stamped with the UTC open of its session in full
trading hours (US equities: 04:00 New York, the extended session; forex: 17:00 New York the day
before its date; crypto: 00:00 UTC), so a daily bar opens no later than any intraday bar of its
session and closes (open + 1 day) no earlier than it. A ``1w`` bar is stamped with the open of its
week's first session. :func:`restamp` turns the dates IB and most files give (00:00 UTC of the
session's date) into those stamps.

**Known-empty intervals** within ``[start, end)``: for intraday timeframes the closures between
regular sessions, rounded inward to the bar grid (a bar lies wholly inside); for ``1d`` the time
between one daily bar's end (its session's open + 1 day) and the next session's open (weekends,
holidays); ``1w`` bars always hold a session, so none. Slots that hold a stored bar are never
known-empty (US equities' extended hours trade outside the regular session).
"""

from __future__ import annotations

import numpy as np

from ktrdr import calendars
from ktrdrd.data.intervals import Interval, union, without_bars

_DAYS_PER_BAR = {"1d": 1, "1w": 7}


def known_empty(
    calendar: str, timeframe_ns: int, start_ns: int, end_ns: int, bar_times: np.ndarray
) -> list[Interval]:
    """Known-empty intervals of ``[start_ns, end_ns)``; ``bar_times``: the series' sorted bar open times."""
    if calendar == "crypto" or timeframe_ns > calendars.DAY_NS or end_ns <= start_ns:
        return []
    margin = calendars.DAY_NS * 7
    if timeframe_ns == calendars.DAY_NS:
        # A daily bar holds [its session's open, + 1 day), the open in full trading hours.
        opens, _ = calendars.sessions(calendar, start_ns - margin, end_ns + margin, extended=True)
        slot_ends = (opens[:-1] + timeframe_ns).tolist()
        closed = [(s, e) for s, e in zip(slot_ends, opens[1:].tolist(), strict=True) if s < e]
    else:
        opens, closes = calendars.sessions(calendar, start_ns - margin, end_ns + margin)
        step = timeframe_ns
        closed = union(
            [(-(-gap_start // step) * step, gap_end // step * step)
             for gap_start, gap_end in zip(closes[:-1].tolist(), opens[1:].tolist(), strict=True)]
        )  # fmt: skip
    clipped = [(max(s, start_ns), min(e, end_ns)) for s, e in closed]
    return without_bars([(s, e) for s, e in clipped if s < e], bar_times, timeframe_ns)


class Undated(ValueError):
    """A daily or weekly bar dated a day with no session; ``index`` is its position."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def restamp(times: np.ndarray, calendar: str, timeframe: str, dated: np.ndarray | None = None) -> np.ndarray:
    """``times`` (int ns, UTC) of ``1d``/``1w`` bars with each date — a time at 00:00 UTC, or where
    ``dated`` (a mask) says so — moved to where the cache stamps that bar (see the module docstring);
    other timeframes are returned as they are. Every other time must already be such a stamp, so
    stamps the cache wrote pass through unchanged. :class:`Undated` for a daily bar dated a day
    without a session (a weekend or holiday of ``calendar``), or a time that is neither."""
    if timeframe not in ("1d", "1w"):
        return times
    days_per_bar = _DAYS_PER_BAR[timeframe]
    is_date = times % calendars.DAY_NS == 0 if dated is None else dated
    dates = np.flatnonzero(is_date)
    out = times.copy()
    if dates.size:
        opens = calendars.bar_opens(calendar, times[dates] // calendars.DAY_NS, days_per_bar)
        missing = np.flatnonzero(opens < 0)
        if missing.size:
            index = int(dates[missing[0]])
            raise Undated(
                index,
                f"{_day(times[index])} has no {calendar} session, and a {timeframe} bar is dated by its "
                "session (a weekend or holiday? check --calendar)",
            )
        out[dates] = opens
    stamped = np.flatnonzero(~is_date)
    if stamped.size:
        day = times[stamped] // calendars.DAY_NS
        at_open = (calendars.bar_opens(calendar, day, days_per_bar) == times[stamped]) | (
            calendars.bar_opens(calendar, day + 1, days_per_bar) == times[stamped]
        )
        if not at_open.all():
            index = int(stamped[np.flatnonzero(~at_open)[0]])
            at = np.datetime_as_string(np.datetime64(int(times[index]), "ns"), unit="m")
            raise Undated(
                index,
                f"a {timeframe} bar at {at} UTC is neither a date (midnight in the file's time) nor the "
                f"open of its {calendar} session as the cache stamps it; give {timeframe} bars as dates "
                "(docs/data.md, Daily and weekly bars)",
            )
    return out


def dated_empty(span: Interval, calendar: str, timeframe: str) -> Interval | None:
    """``span``, an interval a source confirmed to hold no ``1d``/``1w`` bar *dated* in it (dates at
    00:00 UTC, as the IB host sends them), as an interval of the cache's stamps: from the open of
    the first bar whose whole date (a weekly bar's Monday-to-Sunday week) lies in ``span`` to the end
    of the last one's slot (its open + one bar). None when no such bar has a session."""
    days_per_bar = _DAYS_PER_BAR[timeframe]
    first_day, end_day = -(-span[0] // calendars.DAY_NS), span[1] // calendars.DAY_NS
    if days_per_bar == 7:
        first_day += -(first_day + 3) % 7  # the next Monday (1970-01-01 was a Thursday)
    days = np.arange(first_day, end_day - days_per_bar + 1, days_per_bar, dtype=np.int64)
    opens = calendars.bar_opens(calendar, days, days_per_bar)
    opens = opens[opens >= 0]
    if not opens.size:
        return None
    return int(opens[0]), int(opens[-1]) + days_per_bar * calendars.DAY_NS


def _day(ns: int) -> str:
    return str(np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="D"))
