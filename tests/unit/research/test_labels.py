"""Labelers: ZigZag extremes and segments, forward window, horizons, class distribution, errors."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.research.labels import (
    BUY,
    HOLD,
    NO_LABEL,
    SELL,
    LabelError,
    class_distribution,
    forward_labels,
    make_labels,
    zigzag_extremes,
    zigzag_labels,
)
from ktrdr.strategy.model import LabelSpec

ZZ = np.array([100, 101, 104, 102, 100.5, 99, 103, 106], dtype=np.float64)


def walk(n: int, seed: int) -> np.ndarray:
    return 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n)))


def test_zigzag_extremes_move_with_new_highs_and_reverse_at_the_threshold():
    ext, marked = zigzag_extremes(ZZ, 0.03)
    # 104 reaches +3 % from 100; 100.5 is 3.4 % below 104 (reversal), 99 moves the low, 103 reverses up.
    assert ext.tolist() == [0, 2, 5, 7]
    assert marked.tolist() == [0, 2, 4, 6]


def test_zigzag_segment_labels_and_horizon():
    lab = zigzag_labels(ZZ, 0.03)
    assert lab.y.tolist() == [HOLD, BUY, HOLD, SELL, SELL, HOLD, BUY, HOLD]
    # Bar 1 and bar 3 wait 3 bars for the extreme after them to be confirmed by a reversal.
    assert lab.horizon == 3 and lab.source == "zigzag"


def test_zigzag_labels_within_the_horizon_do_not_change_with_more_data():
    close = walk(3000, 4)
    full = zigzag_labels(close, 0.02)
    assert 0 < full.horizon < 3000
    for cut in (1000, 1700, 2500):
        part = zigzag_labels(close[:cut], 0.02)
        safe = cut - full.horizon
        assert safe > 0
        np.testing.assert_array_equal(part.y[:safe], full.y[:safe])


def test_zigzag_without_a_swing_is_all_hold():
    lab = zigzag_labels(np.array([100.0, 101, 100.5, 101.5]), 0.05)
    assert lab.y.tolist() == [HOLD] * 4


def test_forward_labels_hand_example():
    lab = forward_labels(np.array([100, 101, 104, 100, 96, 97], dtype=float), 0.03, 2)
    assert lab.y.tolist() == [BUY, HOLD, SELL, SELL, NO_LABEL, NO_LABEL]
    assert lab.horizon == 2


def test_forward_labels_match_a_plain_loop():
    close, th, la = walk(500, 7), 0.015, 10
    want = []
    for i in range(len(close) - la):
        w = close[i + 1 : i + 1 + la]
        g, lo = w.max() / close[i] - 1, 1 - w.min() / close[i]
        want.append(BUY if g >= th and g > lo else SELL if lo >= th and lo > g else HOLD)
    got = forward_labels(close, th, la).y
    assert got[: len(want)].tolist() == want and (got[len(want) :] == NO_LABEL).all()
    assert {BUY, HOLD, SELL} <= set(want)


def test_make_labels_follows_the_strategy_and_scales_to_100k_bars():
    close = walk(100_000, 1)
    z = make_labels(LabelSpec(source="zigzag", zigzag_threshold=0.03), close)
    f = make_labels(LabelSpec(source="forward", zigzag_threshold=0.03, label_lookahead=20), close)
    assert z.y.shape == f.y.shape == (100_000,)
    assert f.horizon == 20 and (f.y[-20:] == NO_LABEL).all() and (f.y[:-20] >= 0).all()
    d = class_distribution(z.y)
    assert d["total"] == 100_000 and d["buy_count"] > 0 and d["sell_count"] > 0


def test_class_distribution_counts_and_fractions_ignore_unlabelled_rows():
    d = class_distribution(np.array([0, 0, 1, 2, 2, 2, -1, -1]))
    assert d == {
        "buy_count": 2,
        "hold_count": 1,
        "sell_count": 3,
        "buy_pct": 2 / 6,
        "hold_pct": 1 / 6,
        "sell_pct": 3 / 6,
        "total": 6,
    }
    assert class_distribution(np.array([], dtype=np.int64))["total"] == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: zigzag_labels(ZZ, 3.0), r"fraction in \(0, 1\), got 3.0"),
        (lambda: zigzag_labels(np.array([1.0, np.nan, 2.0]), 0.03), "row 1 is nan"),
        (lambda: forward_labels(ZZ, 0.03, 0), "label_lookahead must be >= 1"),
        (
            lambda: make_labels(LabelSpec(source="oracle"), ZZ),
            "unknown label source 'oracle'; known: zigzag, forward",
        ),
    ],
)
def test_bad_label_input(call, message):
    with pytest.raises(LabelError, match=message):
        call()
