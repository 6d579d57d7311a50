"""Bars validation: every bad series is refused with the source, row and problem named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr.research.bars import Bars, BarsError, find_file, read_file
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
