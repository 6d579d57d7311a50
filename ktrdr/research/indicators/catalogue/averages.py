"""Moving averages and what is built from them: SMA, EMA, MACD, distance from a moving average."""

from __future__ import annotations

import numpy as np

from ktrdr.research.bars import Bars
from ktrdr.research.indicators import kernels as k
from ktrdr.research.indicators.catalogue._common import (
    define,
    inert_flag,
    period,
    price,
    require_less,
    source_param,
)
from ktrdr.research.indicators.registry import Param


def _sma(bars: Bars, period: int, source: str) -> dict[str, np.ndarray]:
    """Simple moving average: mean of the last ``period`` prices."""
    return {"value": k.rolling_mean(price(bars, source), period)}


def _ema(bars: Bars, period: int, source: str) -> dict[str, np.ndarray]:
    """Exponential moving average, ``alpha = 2/(period+1)``, seeded with the SMA of the first
    ``period`` prices (TA-Lib's convention). The predecessor used pandas ``ewm(adjust=True)``, which
    weights the first bars differently; the SMA seed is the common textbook definition."""
    return {"value": k.ema(price(bars, source), period)}


def _macd(
    bars: Bars, fast_period: int, slow_period: int, signal_period: int, source: str
) -> dict[str, np.ndarray]:
    """MACD line = EMA(fast) - EMA(slow); signal = EMA(line, signal_period); histogram = line - signal.

    As in TA-Lib, both EMAs start at bar ``slow_period - 1``: the slow EMA is seeded with the mean of
    the first ``slow_period`` prices and the fast EMA with the mean of the ``fast_period`` prices
    ending at that bar, so the two averages describe the same stretch of history from their first
    value. The signal EMA is seeded with the mean of the first ``signal_period`` line values.
    """
    x = price(bars, source)
    start = slow_period - fast_period
    fast = np.full(x.shape[0], np.nan)
    fast[start:] = k.ema(x[start:], fast_period)
    line = fast - k.ema(x, slow_period)
    signal = k.ema(line, signal_period)
    return {"line": line, "signal": signal, "histogram": line - signal}


def _distance_from_ma(bars: Bars, period: int, ma_type: str, source: str) -> dict[str, np.ndarray]:
    """Percentage distance of the price from its moving average: ``100 * (price - MA) / MA``
    (0 where the average is 0)."""
    x = price(bars, source)
    ma = k.rolling_mean(x, period) if ma_type == "sma" else k.ema(x, period)
    return {"value": 100.0 * k.safe_ratio(x - ma, ma, 0.0)}


define(
    "sma",
    _sma,
    (period(20), source_param()),
    ("value",),
    lambda p: p["period"] - 1,
    aliases=("simple_moving_average",),
)
define(
    "ema",
    _ema,
    (
        period(20),
        source_param(),
        inert_flag(
            "adjust", True, "pandas' bias adjustment; the EMA is seeded with the SMA of its first bars"
        ),
    ),
    ("value",),
    lambda p: p["period"] - 1,
    aliases=("exponential_moving_average",),
)
define(
    "macd",
    _macd,
    (
        period(12, "fast_period", aliases=("fast", "fastperiod")),
        period(26, "slow_period", minimum=2, aliases=("slow", "slowperiod")),
        period(9, "signal_period", aliases=("signal", "signalperiod")),
        source_param(),
    ),
    ("line", "signal", "histogram"),
    lambda p: p["slow_period"] + p["signal_period"] - 2,
    aliases=("moving_average_convergence_divergence",),
    check=lambda p: require_less("macd", "fast_period", p["fast_period"], "slow_period", p["slow_period"]),
)
define(
    "distance_from_ma",
    _distance_from_ma,
    (period(20), Param("ma_type", str, "sma", choices=("sma", "ema"), doc="moving average"), source_param()),
    ("value",),
    lambda p: p["period"] - 1,
    aliases=("ma_distance",),
)
