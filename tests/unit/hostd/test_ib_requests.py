"""Splitting a range into IB historical requests: contiguous cores covering the range, each request
within IB's duration limit for its bar size and reaching a bar beyond its core on both sides."""

from __future__ import annotations

import itertools

import pytest

from hostd.ib import requests
from ktrdr import timeframes

START = 1_704_153_600  # 2024-01-02 00:00 UTC
UNIT_S = {"S": 1, "W": 7 * 86_400, "M": 28 * 86_400, "Y": 365 * 86_400}


@pytest.mark.parametrize("timeframe", list(requests.BAR_SIZES))
@pytest.mark.parametrize("days", [0.5, 3, 40, 800])
def test_plan_covers_the_range_within_the_limits(timeframe: str, days: float) -> None:
    end = START + int(days * 86_400)
    plan = requests.plan(timeframe, START, end)
    assert plan[0].core_start_s == START and plan[-1].core_end_s == end
    for before, after in itertools.pairwise(plan):
        assert before.core_end_s == after.core_start_s
    bar = int(timeframes.parse(timeframe).seconds)
    limit_count, limit_unit = requests.MAX_DURATION[timeframe]
    for item in plan:
        count, unit = item.duration.split()
        assert unit == limit_unit and int(count) <= limit_count
        reach = int(count) * UNIT_S[unit]
        assert item.end_s == item.core_end_s + bar
        assert item.end_s - reach <= item.core_start_s - bar  # one bar of overlap before the core


def test_minute_bars_take_one_day_per_request() -> None:
    plan = requests.plan("1m", START, START + 3 * 86_400)
    assert len(plan) == 4  # 3 days, minus the two-bar overlap per request
    assert requests.plan("1m", START, START) == []


def test_unknown_timeframe_is_refused() -> None:
    with pytest.raises(timeframes.TimeframeError, match="2h"):
        requests.bar_size("2h")
