"""Datasets: chronological per-symbol splits, embargo, combination after splitting, class weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tinystrategy import make_strategy as tiny_strategy

from ktrdr.research.bars import resample
from ktrdr.research.datasets import DatasetError, build_dataset, split_rows
from ktrdr.research.features import build_features
from ktrdr.research.labels import class_distribution, make_labels
from ktrdr.research.synthetic import random_walk
from ktrdr.strategy.model import LabelSpec, MembershipSpec, SplitSpec

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


def test_parts_are_chronological_per_symbol_with_the_embargo_between_them():
    s = make_strategy()
    data = make_data()
    ds = build_dataset(s, data)
    assert ds.symbols == ("AAA", "BBB")
    assert ds.label_horizon == {"AAA": 10, "BBB": 10}
    assert ds.embargo == {"AAA": 12, "BBB": 12}  # horizon 10 + lookback 2
    for si, sym in enumerate(ds.symbols):
        t = [p.time[p.symbol_index == si] for p in (ds.train, ds.validation, ds.test)]
        for part in t:
            assert part.size and (np.diff(part) > 0).all()  # order within the symbol kept
        # Exactly the embargo's bars lie between parts (1h bars without gaps).
        assert (t[1][0] - t[0][-1]) // HOUR == ds.embargo[sym] + 1
        assert (t[2][0] - t[1][-1]) // HOUR == ds.embargo[sym] + 1
    # Symbols are concatenated after splitting: all of AAA's rows, then BBB's, in every part.
    for part in ds.parts().values():
        assert (np.diff(part.symbol_index) >= 0).all() and set(part.symbol_index.tolist()) == {0, 1}
        assert part.X.dtype == np.float32 and part.X.shape == (len(part), 6) and np.isfinite(part.X).all()
        assert part.distribution == class_distribution(part.y)


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
    # The fractions apply to each symbol's usable rows (warm-up and unlabelled tail excluded).
    usable = int((fm.valid & (y >= 0)).sum())
    assert int((ds.train.symbol_index == 1).sum()) == int(0.7 * usable)


def test_zigzag_embargo_uses_the_measured_horizon_and_a_larger_requested_embargo():
    s = make_strategy(
        labels=LabelSpec(source="zigzag", zigzag_threshold=0.02), split=SplitSpec(0.6, 0.2, 0.2, 5)
    )
    ds = build_dataset(s, make_data())
    for sym in ds.symbols:
        assert ds.label_horizon[sym] > 0
        assert ds.embargo[sym] == max(5, ds.label_horizon[sym] + 2)
    big = dataclasses.replace(s, split=SplitSpec(0.6, 0.2, 0.2, 150))
    ds2 = build_dataset(big, make_data())
    assert ds2.embargo == {"AAA": max(150, ds.embargo["AAA"]), "BBB": max(150, ds.embargo["BBB"])}
    t0, t1 = (
        ds2.train.time[ds2.train.symbol_index == 0],
        ds2.validation.time[ds2.validation.symbol_index == 0],
    )
    assert (t1[0] - t0[-1]) // HOUR > ds2.embargo["AAA"]


def test_zigzag_rows_without_a_final_label_are_left_out():
    s = make_strategy(labels=LabelSpec(source="zigzag", zigzag_threshold=0.02))
    data = make_data()
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


def test_too_few_rows_names_the_symbol_and_counts():
    with pytest.raises(
        DatasetError, match=r"BBB: too few rows for the split: \d+ usable rows of 60 bars.*embargo 12"
    ):
        build_dataset(make_strategy(), make_data(n=(1200, 60)))
    with pytest.raises(DatasetError, match="BBB: no usable rows among 15 bars: too few bars for the warm-up"):
        build_dataset(make_strategy(), make_data(n=(1200, 15)))
    with pytest.raises(DatasetError, match="no bars for symbol CCC"):
        build_dataset(make_strategy(symbols=("AAA", "CCC")), make_data())


def test_split_rows_skips_gaps_by_bar_position():
    usable = np.ones(100, dtype=bool)
    usable[:10] = False
    tr, va, te = split_rows("X", usable, SplitSpec(0.5, 0.25, 0.25), 4)
    assert tr.tolist() == list(range(10, 55))
    assert va.tolist() == list(range(59, 77))  # 4 bars, 55..58, embargoed
    assert te.tolist() == list(range(81, 100))  # 77..80 embargoed
