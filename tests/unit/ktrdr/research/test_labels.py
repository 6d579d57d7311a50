"""Labelers: ZigZag extremes and segments, forward window, horizons, class distribution, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    ext, updates = zigzag_extremes(ZZ, 0.03)
    # 104 reaches +3 % from 100; 100.5 is 3.4 % below 104 (reversal), 99 moves the low, 103 reverses
    # up, 106 moves the high.
    assert ext.tolist() == [0, 2, 5, 7]
    assert updates.tolist() == [0, 2, 4, 5, 6, 7]


def test_zigzag_segment_labels_and_horizon():
    lab = zigzag_labels(ZZ, 0.03)
    # Bar 7 is the provisional last extreme: a higher close would make it BUY, so no label yet.
    assert lab.y.tolist() == [HOLD, BUY, HOLD, SELL, SELL, HOLD, BUY, NO_LABEL]
    # Bar 2 (the high at 104) is final when the reversal at bar 4 confirms it: 2 bars.
    assert lab.horizon == 2 and lab.source == "zigzag"


def test_zigzag_bars_between_the_last_confirmed_and_the_provisional_extreme_are_final():
    close = np.array([100, 104, 100, 101, 99.5, 100, 98], dtype=np.float64)
    # Extremes 0, 1 (high, confirmed at 2), then the low moves 2 → 4 → 6 (provisional).
    lab = zigzag_labels(close, 0.03)
    assert lab.y.tolist() == [HOLD, HOLD, SELL, SELL, SELL, SELL, NO_LABEL]
    for more in ([97.0], [103.0], [101.0, 97.5]):
        longer = zigzag_labels(np.concatenate([close, more]), 0.03)
        assert longer.y[:6].tolist() == lab.y[:6].tolist()


def _first_final_cut(close: np.ndarray, threshold: float, i: int) -> int:
    """The fewest bars after which bar i's label is no longer -1."""
    return next(t for t in range(i + 1, close.size + 1) if zigzag_labels(close[:t], threshold).y[i] >= 0)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.floats(-0.04, 0.04, allow_nan=False), min_size=1, max_size=60),
    threshold=st.sampled_from([0.02, 0.03, 0.05]),
)
def test_zigzag_final_labels_never_change_and_the_horizon_is_exact(steps, threshold):
    close = 100 * np.exp(np.cumsum([0.0, *steps]))
    full = zigzag_labels(close, threshold)
    waits = []
    for t in range(1, close.size + 1):
        part = zigzag_labels(close[:t], threshold)
        final = part.y >= 0
        # Every label final at data end t is the label of the longer series, and stays final.
        np.testing.assert_array_equal(part.y[final], full.y[:t][final])
        assert part.horizon <= full.horizon
    for i in np.flatnonzero(full.y >= 0):
        waits.append(_first_final_cut(close, threshold, int(i)) - 1 - int(i))
    # The horizon is the largest number of bars a labelled bar waits for its label to be final.
    assert full.horizon == max(waits)
    # Unlabelled bars form a tail: the provisional last extreme and everything after it.
    unlabelled = np.flatnonzero(full.y < 0)
    if unlabelled.size:
        assert unlabelled.tolist() == list(range(int(unlabelled[0]), close.size))
        assert unlabelled[0] == max(int(zigzag_extremes(close, threshold)[0][-1]), 1)


def test_zigzag_tail_is_unlabelled_and_the_horizon_stays_short_on_a_long_walk():
    close = walk(3000, 4)
    full = zigzag_labels(close, 0.02)
    last = int(zigzag_extremes(close, 0.02)[0][-1])
    assert (full.y[last:] == NO_LABEL).all() and (full.y[:last] >= 0).all()
    assert 0 < full.horizon < last
    for cut in (1000, 1700, 2500):
        part = zigzag_labels(close[:cut], 0.02)
        final = part.y >= 0
        np.testing.assert_array_equal(part.y[final], full.y[:cut][final])
        cut_last = int(zigzag_extremes(close[:cut], 0.02)[0][-1])
        assert (part.y[cut_last:] == NO_LABEL).all() and final[:cut_last].all()


def test_zigzag_without_a_swing_has_no_label_but_bar_0():
    lab = zigzag_labels(np.array([100.0, 101, 100.5, 101.5]), 0.05)
    assert lab.y.tolist() == [HOLD, NO_LABEL, NO_LABEL, NO_LABEL] and lab.horizon == 0
    assert zigzag_labels(np.array([], dtype=np.float64), 0.05).y.size == 0


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
    assert d["total"] + d["no_label_count"] == 100_000 and d["buy_count"] > 0 and d["sell_count"] > 0
    assert 0 < d["no_label_count"] < 100_000 and z.horizon < 2_000


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
        "no_label_count": 2,
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
