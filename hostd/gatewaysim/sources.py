"""Where bars come from: a directory of ktrdr bar files, or the seeded generator.

Both answer the same three questions for a resolved instrument: does the series exist, when does
its history begin (head timestamp), and which bars fall in a span (:class:`~hostd.gatewaysim.history.BarTable`).
Both are synchronous and may take tens of milliseconds: callers run them in a thread.
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path
from typing import Protocol

import numpy as np

from hostd.gatewaysim.contracts import Instrument
from hostd.gatewaysim.generator import MinutePath
from hostd.gatewaysim.history import (
    DAY,
    FILE_TIMEFRAMES,
    WEEK,
    BarTable,
    HistoricalRequest,
    aggregate,
    bucket_keys,
)
from ktrdr import timeframes
from ktrdr.calendars import DAY_S, AssetClass, calendar_for, session_labels, trading_minutes
from ktrdr.research import bars as bar_files


class BarSource(Protocol):
    def is_known(self, series: str) -> bool: ...

    def head_timestamp(self, instrument: Instrument, use_rth: bool) -> int | None:
        """UTC epoch seconds of the first bar, or None when the series has none."""
        ...

    def bars(
        self, instrument: Instrument, request: HistoricalRequest, start_s: int, end_s: int, now_s: int
    ) -> BarTable:
        """Bars stamped in ``[start_s, end_s)``, none opening at or after ``now_s``."""
        ...


#: Range (first year, number of years) in which the generator places each class's first trade.
_HEAD_YEARS: dict[AssetClass, tuple[int, int]] = {
    AssetClass.STOCK: (1995, 10),
    AssetClass.FOREX: (2003, 4),
    AssetClass.CRYPTO: (2015, 3),
}


class GeneratedBars:
    """Every series exists; bars follow the asset class's calendar (see :mod:`hostd.gatewaysim.generator`)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def is_known(self, series: str) -> bool:
        return True

    def head_timestamp(self, instrument: Instrument, use_rth: bool) -> int | None:
        first_year, years = _HEAD_YEARS[instrument.asset_class]
        first_day = np.datetime64(f"{first_year}-01-01", "D").astype(np.int64)
        offset = zlib.crc32(f"{self.seed}:{instrument.series}".encode()) % (years * 365)
        head_s = int(first_day + offset) * DAY_S
        sessions = calendar_for(instrument.asset_class).sessions(head_s, head_s + 10 * DAY_S, use_rth)
        return int(sessions.open_s[sessions.open_s >= head_s][0])

    def bars(
        self, instrument: Instrument, request: HistoricalRequest, start_s: int, end_s: int, now_s: int
    ) -> BarTable:
        calendar = calendar_for(instrument.asset_class)
        minutes = request.bar_minutes
        reach_s = {DAY: 2 * DAY_S, WEEK: 8 * DAY_S}.get(minutes, minutes * 60)
        head_s = self.head_timestamp(instrument, request.use_rth)
        assert head_s is not None
        lo, hi = max(start_s - reach_s, head_s), min(end_s + reach_s, now_s)
        if lo >= hi:
            return aggregate(*_no_minutes())
        minute_s, label = trading_minutes(calendar.sessions(lo, hi, request.use_rth), lo, hi)
        path = MinutePath(self.seed, instrument.series, instrument.traits.path)
        table = aggregate(
            minute_s,
            label,
            path.minute_bars(minute_s),
            bucket_keys(minute_s, label, minutes, calendar.time_zone),
        )
        return table.select((table.stamp_s >= start_s) & (table.stamp_s < end_s))


def _no_minutes() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    empty_i = np.empty(0, np.int64)
    return empty_i, empty_i, {}, empty_i


class FileBars:
    """Series are the ``{SERIES}_{TF}.csv|parquet`` files in a directory (read once, then cached).

    A bar size with a file is served from it exactly; otherwise from the fastest faster file that
    resamples to it (:func:`ktrdr.research.bars.resample`, UTC-aligned buckets, the last one kept even
    while forming). Bars are served as the file has them: the calendar and ``useRTH`` do not filter them.
    A daily or weekly bar is dated by the session its stamp falls in (the cache stamps a daily bar at
    its session's open: :mod:`ktrdrd.data.calendars`), else by the stamp's UTC date.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[tuple[str, str], bar_files.Bars] = {}
        self._lock = threading.Lock()

    def _timeframes(self, series: str) -> list[str]:
        """The timeframes this series has files for, fastest first."""
        found = {
            path.stem[len(series) + 1 :]
            for path in self.directory.glob(f"{series}_*")
            if path.suffix in (".csv", ".parquet")
        }
        return timeframes.sort_fastest_first([tf for tf in found if tf in timeframes.SUPPORTED])

    def is_known(self, series: str) -> bool:
        return bool(self._timeframes(series))

    def _load(self, series: str, timeframe: str) -> bar_files.Bars:
        with self._lock:
            key = (series, timeframe)
            if key not in self._cache:
                path = bar_files.find_file(self.directory, series, timeframe)
                self._cache[key] = bar_files.read_file(path, series, timeframe)
            return self._cache[key]

    def head_timestamp(self, instrument: Instrument, use_rth: bool) -> int | None:
        available = self._timeframes(instrument.series)
        if not available:
            return None
        first = self._load(instrument.series, available[0])
        return int(first.time[0] // 10**9) if len(first) else None

    def _series_bars(self, series: str, timeframe: str) -> bar_files.Bars | None:
        available = self._timeframes(series)
        if timeframe in available:
            return self._load(series, timeframe)
        target = timeframes.parse(timeframe)
        for faster in available:
            if target.ns % timeframes.parse(faster).ns == 0 and faster != timeframe:
                return bar_files.resample(self._load(series, faster), timeframe, keep_forming=True)
        return None

    def bars(
        self, instrument: Instrument, request: HistoricalRequest, start_s: int, end_s: int, now_s: int
    ) -> BarTable:
        timeframe = FILE_TIMEFRAMES.get(request.bar_minutes)
        series = self._series_bars(instrument.series, timeframe) if timeframe else None
        if series is None:
            return aggregate(*_no_minutes())
        chosen = series.between(start_s * 10**9, min(end_s, now_s) * 10**9)
        stamp_s = chosen.time // 10**9
        label = session_labels(calendar_for(instrument.asset_class), stamp_s)
        typical = (chosen.high + chosen.low + chosen.close) / 3
        return BarTable(
            stamp_s,
            label,
            chosen.open,
            chosen.high,
            chosen.low,
            chosen.close,
            chosen.volume,
            np.round(typical, 4),
            np.maximum(1, np.round(chosen.volume / 100)).astype(np.int64),
        )
