"""Gap analysis: what a load of one series has to fetch from ``[start, end)``.

The *holes* are the requested range minus the series' covered and known-empty intervals (its
catalog entry). A hole loses the time its trading calendar (:mod:`ktrdrd.data.calendars`) says is
closed, rounded inward to the bar grid, at both ends: a hole that is all closed market (a weekend, a
holiday) is dropped, and one that spans a closure between two trading days stays one fetch range
(the closure inside costs no request of its own). So each hole gives at most one fetch range, and
two ranges are always separated by stored data. Daily bars are stamped at their session's open: a
daily range runs from the first session open in the hole to the end of the last one's day, and
expects one bar per session.

Modes (:data:`MODES`): ``full`` every hole (the default); ``tail`` only after the last stored bar;
``backfill`` only before the first stored bar; ``refresh`` the whole range again, stored or not
(closed time is still trimmed from its ends). For a series not in the cache every mode is ``full``.
The range is widened to the bar grid (start floored, end ceiled to a multiple of the timeframe).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ktrdr import calendars as market
from ktrdrd.data import calendars
from ktrdrd.data.catalog import SeriesEntry
from ktrdrd.data.intervals import Interval, subtract, union

MODES = ("full", "tail", "backfill", "refresh")
_NO_BARS = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class Gap:
    """One fetch range ``[start_ns, end_ns)`` (UTC ns) and the bars the calendar expects in it."""

    start_ns: int
    end_ns: int
    expected_bars: int


def requested(
    entry: SeriesEntry | None, mode: str, start_ns: int, end_ns: int, timeframe_ns: int
) -> Interval | None:
    """The part of ``[start_ns, end_ns)`` that ``mode`` looks at, on the bar grid; None when empty."""
    if mode not in MODES:
        raise ValueError(f"unknown load mode {mode!r}; expected one of {', '.join(MODES)}")
    start = start_ns // timeframe_ns * timeframe_ns
    end = -(-end_ns // timeframe_ns) * timeframe_ns
    if entry is not None and mode == "tail":
        start = max(start, entry.last_ns + timeframe_ns)
    if entry is not None and mode == "backfill":
        end = min(end, entry.first_ns)
    return (start, end) if start < end else None


def find(
    entry: SeriesEntry | None, calendar: str, timeframe_ns: int, start_ns: int, end_ns: int, mode: str
) -> list[Gap]:
    """The fetch ranges of ``[start_ns, end_ns)`` in ``mode`` for the series described by ``entry``
    (None: not in the cache), oldest first; see the module docstring."""
    span = requested(entry, mode, start_ns, end_ns, timeframe_ns)
    if span is None:
        return []
    holes = [span]
    if entry is not None and mode != "refresh":
        holes = subtract(holes, union(entry.covered, entry.known_empty))
    if timeframe_ns == market.DAY_NS:
        return _daily(holes, calendar, span)
    closed = calendars.known_empty(calendar, timeframe_ns, span[0], span[1], _NO_BARS)
    gaps = []
    for hole in holes:
        open_parts = subtract([hole], closed)
        if open_parts:
            open_ns = sum(end - start for start, end in open_parts)
            expected = -(-open_ns // timeframe_ns)
            gaps.append(Gap(open_parts[0][0], open_parts[-1][1], expected))
    return gaps


def _daily(holes: list[Interval], calendar: str, span: Interval) -> list[Gap]:
    """Daily bars are stamped at their session's open (:mod:`ktrdrd.data.calendars`): a hole's range
    runs from the first open in it to the end of the last one's slot; one bar per session."""
    opens, _ = market.sessions(calendar, span[0], span[1], extended=True)
    gaps = []
    for start, end in holes:
        inside = opens[(opens >= start) & (opens < end)]
        if inside.size:
            gaps.append(Gap(int(inside[0]), min(end, int(inside[-1]) + market.DAY_NS), int(inside.size)))
    return gaps
