"""Volatility and channels: ATR, Bollinger Bands and their width, Donchian channels, Keltner channels,
the squeeze intensity of Bollinger inside Keltner."""

from __future__ import annotations

import numpy as np

from ktrdr.research.bars import Bars
from ktrdr.research.indicators import kernels as k
from ktrdr.research.indicators.catalogue._common import define, inert_flag, period, price, source_param
from ktrdr.research.indicators.registry import Param


def atr(bars: Bars, n: int) -> np.ndarray:
    """Average true range: Wilder's smoothing of the true range, seeded with the mean of the first
    ``n`` true ranges (bars 1..n); first value at bar ``n`` (TA-Lib's ATR). The predecessor used a
    simple rolling mean; Wilder's definition is the standard one."""
    return k.wilder(k.true_range(bars.high, bars.low, bars.close), n)


def _atr(bars: Bars, period: int) -> dict[str, np.ndarray]:
    return {"value": atr(bars, period)}


_atr.__doc__ = atr.__doc__


def _bbands(bars: Bars, period: int, std_dev: float, source: str) -> dict[str, np.ndarray]:
    """Bollinger Bands: middle = SMA(period); upper/lower = middle ± std_dev * σ, σ the *population*
    standard deviation of the window (as Bollinger and TA-Lib; the predecessor used the sample σ).
    width = (upper - lower) / middle (0 where middle is 0); percent_b = (price - lower) /
    (upper - lower) (0.5 where the bands coincide)."""
    x = price(bars, source)
    middle, sigma = k.rolling_mean_std(x, period)
    upper = middle + std_dev * sigma
    lower = middle - std_dev * sigma
    return {
        "upper": upper,
        "middle": middle,
        "lower": lower,
        "width": k.safe_ratio(upper - lower, middle, 0.0),
        "percent_b": k.safe_ratio(x - lower, upper - lower, 0.5),
    }


def _bb_width(bars: Bars, period: int, std_dev: float, source: str) -> dict[str, np.ndarray]:
    """Bollinger band width on its own: (upper - lower) / middle of :func:`_bbands` (0 where the
    middle band is 0); the predecessor's BollingerBandWidth."""
    return {"value": _bbands(bars, period, std_dev, source)["width"]}


def _squeeze_intensity(
    bars: Bars, bb_period: int, bb_multiplier: float, kc_period: int, kc_multiplier: float, source: str
) -> dict[str, np.ndarray]:
    """How far the Bollinger bands sit inside the Keltner channel, in [0, 1]: the smaller of
    (KC upper - BB upper) and (BB lower - KC lower), over the channel's width, floored at 0. 0 when
    the bands poke out of the channel (no squeeze) or the channel has no width. Bollinger: SMA and
    population σ over ``bb_period``; Keltner: EMA over ``kc_period`` ± ``kc_multiplier`` × Wilder's
    ATR over ``kc_period``."""
    bb = _bbands(bars, bb_period, bb_multiplier, source)
    kc = _keltner(bars, kc_period, kc_period, kc_multiplier, source)
    span = kc["upper"] - kc["lower"]
    room = np.minimum(kc["upper"] - bb["upper"], bb["lower"] - kc["lower"])
    return {"value": np.maximum(k.safe_ratio(room, span, 0.0), 0.0)}


def _donchian(bars: Bars, period: int) -> dict[str, np.ndarray]:
    """Donchian channel over the last ``period`` bars including the current one: upper = highest
    high, lower = lowest low, middle = their mean."""
    upper = k.rolling_max(bars.high, period)
    lower = k.rolling_min(bars.low, period)
    return {"upper": upper, "middle": (upper + lower) / 2.0, "lower": lower}


def _keltner(
    bars: Bars, period: int, atr_period: int, multiplier: float, source: str
) -> dict[str, np.ndarray]:
    """Keltner channel: middle = EMA(price, period); upper/lower = middle ± multiplier * ATR(atr_period)
    (Wilder's ATR)."""
    middle = k.ema(price(bars, source), period)
    band = multiplier * atr(bars, atr_period)
    return {"upper": middle + band, "middle": middle, "lower": middle - band}


_STD = Param(
    "std_dev",
    float,
    2.0,
    minimum=0.0,
    maximum=100.0,
    aliases=("multiplier", "nbdev", "num_std"),
    doc="band half-width in standard deviations",
)

define("atr", _atr, (period(14),), ("value",), lambda p: p["period"], aliases=("average_true_range",))
define(
    "bbands",
    _bbands,
    (period(20, minimum=2), _STD, source_param()),
    ("upper", "middle", "lower", "width", "percent_b"),
    lambda p: p["period"] - 1,
    aliases=("bollinger_bands", "bollinger"),
)
define(
    "bb_width",
    _bb_width,
    (period(20, minimum=2), _STD, source_param()),
    ("value",),
    lambda p: p["period"] - 1,
    aliases=("bollinger_band_width", "bbw"),
)
define(
    "donchian",
    _donchian,
    (period(20), inert_flag("include_middle", True, "the middle line is always an output")),
    ("upper", "middle", "lower"),
    lambda p: p["period"] - 1,
    aliases=("donchian_channels", "DonchianChannel"),
)
define(
    "keltner",
    _keltner,
    (
        period(20),
        period(10, "atr_period"),
        Param("multiplier", float, 2.0, minimum=0.0, maximum=100.0, doc="band half-width in ATRs"),
        source_param(),
    ),
    ("upper", "middle", "lower"),
    lambda p: max(p["period"] - 1, p["atr_period"]),
    aliases=("keltner_channels", "KeltnerChannel"),
)
define(
    "squeeze_intensity",
    _squeeze_intensity,
    (
        period(20, "bb_period", minimum=2),
        Param("bb_multiplier", float, 2.0, minimum=0.0, maximum=100.0, doc="Bollinger half-width in σ"),
        period(20, "kc_period"),
        Param("kc_multiplier", float, 2.0, minimum=0.0, maximum=100.0, doc="Keltner half-width in ATRs"),
        source_param(),
    ),
    ("value",),
    lambda p: max(p["bb_period"] - 1, p["kc_period"]),
    aliases=("squeeze",),
)
