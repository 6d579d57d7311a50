"""When markets are closed, from maintained trading calendars (exchange-calendars), as UTC ns.

Calendars by name:

- ``XNYS``: US equities on the NYSE calendar (holidays and early closes); a day's session is the
  regular session, 09:30–16:00 New York (13:00 on early closes).
- ``forex``: 24×5, closed from Friday 17:00 to Sunday 17:00 New York.
- ``crypto``: 24×7, never closed.

:func:`guess` picks a calendar from a symbol; it is a guess (callers let users override it): six
letters made of two ISO currency codes → ``forex``; a crypto ticker (``BTC``, ``ETH``, …, alone or
followed by a quote currency) → ``crypto``; anything else → ``XNYS``.

:func:`bars_per_year` is what annualised figures (backtest Sharpe, volatility, returns) divide by.
"""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np

CALENDARS = ("XNYS", "forex", "crypto")
DAY_NS = 86400 * 10**9
#: The NYSE schedule is loaded from this date on (earlier bars get no closures).
FIRST_SESSION = "1990-01-02"
_CURRENCIES = frozenset(
    ["USD", "EUR", "JPY", "GBP", "CHF", "AUD", "NZD", "CAD", "SEK", "NOK", "DKK", "HKD", "SGD", "CNH",
     "MXN", "ZAR", "TRY", "PLN", "CZK", "HUF", "ILS", "KRW", "INR"]
)  # fmt: skip
_CRYPTO = re.compile(r"^(BTC|ETH|LTC|BCH|SOL|XRP|ADA|DOGE|DOT|AVAX|LINK)([-._/]?(USD|USDT|USDC|EUR))?$")


def guess(symbol: str) -> str:
    """The calendar the symbol most likely trades on (see the module docstring)."""
    upper = symbol.upper()
    if len(upper) == 6 and upper[:3] in _CURRENCIES and upper[3:] in _CURRENCIES:
        return "forex"
    if _CRYPTO.match(upper):
        return "crypto"
    return "XNYS"


#: Sessions (trading days) per year: NYSE ~252 (its 2000–2024 average is 251.6), forex 5 × 52
#: = 260 (24 h sessions, holidays ignored: the interbank market trades through most of them),
#: crypto 365.
SESSIONS_PER_YEAR = {"XNYS": 252.0, "forex": 260.0, "crypto": 365.0}
#: Hours of one session: the NYSE regular session 09:30–16:00; forex and crypto trade 24 h.
SESSION_HOURS = {"XNYS": 6.5, "forex": 24.0, "crypto": 24.0}


def bars_per_year(calendar: str, timeframe: str) -> float:
    """Bars of ``timeframe`` in a year of ``calendar``: sessions per year × bars per session, where
    an intraday session holds ``ceil(session length / bar length)`` bars (a 6.5 h NYSE session has
    7 bars of 1h, the last one half an hour long); daily bars: one per session; weekly bars:
    365.25 / 7. Raises KeyError for an unknown calendar (``TimeframeError`` for a bad timeframe)."""
    from ktrdr import timeframes

    sessions_per_year = SESSIONS_PER_YEAR[calendar]
    bar_ns = timeframes.parse(timeframe).ns
    if bar_ns >= 7 * DAY_NS:
        return 365.25 * DAY_NS / bar_ns
    if bar_ns >= DAY_NS:
        return sessions_per_year * DAY_NS / bar_ns
    session_ns = round(SESSION_HOURS[calendar] * 3600 * 10**9)
    return sessions_per_year * -(-session_ns // bar_ns)


def sessions(calendar: str, start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """``(opens, closes)`` (int64 UTC ns) of the sessions that overlap ``[start_ns, end_ns)``, in order.

    ``crypto`` has one session from ``start_ns`` to ``end_ns``. Raises KeyError for an unknown name.
    """
    if calendar == "crypto":
        return np.array([start_ns], np.int64), np.array([end_ns], np.int64)
    opens, closes = {"XNYS": _nyse, "forex": _forex}[calendar](start_ns, end_ns)
    keep = (closes > start_ns) & (opens < end_ns)
    return opens[keep], closes[keep]


def closed_days(calendar: str, first_day: int, end_day: int) -> np.ndarray:
    """UTC days (days since the epoch) in ``[first_day, end_day)`` on which no session is dated.

    A session is dated by the day it closes on (a forex session opening Sunday evening is Monday's).
    """
    days = np.arange(first_day, end_day, dtype=np.int64)
    if calendar == "crypto":
        return days[:0]
    _, closes = sessions(calendar, first_day * DAY_NS, (end_day + 1) * DAY_NS)
    return days[~np.isin(days, (closes - 1) // DAY_NS)]


@functools.cache
def _nyse_table() -> tuple[np.ndarray, np.ndarray]:
    import exchange_calendars

    with warnings.catch_warnings():
        # exchange-calendars reads Series.values, which recent pandas flags as deprecated.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        schedule = exchange_calendars.get_calendar("XNYS", start=FIRST_SESSION).schedule
    return _utc_ns(schedule["open"]), _utc_ns(schedule["close"])


def _utc_ns(column) -> np.ndarray:
    import pandas as pd

    return np.asarray(pd.DatetimeIndex(column).as_unit("ns").asi8, dtype=np.int64)


def _nyse(start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
    opens, closes = _nyse_table()
    lo = int(np.searchsorted(closes, start_ns, "right"))
    hi = int(np.searchsorted(opens, end_ns, "left"))
    return opens[lo:hi], closes[lo:hi]


def _forex(start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """One session per weekday D: 17:00 New York on D-1 to 17:00 New York on D."""
    import pandas as pd

    days = np.arange(start_ns // DAY_NS - 1, end_ns // DAY_NS + 3, dtype=np.int64)
    days = days[(days + 3) % 7 < 5]  # Monday..Friday (1970-01-01 was a Thursday)

    def new_york_5pm(day_numbers: np.ndarray) -> np.ndarray:
        wall = pd.DatetimeIndex((day_numbers * DAY_NS + 17 * 3600 * 10**9).astype("datetime64[ns]"))
        return np.asarray(wall.tz_localize("America/New_York").tz_convert("UTC").asi8, dtype=np.int64)

    return new_york_5pm(days - 1), new_york_5pm(days)
