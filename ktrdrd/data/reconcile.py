"""Bring the catalog back in line with the series files after a crash (run when the cache opens).

A write replaces the file first, then the catalog entry; a crash in between leaves them disagreeing.
For each series the repair is decided from what is on disk, the file being the truth:

- **entry and file, digests differ** (the file was replaced, the catalog was not): the entry is
  derived again from the file: digest, bar count, first and last bar, update time. ``covered`` is
  the previous covered intervals within the file's span, joined with the stretches of bars whose
  gaps the calendar says were closures — an open-market gap between two bars is not claimed as
  covered (a later load fetches it again rather than trust a range no write finished recording).
  ``known_empty`` is computed again from the calendar over ``covered``, joined with the previous
  known-empty intervals less the slots of the file's bars (what a source confirmed empty — before
  the first trade, a day without data — stays known); source and calendar are kept.
- **entry without a file**: the entry is dropped.
- **file without an entry** (the first write of a series crashed before the catalog, or the
  database was replaced): the write was never acknowledged, so the series does not exist; the file
  is renamed to ``<TF>.parquet.orphan`` beside it (nothing a user may want is deleted; import it
  to keep it, remove it otherwise).
- **a file that is not a readable series** (never written by the cache, which replaces atomically):
  renamed to ``<TF>.parquet.unreadable`` beside it and its entry dropped; the series can be written
  again.

Temporary files of interrupted writes are removed by :func:`ktrdrd.data.files.remove_temporaries`.
Blocking: the functions here hash and read files; call them from a worker thread.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from ktrdr import symbols, timeframes
from ktrdrd.data import calendars, files
from ktrdrd.data.catalog import SeriesEntry
from ktrdrd.data.intervals import Interval, union, without_bars

#: Suffixes given to a series file set aside: one without a catalog entry, one that cannot be read.
ORPHAN_SUFFIX = ".orphan"
UNREADABLE_SUFFIX = ".unreadable"


@dataclass(frozen=True)
class Finding:
    """One disagreement found and what was done: ``action`` is ``rederived`` (``entry`` holds the
    new entry), ``dropped`` (the entry), ``orphan`` or ``unreadable`` (the file set aside)."""

    symbol: str
    timeframe: str
    action: str
    detail: str
    entry: SeriesEntry | None = None


def stored_series(root: Path) -> list[tuple[str, str]]:
    """``(SYMBOL, timeframe)`` of every series file under ``root``, sorted."""
    found = []
    for path in sorted(root.glob("*/*.parquet")) if root.is_dir() else []:
        symbol, timeframe = path.parent.name, path.name.removesuffix(".parquet")
        if symbols.is_symbol(symbol) and timeframe in timeframes.SUPPORTED:
            found.append((symbol, timeframe))
    return found


def check(root: Path, key: tuple[str, str], entry: SeriesEntry | None) -> Finding | None:
    """What to do about one series whose catalog entry is ``entry`` (None: no entry); None when the
    file and the entry agree. Renames or removes files as the module docstring says; the caller
    saves or drops the catalog entry."""
    symbol, timeframe = key
    path = files.series_path(root, symbol, timeframe)
    if not path.exists():
        return Finding(symbol, timeframe, "dropped", f"the catalog lists {path}, which does not exist")
    if entry is None:
        aside = _set_aside(path, ORPHAN_SUFFIX)
        return Finding(
            symbol,
            timeframe,
            "orphan",
            f"{path} has no catalog entry (its write never finished); moved to {aside}",
        )
    digest = _sha256(path)
    if digest == entry.digest:
        return None
    try:
        table = files.read(path)
        times = table.column("time").to_numpy()
        if not len(times) or np.any(np.diff(times) <= 0):
            raise ValueError("no bars, or times not strictly increasing")
    except (OSError, pa.ArrowException, ValueError) as exc:
        aside = _set_aside(path, UNREADABLE_SUFFIX)
        return Finding(
            symbol, timeframe, "unreadable", f"{path} is not a readable series ({exc}); moved to {aside}"
        )
    rederived = rederive(entry, times, digest)
    return Finding(
        symbol,
        timeframe,
        "rederived",
        f"{path} does not match its catalog entry (digest {digest[:12]}, catalog {entry.digest[:12]}); "
        f"catalog entry derived from the file: {rederived.bar_count} bars",
        rederived,
    )


def rederive(previous: SeriesEntry, times: np.ndarray, digest: str) -> SeriesEntry:
    """The entry of a series file holding bars at ``times`` (sorted int ns), from its stale entry."""
    step = timeframes.parse(previous.timeframe).ns
    first, last = int(times[0]), int(times[-1])
    span = (first, last + step)
    closed = calendars.known_empty(previous.calendar, step, *span, times)
    covered = union(
        [(max(s, span[0]), min(e, span[1])) for s, e in previous.covered],
        _stretches(times, step, closed),
    )
    return replace(
        previous,
        digest=digest,
        bar_count=len(times),
        first_ns=first,
        last_ns=last,
        update_time=time.time(),
        covered=covered,
        known_empty=union(
            without_bars(previous.known_empty, times, step),
            *(calendars.known_empty(previous.calendar, step, s, e, times) for s, e in covered),
        ),
    )


def _stretches(times: np.ndarray, step: int, closed: list[Interval]) -> list[Interval]:
    """``[first, last + step)`` cut at each gap between bars that ``closed`` does not wholly hold."""
    gap_starts = times[:-1] + step
    gap_ends = times[1:]
    holes = []
    closed_starts = np.array([s for s, _ in closed], np.int64)
    closed_ends = np.array([e for _, e in closed], np.int64)
    for index in np.flatnonzero(gap_starts < gap_ends).tolist():
        at = int(np.searchsorted(closed_starts, gap_starts[index], "right")) - 1
        if at < 0 or closed_ends[at] < gap_ends[index]:
            holes.append(index)
    bounds = [
        int(times[0]),
        *(v for i in holes for v in (int(gap_starts[i]), int(gap_ends[i]))),
        int(times[-1]) + step,
    ]
    return [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]


def _set_aside(path: Path, suffix: str) -> Path:
    """Rename ``path`` to ``<name><suffix>`` (replacing an older one set aside); returns the new path."""
    aside = path.with_name(path.name + suffix)
    path.replace(aside)
    return aside


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
