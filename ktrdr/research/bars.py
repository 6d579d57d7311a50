"""OHLCV bar series: the one in-memory representation the research core computes on.

A :class:`Bars` holds columnar NumPy arrays: ``time`` (int64, UTC bar-*open* time in ns since the
epoch), ``open``, ``high``, ``low``, ``close``, ``volume`` (float64). A validated series is sorted
strictly ascending by time, has no NaN prices and ``low <= min(open, close)``,
``high >= max(open, close)``. Invalid input raises :class:`BarsError` naming the source, row and
problem; nothing is repaired silently.

Files: ``{SYMBOL}_{TF}.csv`` in the predecessor's layout (first column the timestamp, ISO-8601 UTC;
columns ``open, high, low, close, volume``, case-insensitive) or ``{SYMBOL}_{TF}.parquet`` with a
``time`` column (int64 ns or tz-aware datetime) and the same five columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ktrdr import timeframes

FIELDS = ("open", "high", "low", "close", "volume")


class BarsError(ValueError):
    """Bars that cannot be used: unsorted, duplicated, NaN prices, high < low, missing columns."""


@dataclass(frozen=True, eq=False)
class Bars:
    """One symbol's bars at one timeframe. Arrays are read-only views; do not mutate."""

    symbol: str
    timeframe: str
    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @property
    def close_time(self) -> np.ndarray:
        """UTC close time (ns) of each bar: open time + the timeframe's duration."""
        return self.time + timeframes.parse(self.timeframe).ns

    def slice(self, start: int, stop: int) -> Bars:
        """Bars ``[start, stop)`` by position (views, no copy)."""
        return Bars(
            self.symbol,
            self.timeframe,
            self.time[start:stop],
            *(getattr(self, f)[start:stop] for f in FIELDS),
        )

    def between(self, start_ns: int | None, end_ns: int | None) -> Bars:
        """Bars whose open time lies in ``[start_ns, end_ns)``; ``None`` leaves a side open."""
        lo = 0 if start_ns is None else int(np.searchsorted(self.time, start_ns, "left"))
        hi = len(self) if end_ns is None else int(np.searchsorted(self.time, end_ns, "left"))
        return self.slice(lo, hi)

    def digest(self) -> str:
        """sha256 of the arrays' bytes: identifies the exact data a model was trained on."""
        import hashlib

        h = hashlib.sha256()
        for a in (self.time, *(getattr(self, f) for f in FIELDS)):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    @classmethod
    def from_arrays(
        cls,
        symbol: str,
        timeframe: str,
        time: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        *,
        source: str = "<arrays>",
        row_label: Callable[[int], str] | None = None,
    ) -> Bars:
        """Validate and wrap arrays. Raises :class:`BarsError` with ``source`` and the first bad row,
        named by ``row_label(index)`` (default ``row <index>``; a file reader passes its line numbers)."""
        timeframes.parse(timeframe)
        # Copies: the arrays are frozen below, and the caller's own arrays must stay writable.
        t = np.array(time, dtype=np.int64)
        cols = [np.array(c, dtype=np.float64) for c in (open, high, low, close, volume)]
        n = t.shape[0]
        if any(c.shape != (n,) for c in cols):
            raise BarsError(f"{source}: columns have different lengths")
        _validate(source, row_label or _row, t, *cols)
        for a in (t, *cols):
            a.setflags(write=False)
        return cls(symbol, timeframe, t, *cols)

    @classmethod
    def from_frame(cls, symbol: str, timeframe: str, frame, *, source: str = "<frame>") -> Bars:
        """From a pandas DataFrame with a DatetimeIndex (naive = UTC) and OHLCV columns."""
        import pandas as pd

        df = frame.rename(columns=str.lower)
        missing = [f for f in FIELDS if f not in df.columns]
        if missing:
            raise BarsError(f"{source}: missing column(s) {', '.join(missing)}; expected {', '.join(FIELDS)}")
        idx = pd.DatetimeIndex(df.index)
        idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
        return cls.from_arrays(
            symbol,
            timeframe,
            idx.as_unit("ns").asi8,
            *(df[f].to_numpy(dtype=np.float64) for f in FIELDS),
            source=source,
        )

    def to_frame(self):
        """A pandas DataFrame indexed by UTC open time."""
        import pandas as pd

        return pd.DataFrame(
            {f: getattr(self, f) for f in FIELDS},
            index=pd.to_datetime(self.time, utc=True),
        )


#: 1970-01-01 was a Thursday; weekly buckets start on Monday 00:00 UTC (1970-01-05).
_WEEK_ORIGIN_NS = 4 * 86400 * 10**9


