"""Registry behaviour: names, aliases, parameter checking and the errors a strategy author sees."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.research.indicators import IndicatorParamError, UnknownIndicatorError, known_names, lookup
from ktrdr.research.indicators.registry import IndicatorDef, register


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("RSI", "rsi"),
        ("bbands", "bbands"),
        ("bollinger_bands", "bbands"),
        ("BollingerBands", "bbands"),
        ("stoch", "stoch"),
        ("Stochastic", "stoch"),
        ("williams_r", "williams_r"),
        ("WILLR", "williams_r"),
        ("psar", "psar"),
        ("parabolic_sar", "psar"),
        ("ParabolicSAR", "psar"),
        ("keltner_channels", "keltner"),
        ("KeltnerChannels", "keltner"),
        ("donchian_channels", "donchian"),
        ("MACD", "macd"),
        ("distance-from-ma", "distance_from_ma"),
        ("VolumeRatio", "volume_ratio"),
    ],
)
def test_names_are_case_insensitive_and_aliases_resolve(alias, name):
    assert lookup(alias).name == name


def test_known_names_are_canonical_lower_case_and_sorted():
    names = known_names()
    assert names == sorted(names) and all(n == n.lower() for n in names)
    assert {"rsi", "sma", "ema", "macd", "bbands", "stoch", "adx", "ichimoku", "supertrend"} <= set(names)


def test_unknown_indicator_lists_the_known_ones():
    with pytest.raises(UnknownIndicatorError) as err:
        lookup("rsx")
    assert "'rsx'" in str(err.value) and "rsi" in str(err.value) and err.value.known == known_names()
    with pytest.raises(UnknownIndicatorError):
        lookup(14)


def test_reference_strategy_parameters_are_accepted():
    assert lookup("macd").resolve_params(
        {"fast_period": 12, "slow_period": 26, "signal_period": 9, "source": "close"}
    )
    assert lookup("stoch").resolve_params({"k_period": 14, "d_period": 3, "source": "close"})
    assert lookup("bbands").resolve_params({"period": 20, "std_dev": 2})["std_dev"] == 2.0
    assert lookup("BollingerBands").resolve_params({"period": 20, "multiplier": 2.0})["std_dev"] == 2.0
    adx = lookup("adx")
    assert adx.resolve_params({"period": 14, "source": "close"})["source"] == "close"
    assert adx.param_index["source"].inert and not lookup("rsi").param_index["source"].inert


def test_parameter_values_change_the_result(bars):
    rsi = lookup("rsi")
    assert not np.array_equal(rsi(bars, period=14)["value"], rsi(bars, period=7)["value"], equal_nan=True)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("rsi", {"periode": 14}, "unknown parameter 'periode'"),
        ("rsi", {"period": "14"}, "rsi.period: expected a number"),
        ("rsi", {"period": 14.5}, "rsi.period: expected an integer"),
        ("rsi", {"period": True}, "expected a number"),
        ("rsi", {"period": 0}, "rsi.period: must be >= 1"),
        ("rsi", {"period": float("nan")}, "expected a finite number"),
        ("rsi", {"source": "closing"}, "rsi.source: expected one of"),
        ("rsi", {"source": 1}, "rsi.source: expected a string"),
        ("bbands", {"std_dev": -1}, "bbands.std_dev: must be >= 0"),
    ],
)
def test_bad_parameters_are_clear_errors(name, params, message):
    with pytest.raises(IndicatorParamError, match=message.replace(".", r"\.").replace("(", r"\(")):
        lookup(name).resolve_params(params)


def test_macd_fast_must_be_faster_than_slow(bars):
    with pytest.raises(IndicatorParamError, match=r"fast_period \(26\) must be less than slow_period \(12\)"):
        lookup("macd")(bars, fast_period=26, slow_period=12)


def test_a_clashing_registration_registers_nothing():
    clash = IndicatorDef("fresh_name_x", lambda b: {}, (), ("value",), "value", lambda p: 0, aliases=("rsi",))
    with pytest.raises(ValueError, match="already registered by rsi"):
        register(clash)
    with pytest.raises(UnknownIndicatorError):
        lookup("fresh_name_x")


def test_aliases_must_be_a_tuple_of_registered_style_names():
    letters = IndicatorDef("fresh_name_y", lambda b: {}, (), ("value",), "value", lambda p: 0, aliases="ab_c")
    with pytest.raises(ValueError, match="aliases must be a tuple of names, got 'ab_c'"):
        register(letters)
    odd = IndicatorDef("fresh_name_y", lambda b: {}, (), ("value",), "value", lambda p: 0, aliases=("e",))
    with pytest.raises(ValueError, match="indicator name 'e' must match"):
        register(odd)
    with pytest.raises(UnknownIndicatorError):
        lookup("fresh_name_y")


def test_every_registered_name_and_alias_is_a_registered_style_name():
    from ktrdr.research.indicators.registry import NAME_PATTERN

    for name in known_names():
        defn = lookup(name)
        assert isinstance(defn.aliases, tuple)
        for key in (defn.name, *defn.aliases):
            assert NAME_PATTERN.fullmatch(key), (name, key)
    assert lookup("ma_distance").name == "distance_from_ma"
    with pytest.raises(UnknownIndicatorError):
        lookup("e")  # once one letter of the alias string "ma_distance"
