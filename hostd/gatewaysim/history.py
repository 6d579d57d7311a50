"""Historical bar requests: parsing IB's request fields, computing the answer, formatting the reply.

Request semantics (as TWS applies them):

- ``barSizeSetting``: one of :data:`BAR_SIZES` (1 min … 1 week); anything else is a validation error
  (321). ``durationStr``: ``"<N> <unit>"`` with unit ``S`` (seconds), ``D`` (the last N sessions of the
  asset class's calendar that open before the end), ``W`` (7·N days), ``M`` (N calendar months) or
  ``Y`` (N calendar years). ``endDateTime``: empty (now), ``YYYYMMDD HH:MM:SS[ zone]`` (no zone = UTC)
  or ``YYYYMMDD-HH:MM:SS`` (UTC).
- The answer holds the bars whose *first traded minute* lies in ``[end − duration, end)``, each built
  from all its minutes that have happened (the last one may be still forming at the current time).
- Intraday bars are aligned to the clock in the contract's time zone (an hourly stock bar covers
  09:30–10:00 New York on its first hour, and is stamped 09:30); daily bars are sessions, weekly bars
  are the sessions of a Monday-to-Sunday week, both dated ``YYYYMMDD`` (the first session's date), as IB
  dates them whatever ``formatDate`` says. Intraday stamps are epoch seconds with ``formatDate=2`` and
  ``YYYYMMDD HH:MM:SS <zone>`` in the contract's zone with ``formatDate=1``.
- ``TRADES`` bars carry volume, WAP and trade count; ``MIDPOINT`` bars carry -1 for all three, as IB.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from hostd.gatewaysim.wire import Out
from ktrdr.calendars import DAY_S, Calendar

WEEK = 7 * 1440
DAY = 1440
#: IB bar size → length in minutes (DAY and WEEK are sessions, not fixed lengths).
BAR_SIZES: dict[str, int] = {
    "1 min": 1,
    "2 mins": 2,
    "3 mins": 3,
    "5 mins": 5,
    "10 mins": 10,
    "15 mins": 15,
    "20 mins": 20,
    "30 mins": 30,
    "1 hour": 60,
    "2 hours": 120,
    "3 hours": 180,
    "4 hours": 240,
    "8 hours": 480,
    "1 day": DAY,
    "1 week": WEEK,
}
#: Bar sizes that a ktrdr bar file (``{SERIES}_{TF}``) can hold.
FILE_TIMEFRAMES: dict[int, str] = {
    1: "1m",
    5: "5m",
    15: "15m",
    30: "30m",
    60: "1h",
    240: "4h",
    DAY: "1d",
    WEEK: "1w",
}
#: Longest span an intraday request may cover (IB refuses longer; here it also bounds the work).
MAX_INTRADAY_SPAN_S = 2 * 366 * DAY_S
_DURATION = re.compile(r"^([1-9][0-9]*) ([SDWMY])$")
_END = re.compile(r"^(\d{8})[ -](\d{2}):(\d{2}):(\d{2})(?: (\S+))?$")


class RequestInvalid(ValueError):
    """A field TWS would reject with error 321; the message names the field and the accepted values."""


@dataclass(frozen=True)
class HistoricalRequest:
    """The fields of REQ_HISTORICAL_DATA after the contract, as sent."""

    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int

    @property
    def bar_minutes(self) -> int:
        return BAR_SIZES[self.bar_size]


def validate(request: HistoricalRequest) -> None:
    if request.bar_size not in BAR_SIZES:
        raise RequestInvalid(
            f"Historical data bar size setting {request.bar_size!r} is invalid; valid: {', '.join(BAR_SIZES)}"
        )
    if _DURATION.match(request.duration) is None:
        raise RequestInvalid(
            f"Historical data duration {request.duration!r} is invalid; expected '<N> S|D|W|M|Y'"
        )
    if request.format_date not in (1, 2):
        raise RequestInvalid(f"formatDate {request.format_date} is invalid; expected 1 or 2")
    parse_end(request.end, now_s=0)


def parse_end(text: str, now_s: int) -> int:
    """``endDateTime`` → UTC epoch seconds (``""`` → ``now_s``); RequestInvalid when malformed."""
    if not text:
        return now_s
    match = _END.match(text.strip())
    if match is None:
        raise RequestInvalid(f"End Date/Time {text!r} is invalid; expected 'YYYYMMDD HH:MM:SS[ zone]'")
    day, hour, minute, second, zone = match.groups()
    try:
        tz = ZoneInfo(zone) if zone else dt.UTC
        local = dt.datetime.strptime(day + hour + minute + second, "%Y%m%d%H%M%S")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RequestInvalid(f"End Date/Time {text!r} is invalid: {exc}") from None
    return int(local.replace(tzinfo=tz).timestamp())


def span_start(request: HistoricalRequest, end_s: int, calendar: Calendar) -> int:
    """UTC epoch seconds where the requested span begins (see the module docstring)."""
    match = _DURATION.match(request.duration)
    assert match is not None  # validated
    count, unit = int(match.group(1)), match.group(2)
    if unit == "S":
        return end_s - count
    if unit == "D":
        sessions = calendar.sessions_back(end_s, count, request.use_rth)
        return int(sessions.open_s[0]) if len(sessions) else end_s
    end = pd.Timestamp(end_s, unit="s", tz="UTC")
    offset = {
        "W": pd.DateOffset(weeks=count),
        "M": pd.DateOffset(months=count),
        "Y": pd.DateOffset(years=count),
    }
    return int((end - offset[unit]).timestamp())


@dataclass(frozen=True)
class BarTable:
    """Bars to send: ``stamp_s`` (first traded minute, UTC epoch s), ``label`` (int YYYYMMDD session
    date, 0 when not known), OHLC, volume, WAP and trade count (float64 / int64 arrays)."""

    stamp_s: np.ndarray
    label: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    wap: np.ndarray
    count: np.ndarray

    def __len__(self) -> int:
        return int(self.stamp_s.shape[0])

    def select(self, keep: np.ndarray) -> BarTable:
        return BarTable(*(getattr(self, name)[keep] for name in self.__dataclass_fields__))


def bucket_keys(minute_s: np.ndarray, label: np.ndarray, bar_minutes: int, time_zone: str) -> np.ndarray:
    """A key per minute that changes exactly where a new bar of ``bar_minutes`` begins."""
    if bar_minutes == DAY:
        return label
    if bar_minutes == WEEK:
        days = (pd.to_datetime(label.astype(str), format="%Y%m%d").to_numpy().astype("datetime64[D]")).astype(
            np.int64
        )
        return (days - 4) // 7  # weeks starting Monday (1970-01-05 is day 4)
    wall = (
        pd.DatetimeIndex(pd.to_datetime(minute_s, unit="s", utc=True)).tz_convert(time_zone).tz_localize(None)
    )
    wall_s = np.asarray(wall.as_unit("s").asi8, dtype=np.int64)
    return wall_s // (bar_minutes * 60)


def aggregate(
    minute_s: np.ndarray, label: np.ndarray, ohlcv: dict[str, np.ndarray], keys: np.ndarray
) -> BarTable:
    """Roll 1-minute bars into one bar per run of equal ``keys`` (first open, max high, min low, last
    close, summed volume; WAP is the volume-weighted typical price; one trade per 100 volume)."""
    if minute_s.size == 0:
        empty_f, empty_i = np.empty(0), np.empty(0, np.int64)
        return BarTable(empty_i, empty_i, empty_f, empty_f, empty_f, empty_f, empty_f, empty_f, empty_i)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(keys)) + 1))
    ends = np.concatenate((starts[1:], [minute_s.size])) - 1
    volume = np.add.reduceat(ohlcv["volume"], starts)
    typical = (ohlcv["high"] + ohlcv["low"] + ohlcv["close"]) / 3
    wap = np.add.reduceat(typical * ohlcv["volume"], starts) / np.maximum(volume, 1)
    return BarTable(
        minute_s[starts],
        label[starts],
        ohlcv["open"][starts],
        np.maximum.reduceat(ohlcv["high"], starts),
        np.minimum.reduceat(ohlcv["low"], starts),
        ohlcv["close"][ends],
        volume,
        np.round(wap, 4),
        np.maximum(1, np.round(volume / 100)).astype(np.int64),
    )


def _number(value: float) -> str:
    """Shortest text that parses back to the same float; integral values without a fraction."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def historical_data_fields(
    req_id: int, request: HistoricalRequest, bars: BarTable, start_s: int, end_s: int, time_zone: str
) -> list[object]:
    """HISTORICAL_DATA (msg 17): ``[17, reqId, start, end, n, (date, o, h, l, c, volume, wap, count)×n]``."""
    zone = ZoneInfo(time_zone)

    def wall(epoch_s: int) -> str:
        return dt.datetime.fromtimestamp(epoch_s, zone).strftime("%Y%m%d %H:%M:%S ") + time_zone

    daily = request.bar_minutes >= DAY
    midpoint = request.what_to_show == "MIDPOINT"
    fields: list[object] = [Out.HISTORICAL_DATA, req_id, wall(start_s), wall(end_s), len(bars)]
    for i in range(len(bars)):
        if daily:
            stamp = str(int(bars.label[i]))
        elif request.format_date == 2:
            stamp = str(int(bars.stamp_s[i]))
        else:
            stamp = wall(int(bars.stamp_s[i]))
        fields += [stamp, *(_number(getattr(bars, name)[i]) for name in ("open", "high", "low", "close"))]
        if midpoint:
            fields += ["-1", "-1", "-1"]
        else:
            fields += [_number(bars.volume[i]), _number(bars.wap[i]), int(bars.count[i])]
    return fields
