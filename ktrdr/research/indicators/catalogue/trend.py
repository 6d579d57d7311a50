"""Trend direction and strength: ADX (+DI, -DI), Aroon, Parabolic SAR, SuperTrend, Ichimoku."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ktrdr.research.bars import Bars
from ktrdr.research.indicators import kernels as k
from ktrdr.research.indicators.catalogue._common import define, inert_flag, period, source_param
from ktrdr.research.indicators.catalogue.volatility import atr
from ktrdr.research.indicators.registry import IndicatorParamError, Param
from ktrdr.research.indicators.sar import parabolic_sar


def _wilder_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder's running sum ``S[t] = S[t-1] - S[t-1]/n + x[t]`` as TA-Lib's DI/ADX start it: ``S[n-1]``
    is the plain sum of ``x[1..n-1]`` (``x[0]`` is undefined); the result is defined from bar ``n``."""
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] > n:
        u = x[n - 1 :].copy()
        u[0] = x[1:n].sum()
        out[n - 1 :] = k.linear_filter(u, 1.0 - 1.0 / n)
        out[n - 1] = np.nan  # a partial sum: the first full value is at bar n
    return out


def _adx(bars: Bars, period: int) -> dict[str, np.ndarray]:
    """Wilder's directional movement. +DM = up-move if it is positive and larger than the down-move,
    else 0 (−DM symmetric); +DI/−DI = 100 * Wilder-sum(DM) / Wilder-sum(TR), from bar ``period``;
    DX = 100 * |+DI − −DI| / (+DI + −DI) (0 when both are 0); ADX = Wilder average of DX seeded with
    the mean of the first ``period`` DX values (first value at bar ``2*period - 1``). Same
    seeding as TA-Lib. ``source`` is accepted for the predecessor's files and has no effect.
    """
    h, lo = bars.high, bars.low
    n = h.shape[0]
    up = np.full(n, np.nan)
    down = np.full(n, np.nan)
    up[1:] = h[1:] - h[:-1]
    down[1:] = lo[:-1] - lo[1:]
    plus_dm = np.where((up > 0) & (up > down), up, 0.0)
    minus_dm = np.where((down > 0) & (down > up), down, 0.0)
    tr = _wilder_sum(k.true_range(h, lo, bars.close), period)
    plus = 100.0 * k.safe_ratio(_wilder_sum(plus_dm, period), tr, 0.0)
    minus = 100.0 * k.safe_ratio(_wilder_sum(minus_dm, period), tr, 0.0)
    dx = 100.0 * k.safe_ratio(np.abs(plus - minus), plus + minus, 0.0)
    return {"adx": k.wilder(dx, period), "plus_di": plus, "minus_di": minus}


def _aroon(bars: Bars, period: int) -> dict[str, np.ndarray]:
    """Aroon over the last ``period + 1`` bars: up = 100 * (period − bars since the highest high) /
    period, down likewise with the lowest low (ties: the most recent bar, as TA-Lib);
    oscillator = up − down."""
    n = bars.high.shape[0]
    up = np.full(n, np.nan)
    down = np.full(n, np.nan)
    if n > period:
        since_high = k.bars_since_extreme(bars.high, period + 1, highest=True)
        since_low = k.bars_since_extreme(bars.low, period + 1, highest=False)
        up[period:] = 100.0 * (period - since_high) / period
        down[period:] = 100.0 * (period - since_low) / period
    return {"up": up, "down": down, "oscillator": up - down}


def _psar_check(p: Mapping[str, Any]) -> None:
    if p["acceleration"] > p["maximum"]:
        raise IndicatorParamError(
            f"psar: acceleration ({p['acceleration']}) must not exceed maximum ({p['maximum']})"
        )


def _psar(bars: Bars, acceleration: float, maximum: float) -> dict[str, np.ndarray]:
    """Wilder's Parabolic SAR with TA-Lib's start: the first trend is short if bar 1 has a positive
    −DM, else long; the first SAR (bar 1) is bar 0's low (long) or high (short). Each bar the SAR
    moves ``af`` of the way to the extreme point, ``af`` grows by ``acceleration`` on each new
    extreme up to ``maximum``, and the SAR never enters the last two bars' range; a bar that crosses
    it reverses the trend with the SAR at the extreme point. Sequential by nature; computed exactly,
    mostly vectorised, by :func:`ktrdr.research.indicators.sar.parabolic_sar`. ``acceleration``
    must not exceed ``maximum`` (:func:`_psar_check`; TA-Lib silently caps it).
    """
    return {"value": parabolic_sar(bars.high, bars.low, acceleration, maximum)}


