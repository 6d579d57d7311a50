"""Lists of half-open ``[start, end)`` intervals (int ns), kept sorted and disjoint."""

from __future__ import annotations

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