def resample(bars: Bars, timeframe: str, *, keep_forming: bool = False) -> Bars:
    """Aggregate to a slower ``timeframe`` with bar-*open* stamps: open first, high max, low min,
    close last, volume sum.

    Buckets are ``[k·D, (k+1)·D)`` in ns since the epoch (1d at UTC midnight, 4h at 00, 04, … UTC;
    1w on Mondays). A bucket the input does not cover from its start (the first one, when the data
    begins mid-bucket) is dropped: its open would be wrong. The last bucket, when the input ends
    before its close, is the still-forming bar: dropped unless ``keep_forming`` (a live feed shows
    it; a completed-bars consumer must never use it). Interior buckets are kept however many bars
    they hold (gaps are hours without trading).
    """
    src, dst = timeframes.parse(bars.timeframe), timeframes.parse(timeframe)
    if dst.ns % src.ns:
        raise BarsError(f"cannot resample {src} bars to {dst}: not a multiple")
    origin = _WEEK_ORIGIN_NS if timeframe.endswith("w") else 0
    key = (bars.time - origin) // dst.ns * dst.ns + origin
    if len(bars) == 0:
        return Bars.from_arrays(bars.symbol, dst.text, key, *(getattr(bars, f) for f in FIELDS))
    starts = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1))
    ends = np.concatenate((starts[1:], [len(bars)])) - 1
    keep = np.ones(starts.shape[0], dtype=bool)
    keep[0] = bars.time[0] == key[0]
    if not keep_forming and bars.time[-1] + src.ns < key[-1] + dst.ns:
        keep[-1] = False
    return Bars.from_arrays(
        bars.symbol,
        dst.text,
        key[starts][keep],
        bars.open[starts][keep],
        np.maximum.reduceat(bars.high, starts)[keep],
        np.minimum.reduceat(bars.low, starts)[keep],
        bars.close[ends][keep],
        np.add.reduceat(bars.volume, starts)[keep],
        source=f"resample({bars.symbol} {src}->{dst})",
    )


def _row(index: int) -> str:
    return f"row {index}"


def _validate(source: str, row: Callable[[int], str], t: np.ndarray, o, h, lo, c, v) -> None:
    if t.shape[0] > 1:
        d = np.diff(t)
        bad = np.flatnonzero(d <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            what = "duplicated" if d[bad[0]] == 0 else "unsorted (earlier than the row before)"
            raise BarsError(f"{source}: {row(i)}: timestamp {_iso(t[i])} is {what}")
    for name, col in (("open", o), ("high", h), ("low", lo), ("close", c)):
        bad = np.flatnonzero(~np.isfinite(col))
        if bad.size:
            i = int(bad[0])
            raise BarsError(f"{source}: {row(i)} ({_iso(t[i])}): {name} is {col[i]}")
    bad = np.flatnonzero(~np.isfinite(v) | (v < 0))
    if bad.size:
        i = int(bad[0])
        raise BarsError(f"{source}: {row(i)} ({_iso(t[i])}): volume is {v[i]}")
    bad = np.flatnonzero((h < lo) | (h < np.maximum(o, c)) | (lo > np.minimum(o, c)))
    if bad.size:
        i = int(bad[0])
        raise BarsError(
            f"{source}: {row(i)} ({_iso(t[i])}): inconsistent OHLC "
            f"(open {o[i]}, high {h[i]}, low {lo[i]}, close {c[i]}): high < low or outside the range"
        )


def _iso(ns: int) -> str:
    return np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="s") + "Z"


def iso_minute(ns: int) -> str:
    """A time (int ns UTC) as ISO-8601 to the minute, as reports print bar times:
    ``2024-01-05T13:00Z``."""
    return np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="m") + "Z"


def read_file(path: str | Path, symbol: str, timeframe: str) -> Bars:
    """Read one CSV (predecessor layout) or Parquet file into validated :class:`Bars`."""
    import pandas as pd

    p = Path(path)
    if p.suffix == ".parquet":
        df = pd.read_parquet(p)
        df = df.rename(columns=str.lower)
        if "time" not in df.columns:
            raise BarsError(f"{p}: missing column time")
        tcol = df["time"]
        idx = (
            pd.to_datetime(tcol, utc=True)
            if tcol.dtype != np.int64
            else pd.to_datetime(tcol, unit="ns", utc=True)
        )
        df = df.set_index(pd.DatetimeIndex(idx))
    else:
        df = pd.read_csv(p, index_col=0)
        try:
            df.index = pd.to_datetime(df.index, utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise BarsError(f"{p}: first column must be ISO-8601 timestamps: {exc}") from None
    return Bars.from_frame(symbol, timeframe, df, source=str(p))


def find_file(directory: str | Path, symbol: str, timeframe: str) -> Path:
    """``DIR/{SYMBOL}_{TF}.parquet`` or ``.csv``; raises FileNotFoundError naming both."""
    d = Path(directory)
    for ext in (".parquet", ".csv"):
        p = d / f"{symbol}_{timeframe}{ext}"
        if p.exists():
            return p
    raise FileNotFoundError(
        f"no bars for {symbol} {timeframe}: expected {d}/{symbol}_{timeframe}.csv or .parquet"
    )
