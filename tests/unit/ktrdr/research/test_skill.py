"""The skill section: a verdict that noise cannot pass and real predictability does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ktrdr.research.bars import Bars
from ktrdr.research.experiment import fit_and_evaluate
from ktrdr.research.labels import BUY, HOLD, SELL, persistence_labels, zigzag_direction
from ktrdr.research.skill import (
    SkillInputs,
    block_bootstrap_se,
    segment_count,
    skill_section,
    t_quantile,
    verdict,
)
from ktrdr.research.synthetic import random_walk
from ktrdr.research.trainer import TrainOptions
from ktrdr.strategy.model import FuzzyInputSpec, IndicatorSpec, LabelSpec, MembershipSpec, OptimSpec
from tests.support.tinystrategy import RSI_SETS, make_strategy

HOUR = 3600 * 10**9


def inputs(close, rows, y=None, horizon=2, source="forward"):
    rows = np.asarray(rows)
    return SkillInputs(
        y=np.asarray(y if y is not None else np.full(rows.size, HOLD)),
        symbol_index=np.zeros(rows.size, np.int64),
        position=rows,
        persistence=np.full(rows.size, HOLD),
        closes=(np.asarray(close, np.float64),),
        slots=(np.arange(len(close)),),
        calendar=np.arange(len(close), dtype=np.int64) * HOUR,
        horizon=horizon,
        label_source=source,
    )


def test_mean_return_per_decision_by_hand():
    close = [100, 110, 99, 99, 108.9, 100]
    pred = np.array([BUY, SELL, HOLD, BUY, SELL])
    s = skill_section(pred, inputs(close, [0, 1, 2, 3, 4]))
    # H = 2 bars, one unit of notional: the two one-bar returns after the decision, summed.
    r = np.diff(close) / np.asarray(close[:-1])
    expected = [r[0] + r[1], -(r[1] + r[2]), 0.0, r[3] + r[4]]  # bar 4 has only one bar after it
    assert s["decisions"] == 4 and s["no_forward_return"] == 1
    assert (s["long"], s["short"], s["flat"]) == (2, 1, 1)
    assert s["mean_return"] == pytest.approx(np.mean(expected))
    assert s["ci_low"] is None and not s["significant"]  # 4 bar times: not two blocks of 5


def test_flat_signal_has_no_verdict_and_segments_count_legs():
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 400)))
    s = skill_section(np.full(300, HOLD), inputs(close, np.arange(300)))
    assert s["mean_return"] == 0.0 and s["ci_low"] is None and not s["significant"]
    assert "never takes a position" in verdict(s)
    y = np.array([BUY, BUY, HOLD, SELL, SELL, SELL, HOLD, BUY])
    si = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    assert segment_count(y, si, "zigzag") == 3  # legs: BUY BUY | SELL×3 | (symbol 1) BUY
    assert segment_count(y, si, "forward") == 5  # runs of any label
    assert t_quantile(10) == pytest.approx(2.228, abs=0.005) and t_quantile(30) == pytest.approx(
        2.042, abs=0.002
    )


def test_exact_bootstrap_error_matches_drawn_replicates():
    rng = np.random.default_rng(5)
    n, block = 600, 25
    pnl = rng.normal(0.001, 0.01, n) * (1 + np.sin(np.arange(n) / 30))  # clustered volatility
    decisions = rng.integers(1, 4, n).astype(np.float64)
    se, k = block_bootstrap_se(pnl, decisions, block)
    assert k == 24
    # Draw replicates the slow way: k circular blocks with replacement, ratio of their sums.
    wrapped_pnl, wrapped_dec = np.concatenate((pnl, pnl)), np.concatenate((decisions, decisions))
    starts = rng.integers(0, n, size=(4000, k))
    idx = starts[:, :, None] + np.arange(block)
    drawn = wrapped_pnl[idx].sum(axis=(1, 2)) / wrapped_dec[idx].sum(axis=(1, 2))
    assert se == pytest.approx(drawn.std(), rel=0.06)
    assert block_bootstrap_se(pnl[:40], decisions[:40], block) is None  # not two blocks


def test_persistence_baseline_reads_past_prices_only():
    close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 600)))
    for spec in (
        LabelSpec(source="zigzag", zigzag_threshold=0.03),
        LabelSpec(source="forward", zigzag_threshold=0.01, label_lookahead=12),
    ):
        full = persistence_labels(spec, close)
        for cut in (50, 233, 599):
            np.testing.assert_array_equal(persistence_labels(spec, close[:cut]), full[:cut])
        assert set(np.unique(full)) <= {BUY, HOLD, SELL}
    # ZigZag: the leg the walk is in once the bar is seen.
    steps = [100, 101, 104, 106, 102.8, 101, 103, 105]
    assert zigzag_direction(np.array(steps), 0.03).tolist() == [0, 0, 1, 1, -1, -1, -1, 1]


def strategy():
    """RSI and the distance from a 24-bar EMA, ZigZag 2 % labels: features that see the leg."""
    below_above = (
        MembershipSpec("below", "left_shoulder", (-2.0, 0.0)),
        MembershipSpec("above", "right_shoulder", (0.0, 2.0)),
    )
    s = make_strategy(
        lookback=2,
        indicators=(
            IndicatorSpec("rsi", "rsi", {"period": 14}),
            IndicatorSpec("dist", "distance_from_ma", {"period": 24, "ma_type": "ema", "source": "close"}),
        ),
        fuzzy=(
            FuzzyInputSpec("rsi", "rsi", "value", RSI_SETS),
            FuzzyInputSpec("dist", "dist", "value", below_above),
        ),
        labels=LabelSpec(source="zigzag", zigzag_threshold=0.02),
    )
    return dataclasses.replace(s, optim=OptimSpec(epochs=8, batch_size=64, learning_rate=0.01))


def test_random_walks_beat_the_majority_baseline_but_are_not_significant():
    s = strategy()
    beats, significant = 0, 0
    for seed in range(10):
        bars = random_walk("AAA", 4000, seed)
        test = fit_and_evaluate(s, {"AAA": {"1h": bars}}, options=TrainOptions(device="cpu")).reports["test"]
        beats += test["accuracy"] > test["baseline_accuracy"]
        significant += test["skill"]["significant"]
        assert test["skill"]["segments"] >= 10 and test["skill"]["standard_error"] > 0
    assert beats >= 8  # accuracy "shows an edge" on noise ...
    assert significant <= 2  # ... which the skill verdict does not believe


def drifting_bars(seed: int, n: int = 4000, period: int = 80, drift: float = 0.003) -> Bars:
    """Log-returns with a known drift that flips sign every period/2 bars, plus noise: legs the
    features can see while they last."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    log_ret = drift * np.sign(np.sin(2 * np.pi * t / period) + 1e-9) + rng.normal(0.0, 0.004, n)
    close = 100 * np.exp(np.cumsum(log_ret))
    open_ = np.concatenate(([100.0], close[:-1]))
    time = np.arange(n, dtype=np.int64) * HOUR + 1_640_995_200 * 10**9
    high, low = np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999
    return Bars.from_arrays("AAA", "1h", time, open_, high, low, close, np.full(n, 1000.0))


def test_real_predictability_is_significant():
    s = strategy()
    for seed in range(3):
        test = fit_and_evaluate(
            s, {"AAA": {"1h": drifting_bars(seed)}}, options=TrainOptions(device="cpu")
        ).reports["test"]
        skill = test["skill"]
        assert skill["significant"] and skill["ci_low"] > 0 and skill["mean_return"] > 0
        assert verdict(skill).startswith("significant (an edge): mean +")
