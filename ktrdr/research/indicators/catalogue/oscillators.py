"""Bounded and unbounded momentum oscillators: RSI, Stochastic, Williams %R, CCI, MFI, ROC, Momentum,
Relative Vigor Index, Fisher transform."""

from __future__ import annotations

import numpy as np

from ktrdr.research.bars import Bars
from ktrdr.research.indicators import kernels as k
from ktrdr.research.indicators.catalogue._common import define, period, price, source_param


def _rsi(bars: Bars, period: int, source: str) -> dict[str, np.ndarray]:
    """Wilder's RSI: ``100 * G / (G + L)`` with G, L the Wilder-smoothed gains and losses, seeded
    with the simple average of the first ``period`` changes (first value at bar ``period``).

    Where both averages are 0 (a flat stretch) the RSI is 50, the neutral value; TA-Lib reports 0.
    """
    x = price(bars, source)
    change = np.full(x.shape[0], np.nan)
    change[1:] = np.diff(x)
    gain = k.wilder(np.maximum(change, 0.0), period)  # NaN at bar 0 propagates
    loss = k.wilder(np.maximum(-change, 0.0), period)
    return {"value": 100.0 * k.safe_ratio(gain, gain + loss, 0.5)}


def _position_in_range(x: np.ndarray, hh: np.ndarray, ll: np.ndarray) -> np.ndarray:
    """``(x - LL) / (HH - LL)`` in [0, 1]; 0.5 where the range is empty."""
    return k.safe_ratio(x - ll, hh - ll, 0.5)


def _stoch(bars: Bars, k_period: int, d_period: int, smooth_k: int, source: str) -> dict[str, np.ndarray]:
    """Stochastic oscillator. Raw %K = 100 * (price - LL) / (HH - LL) over ``k_period`` bars of
    high/low; %K = SMA(raw, smooth_k) (``smooth_k = 1`` gives the fast stochastic); %D = SMA(%K,
    d_period). Matches TA-Lib's STOCH with SMA smoothing. Where the range is empty (HH == LL), raw
    %K is 50, the middle of the range; TA-Lib reports 0.
    """
    raw = 100.0 * _position_in_range(
        price(bars, source), k.rolling_max(bars.high, k_period), k.rolling_min(bars.low, k_period)
    )
    slow_k = _sma_after(raw, smooth_k)
    return {"k": slow_k, "d": _sma_after(slow_k, d_period)}


def _sma_after(x: np.ndarray, n: int) -> np.ndarray:
    """Rolling mean of ``x`` starting where ``x`` becomes defined."""
    out = np.full(x.shape[0], np.nan)
    start = k.first_valid(x)
    out[start:] = k.rolling_mean(x[start:], n)
    return out


def _williams_r(bars: Bars, period: int) -> dict[str, np.ndarray]:
    """Williams %R = -100 * (HH - close) / (HH - LL) over ``period`` bars, in [-100, 0]; -50 where
    the range is empty (TA-Lib reports 0)."""
    pos = _position_in_range(bars.close, k.rolling_max(bars.high, period), k.rolling_min(bars.low, period))
    return {"value": 100.0 * (pos - 1.0)}


def _cci(bars: Bars, period: int) -> dict[str, np.ndarray]:
    """Commodity Channel Index: ``(TP - SMA(TP)) / (0.015 * mean |TP - SMA(TP)|)`` over ``period``
    bars of the typical price TP = (H + L + C) / 3; 0 where the mean deviation is 0 (as TA-Lib)."""
    tp = price(bars, "hlc3")
    n = tp.shape[0]
    mean = k.rolling_mean(tp, period)
    mad = np.full(n, np.nan)
    if n >= period:
        # One pass per lag over whole arrays: no (n, period) temporary.
        m = n - period + 1
        centre = mean[period - 1 :]
        total = np.zeros(m)
        dev = np.empty(m)
        for lag in range(period):
            np.subtract(tp[lag : lag + m], centre, out=dev)
            np.abs(dev, out=dev)
            total += dev
        np.divide(total, period, out=mad[period - 1 :])
    return {"value": k.safe_ratio(tp - mean, 0.015 * mad, 0.0)}


#: Relative dead zone under which two typical prices tie (TA-Lib's MFI rule).
_TIE_RELATIVE = 1e-14


def _mfi(bars: Bars, period: int) -> dict[str, np.ndarray]:
    """Money Flow Index: ``100 * P / (P + N)`` with P (N) the sum over the last ``period`` bars of
    TP * volume on bars whose typical price rose (fell). 50 where there was no money flow at all
    (TA-Lib reports 0 whenever P + N < 1).

    Ties as TA-Lib treats them: a change of the typical price counts as none when
    ``|TP_t - TP_t-1| <= 1e-14 * (|TP_t| + |TP_t-1|)``. On quoted prices (EURUSD to 5 decimals) two
    bars whose (H + L + C) / 3 are equal on paper often differ in the last binary digit; without
    the dead zone such a bar's flow lands on one side at random."""
    tp = price(bars, "hlc3")
    flow = tp * bars.volume
    change = np.diff(tp)
    moved = np.abs(change) > _TIE_RELATIVE * (np.abs(tp[1:]) + np.abs(tp[:-1]))
    up = np.zeros(tp.shape[0])
    down = np.zeros(tp.shape[0])
    up[1:] = np.where(moved & (change > 0), flow[1:], 0.0)
    down[1:] = np.where(moved & (change < 0), flow[1:], 0.0)
    pos = k.rolling_sum(up, period)  # defined from bar period: flows t-period+1..t
    neg = k.rolling_sum(down, period)
    return {"value": 100.0 * k.safe_ratio(pos, pos + neg, 0.5)}


