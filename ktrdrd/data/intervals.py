"""Lists of half-open ``[start, end)`` intervals (int ns), kept sorted and disjoint."""

from __future__ import annotations

import numpy as np

Interval = tuple[int, int]


def union(*lists: list[Interval]) -> list[Interval]:
    """The sorted, disjoint union of interval lists; touching intervals are joined, empty ones dropped."""
    merged: list[Interval] = []
    for start, end in sorted(i for intervals in lists for i in intervals if i[0] < i[1]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def without_bars(intervals: list[Interval], times: np.ndarray, width: int) -> list[Interval]:
    """``intervals`` minus each bar's ``[time, time + width)``; ``times`` sorted ascending (int ns)."""
    out: list[Interval] = []
    for start, end in intervals:
        lo = int(np.searchsorted(times, start - width + 1, "left"))
        hi = int(np.searchsorted(times, end, "left"))
        cursor = start
        for bar in times[lo:hi].tolist():
            if bar > cursor:
                out.append((cursor, bar))
            cursor = max(cursor, bar + width)
        if cursor < end:
            out.append((cursor, end))
    return out


def subtract(intervals: list[Interval], removed: list[Interval]) -> list[Interval]:
    """``intervals`` minus ``removed`` (both sorted and disjoint): the parts of ``intervals`` that no
    interval of ``removed`` overlaps, sorted and disjoint."""
    out: list[Interval] = []
    cut = 0
    for start, end in intervals:
        while cut < len(removed) and removed[cut][1] <= start:
            cut += 1
        cursor, index = start, cut
        while index < len(removed) and removed[index][0] < end:
            cut_start, cut_end = removed[index]
            if cut_start > cursor:
                out.append((cursor, cut_start))
            cursor = max(cursor, cut_end)
            index += 1
        if cursor < end:
            out.append((cursor, end))
    return out
