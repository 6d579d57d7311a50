"""Volume-based indicators: OBV, VWAP, volume ratio."""

from __future__ import annotations

import numpy as np

from ktrdr.research.bars import Bars
from ktrdr.research.indicators import kernels as k
from ktrdr.research.indicators.catalogue._common import define, period, price, source_param


def _obv(bars: Bars) -> dict[str, np.ndarray]:
    """On-balance volume: starts at bar 0's volume (as TA-Lib), then adds the volume of each bar
    that closed up, subtracts it on a down close, and is unchanged on an equal close."""
    c, v = bars.close, bars.volume
    step = np.empty(c.shape[0])
    step[:1] = v[:1]
    step[1:] = np.sign(c[1:] - c[:-1]) * v[1:]
    return {"value": k.linear_filter(step, 1.0)}


def _vwap(bars: Bars, period: int, source: str) -> dict[str, np.ndarray]:
    """Volume-weighted average price of ``source`` (default the typical price) over the last
    ``period`` bars, or since bar 0 when ``period`` is 0. There are no session resets: bars carry no
    session calendar. Where the window traded no volume, the plain mean price of the window."""
    x = price(bars, source)
    v = bars.volume
    if period == 0:
        num, den = k.linear_filter(x * v, 1.0), k.linear_filter(v, 1.0)
        plain = k.linear_filter(x, 1.0) / np.arange(1, x.shape[0] + 1)
    else:
        num, den = k.rolling_sum(x * v, period), k.rolling_sum(v, period)
        plain = k.rolling_mean(x, period)
    return {"value": np.where(den > 0, num / np.where(den > 0, den, 1.0), plain)}


def _volume_ratio(bars: Bars, period: int) -> dict[str, np.ndarray]:
    """Volume relative to its ``period``-bar simple average (current bar included); 1 where the
    average is 0."""
    v = np.asarray(bars.volume, dtype=np.float64)
    return {"value": k.safe_ratio(v, k.rolling_mean(v, period), 1.0)}


define("obv", _obv, (), ("value",), lambda p: 0, aliases=("on_balance_volume",))
define(
    "vwap",
    _vwap,
    (period(20, minimum=0), source_param("hlc3")),
    ("value",),
    lambda p: max(p["period"] - 1, 0),
    aliases=("volume_weighted_average_price",),
)
define(
    "volume_ratio",
    _volume_ratio,
    (period(20),),
    ("value",),
    lambda p: p["period"] - 1,
    aliases=("relative_volume",),
)
