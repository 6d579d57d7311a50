"""Named fixes an import may apply to the user's rows before they are validated (``--repair``).

Each fix is asked for by name and reported with the number of rows it touched and the first of
them, named as the file names them (CSV line, Parquet row). Nothing is fixed unless asked for: an
import without fixes fails on the first problem, naming its row.

- ``swap-high-low``: a row whose high is below its low gets the two swapped (a column mix-up).
- ``sort``: rows are put in time order (stable: rows of equal time keep the file's order); the rows
  reported are those earlier than the row before them.
- ``dedupe-exact``: a row identical to the row kept for its time (time and all five numbers) is
  dropped; duplicates that disagree are left for validation to refuse.
- ``dedupe-keep-last``: of the rows sharing a time, the last in the file wins, even when they
  disagree. It discards data, so it is never part of :data:`STANDARD`.

``standard`` names :data:`STANDARD`. Fixes run in the order of :data:`ORDER`, whatever order they
were asked in: swapping first, then sorting (so that duplicates end up next to each other), then
deduplicating. A fix that changes nothing is not reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ktrdr import wire

ORDER = wire.IMPORT_FIXES
STANDARD = wire.STANDARD_FIXES
#: Rows named per fix in a report.
EXAMPLES = 5


class UnknownFix(ValueError):
    """A fix name that is not one of :data:`ORDER` (or ``standard``)."""


@dataclass(frozen=True)
class Fixed:
    """What one fix did: ``rows`` touched, the first of them as the file names them (``line 7``)."""

    name: str
    rows: int
    examples: list[str]


@dataclass
class Rows:
    """The file's rows as columns; ``index`` holds each row's position in the file (0-based)."""

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    index: np.ndarray

    def take(self, keep: np.ndarray) -> Rows:
        """The rows at positions (or where the mask is true) ``keep``."""
        time, open_, high, low, close, volume = (column[keep] for column in self.columns())
        return Rows(time, open_, high, low, close, volume, self.index[keep])

    def columns(self) -> tuple[np.ndarray, ...]:
        """``time, open, high, low, close, volume``."""
        return self.time, self.open, self.high, self.low, self.close, self.volume


def resolve(names: list[str]) -> list[str]:
    """The fixes ``names`` asks for, in the order they run; :class:`UnknownFix` naming a bad one."""
    wanted: set[str] = set()
    for name in names:
        name = name.strip().lower()
        if name == "standard":
            wanted.update(STANDARD)
        elif name in ORDER:
            wanted.add(name)
        else:
            raise UnknownFix(f"unknown fix {name!r}; known: standard, {', '.join(ORDER)}")
    return [name for name in ORDER if name in wanted]


def apply(fixes: list[str], rows: Rows, row_label: Callable[[int], str]) -> tuple[Rows, list[Fixed]]:
    """``rows`` with ``fixes`` (from :func:`resolve`) applied, and a report of each that acted;
    ``row_label`` names a row by its index in the file."""
    reports: list[Fixed] = []
    for name in fixes:
        rows, touched = _FIXES[name](rows)
        if touched.size:
            first = sorted(touched.tolist())[:EXAMPLES]
            reports.append(Fixed(name, int(touched.size), [row_label(i) for i in first]))
    return rows, reports


def _swap_high_low(rows: Rows) -> tuple[Rows, np.ndarray]:
    swapped = rows.high < rows.low
    high = np.where(swapped, rows.low, rows.high)
    low = np.where(swapped, rows.high, rows.low)
    fixed = Rows(rows.time, rows.open, high, low, rows.close, rows.volume, rows.index)
    return fixed, rows.index[swapped]


def _sort(rows: Rows) -> tuple[Rows, np.ndarray]:
    early = np.flatnonzero(np.diff(rows.time) < 0) + 1
    if not early.size:
        return rows, early
    return rows.take(np.argsort(rows.time, kind="stable")), rows.index[early]


def _same_time_as_previous(rows: Rows) -> np.ndarray:
    """Mask of rows whose time equals the previous row's (duplicates lie next to each other once sorted)."""
    return np.concatenate([[False], rows.time[1:] == rows.time[:-1]]) if len(rows.time) else np.zeros(0, bool)


def _dedupe_exact(rows: Rows) -> tuple[Rows, np.ndarray]:
    repeat = _same_time_as_previous(rows)
    if not repeat.any():
        return rows, rows.index[:0]
    # The row kept for a time is the first of its run; a repeat is dropped when it equals that row.
    run_start = np.maximum.accumulate(np.where(~repeat, np.arange(len(repeat)), 0))
    identical = repeat.copy()
    for column in rows.columns()[1:]:
        identical &= column == column[run_start]
    return rows.take(~identical), rows.index[identical]


def _dedupe_keep_last(rows: Rows) -> tuple[Rows, np.ndarray]:
    superseded = np.concatenate([rows.time[:-1] == rows.time[1:], [False]]) if len(rows.time) else None
    if superseded is None or not superseded.any():
        return rows, rows.index[:0]
    return rows.take(~superseded), rows.index[superseded]


_FIXES = {
    "swap-high-low": _swap_high_low,
    "sort": _sort,
    "dedupe-exact": _dedupe_exact,
    "dedupe-keep-last": _dedupe_keep_last,
}
