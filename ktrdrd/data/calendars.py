"""Known-empty intervals of a series: when its market was closed, from maintained trading calendars.

Calendars (the simulator's, :mod:`hostd.gatewaysim.calendars`, built on exchange-calendars):
``XNYS`` US equities (holidays, early closes; extended hours count as open), ``forex`` 24×5
(closed Friday 17:00 to Sunday 17:00 New York), ``crypto`` 24×7 (never closed).

:func:`guess` picks one from the symbol (a documented guess; the import's ``--calendar`` overrides
it): six letters made of two ISO currency codes → ``forex``; a crypto ticker (``BTC``, ``ETH``, …,
alone or followed by a quote currency) → ``crypto``; anything else → ``XNYS``.

:func:`known_empty` lists, within ``[start, end)``, the bars of the timeframe that lie wholly where
the market is closed: for intraday timeframes the gaps between sessions rounded inward to the bar
grid; for ``1d`` the UTC days without a session; ``1w`` bars always hold a session, so none.
"""

from __future__ import annotations

import re

import numpy as np

from ktrdrd.data.intervals import Interval, union

CALENDARS = ("XNYS", "forex", "crypto")
_DAY_NS = 86400 * 10**9
_CURRENCIES = frozenset(
    [
        "USD",
        "EUR",
        "JPY",
        "GBP",
        "CHF",
        "AUD",
        "NZD",
        "CAD",
        "SEK",
        "NOK",
        "DKK",
        "HKD",
        "SGD",
        "CNH",
        "MXN",
        "ZAR",
        "TRY",
        "PLN",
        "CZK",
        "HUF",
        "ILS",
        "KRW",
        "INR",
    ]
)
_CRYPTO = re.compile(r"^(BTC|ETH|LTC|BCH|SOL|XRP|ADA|DOGE|DOT|AVAX|LINK)([-._/]?(USD|USDT|USDC|EUR))?$")


def guess(symbol: str) -> str:
    """The calendar the symbol most likely trades on (see the module docstring)."""
    upper = symbol.upper()
    if len(upper) == 6 and upper[:3] in _CURRENCIES and upper[3:] in _CURRENCIES:
        return "forex"
    if _CRYPTO.match(upper):
        return "crypto"
    return "XNYS"


def known_empty(calendar: str, timeframe_ns: int, start_ns: int, end_ns: int) -> list[Interval]:
    """Intervals of ``[start_ns, end_ns)`` that hold no bar of the timeframe (see the module docstring)."""
    from hostd.gatewaysim.calendars import AssetClass, calendar_for

    asset = {"XNYS": AssetClass.STOCK, "forex": AssetClass.FOREX, "crypto": AssetClass.CRYPTO}[calendar]
    if asset is AssetClass.CRYPTO or timeframe_ns > _DAY_NS or end_ns <= start_ns:
        return []
    sessions = calendar_for(asset).sessions(start_ns // 10**9 - 86400, end_ns // 10**9 + 86400, rth=False)
    if timeframe_ns == _DAY_NS:
        first_day, last_day = start_ns // _DAY_NS, -(-end_ns // _DAY_NS)
        days = np.arange(first_day, last_day, dtype=np.int64)
        labels = sessions.label
        open_days = (
            (labels // 10000 - 1970).astype("datetime64[Y]")
            + (labels // 100 % 100 - 1).astype("timedelta64[M]")
        ).astype("datetime64[D]") + (labels % 100 - 1).astype("timedelta64[D]")
        closed = days[~np.isin(days, open_days.astype(np.int64))]
        return _clip(union([(int(d) * _DAY_NS, (int(d) + 1) * _DAY_NS) for d in closed]), start_ns, end_ns)
    opens = sessions.open_s.astype(np.int64) * 10**9
    closes = sessions.close_s.astype(np.int64) * 10**9
    gaps = zip(closes[:-1].tolist(), opens[1:].tolist(), strict=True)
    step = timeframe_ns
    inward = [(-(-gap_start // step) * step, gap_end // step * step) for gap_start, gap_end in gaps]
    return _clip(union(inward), start_ns, end_ns)


def _clip(intervals: list[Interval], start_ns: int, end_ns: int) -> list[Interval]:
    clipped = [(max(s, start_ns), min(e, end_ns)) for s, e in intervals]
    return [(s, e) for s, e in clipped if s < e]
