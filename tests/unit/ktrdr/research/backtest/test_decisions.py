"""Probabilities → target positions under the strategy's decisions (threshold, separation,
position awareness, direction), and prefix invariance."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.research.backtest.decisions import DecisionError, decide
from ktrdr.research.labels import BUY, HOLD, SELL
from ktrdr.strategy.model import DecisionSpec


def probs(classes: str, confidence: float = 0.9) -> np.ndarray:
    """One row per letter: B, H, S (that class at ``confidence``), '.' (no decision: NaN)."""
    out = np.full((len(classes), 3), (1 - confidence) / 2)
    for i, c in enumerate(classes):
        if c == ".":
            out[i] = np.nan
        else:
            out[i, {"B": BUY, "H": HOLD, "S": SELL}[c]] = confidence
    return out


def targets(classes: str, **spec) -> list[int]:
    direction = spec.pop("direction", None)
    return decide(probs(classes), DecisionSpec(**spec), direction=direction).target.tolist()


def test_long_only_sell_closes_and_never_shorts():
    assert targets("HBHHSSB") == [0, 1, 1, 1, 0, 0, 1]
    assert targets("SSH") == [0, 0, 0]


def test_long_short_sell_reverses():
    assert targets("HBHSHB", direction="long_short") == [0, 1, 1, -1, -1, 1]
    assert targets("SB", direction="long_short") == [-1, 1]


def test_confidence_threshold_and_undecided_rows_hold():
    p = probs("BHS", confidence=0.55)
    assert decide(p, DecisionSpec(confidence_threshold=0.6)).target.tolist() == [0, 0, 0]
    d = decide(p, DecisionSpec(confidence_threshold=0.55))
    assert d.target.tolist() == [1, 1, 0] and d.signal.tolist() == [BUY, HOLD, SELL]
    d = decide(probs(".B."), DecisionSpec())
    assert d.target.tolist() == [0, 1, 1] and d.confidence[0] == 0 and d.signal[0] == HOLD


def test_min_signal_separation_counts_bars_since_the_last_acted_signal():
    # BUY at 0; SELL at 1, 2 refused (< 3 bars); SELL at 3 acted on; BUY at 4 refused; BUY at 6 ok
    assert targets("BSSSBHB", min_signal_separation=3) == [1, 1, 1, 0, 0, 0, 1]
    assert targets("BSSSBHB", min_signal_separation=0) == [1, 0, 0, 0, 1, 1, 1]


def test_position_awareness_decides_whether_redundant_signals_restart_the_clock():
    # BUY at 0 (long); BUY at 3 is redundant; SELL at 4.
    aware = targets("BHHBS", min_signal_separation=3, position_awareness=True)
    blind = targets("BHHBS", min_signal_separation=3, position_awareness=False)
    assert aware == [1, 1, 1, 1, 0]  # the redundant BUY is ignored: the SELL is 4 bars after bar 0
    assert blind == [1, 1, 1, 1, 1]  # the redundant BUY counts (3 - 0 >= 3): the SELL is 1 bar after it
    # a redundant signal the clock refuses does not count either: SELL at 3 is 3 bars after bar 0
    assert targets("BHBS", min_signal_separation=3, position_awareness=False) == [1, 1, 1, 0]
    # one position at a time either way: a redundant BUY never adds to the position
    assert targets("BBBB", position_awareness=False) == [1, 1, 1, 1]


def test_decisions_on_a_prefix_equal_the_full_runs_decisions_on_that_prefix():
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(3), size=3000)
    p[rng.random(3000) < 0.05] = np.nan
    for spec, direction in (
        (DecisionSpec(confidence_threshold=0.5, min_signal_separation=7), "long_short"),
        (
            DecisionSpec(confidence_threshold=0.45, min_signal_separation=3, position_awareness=False),
            "long_only",
        ),
    ):
        full = decide(p, spec, direction=direction)
        assert np.count_nonzero(np.diff(full.target)) > 50  # the rules are exercised
        for k in (1, 2, 17, 500, 1999, 2999):
            part = decide(p[:k], spec, direction=direction)
            np.testing.assert_array_equal(part.target, full.target[:k])
            np.testing.assert_array_equal(part.signal, full.signal[:k])


def test_bad_input_is_refused_with_the_reason():
    with pytest.raises(DecisionError, match=r"shape \(bars, 3\)"):
        decide(np.zeros((4, 2)), DecisionSpec())
    with pytest.raises(DecisionError, match="direction must be one of long_only, long_short, got 'sideways'"):
        decide(np.zeros((4, 3)), DecisionSpec(), direction="sideways")
