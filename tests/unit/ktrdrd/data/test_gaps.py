"""Gap analysis (:mod:`ktrdrd.data.gaps`) and interval subtraction, against the calendars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrdrd.data import calendars, gaps
from ktrdrd.data.catalog import SeriesEntry
from ktrdrd.data.intervals import Interval, subtract, union

HOUR = 3600 * 10**9
DAY = 24 * HOUR


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def entry(covered: list[Interval], known_empty: list[Interval] | None = None) -> SeriesEntry:
    return SeriesEntry(
        "EURUSD", "1h", "SIMULATOR", "forex", "", 1, covered[0][0], covered[-1][1] - HOUR, 0.0,
        covered=list(covered), known_empty=list(known_empty or []),
    )  # fmt: skip


def spans(found: list[gaps.Gap]) -> list[tuple[int, int, int]]:
    return [(g.start_ns, g.end_ns, g.expected_bars) for g in found]


def test_crypto_never_closes_so_a_new_series_is_one_gap() -> None:
    start, end = ns("2024-03-02"), ns("2024-03-04")  # a weekend
    assert spans(gaps.find(None, "crypto", HOUR, start, end, "full")) == [(start, end, 48)]


def test_forex_weekend_is_not_fetched_and_stays_inside_one_range() -> None:
    # Friday 17:00 New York = 22:00 UTC (EST); Sunday 17:00 = 22:00 UTC.
    assert gaps.find(None, "forex", HOUR, ns("2024-03-02"), ns("2024-03-03 20:00"), "full") == []
    found = gaps.find(None, "forex", HOUR, ns("2024-03-01"), ns("2024-03-04"), "full")
    assert spans(found) == [(ns("2024-03-01"), ns("2024-03-04"), 22 + 2)]
    # A range that starts and ends in the closure is trimmed to the open market.
    found = gaps.find(None, "forex", HOUR, ns("2024-03-01 23:00"), ns("2024-03-04 01:00"), "full")
    assert spans(found) == [(ns("2024-03-03 22:00"), ns("2024-03-04 01:00"), 3)]


def test_us_equities_daily_skip_weekends_and_holidays() -> None:
    # 2024-07-01 Mon .. 2024-07-08 Mon; 4 July is a holiday: Mon, Tue, Wed, Fri. A daily bar is
    # stamped at its session's open in full trading hours (04:00 New York = 08:00 UTC in summer).
    found = gaps.find(None, "XNYS", DAY, ns("2024-07-01"), ns("2024-07-08"), "full")
    assert spans(found) == [(ns("2024-07-01 08:00"), ns("2024-07-06 08:00"), 4)]
    assert gaps.find(None, "XNYS", DAY, ns("2024-07-04"), ns("2024-07-05"), "full") == []


def test_only_holes_are_fetched_and_modes_pick_their_side() -> None:
    stored = entry([(ns("2024-03-05"), ns("2024-03-07"))])
    start, end = ns("2024-03-04"), ns("2024-03-09")
    full = spans(gaps.find(stored, "forex", HOUR, start, end, "full"))
    assert full == [(ns("2024-03-04"), ns("2024-03-05"), 24), (ns("2024-03-07"), ns("2024-03-08 22:00"), 46)]
    assert spans(gaps.find(stored, "forex", HOUR, start, end, "tail")) == full[1:]
    assert spans(gaps.find(stored, "forex", HOUR, start, end, "backfill")) == full[:1]
    assert spans(gaps.find(stored, "forex", HOUR, start, end, "refresh")) == [
        (ns("2024-03-04"), ns("2024-03-08 22:00"), 4 * 24 + 22)
    ]
    assert gaps.find(stored, "forex", HOUR, ns("2024-03-05"), ns("2024-03-07"), "full") == []


def test_known_empty_intervals_are_not_fetched_again() -> None:
    stored = entry([(ns("2024-03-04"), ns("2024-03-05"))], known_empty=[(ns("2024-03-05"), ns("2024-03-06"))])
    found = gaps.find(stored, "forex", HOUR, ns("2024-03-04"), ns("2024-03-07"), "full")
    assert spans(found) == [(ns("2024-03-06"), ns("2024-03-07"), 24)]


def test_the_range_widens_to_the_bar_grid_and_an_unknown_mode_is_refused() -> None:
    found = gaps.find(None, "crypto", HOUR, ns("2024-03-04 00:30"), ns("2024-03-04 02:10"), "full")
    assert spans(found) == [(ns("2024-03-04"), ns("2024-03-04 03:00"), 3)]
    with pytest.raises(ValueError, match="unknown load mode 'sideways'"):
        gaps.find(None, "crypto", HOUR, 0, HOUR, "sideways")


intervals = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 20)), max_size=8).map(
    lambda pairs: union([(s * HOUR, (s + n) * HOUR) for s, n in pairs])
)


@settings(max_examples=60, deadline=None)
@given(covered=intervals, empty=intervals, lo=st.integers(0, 100), length=st.integers(1, 150))
def test_gaps_cover_exactly_the_open_slots_nothing_stored_holds(
    covered: list[Interval], empty: list[Interval], lo: int, length: int
) -> None:
    base = ns("2024-03-04")  # a Monday
    covered = [(base + s, base + e) for s, e in covered]
    empty = subtract([(base + s, base + e) for s, e in empty], covered)
    start, end = base + lo * HOUR, base + (lo + length) * HOUR
    stored = entry(covered, empty) if covered else None
    found = gaps.find(stored, "forex", HOUR, start, end, "full")
    fetched = union([(g.start_ns, g.end_ns) for g in found])
    assert len(fetched) == len(found)  # disjoint, sorted ranges
    known = union(covered, empty) if stored else []
    closed = calendars.known_empty("forex", HOUR, start, end, np.empty(0, np.int64))
    wanted = subtract(subtract([(start, end)], known), closed)  # the open slots nothing stored holds
    assert subtract(wanted, fetched) == []  # every one is fetched
    assert subtract(fetched, subtract([(start, end)], known)) == []  # nothing stored is fetched again
    assert sum(g.expected_bars for g in found) == sum(e - s for s, e in wanted) // HOUR


def test_subtract() -> None:
    assert subtract([(0, 10), (20, 30)], [(5, 22), (25, 26)]) == [(0, 5), (22, 25), (26, 30)]
    assert subtract([(0, 10)], []) == [(0, 10)]
    assert subtract([(0, 10)], [(-5, 15)]) == []
