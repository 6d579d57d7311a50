"""The catalogue-wide contract: float64 outputs of len(bars), NaN exactly before warmup(params),
no look-ahead (an indicator on bars[:t] is bit-identical to the full run's first t values)."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.research.indicators import known_names, lookup

# A non-default parameter set per indicator, so prefix/warm-up checks are not only about defaults.
OTHER_PARAMS = {
    "ad_line": {"use_sma_smoothing": True, "smoothing_period": 5},
    "adx": {"period": 9},
    "aroon": {"period": 20},
    "atr": {"period": 7},
    "bb_width": {"period": 10, "std_dev": 3.0},
    "bbands": {"period": 12, "std_dev": 1.5, "source": "hlc3"},
    "cci": {"period": 9},
    "cmf": {"period": 5},
    "distance_from_ma": {"period": 15, "ma_type": "ema"},
    "donchian": {"period": 33},
    "ema": {"period": 50, "source": "ohlc4"},
    "fisher_transform": {"period": 7, "smoothing": 1},
    "ichimoku": {"tenkan": 7, "kijun": 22, "senkou_b": 44, "displacement": 0},
    "keltner": {"period": 10, "atr_period": 25, "multiplier": 1.0},
    "macd": {"fast_period": 8, "slow_period": 21, "signal_period": 5},
    "mfi": {"period": 10},
    "momentum": {"period": 3},
    "obv": {},
    "psar": {"acceleration": 0.03, "maximum": 0.25},
    "roc": {"period": 1},
    "rsi": {"period": 7, "source": "hl2"},
    "rvi": {"period": 6, "signal_period": 2},
    "sma": {"period": 3, "source": "volume"},
    "squeeze_intensity": {"bb_period": 10, "bb_multiplier": 1.5, "kc_period": 14, "kc_multiplier": 1.0},
    "stoch": {"k_period": 9, "d_period": 5, "smooth_k": 1},
    "supertrend": {"period": 7, "multiplier": 2.0},
    "volume_ratio": {"period": 5},
    "volume_sma": {"period": 4},
    "vwap": {"period": 0},
    "williams_r": {"period": 21},
}

CASES = [(n, {}) for n in sorted(OTHER_PARAMS)] + sorted(OTHER_PARAMS.items())


def test_every_indicator_has_a_contract_case():
    assert sorted(OTHER_PARAMS) == known_names()


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_shape_dtype_and_warmup(make_bars, name, params):
    bars = make_bars(700, seed=3)
    defn = lookup(name)
    out = defn(bars, **params)
    assert tuple(out) == defn.outputs and defn.default_output == defn.outputs[0]
    w = defn.warmup(defn.resolve_params(params))
    for key, arr in out.items():
        assert arr.dtype == np.float64 and arr.shape == (len(bars),), key
        defined = np.flatnonzero(~np.isnan(arr))
        assert defined.size and defined[0] == w, (key, defined[:1], w)
        assert not np.isnan(arr[w:]).any(), key


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_prefix_invariance(make_bars, name, params):
    bars = make_bars(700, seed=5)
    defn = lookup(name)
    full = defn(bars, **params)
    for t in (1, 2, 17, 64, 65, 200, 333, 699):
        part = defn(bars.slice(0, t), **params)
        for key in defn.outputs:
            np.testing.assert_array_equal(part[key], full[key][:t], err_msg=f"{name}.{key} t={t}")


@pytest.mark.parametrize("name", sorted(OTHER_PARAMS))
def test_empty_and_short_input_is_all_nan(make_bars, name):
    defn = lookup(name)
    for n in (0, 1):
        bars = make_bars(700).slice(0, n)
        for arr in defn(bars).values():
            assert arr.shape == (n,)
            if n and defn.warmup(defn.resolve_params({})) > 0:
                assert np.isnan(arr).all()


def test_outputs_do_not_alias_the_bars(bars):
    out = lookup("sma")(bars, period=1)["value"]
    out[:] = 0.0  # writable, and the bars are untouched
    assert bars.close[0] != 0.0


def test_supertrend_line_is_on_the_right_side_of_the_close(bars):
    out = lookup("supertrend")(bars)
    ok = ~np.isnan(out["value"])
    up = out["direction"][ok] == 1.0
    close, line = bars.close[ok], out["value"][ok]
    assert set(np.unique(out["direction"][ok])) == {-1.0, 1.0}
    assert (close[up] >= line[up]).all() and (close[~up] <= line[~up]).all()


def test_flat_prices_give_neutral_oscillators(make_bars):
    from ktrdr.research.bars import Bars

    n = 60
    flat = np.full(n, 50.0)
    bars = Bars.from_arrays("F", "1h", np.arange(n, dtype=np.int64), flat, flat, flat, flat, np.zeros(n))
    assert np.nanmax(np.abs(lookup("rsi")(bars)["value"] - 50.0)) == 0.0
    assert np.nanmax(np.abs(lookup("stoch")(bars)["k"] - 50.0)) == 0.0
    assert np.nanmax(np.abs(lookup("williams_r")(bars)["value"] + 50.0)) == 0.0
    assert np.nanmax(np.abs(lookup("mfi")(bars)["value"] - 50.0)) == 0.0
    assert np.nanmax(np.abs(lookup("vwap")(bars)["value"] - 50.0)) == 0.0
    assert np.nanmax(np.abs(lookup("volume_ratio")(bars)["value"] - 1.0)) == 0.0
    assert np.nanmax(np.abs(lookup("bbands")(bars)["percent_b"] - 0.5)) == 0.0


@pytest.mark.parametrize("name", ["ema", "rsi", "macd", "bbands", "adx", "cci", "vwap"])
def test_prefix_invariance_on_a_long_series(make_bars, name):
    bars = make_bars(40_000, seed=11)
    defn = lookup(name)
    full = defn(bars)
    for t in (9_999, 31_337):
        part = defn(bars.slice(0, t))
        for key in defn.outputs:
            np.testing.assert_array_equal(part[key], full[key][:t], err_msg=f"{name}.{key} t={t}")
