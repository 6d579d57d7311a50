"""Bars validation: every bad series is refused with the source, row and problem named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr.research.bars import Bars, BarsError, find_file, read_file, resample
from ktrdr.research.synthetic import random_walk
from ktrdr.timeframes import TimeframeError

H = 3600 * 10**9


def arrays(n=4):
    t = np.arange(n, dtype=np.int64) * H
    o = np.array([10.0, 11, 12, 13][:n])
    c = o + 0.5
    return t, o, c + 0.5, o - 0.5, c, np.full(n, 100.0)


def make(t, o, h, lo, c, v, tf="1h"):
    return Bars.from_arrays("X", tf, t, o, h, lo, c, v, source="x.csv")


def test_valid_bars_are_read_only_and_close_one_duration_after_open():
    b = make(*arrays())
    assert len(b) == 4
    np.testing.assert_array_equal(b.close_time, b.time + H)
    with pytest.raises(ValueError):
        b.close[0] = 1.0
    assert b.between(H, 3 * H).time.tolist() == [H, 2 * H]
    assert b.digest() == make(*arrays()).digest() != b.slice(0, 3).digest()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a[0].__setitem__(2, 0), r"x.csv: row 2: timestamp 1970-01-01T00:00:00Z is unsorted"),
        (lambda a: a[0].__setitem__(2, H), r"x.csv: row 2: timestamp 1970-01-01T01:00:00Z is duplicated"),
        (lambda a: a[4].__setitem__(1, np.nan), r"x.csv: row 1 \(1970-01-01T01:00:00Z\): close is nan"),
        (lambda a: a[1].__setitem__(3, np.inf), r"row 3 .*: open is inf"),
        (lambda a: a[5].__setitem__(0, -1.0), r"row 0 .*: volume is -1.0"),
        (
            lambda a: (a[2].__setitem__(1, 9.0), a[3].__setitem__(1, 10.0)),
            r"row 1 .*inconsistent OHLC .*high 9.0, low 10.0",
        ),
        (lambda a: a[2].__setitem__(0, 10.2), r"row 0 .*inconsistent OHLC .*close 10.5.*outside the range"),
    ],
)
def test_bad_bars_are_refused_with_row_and_problem(mutate, message):
    a = [x.copy() for x in arrays()]
    mutate(a)
    with pytest.raises(BarsError, match=message):
        make(*a)


def test_mismatched_lengths_and_unknown_timeframe():
    t, o, h, lo, c, v = arrays()
    with pytest.raises(BarsError, match="columns have different lengths"):
        make(t, o[:3], h, lo, c, v)
    with pytest.raises(TimeframeError, match="unknown timeframe '2h'"):
        make(t, o, h, lo, c, v, tf="2h")


def test_csv_round_trip_and_errors(tmp_path):
    b = make(*arrays())
    p = tmp_path / "X_1h.csv"
    b.to_frame().to_csv(p)
    assert find_file(tmp_path, "X", "1h") == p
    got = read_file(p, "X", "1h")
    np.testing.assert_array_equal(got.time, b.time)
    np.testing.assert_array_equal(got.close, b.close)
    df = b.to_frame()
    df.iloc[[0, 1]] = df.iloc[[1, 0]].to_numpy()
    df.index = df.index[[1, 0, 2, 3]]
    df.to_csv(p)
    with pytest.raises(BarsError, match=r"X_1h.csv: row 1: .* is unsorted"):
        read_file(p, "X", "1h")
    b.to_frame().drop(columns="volume").to_csv(p)
    with pytest.raises(BarsError, match=r"missing column.* volume"):
        read_file(p, "X", "1h")
    pd.DataFrame({"open": [1.0]}, index=["not a date"]).to_csv(p)
    with pytest.raises(BarsError, match="first column must be ISO-8601"):
        read_file(p, "X", "1h")
    with pytest.raises(FileNotFoundError, match="no bars for Y 1h"):
        find_file(tmp_path, "Y", "1h")


def test_from_arrays_leaves_the_callers_arrays_alone():
    t, o, h, lo, c, v = arrays()
    make(t, o, h, lo, c, v)
    assert c.flags.writeable and t.flags.writeable


def test_resample_drops_a_partial_first_bucket_and_the_forming_last_one():
    # 1h bars from Mon 2024-01-01 02:00 to Wed 05:00 (exclusive): day 1 starts mid-bucket, day 3
    # is still forming.
    h = random_walk("X", 51, 3, start="2024-01-01T02:00:00Z")
    day = resample(h, "1d")
    assert [str(np.datetime64(int(t), "ns"))[:10] for t in day.time] == ["2024-01-02"]
    i = int(np.searchsorted(h.time, day.time[0]))
    assert day.open[0] == h.open[i] and day.close[0] == h.close[i + 23]
    assert day.high[0] == h.high[i : i + 24].max() and day.low[0] == h.low[i : i + 24].min()
    assert day.volume[0] == h.volume[i : i + 24].sum()
    forming = resample(h, "1d", keep_forming=True)
    assert len(forming) == 2 and forming.close[-1] == h.close[-1]


def test_resample_weeks_start_on_monday_and_rejects_non_multiples():
    h = random_walk("X", 24 * 21, 4, start="2024-01-01")  # Monday
    week = resample(h, "1w")
    assert len(week) == 3
    assert [pd.Timestamp(t, tz="UTC").day_name() for t in week.time] == ["Monday"] * 3
    with pytest.raises(BarsError, match="not a multiple"):
        resample(resample(h, "4h"), "1h")
