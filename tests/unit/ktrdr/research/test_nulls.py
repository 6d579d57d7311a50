"""Null data for the null control: the data's own volatility, no path; placement of the real result."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.research.nulls import null_bars, place, worker_plan
from ktrdr.research.synthetic import gbm_bars


@pytest.fixture(scope="module")
def real():
    return gbm_bars("AAA", "1h", "2023-01-01", "2023-04-01", seed=9, sigma=0.3, mu=0.5)


def test_random_walk_keeps_times_and_volatility_but_not_the_path(real):
    a, b = null_bars(real, "random_walk", 1, 24), null_bars(real, "random_walk", 2, 24)
    assert np.array_equal(a.time, real.time) and a.close[0] == real.close[0]
    real_sd = np.diff(np.log(real.close)).std()
    assert np.diff(np.log(a.close)).std() == pytest.approx(real_sd, rel=0.05)
    assert not np.array_equal(a.close, b.close) and not np.array_equal(a.close, real.close)
    np.testing.assert_array_equal(a.open[1:], a.close[:-1])  # each bar opens at the previous close


def test_block_shuffle_keeps_the_returns_in_blocks_of_the_given_length(real):
    shuffled = null_bars(real, "block_shuffle", 3, 24)
    ret, new = np.diff(np.log(real.close)), np.diff(np.log(shuffled.close))
    np.testing.assert_allclose(np.sort(new), np.sort(ret), rtol=1e-9, atol=1e-12)
    first_block = new[:24]
    starts = [s for s in range(0, ret.size - 23, 24) if np.allclose(ret[s : s + 24], first_block, atol=1e-12)]
    assert len(starts) == 1  # the first 24 returns are one whole block of the real series
    assert not np.allclose(new, ret)
    with pytest.raises(ValueError, match="unknown null kind"):
        null_bars(real, "bootstrap", 0, 24)


def test_worker_plan_shares_the_cores():
    assert worker_plan(runs=10, jobs=4, threads=8) == (4, 2)
    assert worker_plan(runs=2, jobs=8, threads=2) == (2, 1)
    assert worker_plan(runs=10, jobs=1, threads=1) == (1, 1)


def test_placement_is_the_empirical_quantile():
    runs = [
        {"kind": "random_walk", "mean_return": r, "accuracy_edge": 0.1, "significant": False}
        for r in (-0.02, -0.01, 0.0, 0.01)
    ] + [{"kind": "block_shuffle", "error": "degenerate"}]
    placed = place({"mean_return": 0.0, "accuracy_edge": 0.2}, runs)
    rw = placed["random_walk"]
    assert rw["runs"] == 4 and rw["mean_return"]["quantile"] == pytest.approx(2.5 / 4)
    assert rw["accuracy_edge"]["quantile"] == 1.0 and rw["mean_return"]["null_median"] == pytest.approx(
        -0.005
    )
    assert placed["block_shuffle"] == {
        "runs": 0,
        "failed": 1,
        "mean_return": {"real": 0.0, "null_median": None, "null_max": None, "quantile": None},
        "accuracy_edge": {"real": 0.2, "null_median": None, "null_max": None, "quantile": None},
        "null_significant": 0,
    }
