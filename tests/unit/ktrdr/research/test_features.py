"""The feature builder: names and order, values, lags, look-ahead-free alignment, spec persistence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrdr.research.bars import Bars, resample
from ktrdr.research.features import (
    FeatureError,
    FeatureSpec,
    FeatureSpecMismatch,
    build_features,
    feature_spec,
)
from ktrdr.research.fuzzy import memberships
from ktrdr.research.indicators import lookup
from ktrdr.research.synthetic import random_walk
from ktrdr.strategy import load_strategy_file
from ktrdr.strategy.model import DataSpec, FuzzyInputSpec, IndicatorSpec, MembershipSpec
from tests.support.paths import STRATEGIES
from tests.support.tinystrategy import RSI_SETS, make_strategy

NMR = STRATEGIES / "neuro_mean_reversion.yaml"
HOUR = 3600 * 10**9


def mtf_data(n_hours: int, seed: int, tfs=("1h", "4h", "1d")) -> dict[str, Bars]:
    base = random_walk("AAA", n_hours, seed)
    return {tf: base if tf == "1h" else resample(base, tf) for tf in tfs}


def test_single_timeframe_names_order_values_and_lags():
    s = make_strategy(lookback=2)
    bars = random_walk("AAA", 300, 1)
    fm = build_features(s, {"1h": bars})
    cur = ["rsi_oversold", "rsi_neutral", "rsi_overbought"]
    assert fm.spec.names == cur + [f"{c}_lag_1" for c in cur] + [f"{c}_lag_2" for c in cur]
    assert fm.values.dtype == np.float32 and fm.values.shape == (300, 9)
    np.testing.assert_array_equal(fm.time, bars.time)
    want = memberships(RSI_SETS, lookup("rsi")(bars, period=14)["value"]).astype(np.float32)
    np.testing.assert_array_equal(fm.values[:, :3], want)
    np.testing.assert_array_equal(fm.values[2:, 3:6], want[1:-1])
    np.testing.assert_array_equal(fm.values[2:, 6:9], want[:-2])
    # valid iff every column is finite: RSI 14 defined from bar 14, lag 2 → first valid row 16.
    assert not fm.valid[:16].any() and fm.valid[16:].all()
    assert np.isnan(fm.values[:16]).any(axis=1).all()


def test_history_required_marks_warm_up_rows_invalid():
    fm = build_features(make_strategy(lookback=0, history=50), {"1h": random_walk("AAA", 100, 2)})
    assert not fm.valid[:50].any() and fm.valid[50:].all()


def test_multi_timeframe_names_have_a_single_prefix_fastest_first():
    s = make_strategy(tfs=("1h", "4h", "1d"), lookback=1)
    names = feature_spec(s).names
    assert names[:9] == [
        f"{tf}_rsi_{k}" for tf in ("1h", "4h", "1d") for k in ("oversold", "neutral", "overbought")
    ]
    assert names[9:] == [f"{n}_lag_1" for n in names[:9]]
    assert (
        len(feature_spec(load_strategy_file(NMR).strategy).names) == 27
    )  # 3 sets x 3 timeframes x (1 + 2 lags)


def test_daily_feature_at_10am_uses_the_previous_day_never_todays_close():
    # sma(1) = the close itself, fuzzified by a shoulder, so the daily column is a known function of
    # one daily close: a look-ahead would show as the column following today's close.
    sets = (MembershipSpec("up", "right_shoulder", (50.0, 150.0)),)
    s = make_strategy(
        tfs=("1h", "1d"),
        lookback=0,
        indicators=(IndicatorSpec("px", "sma", {"period": 1}),),
        fuzzy=(FuzzyInputSpec("px", "px", "value", sets),),
    )
    data = mtf_data(24 * 5, 3, ("1h", "1d"))
    fm = build_features(s, data)
    daily = data["1d"]
    col = fm.spec.names.index("1d_px_up")
    hourly_col = fm.values[:, col]
    day = 2
    at_10 = int(np.flatnonzero(fm.time == daily.time[day] + 10 * HOUR)[0])
    expect_prev = np.float32(np.clip((daily.close[day - 1] - 50) / 100, 0, 1))
    assert hourly_col[at_10] == expect_prev
    # The 23:00 bar closes at midnight, together with the day: from then on today's close is known.
    at_23 = at_10 + 13
    assert hourly_col[at_23] == np.float32(np.clip((daily.close[day] - 50) / 100, 0, 1))
    # Before the first daily bar completes nothing is known and nothing is back-filled.
    assert np.isnan(hourly_col[:23]).all() and not fm.valid[:23].any() and fm.valid[23]
    # Changing the rest of that day after 10:00 leaves the 10:00 row unchanged.
    bumped = {k: v for k, v in data.items()}
    c = data["1h"].close.copy()
    c[at_10 + 1 : at_23 + 1] *= 1.5
    b = data["1h"]
    hi = np.maximum(b.high, np.maximum(c, b.open))
    bumped["1h"] = Bars.from_arrays("AAA", "1h", b.time, b.open, hi, np.minimum(b.low, c), c, b.volume)
    bumped["1d"] = resample(bumped["1h"], "1d")
    again = build_features(s, bumped).values[:, col]
    assert again[at_10] == hourly_col[at_10]
    assert again[at_23] != hourly_col[at_23]


def _truncate(data: dict[str, Bars], cut: int) -> dict[str, Bars]:
    """The input as it was when base bar ``cut - 1`` had just closed: higher bars that had opened by
    then, the last one still forming (given junk values here, which must not matter)."""
    base = data["1h"].slice(0, cut)
    now = int(base.close_time[-1])
    out = {"1h": base}
    for tf, b in data.items():
        if tf == "1h":
            continue
        h = b.between(None, now)
        if h.close_time[-1] > now:  # forming bar: replace with a different but valid bar
            o, c = h.open.copy(), h.close.copy()
            c[-1] = o[-1] * 1.37
            hi, lo = np.maximum(h.high, c), np.minimum(h.low, c)
            h = Bars.from_arrays("AAA", tf, h.time, o, hi, lo, c, h.volume)
        out[tf] = h
    return out


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_hours=st.integers(24 * 10, 24 * 30),
    frac=st.floats(0.3, 0.95),
    multi=st.booleans(),
)
def test_features_of_bar_t_do_not_depend_on_later_bars(seed, n_hours, frac, multi):
    tfs = ("1h", "4h", "1d") if multi else ("1h",)
    s = make_strategy(tfs=tfs, lookback=2, indicators=(IndicatorSpec("rsi", "rsi", {"period": 5}),))
    data = mtf_data(n_hours, seed, tfs)
    cut = max(int(frac * n_hours), 24 * 7 + 1)  # past the daily RSI's warm-up (6 days + 2 lags)
    full = build_features(s, data)
    part = build_features(s, _truncate(data, cut))
    assert len(part) == cut
    np.testing.assert_array_equal(part.values, full.values[:cut])  # bit-identical, NaNs included
    np.testing.assert_array_equal(part.valid, full.valid[:cut])
    assert full.valid[cut - 1]  # the compared rows include real values, not only warm-up NaNs


def test_build_is_deterministic_and_spec_round_trips_through_json():
    s = make_strategy(tfs=("1h", "4h"), lookback=1)
    data = mtf_data(200, 5, ("1h", "4h"))
    a, b = build_features(s, data), build_features(s, data)
    assert a.values.tobytes() == b.values.tobytes()
    spec = FeatureSpec.from_json(a.spec.to_json())
    assert spec == a.spec
    spec.verify(a.spec)
    col = spec.columns[4]
    assert (col.timeframe, col.indicator, col.type, col.params["period"], col.output, col.set, col.lag) == (
        "4h",
        "rsi",
        "rsi",
        14,
        "value",
        "neutral",
        0,
    )
    assert build_features(s, data, expected=spec).values.tobytes() == a.values.tobytes()


def test_inference_refuses_features_that_differ_from_the_trained_spec():
    trained = feature_spec(make_strategy(lookback=1))
    other = make_strategy(lookback=1, indicators=(IndicatorSpec("rsi", "rsi", {"period": 21}),))
    with pytest.raises(FeatureSpecMismatch, match=r"column 0 'rsi_oversold': params expected .*14.*got .*21"):
        build_features(other, {"1h": random_walk("AAA", 100, 1)}, expected=trained)
    with pytest.raises(FeatureSpecMismatch, match="lookback expected 1, got 2"):
        trained.verify(feature_spec(make_strategy(lookback=2)))
    reordered = dataclasses.replace(
        trained, columns=(trained.columns[1], trained.columns[0], *trained.columns[2:])
    )
    with pytest.raises(
        FeatureSpecMismatch, match="column 0 'rsi_neutral': name expected 'rsi_neutral', got 'rsi_oversold'"
    ):
        reordered.verify(trained)


def test_close_ratio_transform_fuzzifies_close_over_the_output():
    sets = (MembershipSpec("above", "right_shoulder", (1.0, 1.02)),)
    s = make_strategy(
        lookback=0,
        indicators=(IndicatorSpec("sma", "sma", {"period": 5}),),
        fuzzy=(FuzzyInputSpec("sma", "sma", "value", sets, transform="close_ratio"),),
    )
    bars = random_walk("AAA", 60, 9)
    got = build_features(s, {"1h": bars}).values[:, 0]
    ratio = bars.close / lookup("sma")(bars, period=5)["value"]
    np.testing.assert_array_equal(got, np.clip((ratio - 1.0) / 0.02, 0, 1).astype(np.float32))
    assert feature_spec(s).columns[0].transform == "close_ratio"


def test_bad_input_errors_are_clear():
    s = make_strategy(tfs=("1h", "1d"))
    with pytest.raises(FeatureError, match=r"no bars for timeframe.* 1d; strategy needs 1h, 1d"):
        build_features(s, {"1h": random_walk("AAA", 50, 1)})
    with pytest.raises(FeatureError, match="bars given for 1d are 1h bars"):
        build_features(s, {"1h": random_walk("AAA", 50, 1), "1d": random_walk("AAA", 50, 1)})
    bad_out = make_strategy(fuzzy=(FuzzyInputSpec("rsi", "rsi", "signal", RSI_SETS),))
    with pytest.raises(FeatureError, match="no output 'signal'; outputs: value"):
        build_features(bad_out, {"1h": random_walk("AAA", 50, 1)})
    bad_base = dataclasses.replace(s, data=DataSpec(("AAA",), ("1h", "1d"), "1d"))
    with pytest.raises(FeatureError, match="base timeframe '1d' must be the fastest"):
        feature_spec(bad_base)
    dangling = make_strategy(fuzzy=(FuzzyInputSpec("x", "nope", "value", RSI_SETS),))
    with pytest.raises(FeatureError, match="indicator 'nope', which the strategy does not define"):
        feature_spec(dangling)
