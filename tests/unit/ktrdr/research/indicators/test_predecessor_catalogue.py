"""The predecessor's indicators without a TA-Lib counterpart (RVI, Fisher transform, squeeze
intensity), its names for them, and its true/false parameters. Those TA-Lib has (A/D line, CMF,
Bollinger width, volume SMA, VWAP on the close) are in test_against_talib.py."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.research.bars import Bars
from ktrdr.research.indicators import IndicatorParamError, lookup


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("BollingerBandWidth", "bb_width"),
        ("SqueezeIntensity", "squeeze_intensity"),
        ("ChaikinMoneyFlow", "cmf"),
        ("CMF", "cmf"),
        ("ADLine", "ad_line"),
        ("AccumulationDistribution", "ad_line"),
        ("RVI", "rvi"),
        ("FisherTransform", "fisher_transform"),
        ("volume_sma", "volume_sma"),
    ],
)
def test_predecessor_names_resolve(alias: str, name: str) -> None:
    assert lookup(alias).name == name


def test_rvi_by_hand(make_bars) -> None:
    b = make_bars(60, seed=2)
    out = lookup("rvi")(b, period=4, signal_period=3)

    def weighted(x: np.ndarray, t: int) -> float:
        return (x[t] + 2 * x[t - 1] + 2 * x[t - 2] + x[t - 3]) / 6

    co, hl = b.close - b.open, b.high - b.low
    t = 20
    rvi = [
        np.mean([weighted(co, u) for u in range(s - 3, s + 1)])
        / np.mean([weighted(hl, u) for u in range(s - 3, s + 1)])
        for s in (t - 2, t - 1, t)
    ]
    assert out["value"][t] == pytest.approx(rvi[-1], rel=1e-12)
    assert out["signal"][t] == pytest.approx(np.mean(rvi), rel=1e-12)
    assert np.isnan(out["value"][: 3 + 4 + 3 - 2]).all()


def test_fisher_transform_by_hand_and_trigger_is_the_previous_value(make_bars) -> None:
    b = make_bars(80, seed=4)
    out = lookup("fisher_transform")(b, period=5, smoothing=1)  # smoothing 1: no EMA
    t = 30
    hh, ll = b.high[t - 4 : t + 1].max(), b.low[t - 4 : t + 1].min()
    x = 2 * (((b.high[t] + b.low[t]) / 2 - ll) / (hh - ll)) - 1
    assert out["value"][t] == pytest.approx(0.5 * np.log((1 + x) / (1 - x)), rel=1e-12)
    np.testing.assert_array_equal(out["trigger"][t:], out["value"][t - 1 : -1])


def test_fisher_transform_is_finite_at_the_top_of_the_range_and_zero_on_flat_bars() -> None:
    n = 50
    time = np.arange(n, dtype=np.int64) * 3_600_000_000_000
    up = np.arange(100.0, 100.0 + n)  # every bar a new high: the median price tops the range
    rising = Bars.from_arrays("X", "1h", time, up, up + 0.5, up, up + 0.5, np.ones(n))
    top = lookup("fisher_transform")(rising, period=5, smoothing=1)["value"]
    assert np.isnan(top[:5]).all() and (top[5:] > 0).all()
    flat = np.full(n, 100.0)
    still = Bars.from_arrays("X", "1h", time, flat, flat, flat, flat, np.ones(n))
    assert (lookup("fisher_transform")(still, period=5, smoothing=3)["value"][7:] == 0).all()


def test_squeeze_intensity_is_a_fraction_and_zero_when_bands_poke_out(make_bars) -> None:
    b = make_bars(500, seed=6)
    wide = lookup("squeeze_intensity")(b, bb_multiplier=10.0)["value"]
    tight = lookup("squeeze_intensity")(b, bb_multiplier=0.1, kc_multiplier=5.0)["value"]
    w = lookup("squeeze_intensity").warmup(lookup("squeeze_intensity").resolve_params({}))
    assert (wide[w:] == 0).all()  # Bollinger 10 σ wide is never inside Keltner 2 ATR
    assert ((tight[w:] > 0.4) & (tight[w:] <= 0.5)).all()  # thin bands in a wide channel


def test_cmf_is_bounded(make_bars) -> None:
    v = lookup("cmf")(make_bars(400, seed=7))["value"]
    assert (np.abs(v[20:]) <= 1).all()


def test_inert_flags_change_nothing_and_bool_parameters_are_checked(make_bars) -> None:
    b = make_bars(200, seed=8)
    aroon = lookup("aroon")
    np.testing.assert_array_equal(aroon(b)["oscillator"], aroon(b, include_oscillator=False)["oscillator"])
    assert aroon.param_index["include_oscillator"].inert
    assert lookup("donchian").param_index["include_middle"].inert
    with pytest.raises(IndicatorParamError, match=r"vwap.use_typical_price: expected true or false, got 1"):
        lookup("vwap").resolve_params({"use_typical_price": 1})
    with pytest.raises(IndicatorParamError, match="contradicts source 'hl2'"):
        lookup("vwap").resolve_params({"use_typical_price": False, "source": "hl2"})


def test_a_quoted_number_is_named_as_text() -> None:
    with pytest.raises(IndicatorParamError, match=r"expected a number, got '14' \(a quoted number is text"):
        lookup("rsi").resolve_params({"period": "14"})
