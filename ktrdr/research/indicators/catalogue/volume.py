"""Volume-based indicators: OBV, accumulation/distribution line, Chaikin money flow, VWAP, volume
ratio, volume SMA."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ktrdr.research.bars import Bars
from ktrdr.research.indicators import kernels as k
from ktrdr.research.indicators.catalogue._common import define, period, price, source_param
from ktrdr.research.indicators.registry import IndicatorParamError, Param


def _obv(bars: Bars) -> dict[str, np.ndarray]:
    """On-balance volume: starts at bar 0's volume (as TA-Lib), then adds the volume of each bar
    that closed up, subtracts it on a down close, and is unchanged on an equal close."""
    c, v = bars.close, bars.volume
    step = np.empty(c.shape[0])
    step[:1] = v[:1]
    step[1:] = np.sign(c[1:] - c[:-1]) * v[1:]
    return {"value": k.linear_filter(step, 1.0)}


def _money_flow_volume(bars: Bars) -> np.ndarray:
    """Close location in the bar's range, ((C - L) - (H - C)) / (H - L) in [-1, 1] (0 for a bar
    with no range), times the bar's volume."""
    h, lo, c = bars.high, bars.low, bars.close
    return k.safe_ratio((c - lo) - (h - c), h - lo, 0.0) * bars.volume


def _ad_line(bars: Bars, use_sma_smoothing: bool, smoothing_period: int) -> dict[str, np.ndarray]:
    """Accumulation/distribution line: running sum of the money-flow volume from bar 0 (TA-Lib's
    AD); with ``use_sma_smoothing``, its ``smoothing_period``-bar simple average."""
    line = k.linear_filter(_money_flow_volume(bars), 1.0)
    return {"value": k.rolling_mean(line, smoothing_period) if use_sma_smoothing else line}


def _cmf(bars: Bars, period: int) -> dict[str, np.ndarray]:
    """Chaikin money flow: sum of the money-flow volume over ``period`` bars / their volume, in
    [-1, 1]; 0 where the window traded no volume."""
    flow = k.rolling_sum(_money_flow_volume(bars), period)
    return {
        "value": k.safe_ratio(flow, k.rolling_sum(np.asarray(bars.volume, dtype=np.float64), period), 0.0)
    }


def _volume_sma(bars: Bars, period: int) -> dict[str, np.ndarray]:
    """Simple moving average of the volume over ``period`` bars (in volume units)."""
    return {"value": k.rolling_mean(np.asarray(bars.volume, dtype=np.float64), period)}


def _vwap(bars: Bars, period: int, source: str, use_typical_price: bool) -> dict[str, np.ndarray]:
    """Volume-weighted average price of ``source`` (default the typical price) over the last
    ``period`` bars, or since bar 0 when ``period`` is 0; ``use_typical_price: false`` (the
    predecessor's spelling) weights the close instead. There are no session resets: bars carry no
    session calendar. Where the window traded no volume, the plain mean price of the window."""
    x = price(bars, source if use_typical_price else "close")
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


def _vwap_check(p: Mapping[str, Any]) -> None:
    if not p["use_typical_price"] and p["source"] not in ("hlc3", "close"):
        raise IndicatorParamError(
            f"vwap: use_typical_price false weights the close; it contradicts source {p['source']!r} "
            "(give one of them)"
        )


define(
    "ad_line",
    _ad_line,
    (
        Param("use_sma_smoothing", bool, False, doc="smooth the line with an SMA"),
        period(21, "smoothing_period"),
    ),
    ("value",),
    lambda p: p["smoothing_period"] - 1 if p["use_sma_smoothing"] else 0,
    aliases=("accumulation_distribution",),
)
define(
    "cmf",
    _cmf,
    (period(21),),
    ("value",),
    lambda p: p["period"] - 1,
    aliases=("chaikin_money_flow",),
)
define(
    "vwap",
    _vwap,
    (
        period(20, minimum=0),
        source_param("hlc3"),
        Param("use_typical_price", bool, True, doc="false: weight the close instead of source"),
    ),
    ("value",),
    lambda p: max(p["period"] - 1, 0),
    aliases=("volume_weighted_average_price",),
    check=_vwap_check,
)
define(
    "volume_ratio",
    _volume_ratio,
    (period(20),),
    ("value",),
    lambda p: p["period"] - 1,
    aliases=("relative_volume",),
)
define("volume_sma", _volume_sma, (period(20),), ("value",), lambda p: p["period"] - 1)