def _changes(bars: Bars, period: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    x = price(bars, source)
    return x, k.lag(x, period)


def _roc(bars: Bars, period: int, source: str) -> dict[str, np.ndarray]:
    """Rate of change in percent: ``100 * (P - P[t-period]) / P[t-period]``; 0 where the old price is 0."""
    x, old = _changes(bars, period, source)
    return {"value": 100.0 * k.safe_ratio(x - old, old, 0.0)}


def _momentum(bars: Bars, period: int, source: str) -> dict[str, np.ndarray]:
    """Momentum: ``P - P[t-period]``."""
    x, old = _changes(bars, period, source)
    return {"value": x - old}


def _weighted_4(x: np.ndarray) -> np.ndarray:
    """``(x[t] + 2 x[t-1] + 2 x[t-2] + x[t-3]) / 6``; NaN for the first 3 bars."""
    return (x + 2.0 * k.lag(x, 1) + 2.0 * k.lag(x, 2) + k.lag(x, 3)) / 6.0


def _rvi(bars: Bars, period: int, signal_period: int) -> dict[str, np.ndarray]:
    """Relative Vigor Index: the ``period``-bar mean of the (1, 2, 2, 1)/6-weighted close − open over
    the same mean of high − low (0 where the bars have no range); signal = its ``signal_period``-bar
    simple average (the predecessor's definition)."""
    num = _sma_after(_weighted_4(bars.close - bars.open), period)
    den = _sma_after(_weighted_4(bars.high - bars.low), period)
    rvi = k.safe_ratio(num, den, 0.0)
    return {"value": rvi, "signal": _sma_after(rvi, signal_period)}


#: The Fisher transform's input is clipped to ±this, so the logarithm stays finite.
_FISHER_CLIP = 0.999


def _fisher_transform(bars: Bars, period: int, smoothing: int) -> dict[str, np.ndarray]:
    """Fisher transform of the median price's position in its ``period``-bar high/low range:
    x = 2 (position − 0.5) clipped to ±0.999 (0 for an empty range), F = ½ ln((1 + x)/(1 − x)),
    smoothed by an EMA of ``smoothing`` bars (SMA-seeded); trigger = the previous bar's value."""
    hh, ll = k.rolling_max(bars.high, period), k.rolling_min(bars.low, period)
    x = np.clip(
        2.0 * _position_in_range((bars.high + bars.low) / 2.0, hh, ll) - 1.0, -_FISHER_CLIP, _FISHER_CLIP
    )
    fisher = k.ema(0.5 * np.log((1.0 + x) / (1.0 - x)), smoothing)
    return {"value": fisher, "trigger": k.lag(fisher, 1)}


define(
    "rsi", _rsi, (period(14), source_param()), ("value",), lambda p: p["period"], aliases=("RSIIndicator",)
)
define(
    "stoch",
    _stoch,
    (
        period(14, "k_period", aliases=("fastk_period",)),
        period(3, "d_period", aliases=("slowd_period",)),
        period(3, "smooth_k", aliases=("slowk_period", "slowing")),
        source_param(),
    ),
    ("k", "d"),
    lambda p: p["k_period"] + p["smooth_k"] + p["d_period"] - 3,
    aliases=("stochastic", "stochastic_oscillator"),
)
define(
    "williams_r",
    _williams_r,
    (period(14),),
    ("value",),
    lambda p: p["period"] - 1,
    aliases=("willr", "williams_percent_r"),
)
define(
    "cci",
    _cci,
    (period(20, minimum=2),),
    ("value",),
    lambda p: p["period"] - 1,
    aliases=("commodity_channel_index",),
)
define("mfi", _mfi, (period(14),), ("value",), lambda p: p["period"], aliases=("money_flow_index",))
define(
    "roc", _roc, (period(10), source_param()), ("value",), lambda p: p["period"], aliases=("rate_of_change",)
)
define(
    "momentum", _momentum, (period(10), source_param()), ("value",), lambda p: p["period"], aliases=("mom",)
)
define(
    "rvi",
    _rvi,
    (period(10), period(4, "signal_period")),
    ("value", "signal"),
    lambda p: 3 + p["period"] - 1 + p["signal_period"] - 1,
    aliases=("relative_vigor_index",),
)
define(
    "fisher_transform",
    _fisher_transform,
    (period(10), period(3, "smoothing")),
    ("value", "trigger"),
    lambda p: p["period"] - 1 + p["smoothing"],
    aliases=("fisher",),
)
