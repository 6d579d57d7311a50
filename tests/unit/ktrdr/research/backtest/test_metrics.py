"""Metrics: formulas on hand-made curves, degenerate values (zero trades: no NaN), annualisation
from the calendar, bootstrap intervals, the permutation test and the deflated Sharpe ratio."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from ktrdr import calendars
from ktrdr.research.backtest.costs import Costs
from ktrdr.research.backtest.deflated import (
    DeflatedSharpeError,
    deflated_best,
    deflated_sharpe_ratio,
    expected_max_sharpe,
)
from ktrdr.research.backtest.engine import BacktestSettings, backtest_targets
from ktrdr.research.backtest.metrics import (
    annualized,
    backtest_metrics,
    bar_returns,
    drawdown,
    longest_drawdown,
    ratio,
    return_figures,
    return_moments,
)
from ktrdr.research.backtest.simulate import Sizing, simulate
from ktrdr.research.backtest.uncertainty import permutation_p_value
from tests.support.backtest import bars_from, random_bars


def test_drawdown_and_its_longest_duration_by_hand():
    equity = np.array([110.0, 99, 120, 90, 95])
    np.testing.assert_allclose(drawdown(equity, 100.0), [0, 0.1, 0, 0.25, 25 / 120])
    assert longest_drawdown(equity, 100.0) == 2  # bars 3 and 4 below the peak of 120
    assert longest_drawdown(np.array([90.0, 95, 99]), 100.0) == 3  # below the initial cash throughout
    assert longest_drawdown(np.array([100.0, 101]), 100.0) == 0


def test_return_figures_and_annualisation():
    r = np.array([0.01, -0.02, 0.015, 0.0, -0.005])
    f = return_figures(r, bars_per_year=252)
    assert f["volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(252))
    assert f["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert f["sortino"] == pytest.approx(
        r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(252)
    )
    assert annualized(0.21, 2.0) == pytest.approx(0.1)
    assert annualized(-1.5, 2.0) == -1.0 and annualized(0.3, 0.0) == 0.0
    np.testing.assert_allclose(bar_returns(np.array([110.0, 99.0]), 100.0), [0.1, -0.1])


def test_degenerate_ratios_are_defined():
    assert ratio(0.0, 0.0) == 0.0 and ratio(1.0, 0.0) is None and ratio(1.0, 4.0) == 0.25
    # only rising returns: no downside, the Sortino ratio is unbounded
    assert return_figures(np.array([0.01, 0.02]), 252)["sortino"] is None


def test_zero_trades_give_valid_metrics_without_nan():
    bars = random_bars(500, seed=1)
    result = backtest_targets(bars, np.zeros(500, dtype=np.int8), BacktestSettings(calendar="crypto"))
    m = result.metrics
    json.dumps(m, allow_nan=False)  # no NaN or infinity anywhere
    assert m["trades"] == 0 and m["final_equity"] == m["initial_cash"]
    for key in ("total_return", "annualized_return", "volatility", "sharpe", "sortino", "calmar", "max_drawdown",
                "win_rate", "profit_factor", "expectancy", "avg_trade_return", "sqn", "exposure",
                "avg_holding_bars", "fees_paid", "slippage_paid"):  # fmt: skip
        assert m[key] == 0, key
    assert m["max_drawdown_bars"] == 0
    u = m["uncertainty"]
    assert u["sharpe_ci"] == [0.0, 0.0] and u["total_return_ci"] == [0.0, 0.0]
    assert u["permutation_p_value"] == 1.0
    assert m["buy_and_hold_return"] == pytest.approx(bars.close[-1] / bars.close[0] - 1)


def test_annualisation_uses_the_calendars_bars_per_year():
    assert calendars.bars_per_year("XNYS", "1h") == 252 * 7  # 6.5 h sessions: 7 hourly bars
    assert calendars.bars_per_year("XNYS", "1d") == 252
    assert calendars.bars_per_year("forex", "1h") == 260 * 24
    assert calendars.bars_per_year("crypto", "4h") == 365 * 6
    assert calendars.bars_per_year("forex", "1w") == pytest.approx(365.25 / 7)
    with pytest.raises(KeyError):
        calendars.bars_per_year("LSE", "1h")
    bars = random_bars(400, seed=2)
    target = np.repeat([0, 1, 0, -1], 100)
    for calendar, per_year in (("XNYS", 1764), ("crypto", 8760)):
        m = backtest_targets(bars, target, BacktestSettings(calendar=calendar)).metrics
        assert m["bars_per_year"] == per_year and m["years"] == pytest.approx(400 / per_year)
        returns = bar_returns(
            backtest_targets(bars, target, BacktestSettings(calendar=calendar)).simulation.equity, 1e5
        )
        assert m["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(per_year))


def test_a_single_winning_trade():
    sim = simulate(bars_from([10, 11, 12, 13], [10.5, 11.5, 12.5, 13.5]), np.array([1, 1, 0, 0]),
                   costs=Costs(0, 0), sizing=Sizing(units=1))  # fmt: skip
    m = backtest_metrics(sim, np.array([10.5, 11.5, 12.5, 13.5]), bars_per_year=252)
    assert (
        m["trades"] == 1 and m["win_rate"] == 1.0 and m["expectancy"] == pytest.approx(2.0)
    )  # in at 11, out at 13
    assert m["profit_factor"] is None  # no losing trade: unbounded
    assert m["sqn"] == 0.0  # fewer than two trades
    assert m["avg_holding_bars"] == 2.0 and m["exposure"] == 0.5


def test_bootstrap_intervals_hold_the_estimates():
    bars = random_bars(4000, seed=3)
    target = np.repeat(np.random.default_rng(4).integers(-1, 2, 200), 20)
    m = backtest_targets(bars, target, BacktestSettings(calendar="crypto")).metrics
    low, high = m["uncertainty"]["sharpe_ci"]
    assert low < m["sharpe"] < high
    low, high = m["uncertainty"]["total_return_ci"]
    assert low < m["total_return"] < high and low > -1
    assert m["uncertainty"]["block_bars"] == max(math.ceil(m["avg_holding_bars"]), math.ceil(4000 ** (1 / 3)))


def test_permutation_p_value_separates_an_oracle_from_noise_and_is_seeded():
    bars = random_bars(3000, seed=5)
    sizing, costs = Sizing(units=1), Costs(0, 0)
    # an oracle that is long exactly when the next open-to-open move is up (look-ahead on purpose)
    up = np.append(np.diff(bars.open), 0.0)[1:] > 0
    oracle = np.append(up, False).astype(np.int8)
    sim = simulate(bars, oracle, costs=costs, sizing=sizing)
    assert permutation_p_value(sim, bars.open, bars.close, permutations=200, seed=0) == pytest.approx(1 / 201)
    noise = np.repeat(np.random.default_rng(6).integers(0, 2, 150), 20)
    sim = simulate(bars, noise, costs=costs, sizing=sizing)
    p = [permutation_p_value(sim, bars.open, bars.close, permutations=200, seed=s) for s in (0, 0, 1)]
    assert p[0] == p[1] != p[2]
    assert 0.02 < p[0] < 0.98


def test_deflated_sharpe_ratio_matches_the_papers_example():
    # Bailey & López de Prado (2014): annualised SR 2.5 over 1250 daily returns, 100 trials whose
    # annualised Sharpe ratios have variance 0.5, skewness -3, kurtosis 10: DSR = 0.9004.
    per_year = 250
    dsr = deflated_sharpe_ratio(2.5 / math.sqrt(per_year), 100, 0.5 / per_year, -3.0, 10.0, 1250)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # one trial: the probabilistic Sharpe ratio against zero
    sr = 0.05
    psr = NormalDist().cdf(sr * math.sqrt(999) / math.sqrt(1 - 0.0 * sr + (3 - 1) / 4 * sr**2))
    assert deflated_sharpe_ratio(sr, 1, 0.01, 0.0, 3.0, 1000) == pytest.approx(psr)
    # more trials, a higher bar
    assert expected_max_sharpe(10, 0.01) < expected_max_sharpe(1000, 0.01)
    assert deflated_sharpe_ratio(sr, 1000, 0.001, 0.0, 3.0, 1000) < deflated_sharpe_ratio(
        sr, 10, 0.001, 0.0, 3.0, 1000
    )
    with pytest.raises(DeflatedSharpeError, match="trials must be >= 1"):
        deflated_sharpe_ratio(sr, 0, 0.01, 0.0, 3.0, 1000)
    with pytest.raises(DeflatedSharpeError, match="at least 2 return observations"):
        deflated_sharpe_ratio(sr, 5, 0.01, 0.0, 3.0, 1)


def test_return_moments_by_hand_and_when_undefined():
    # r = 0, 0, 0, 1: mean 1/4, m2 = 3/16, m3 = 3/32, m4 = 21/256
    moments = return_moments(np.array([0.0, 0.0, 0.0, 1.0]))
    assert moments["return_skewness"] == pytest.approx((3 / 32) / (3 / 16) ** 1.5)
    assert moments["return_kurtosis"] == pytest.approx((21 / 256) / (3 / 16) ** 2)
    assert return_moments(np.zeros(5)) == {"return_skewness": 0.0, "return_kurtosis": 0.0}
    normal = return_moments(np.random.default_rng(2).normal(0, 0.01, 200_000))
    assert abs(normal["return_skewness"]) < 0.02 and normal["return_kurtosis"] == pytest.approx(3.0, abs=0.05)


def test_the_best_of_several_backtests_is_deflated():
    per_year = 250.0

    def trial(sharpe: float) -> dict[str, float]:
        return {
            "sharpe": sharpe,
            "bars_per_year": per_year,
            "bars": 1250,
            "return_skewness": -3.0,
            "return_kurtosis": 10.0,
        }

    sharpes = [0.5, 1.0, 2.5, -0.3]
    out = deflated_best([trial(s) for s in sharpes])
    per_bar = np.array(sharpes) / math.sqrt(per_year)
    expected = deflated_sharpe_ratio(per_bar[2], 4, float(per_bar.var(ddof=1)), -3.0, 10.0, 1250)
    assert (out["best"], out["trials"], out["sharpe"]) == (2, 4, 2.5)
    assert out["deflated_sharpe_ratio"] == pytest.approx(expected)
    assert out["expected_max_sharpe"] == pytest.approx(
        expected_max_sharpe(4, float(per_bar.var(ddof=1))) * math.sqrt(per_year)
    )
    alone = deflated_best([trial(2.5)])
    assert (
        alone["expected_max_sharpe"] == 0.0 and alone["deflated_sharpe_ratio"] > out["deflated_sharpe_ratio"]
    )
    with pytest.raises(DeflatedSharpeError, match="unbounded"):
        deflated_best([trial(1.0), {**trial(1.0), "sharpe": None}])
    with pytest.raises(DeflatedSharpeError, match="no trials"):
        deflated_best([])
