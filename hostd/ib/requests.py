"""IB bar sizes and how a time range is split into historical-data requests.

IB limits the duration one request may cover per bar size (the TWS API "step size" table, read
backwards; TWS API "Historical Data Limitations"). Defaults: 1m → 86400 S (1 D), 5m/15m → 1 W, 30m/1h/4h → 1 M, 1d/1w → 1 Y.

A range ``[start, end)`` becomes requests ``(end_time, duration)`` oldest first. Each request covers
its own *core* interval plus one bar on either side (IB stamps a bar by its first traded minute or by
its session date, which may lie up to a bar away), so every bar of the range is in at least one
answer; the fetcher keeps each bar once, by time (:mod:`hostd.ib.fetch`). Durations use units whose
length is exact or bounded below (``S`` seconds, ``W`` 7 days, ``M`` ≥ 28 days, ``Y`` ≥ 365 days); ``D``
(the last N *sessions*) is never used, as its span depends on the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass

from ktrdr import timeframes

DAY_S = 86_400

#: timeframe → IB ``barSizeSetting``
BAR_SIZES: dict[str, str] = {
    "1m": "1 min",
    "5m": "5 mins",
    "15m": "15 mins",
    "30m": "30 mins",
    "1h": "1 hour",
    "4h": "4 hours",
    "1d": "1 day",
    "1w": "1 week",
}

#: The longest duration per request, by timeframe: (count, unit).
MAX_DURATION: dict[str, tuple[int, str]] = {
    "1m": (DAY_S, "S"),
    "5m": (1, "W"),
    "15m": (1, "W"),
    "30m": (1, "M"),
    "1h": (1, "M"),
    "4h": (1, "M"),
    "1d": (1, "Y"),
    "1w": (1, "Y"),
}

#: The fewest seconds one unit of a duration covers (a month is at least 28 days, a year 365).
_UNIT_MIN_S = {"S": 1, "W": 7 * DAY_S, "M": 28 * DAY_S, "Y": 365 * DAY_S}


@dataclass(frozen=True)
class Request:
    """One historical-data request: ask for ``duration`` ending at ``end_s``; its bars belong to the
    fetch when they lie in ``[core_start_s, core_end_s)`` (UTC epoch seconds)."""

    core_start_s: int
    core_end_s: int
    end_s: int
    duration: str


def bar_size(timeframe: str) -> str:
    """IB's ``barSizeSetting`` for a timeframe; :class:`ktrdr.timeframes.TimeframeError` if unknown."""
    return BAR_SIZES[timeframes.parse(timeframe).text]


def plan(timeframe: str, start_s: int, end_s: int) -> list[Request]:
    """Requests covering ``[start_s, end_s)`` oldest first (empty when ``start_s >= end_s``)."""
    tf = timeframes.parse(timeframe)
    margin_s = int(tf.seconds)
    count, unit = MAX_DURATION[tf.text]
    reach_s = count * _UNIT_MIN_S[unit]
    step_s = reach_s - 2 * margin_s
    if step_s <= 0:
        raise ValueError(f"{timeframe}: the duration limit {count} {unit} is shorter than three bars")
    requests: list[Request] = []
    core_end = end_s
    while core_end > start_s:
        core_start = max(start_s, core_end - step_s)
        request_end = core_end + margin_s
        duration = f"{request_end - (core_start - margin_s)} S" if unit == "S" else f"{count} {unit}"
        requests.append(Request(core_start, core_end, request_end, duration))
        core_end = core_start
    requests.reverse()
    return requests
