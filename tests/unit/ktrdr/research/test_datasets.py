"""Datasets: chronological per-symbol splits, embargo, combination after splitting, class weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ktrdr.research.bars import resample
from ktrdr.research.datasets import DatasetError, build_dataset, class_problems, split_rows
from ktrdr.research.features import build_features
from ktrdr.research.labels import class_distribution, make_labels
from ktrdr.research.synthetic import random_walk
from ktrdr.strategy.model import LabelSpec, MembershipSpec, SplitSpec
from tests.support.tinystrategy import make_strategy as tiny_strategy

HOUR = 3600 * 10**9
SETS = (
    MembershipSpec("low", "left_shoulder", (30.0, 50.0)),
    MembershipSpec("high", "right_shoulder", (50.0, 70.0)),
)


def make_strategy(labels=None, split=None, lookback=2, tfs=("1h",), weights="none", symbols=("AAA", "BBB")):
    return tiny_strategy(
        symbols=symbols,
        tfs=tfs,
        history=20,
        lookback=lookback,
        sets=SETS,
        labels=labels or LabelSpec(source="forward", zigzag_threshold=0.01, label_lookahead=10),
        split=split,
        weights=weights,
    )


def make_data(symbols=("AAA", "BBB"), n=(1200, 900), tfs=("1h",)):
    out = {}
    for i, (sym, k) in enumerate(zip(symbols, n, strict=True)):
        base = random_walk(sym, k, 100 + i)
        out[sym] = {tf: base if tf == "1h" else resample(base, tf) for tf in tfs}
    return out


def test_parts_are_chronological_with_the_embargo_between_them():
    s = make_strategy()
    data = make_data(n=(1200, 1200))
    ds = build_dataset(s, data)
    assert ds.symbols == ("AAA", "BBB")
    assert ds.label_horizon == {"AAA": 10, "BBB": 10}
    assert ds.embargo == 12  # horizon 10 + lookback 2, one figure for all symbols
    for si in range(len(ds.symbols)):
        t = [p.time[p.symbol_index == si] for p in (ds.train, ds.validation, ds.test)]
        for part in t:
            assert part.size and (np.diff(part) > 0).all()  # order within the symbol kept
        # Same history: the common cut leaves exactly the embargo's bars between parts.
        assert (t[1][0] - t[0][-1]) // HOUR == ds.embargo + 1
        assert (t[2][0] - t[1][-1]) // HOUR == ds.embargo + 1
    # Symbols are concatenated after splitting: all of AAA's rows, then BBB's, in every part.
    for part in ds.parts().values():
        assert (np.diff(part.symbol_index) >= 0).all() and set(part.symbol_index.tolist()) == {0, 1}
        assert part.X.dtype == np.float32 and part.X.shape == (len(part), 6) and np.isfinite(part.X).all()
        assert part.distribution == class_distribution(part.y)
        np.testing.assert_array_equal(part.position, np.searchsorted(data["AAA"]["1h"].time, part.time))
    assert ds.warnings == ()


def test_splits_are_aligned_in_calendar_time_across_symbols_with_different_histories():
    """AAA has 1500 bars; BBB starts 600 hours later and ends 300 hours earlier. One set of cut
    times: no label of any symbol reads a price inside a later part, and no lag repeats a row of
    an earlier part."""
    s = make_strategy(labels=LabelSpec(source="zigzag", zigzag_threshold=0.02), lookback=3)
    aaa = random_walk("AAA", 1500, 100)
    bbb = random_walk("BBB", 600, 101, start="2022-01-26")  # 600 h after AAA's first bar
    data = {"AAA": {"1h": aaa}, "BBB": {"1h": bbb}}
    ds = build_dataset(s, data)
    assert ds.label_horizon["AAA"] != ds.label_horizon["BBB"]
    assert ds.embargo == max(ds.label_horizon.values()) + 3
    ranges = ds.ranges
    assert ranges["train"][1] < ds.cuts[0] <= ranges["validation"][0] - ds.embargo * HOUR
    assert ranges["validation"][1] < ds.cuts[1] <= ranges["test"][0] - ds.embargo * HOUR
    for si, sym in enumerate(ds.symbols):
        bars = data[sym]["1h"]
        for earlier, later in (("train", "validation"), ("validation", "test")):
            rows = ds.parts()[earlier].symbol_index == si
            if not rows.any():
                continue
            # Labels computed on the prices before the later part starts are already final and equal.
            before = bars.close[bars.time < ranges[later][0]]
            pos = ds.parts()[earlier].position[rows]
            np.testing.assert_array_equal(make_labels(s.labels, before).y[pos], ds.parts()[earlier].y[rows])
        for later, cut in (("validation", ds.cuts[0]), ("test", ds.cuts[1])):
            pos = ds.parts()[later].position[ds.parts()[later].symbol_index == si]
            assert (bars.time[pos - 3] >= cut).all()  # lags stay out of the earlier part
    # BBB's history covers part of the calendar only: rows where it has data, a warning where not.
    counts = {p: int((ds.parts()[p].symbol_index == 1).sum()) for p in ("train", "validation", "test")}
    assert counts["train"] > 0 and counts["validation"] > 0 and counts["test"] == 0
    assert ds.warnings[0].startswith("BBB: no rows in the test part")


def test_samples_start_at_the_requested_start_and_earlier_bars_only_warm_up():
    s = make_strategy()
    data = make_data(n=(1200, 1200))
    start = int(data["AAA"]["1h"].time[300])
    ds = build_dataset(s, data, start=start)
    assert ds.ranges["train"][0] == start  # the first bar at start is already a valid sample
    for part in ds.parts().values():
        assert (part.time >= start).all()
    full = build_dataset(s, data)
    assert full.ranges["train"][0] < start


def test_degenerate_targets_are_loud():
    errors, warnings = class_problems("test", np.full(50, 1))
    assert errors == [] and warnings == [
        "test part: only one class (hold, all 50 rows): its accuracy means nothing"
    ]
    errors, warnings = class_problems("validation", np.array([0] * 500 + [2] * 497 + [1] * 3))
    assert errors == [] and warnings == ["validation part: class hold has 3 of 1000 rows (0.3%)"]
    errors, _ = class_problems("train", np.array([0] * 500 + [2] * 497 + [1] * 3))
    assert errors == [
        "train part: class hold has 3 of 1000 rows (0.3%), fewer than 10: nothing to learn about it"
    ]
    # All labels HOLD (a 50 % move within 10 bars never happens): training refuses, saying why.
    hold_only = make_strategy(labels=LabelSpec(source="forward", zigzag_threshold=0.5, label_lookahead=10))
    with pytest.raises(
        DatasetError, match=r"degenerate training target: train part: class buy has 0 of \d+ rows"
    ):
        build_dataset(hold_only, make_data())


def test_rows_are_the_feature_rows_and_labels_of_their_bars():
    s = make_strategy()
    data = make_data()
    ds = build_dataset(s, data)
    fm = build_features(s, data["BBB"])
    y = make_labels(s.labels, data["BBB"]["1h"].close).y
    rows = ds.test.symbol_index == 1
    idx = np.searchsorted(fm.time, ds.test.time[rows])
    np.testing.assert_array_equal(ds.test.X[rows], fm.values[idx])
    np.testing.assert_array_equal(ds.test.y[rows], y[idx])
    # The fractions apply to the usable rows of all symbols pooled (warm-up and unlabelled tail
    # excluded): the first cut is the time of pooled row ⌊0.7·m⌋.
    pooled = np.sort(
        np.concatenate(
            [
                build_features(s, data[k]).time[
                    build_features(s, data[k]).valid & (make_labels(s.labels, data[k]["1h"].close).y >= 0)
                ]
                for k in ("AAA", "BBB")
            ]
        )
    )
    assert ds.cuts[0] == pooled[int(0.7 * pooled.size)]
    assert len(ds.train) == int((pooled < ds.cuts[0]).sum())


def test_zigzag_embargo_uses_the_measured_horizon_and_a_larger_requested_embargo():
    s = make_strategy(
        labels=LabelSpec(source="zigzag", zigzag_threshold=0.02), split=SplitSpec(0.6, 0.2, 0.2, 5)
    )
    ds = build_dataset(s, make_data(n=(1200, 1200)))
    assert min(ds.label_horizon.values()) > 0
    assert ds.embargo == max(5, max(ds.label_horizon.values()) + 2)
    big = dataclasses.replace(s, split=SplitSpec(0.6, 0.2, 0.2, 150))
    ds2 = build_dataset(big, make_data(n=(1200, 1200)))
    assert ds2.embargo == max(150, ds.embargo)
    t0, t1 = (
        ds2.train.time[ds2.train.symbol_index == 0],
        ds2.validation.time[ds2.validation.symbol_index == 0],
    )
    assert (t1[0] - t0[-1]) // HOUR > ds2.embargo


def test_zigzag_rows_without_a_final_label_are_left_out():
    s = make_strategy(labels=LabelSpec(source="zigzag", zigzag_threshold=0.02))
    data = make_data(n=(1200, 1200))
    ds = build_dataset(s, data)
    for part in ds.parts().values():
        assert set(part.y.tolist()) <= {0, 1, 2} and part.distribution["no_label_count"] == 0
    for si, sym in enumerate(ds.symbols):
        y = make_labels(s.labels, data[sym]["1h"].close).y
        assert (y == -1).any()  # the provisional last extreme at least
        first_unlabelled = data[sym]["1h"].time[np.flatnonzero(y == -1)[0]]
        assert ds.test.time[ds.test.symbol_index == si][-1] < first_unlabelled


def test_multi_timeframe_dataset_and_empty_test_part():
    s = make_strategy(tfs=("1h", "4h"), split=SplitSpec(0.8, 0.2, 0.0))
    ds = build_dataset(s, make_data(tfs=("1h", "4h")))
    assert len(ds.test) == 0 and ds.test.X.shape == (0, 12)
    assert ds.feature_spec.names[:2] == ["1h_rsi_low", "1h_rsi_high"]
    assert len(ds.train) > len(ds.validation) > 0


def test_balanced_class_weights_come_from_the_training_part():
    ds = build_dataset(make_strategy(weights="balanced"), make_data())
    counts = np.bincount(ds.train.y, minlength=3)
    np.testing.assert_allclose(ds.class_weights, len(ds.train) / (3 * counts), rtol=1e-6)
    assert ds.class_weights.dtype == np.float32
    assert build_dataset(make_strategy(), make_data()).class_weights is None


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (SplitSpec(0.7, 0.2, 0.2), r"must sum to 1, got 0.7 \+ 0.2 \+ 0.2 = 1.1"),
        (SplitSpec(0.9, -0.1, 0.2), r"validation must be in \[0, 1\], got -0.1"),
        (SplitSpec(0.0, 0.5, 0.5), "train must be > 0"),
    ],
)
def test_bad_fractions(split, message):
    with pytest.raises(DatasetError, match=message):
        build_dataset(make_strategy(split=split), make_data())


def test_too_few_rows_and_symbols_missing_from_a_part():
    with pytest.raises(
        DatasetError,
        match=r"too few rows for the split: \d+ usable rows in 2 symbol\(s\).*embargo 12 bars: the \w+ part is empty",
    ):
        build_dataset(make_strategy(), make_data(n=(60, 60)))
    short = build_dataset(make_strategy(), make_data(n=(1200, 300)))
    assert short.warnings == (
        "BBB: no rows in the validation part (its usable rows span 2022-01-01T20:00Z .. 2022-01-13T01:00Z)",
        "BBB: no rows in the test part (its usable rows span 2022-01-01T20:00Z .. 2022-01-13T01:00Z)",
    )
    with pytest.raises(
        DatasetError,
        match=r"BBB: no usable rows among 15 bars: 0 have features, .*; too few bars for the warm-up",
    ):
        build_dataset(make_strategy(), make_data(n=(1200, 15)))
    with pytest.raises(DatasetError, match="no bars for symbol CCC"):
        build_dataset(make_strategy(symbols=("AAA", "CCC")), make_data())


def test_split_rows_with_gaps_keeps_labels_and_lags_inside_their_part():
    # Bars 0..99 hourly, then a 50-hour gap (a holiday), then bars 100..199.
    time = np.concatenate((np.arange(100), np.arange(150, 250))) * HOUR
    usable = np.ones(200, dtype=bool)
    usable[:10] = False
    cuts = (int(time[98]), int(time[150]))  # validation may start at 98 h + 4 h: inside the gap
    tr, va, te = split_rows(time, usable, cuts, embargo_ns=4 * HOUR, horizon=3, lookback=3)
    # Bar 97 opens before the cut, but its label reads bar 100, the first validation bar.
    assert tr.tolist() == list(range(10, 97))
    # Bar 100 opens after the embargo, but its lag 3 is bar 97, a training row.
    assert va.tolist() == list(range(101, 150))
    assert te.tolist() == list(range(154, 200))  # 150..153 embargoed (200 h .. 203 h)