def _supertrend(bars: Bars, period: int, multiplier: float) -> dict[str, np.ndarray]:
    """SuperTrend on hl2 ± multiplier * ATR(period) (Wilder's ATR). The final upper band only moves
    down (and the lower only up) unless the previous close broke through it; the trend turns up when
    the close rises above the final upper band and down when it falls below the final lower band.
    The first trend (at bar ``period``) is up if the close is at or above hl2. Outputs the active
    band (``value``) and ``direction`` (+1 up, −1 down). Sequential: a loop over bars.
    """
    n = bars.close.shape[0]
    line = np.full(n, np.nan)
    direction = np.full(n, np.nan)
    if n > period:
        mid = (bars.high + bars.low) / 2.0
        band = multiplier * atr(bars, period)
        basic_up = (mid + band)[period:].tolist()
        basic_lo = (mid - band)[period:].tolist()
        close = bars.close[period - 1 :].tolist()  # close[i] is the close of bar period - 1 + i
        f_up, f_lo = basic_up[0], basic_lo[0]
        up = close[1] >= mid[period]
        lines = [f_lo if up else f_up]
        dirs = [1.0 if up else -1.0]
        for i in range(1, n - period):
            prev_close = close[i]
            f_up = basic_up[i] if basic_up[i] < f_up or prev_close > f_up else f_up
            f_lo = basic_lo[i] if basic_lo[i] > f_lo or prev_close < f_lo else f_lo
            c = close[i + 1]
            up = c >= f_lo if up else c > f_up
            lines.append(f_lo if up else f_up)
            dirs.append(1.0 if up else -1.0)
        line[period:] = lines
        direction[period:] = dirs
    return {"value": line, "direction": direction}


def _ichimoku(bars: Bars, tenkan: int, kijun: int, senkou_b: int, displacement: int) -> dict[str, np.ndarray]:
    """Ichimoku: tenkan / kijun = midpoint of the highest high and lowest low over ``tenkan`` /
    ``kijun`` bars; span A = (tenkan + kijun) / 2 and span B = the ``senkou_b``-bar midpoint, both
    *as drawn at the current bar*, i.e. computed ``displacement`` bars earlier (the cloud a chart
    shows over bar t). The lagging span (chikou) is omitted: its value at bar t is a future close.
    """

    def mid(n: int) -> np.ndarray:
        return (k.rolling_max(bars.high, n) + k.rolling_min(bars.low, n)) / 2.0

    conv, base = mid(tenkan), mid(kijun)
    return {
        "tenkan": conv,
        "kijun": base,
        "senkou_a": k.lag((conv + base) / 2.0, displacement),
        "senkou_b": k.lag(mid(senkou_b), displacement),
    }


define(
    "adx",
    _adx,
    (period(14), source_param(inert=True)),
    ("adx", "plus_di", "minus_di"),
    lambda p: 2 * p["period"] - 1,
    aliases=("average_directional_index", "dmi"),
)
define(
    "aroon",
    _aroon,
    (period(14), inert_flag("include_oscillator", True, "the oscillator is always an output")),
    ("oscillator", "up", "down"),
    lambda p: p["period"],
)
define(
    "psar",
    _psar,
    (
        Param(
            "acceleration",
            float,
            0.02,
            minimum=0.0,
            maximum=1.0,
            aliases=("initial_af", "step_af", "af"),
            doc="acceleration factor start and step",
        ),
        Param("maximum", float, 0.2, minimum=0.0, maximum=1.0, aliases=("max_af",), doc="acceleration cap"),
    ),
    ("value",),
    lambda p: 1,
    aliases=("parabolic_sar", "sar"),
    check=_psar_check,
)
define(
    "supertrend",
    _supertrend,
    (period(10), Param("multiplier", float, 3.0, minimum=0.0, maximum=100.0, doc="band half-width in ATRs")),
    ("value", "direction"),
    lambda p: p["period"],
    aliases=("super_trend",),
)
define(
    "ichimoku",
    _ichimoku,
    (
        period(9, "tenkan", aliases=("tenkan_period", "conversion_period")),
        period(26, "kijun", aliases=("kijun_period", "base_period")),
        period(52, "senkou_b", aliases=("senkou_b_period", "senkou_period")),
        period(26, "displacement", minimum=0),
    ),
    ("tenkan", "kijun", "senkou_a", "senkou_b"),
    lambda p: max(p["tenkan"], p["kijun"], p["senkou_b"]) - 1 + p["displacement"],
    aliases=("ichimoku_cloud",),
)
