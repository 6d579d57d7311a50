"""Agreement with an independent engine, backtesting.py (0.6.x), on fixed target sequences.

Matched conventions: fills at the next bar's open (``trade_on_close=False``), commission as a
fraction of traded value on entry and exit (ktrdr's fee), no slippage (backtesting.py's ``spread``
is charged on entries only), a fixed number of units per position. Every convention that differs
is documented in docs/backtesting.md ("Agreement with backtesting.py"); each test below computes
the expected difference and asserts it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest

from ktrdr.research.backtest.costs import Costs
from ktrdr.research.backtest.metrics import backtest_metrics, drawdown
from ktrdr.research.backtest.simulate import Simulation, Sizing, simulate
from ktrdr.research.bars import Bars
from tests.support.backtest import backtesting_py_frame as frame
from tests.support.backtest import follow_targets_strategy, random_bars

FEE = 0.002
UNITS = 10
CASH = 100_000.0


FollowTargets = follow_targets_strategy()


def run_backtesting_py(bars: Bars, target: np.ndarray, *, finalize: bool = False, size: float = UNITS):
    bt = Backtest(frame(bars), FollowTargets, cash=CASH, commission=FEE, finalize_trades=finalize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "trades remain open" is the point of some cases
        return bt.run(targets=target, size=size)


def run_ktrdr(bars: Bars, target: np.ndarray) -> Simulation:
    return simulate(
        bars,
        target,
        costs=Costs(fee_bps=FEE * 1e4, slippage_bps=0),
        sizing=Sizing(units=UNITS),
        initial_cash=CASH,
    )


def blocks(seed: int, n_blocks: int, length: int, choices=(-1, 0, 1)) -> np.ndarray:
    """Targets constant over blocks of ``length`` bars; bar 0 flat (backtesting.py never acts on
    it, see test_a_signal_at_bar_0_is_lost_by_backtesting_py)."""
    rng = np.random.default_rng(seed)
    out = np.repeat(rng.choice(choices, n_blocks), length)
    out[0] = 0
    return out


def flat_at_end(target: np.ndarray) -> np.ndarray:
    out = target.copy()
    out[-12:] = 0
    return out


CASES = {
    "long/short flips": flat_at_end(blocks(1, 40, 9)),
    "back-to-back reversals": flat_at_end(np.where(np.arange(400) % 14 < 7, 1, -1) * (np.arange(400) > 0)),
    "long only": flat_at_end(blocks(2, 50, 7, choices=(0, 1))),
    "short bursts": flat_at_end(blocks(3, 200, 2)),
}


def trades_of(stats) -> pd.DataFrame:
    return stats._trades.sort_values(["EntryBar", "ExitBar"]).reset_index(drop=True)


@pytest.mark.parametrize("name", list(CASES))
def test_trades_equity_and_metrics_agree(name):
    target = CASES[name]
    bars = random_bars(target.size, seed=11)
    stats = run_backtesting_py(bars, target)
    sim = run_ktrdr(bars, target)
    theirs = trades_of(stats)
    t = sim.trades
    assert len(t) == len(theirs) > 5
    np.testing.assert_array_equal(t.entry_bar, theirs.EntryBar)
    np.testing.assert_array_equal(t.exit_bar, theirs.ExitBar)
    np.testing.assert_array_equal(t.side * t.units, theirs.Size)
    np.testing.assert_allclose(t.entry_price, theirs.EntryPrice, rtol=1e-13)
    np.testing.assert_allclose(t.exit_price, theirs.ExitPrice, rtol=1e-13)
    np.testing.assert_allclose(t.fees, theirs.Commission, rtol=1e-12)
    np.testing.assert_allclose(t.pnl, theirs.PnL, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(t.returns, theirs.ReturnPct, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sim.equity, stats._equity_curve.Equity, rtol=1e-12)

    m = backtest_metrics(sim, bars.close, bars_per_year=365 * 24)
    assert m["trades"] == stats["# Trades"]
    assert m["total_return"] * 100 == pytest.approx(stats["Return [%]"], rel=1e-9, abs=1e-12)
    assert m["max_drawdown"] * 100 == pytest.approx(-stats["Max. Drawdown [%]"], rel=1e-9)
    assert m["win_rate"] * 100 == pytest.approx(stats["Win Rate [%]"], rel=1e-12)
    assert m["avg_trade_return"] * 100 == pytest.approx(stats["Expectancy [%]"], rel=1e-9)
    assert m["fees_paid"] == pytest.approx(stats["Commissions [$]"], rel=1e-12)
    assert m["buy_and_hold_return"] * 100 == pytest.approx(stats["Buy & Hold Return [%]"], rel=1e-12)

    # Differences by definition, each recomputed from ktrdr's trades or equity:
    # profit factor: backtesting.py sums trade *returns*, ktrdr sums money P&L
    r = t.returns
    assert r[r > 0].sum() / -r[r < 0].sum() == pytest.approx(stats["Profit Factor"], rel=1e-9)
    assert m["profit_factor"] == pytest.approx(t.pnl[t.pnl > 0].sum() / -t.pnl[t.pnl < 0].sum())
    # SQN: backtesting.py on money P&L, ktrdr on trade returns
    assert math.sqrt(len(t)) * t.pnl.mean() / t.pnl.std(ddof=1) == pytest.approx(stats["SQN"], rel=1e-9)
    assert m["sqn"] == pytest.approx(math.sqrt(len(t)) * r.mean() / r.std(ddof=1))
    # exposure: backtesting.py counts the exit bar too (inclusive end), ktrdr the bars held at the close
    inclusive = np.zeros(target.size, dtype=bool)
    for entry, exit_ in zip(t.entry_bar, t.exit_bar, strict=True):
        inclusive[entry : exit_ + 1] = True
    assert stats["Exposure Time [%]"] == pytest.approx(inclusive.mean() * 100, rel=1e-12)
    assert m["exposure"] == pytest.approx(np.count_nonzero(sim.position) / target.size)
    # Sharpe: backtesting.py's formula (daily resampling, geometric annualisation) on ktrdr's equity
    assert backtesting_py_sharpe(sim.equity, frame(bars).index) == pytest.approx(
        stats["Sharpe Ratio"], rel=1e-9
    )


def backtesting_py_sharpe(equity: np.ndarray, index: pd.DatetimeIndex) -> float:
    """backtesting.py 0.6's Sharpe ratio: equity resampled to days, geometric mean daily return
    compounded over 365 days (252 without weekends), divided by its compounded volatility."""
    days = pd.Series(equity, index=index).resample("D").last().dropna().pct_change().dropna()
    periods = 365 if index.day_of_week.to_series().between(5, 6).mean() > 2 / 7 * 0.6 else 252
    g = math.exp(np.log1p(days).sum() / len(days)) - 1
    annual = (1 + g) ** periods - 1
    volatility = math.sqrt((days.var(ddof=1) + (1 + g) ** 2) ** periods - (1 + g) ** (2 * periods))
    return annual / volatility


def test_a_trade_open_at_the_end():
    target = blocks(4, 30, 11)
    target[-30:] = -1  # a short open at the end
    bars = random_bars(target.size, seed=12)
    sim = run_ktrdr(bars, target)
    assert sim.trades.closed_at_end[-1] and sim.trades.side[-1] == -1
    last_close, last_open, units = bars.close[-1], bars.open[-1], UNITS

    # finalize_trades=False: backtesting.py leaves it open (not in its trade list) and marks it to
    # the last close without an exit commission; ktrdr closes it at that close and pays the fee.
    stats = run_backtesting_py(bars, target)
    assert len(trades_of(stats)) == len(sim.trades) - 1
    their_equity = stats._equity_curve.Equity.to_numpy()
    np.testing.assert_allclose(sim.equity[:-1], their_equity[:-1], rtol=1e-12)
    assert their_equity[-1] - sim.equity[-1] == pytest.approx(FEE * units * last_close, rel=1e-9)

    # finalize_trades=True: backtesting.py closes it at the last bar's OPEN; ktrdr at its close.
    stats = run_backtesting_py(bars, target, finalize=True)
    theirs = trades_of(stats).iloc[-1]
    assert theirs.ExitBar == target.size - 1 and theirs.ExitPrice == last_open
    side = -1
    expected = side * units * (last_close - last_open) - FEE * units * (last_close - last_open)
    assert sim.trades.pnl[-1] - theirs.PnL == pytest.approx(expected, rel=1e-9)
    assert sim.trades.holding_bars[-1] == theirs.ExitBar - theirs.EntryBar + 1  # held through the last bar


def test_a_signal_at_bar_0_is_lost_by_backtesting_py():
    """backtesting.py calls ``next()`` from bar 1 on: a target set at bar 0 only acts through
    bar 1's target. Its result equals ktrdr's on the same targets with bar 0 made flat."""
    target = flat_at_end(blocks(5, 30, 8))
    target[:8] = 1  # long from bar 0
    bars = random_bars(target.size, seed=13)
    stats = run_backtesting_py(bars, target)
    ours = run_ktrdr(bars, target)
    assert ours.trades.entry_bar[0] == 1 and trades_of(stats).EntryBar[0] == 2
    shifted = target.copy()
    shifted[0] = 0
    np.testing.assert_allclose(run_ktrdr(bars, shifted).equity, stats._equity_curve.Equity, rtol=1e-12)


def test_fractional_sizing_is_ktrdrs_formula_rounded_down_to_whole_units():
    """backtesting.py sizes ``0 < size < 1`` as ``floor(size × equity / (open × (1 + fee)))``
    whole units; ktrdr keeps the fraction of a unit: ``size × equity / (open × (1 + fee))``."""
    target = flat_at_end(blocks(6, 40, 8, choices=(0, 1)))
    bars = random_bars(target.size, seed=14)
    stats = run_backtesting_py(bars, target, size=0.5)
    theirs = trades_of(stats)
    equity_before = stats._equity_curve.Equity.to_numpy()[theirs.EntryBar - 1]
    ours_formula = 0.5 * equity_before / (bars.open[theirs.EntryBar] * (1 + FEE))
    np.testing.assert_array_equal(theirs.Size, np.floor(ours_formula))
    sim = simulate(bars, target, costs=Costs(FEE * 1e4, 0), sizing=Sizing(fraction=0.5), initial_cash=CASH)
    assert sim.trades.units[0] == pytest.approx(0.5 * CASH / (bars.open[sim.trades.entry_bar[0]] * (1 + FEE)))
    assert sim.trades.units[0] != np.floor(sim.trades.units[0])


def test_drawdown_of_their_equity_is_their_max_drawdown():
    """The drawdown definition is shared: applied to backtesting.py's own equity curve it gives
    its Max. Drawdown."""
    target = blocks(7, 40, 10)
    bars = random_bars(target.size, seed=15)
    stats = run_backtesting_py(bars, target)
    their_equity = stats._equity_curve.Equity.to_numpy()
    assert drawdown(their_equity, CASH).max() * 100 == pytest.approx(-stats["Max. Drawdown [%]"], rel=1e-9)
