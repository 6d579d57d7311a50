"""ib_async bars → columnar ``BarsChunk`` messages (one packed array per field, < 4 MiB each).

Bar times become the bar's open time in UTC nanoseconds: intraday bars (``formatDate=2``) arrive as
aware datetimes; daily and weekly bars arrive as dates and are stamped 00:00 UTC of that date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ib_async import BarData

from ktrdr.common.v1 import common_pb2

NS = 1_000_000_000
#: Bars per chunk: 6 packed 8-byte fields ≈ 48 bytes a bar, so 60,000 bars ≈ 2.9 MB (< 4 MiB).
CHUNK_BARS = 60_000


def time_ns(value: dt.date | dt.datetime) -> int:
    """A bar's date as UTC epoch nanoseconds (a plain date → its 00:00 UTC)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"bar time {value} has no time zone; request formatDate=2")
        return int(value.timestamp()) * NS + value.microsecond * 1000
    return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()) * NS


@dataclass
class Columns:
    """Bars accumulated column by column, in time order."""

    time_ns: list[int]
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]

    @classmethod
    def empty(cls) -> Columns:
        return cls([], [], [], [], [], [])

    def __len__(self) -> int:
        return len(self.time_ns)

    def append(self, stamp_ns: int, bar: BarData) -> None:
        self.time_ns.append(stamp_ns)
        self.open.append(bar.open)
        self.high.append(bar.high)
        self.low.append(bar.low)
        self.close.append(bar.close)
        self.volume.append(bar.volume)

    def chunks(self, symbol: str, timeframe: str, size: int = CHUNK_BARS) -> Iterator[common_pb2.BarsChunk]:
        for start in range(0, len(self), size):
            part = slice(start, start + size)
            yield common_pb2.BarsChunk(
                symbol=symbol,
                timeframe=timeframe,
                time_ns=self.time_ns[part],
                open=self.open[part],
                high=self.high[part],
                low=self.low[part],
                close=self.close[part],
                volume=self.volume[part],
            )


def select(bars: Sequence[BarData], after_ns: int, start_ns: int, end_ns: int) -> Columns:
    """The bars stamped in ``[max(start_ns, after_ns + 1), end_ns)`` in time order, each once."""
    columns = Columns.empty()
    last = after_ns
    for bar in sorted(bars, key=lambda b: time_ns(b.date)):
        stamp = time_ns(bar.date)
        if stamp > last and start_ns <= stamp < end_ns:
            columns.append(stamp, bar)
            last = stamp
    return columns
