"""Known-empty intervals of a series: where its market was closed (:mod:`ktrdr.calendars`) and the
series has no bar.

Within ``[start, end)``: for intraday timeframes the closures between sessions, rounded inward to
the bar grid (a bar lies wholly inside); for ``1d`` the UTC days on which no session is dated;
``1w`` bars always hold a session, so none. Slots that hold a stored bar are never known-empty (US
equities' extended hours trade outside the regular session the calendar knows).
"""

from __future__ import annotations

import numpy as np

from ktrdr import calendars
from ktrdrd.data.intervals import Interval, union, without_bars


def known_empty(
    calendar: str, timeframe_ns: int, start_ns: int, end_ns: int, bar_times: np.ndarray
) -> list[Interval]:
    """Known-empty intervals of ``[start_ns, end_ns)``; ``bar_times``: the series' sorted bar open times."""
    if calendar == "crypto" or timeframe_ns > calendars.DAY_NS or end_ns <= start_ns:
        return []
    if timeframe_ns == calendars.DAY_NS:
        days = calendars.closed_days(calendar, start_ns // timeframe_ns, -(-end_ns // timeframe_ns))
        closed = union([(int(d) * timeframe_ns, (int(d) + 1) * timeframe_ns) for d in days])
    else:
        opens, closes = calendars.sessions(
            calendar, start_ns - calendars.DAY_NS * 7, end_ns + calendars.DAY_NS * 7
        )
        step = timeframe_ns
        closed = union(
            [(-(-gap_start // step) * step, gap_end // step * step)
             for gap_start, gap_end in zip(closes[:-1].tolist(), opens[1:].tolist(), strict=True)]
        )  # fmt: skip
    clipped = [(max(s, start_ns), min(e, end_ns)) for s, e in closed]
    return without_bars([(s, e) for s, e in clipped if s < e], bar_times, timeframe_ns)
