"""The strategies shipped in strategies/ load with zero errors and use the explicit grammar."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.strategy import load_strategy_file
from tests.support.paths import STRATEGIES

REPO_STRATEGIES = STRATEGIES
SHIPPED = sorted(REPO_STRATEGIES.glob("*.yaml"))
OURS = [p for p in SHIPPED if p.name != "neuro_mean_reversion.yaml"]


def test_at_least_three_own_strategies() -> None:
    assert len(OURS) >= 3


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_strategy_loads(path: Path) -> None:
    s = load_strategy_file(path).strategy
    assert s.fuzzy and s.indicators


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.stem)
def test_own_strategies_have_no_warnings(path: Path) -> None:
    assert [str(w) for w in load_strategy_file(path).warnings] == []


def test_coverage_single_multi_timeframe_multi_symbol() -> None:
    strategies = [load_strategy_file(p).strategy for p in OURS]
    assert any(len(s.data.timeframes) == 1 and len(s.data.symbols) == 1 for s in strategies)
    assert any(len(s.data.timeframes) >= 2 for s in strategies)
    assert any(len(s.data.symbols) >= 2 for s in strategies)


def test_two_rsis_of_different_periods_are_both_features() -> None:
    s = load_strategy_file(REPO_STRATEGIES / "dual_rsi_multi_symbol.yaml").strategy
    assert s.indicator("rsi_fast").type == s.indicator("rsi_slow").type == "rsi"
    assert (s.indicator("rsi_fast").params["period"], s.indicator("rsi_slow").params["period"]) == (7, 28)
    assert {f.key: f.indicator for f in s.fuzzy if f.indicator.startswith("rsi")} == {
        "rsi_fast": "rsi_fast",
        "rsi_slow": "rsi_slow",
    }
    assert s.model.symbol_embedding_dim == 4


def test_macd_line_and_signal_line_are_both_features() -> None:
    s = load_strategy_file(REPO_STRATEGIES / "macd_trend_mtf.yaml").strategy
    reads = {f.key: (f.indicator, f.output) for f in s.fuzzy}
    assert reads["macd"] == ("macd", "line")
    assert reads["macd_signal"] == ("macd", "signal")
    assert s.data.timeframes == ("1h", "4h", "1d")
    assert s.split.embargo == 100
    assert s.optim.lr_scheduler is not None and s.optim.lr_scheduler.type == "reduce_on_plateau"
