"""The synthetic bar generator used by tests, benches and the demo."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.research.bars import find_file, read_file, resample
from ktrdr.research.synthetic import gbm_bars, write_csv

H = 3600 * 10**9


def test_gbm_is_seeded_continuous_and_valid():
    a = gbm_bars("SYN", "1h", "2024-01-01T00:30:00Z", "2024-01-08", seed=4)
    b = gbm_bars("SYN", "1h", "2024-01-01T00:30:00Z", "2024-01-08", seed=4)
    c = gbm_bars("SYN", "1h", "2024-01-01T00:30:00Z", "2024-01-08", seed=5)
    assert a.digest() == b.digest() != c.digest()
    assert len(a) == 7 * 24 and a.time[0] % H == 0 and np.all(np.diff(a.time) == H)
    assert np.array_equal(a.open[1:], a.close[:-1])


def test_resample_uses_bar_open_stamps_and_complete_buckets():
    h = gbm_bars("SYN", "1h", "2024-01-01T02:00:00Z", "2024-01-03T05:00:00Z", seed=1)
    four = resample(h, "4h")
    # 02:00-03:00 do not fill the 00:00 bucket; 04:00 is the first complete one; the last complete
    # bucket is 2024-01-03T00:00 (04:00 has only one bar).
    assert four.time[0] == h.time[2] and len(four) == (48 - 4) // 4 + 1
    i = 2  # first bar of the first complete bucket
    assert four.open[0] == h.open[i] and four.close[0] == h.close[i + 3]
    assert four.high[0] == h.high[i : i + 4].max() and four.low[0] == h.low[i : i + 4].min()
    assert four.volume[0] == h.volume[i : i + 4].sum()
    day = resample(h, "1d")
    assert (
        len(day) == 1
        and day.time[0] % (24 * H) == 0
        and day.close[0] == h.close[h.time < day.time[0] + 24 * H][-1]
    )
    with pytest.raises(ValueError, match="not a multiple"):
        resample(four, "1h")


def test_csv_round_trip_is_exact(tmp_path):
    a = gbm_bars("SYN", "4h", "2024-01-01", "2024-02-01", seed=2)
    write_csv(a, tmp_path)
    assert read_file(find_file(tmp_path, "SYN", "4h"), "SYN", "4h").digest() == a.digest()
