"""Re-deriving a stale catalog entry from its file: a weekend between bars stays covered, an
open-market gap does not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ktrdrd.data.catalog import SeriesEntry
from ktrdrd.data.reconcile import rederive

HOUR = 3600 * 10**9


def hours(start: str, count: int) -> np.ndarray:
    return pd.Timestamp(start).value + np.arange(count, dtype=np.int64) * HOUR


def stale(calendar: str, covered: list[tuple[int, int]]) -> SeriesEntry:
    return SeriesEntry("EURUSD", "1h", "IMPORT", calendar, "old", 1, 0, 0, 0.0, covered=covered)


def test_a_closure_between_bars_is_covered_and_known_empty() -> None:
    # Forex closes Friday 2024-03-08 22:00 UTC (17:00 EST) until Sunday 21:00 UTC (17:00 EDT).
    times = np.concatenate([hours("2024-03-08T20:00Z", 2), hours("2024-03-10T21:00Z", 2)])
    entry = rederive(stale("forex", []), times, "new")
    assert entry.covered == [(int(times[0]), int(times[-1]) + HOUR)]
    assert entry.known_empty == [(int(times[1]) + HOUR, int(times[2]))]
    assert (entry.digest, entry.bar_count, entry.first_ns, entry.last_ns) == ("new", 4, times[0], times[-1])


def test_an_open_market_gap_is_not_claimed_unless_the_old_entry_covered_it() -> None:
    times = np.concatenate([hours("2024-03-04T00:00Z", 2), hours("2024-03-04T05:00Z", 1)])
    cut = rederive(stale("crypto", []), times, "new").covered
    assert cut == [(int(times[0]), int(times[1]) + HOUR), (int(times[2]), int(times[2]) + HOUR)]
    # The previous entry vouched for the gap (a merge had covered it): it stays covered.
    vouched = rederive(stale("crypto", [(int(times[0]), int(times[2]))]), times, "new").covered
    assert vouched == [(int(times[0]), int(times[2]) + HOUR)]


def test_what_a_source_confirmed_empty_stays_known_empty_less_the_new_bars() -> None:
    times = np.concatenate([hours("2024-03-04T10:00Z", 2), hours("2024-03-04T14:00Z", 2)])
    before_first = (int(times[0]) - 48 * HOUR, int(times[0]))  # before the first trade, the host said
    inside = (int(times[1]) + HOUR, int(times[2]) + HOUR)  # a confirmed-empty hour, then a bar arrived
    old = SeriesEntry("BTCUSD", "1h", "IB", "crypto", "old", 1, 0, 0, 0.0, covered=[(before_first[0], int(times[-1]))],
                      known_empty=[before_first, inside])  # fmt: skip
    entry = rederive(old, times, "new")
    assert entry.known_empty == [before_first, (inside[0], int(times[2]))]
