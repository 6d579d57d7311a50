"""Parabolic SAR's chunked computation equals the plain sequential recursion bit for bit.

The lock-step run is checked where its warm-ups converge (a choppy random walk) and where they do
not (long smooth trends, so chunks must be rerun sequentially), at lengths around chunk boundaries.
"""

from __future__ import annotations

import numpy as np
import pytest
import talib

from ktrdr.research.indicators import sar


def _sequential(high: np.ndarray, low: np.ndarray, acc: float, cap: float) -> np.ndarray:
    """The recursion bar by bar, written out plainly (the oracle)."""
    hi, lo = high.tolist(), low.tolist()
    out = [float("nan")] * len(hi)
    down_move = lo[0] - lo[1]
    is_long = not (down_move > 0 and down_move > hi[1] - hi[0])
    af, ep, value = acc, (hi[1] if is_long else lo[1]), (lo[0] if is_long else hi[0])
    for t in range(1, len(hi)):
        p = max(t - 1, 1)
        if is_long and lo[t] <= value:
            is_long, value, ep, af = False, max(ep, hi[p], hi[t]), lo[t], acc
        elif not is_long and hi[t] >= value:
            is_long, value, ep, af = True, min(ep, lo[p], lo[t]), hi[t], acc
        elif is_long and hi[t] > ep:
            ep, af = hi[t], min(af + acc, cap)
        elif not is_long and lo[t] < ep:
            ep, af = lo[t], min(af + acc, cap)
        out[t] = value
        step = value + af * (ep - value)
        value = min(step, lo[p], lo[t]) if is_long else max(step, hi[p], hi[t])
    return np.array(out)


def _series(n: int, trend: float, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = trend * np.sign(np.sin(np.arange(n) / 400.0)) + rng.normal(0.0, noise, n)
    close = 100.0 * np.exp(np.cumsum(steps))
    spread = 1.0 + rng.exponential(noise / 2.0, (2, n))
    return close * spread[0], close / spread[1]


@pytest.mark.parametrize("n", [2, 3, sar.CHUNK, sar.CHUNK + 1, sar.CHUNK + 2, 5 * sar.CHUNK + 7])
@pytest.mark.parametrize(("trend", "noise"), [(0.0, 0.01), (0.004, 0.0005)])
@pytest.mark.parametrize(("acc", "cap"), [(0.02, 0.2), (0.05, 0.3), (0.3, 0.1)])
def test_equals_the_sequential_recursion_bit_for_bit(n, trend, noise, acc, cap):
    high, low = _series(n, trend, noise, seed=n)
    ours = sar.parabolic_sar(high, low, acc, cap)
    np.testing.assert_array_equal(ours, _sequential(high, low, acc, cap))
    if n > 3 and acc <= cap:  # acc > cap: TA-Lib lowers the start to the cap; the indicator refuses it
        np.testing.assert_allclose(ours[1:], talib.SAR(high, low, acc, cap)[1:], rtol=1e-12)


def test_smooth_trends_take_the_sequential_rerun(monkeypatch):
    calls = []
    scalar = sar._scalar
    monkeypatch.setattr(sar, "_scalar", lambda *a: calls.append(a[1]) or scalar(*a))
    high, low = _series(20 * sar.CHUNK, trend=0.004, noise=0.0005, seed=1)
    ours = sar.parabolic_sar(high, low, 0.02, 0.2)
    np.testing.assert_array_equal(ours, _sequential(high, low, 0.02, 0.2))
    assert any(c > 0 for c in calls)  # chunk 0 always runs sequentially; others had to be rerun


def test_the_indicator_refuses_an_acceleration_above_its_maximum():
    from ktrdr.research.indicators import IndicatorParamError, lookup
    from ktrdr.research.synthetic import random_walk

    with pytest.raises(
        IndicatorParamError, match=r"psar: acceleration \(0.3\) must not exceed maximum \(0.1\)"
    ):
        lookup("parabolic_sar")(random_walk("X", 50, 1), acceleration=0.3, maximum=0.1)
