"""The metric set of a backtest, from its equity curve and trades (formulas: ``docs/backtesting.md``).

Notation: ``E_b`` equity at bar b's close (b = 0..n-1), ``E_-1`` the initial cash, per-bar returns
``r_b = E_b / E_b-1 - 1``, ``A`` bars per year (:func:`ktrdr.calendars.bars_per_year` of the
series' calendar and timeframe), ``years = n / A``. Returns are fractions (0.01 = 1 %), money in
the account's currency, durations in bars.

Degenerate values are defined, never NaN: a ratio whose denominator is 0 is ``0.0`` when its
numerator is 0 too (e.g. every figure of a backtest without trades), and ``None`` (JSON null,
"unbounded") when the numerator is not (e.g. a profit factor without losing trades); means and
rates over zero trades are 0; a standard deviation of fewer than two values is 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ktrdr.research.backtest.simulate import Simulation


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``; 0.0 for 0/0 and None for x/0 with x ≠ 0 (module docstring)."""
    if denominator == 0:
        return 0.0 if numerator == 0 else None
    return numerator / denominator


def bar_returns(equity: np.ndarray, initial: float) -> np.ndarray:
    """``r_b = E_b / E_b-1 - 1`` with ``E_-1 = initial``; 0 after equity reached 0 or below."""
    previous = np.concatenate(([initial], equity[:-1]))
    out = np.zeros_like(equity, dtype=np.float64)
    np.divide(equity, previous, out=out, where=previous > 0)
    return np.where(previous > 0, out - 1.0, 0.0)


def drawdown(equity: np.ndarray, initial: float) -> np.ndarray:
    """Per bar, ``1 - E_b / max(E_-1, E_0, …, E_b)``: the fraction lost since the highest equity so far."""
    peak = np.maximum.accumulate(np.concatenate(([initial], equity)))[1:]
    return 1.0 - equity / peak


def longest_drawdown(equity: np.ndarray, initial: float) -> int:
    """The longest run of consecutive bars whose equity is below the highest equity before them
    (including the initial cash): bars from a peak until equity is back at or above it, or until
    the end when it never is."""
    series = np.concatenate(([initial], equity))
    below = series < np.maximum.accumulate(series)
    index = np.arange(series.size)
    last_high = np.maximum.accumulate(np.where(below, 0, index))
    return int((index - last_high).max()) if series.size else 0


def annualized(total_return: float, years: float) -> float:
    """``(1 + total)^(1 / years) - 1``; -1 when the equity ended at or below 0; 0 for an empty span."""
    if years <= 0:
        return 0.0
    if total_return <= -1:
        return -1.0
    return (1.0 + total_return) ** (1.0 / years) - 1.0


def _std(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


def return_figures(returns: np.ndarray, bars_per_year: float) -> dict[str, float | None]:
    """``volatility`` (std · √A), ``sharpe`` (mean / std · √A, risk-free rate 0) and ``sortino``
    (mean / downside deviation · √A, downside deviation √mean(min(r, 0)²) over all bars)."""
    scale = math.sqrt(bars_per_year)
    mean = float(returns.mean()) if returns.size else 0.0
    std = _std(returns)
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2))) if returns.size else 0.0
    sharpe = ratio(mean, std)
    sortino = ratio(mean, downside)
    return {
        "volatility": std * scale,
        "sharpe": None if sharpe is None else sharpe * scale,
        "sortino": None if sortino is None else sortino * scale,
    }


def return_moments(returns: np.ndarray) -> dict[str, float]:
    """``return_skewness`` m3 / m2^1.5 and ``return_kurtosis`` m4 / m2² (not excess: 3 for normal
    returns) of the per-bar returns, central moments m_k = mean((r - mean r)^k); 0 when m2 is 0
    (what the deflated Sharpe ratio of a comparison reads, :mod:`~ktrdr.research.backtest.deflated`)."""
    if returns.size == 0:
        return {"return_skewness": 0.0, "return_kurtosis": 0.0}
    centred = returns - returns.mean()
    m2 = float(np.mean(centred**2))
    skew = ratio(float(np.mean(centred**3)), m2**1.5)
    kurt = ratio(float(np.mean(centred**4)), m2**2)
    return {"return_skewness": skew or 0.0, "return_kurtosis": kurt or 0.0}


def trade_figures(sim: Simulation) -> dict[str, float | int | None]:
    """Figures of the trade list: ``trades, win_rate, profit_factor, expectancy,
    avg_trade_return, sqn, avg_holding_bars, fees_paid, slippage_paid`` (docs/backtesting.md)."""
    t = sim.trades
    count = len(t)
    wins = float(t.pnl[t.pnl > 0].sum())
    losses = float(-t.pnl[t.pnl < 0].sum())
    sqn_ratio = ratio(float(t.returns.mean()), _std(t.returns)) if count > 1 else 0.0
    return {
        "trades": count,
        "win_rate": float((t.pnl > 0).mean()) if count else 0.0,
        "profit_factor": ratio(wins, losses),
        "expectancy": float(t.pnl.mean()) if count else 0.0,
        "avg_trade_return": float(t.returns.mean()) if count else 0.0,
        "sqn": None if sqn_ratio is None else math.sqrt(count) * sqn_ratio,
        "avg_holding_bars": float(t.holding_bars.mean()) if count else 0.0,
        "fees_paid": float(t.fees.sum()),
        "slippage_paid": float(t.slippage.sum()),
    }


def backtest_metrics(sim: Simulation, close: np.ndarray, bars_per_year: float) -> dict[str, Any]:
    """Every metric of docs/backtesting.md for ``sim`` run on bars with closes ``close``, with
    ``bars_per_year`` A. Buy-and-hold holds one unit from the first close to the last, no costs."""
    n = sim.equity.size
    years = n / bars_per_year
    initial = sim.initial_cash
    final = float(sim.equity[-1]) if n else initial
    total = final / initial - 1.0
    returns = bar_returns(sim.equity, initial)
    max_dd = float(drawdown(sim.equity, initial).max()) if n else 0.0
    annual = annualized(total, years)
    hold = close / close[0] if n else close
    hold_total = float(hold[-1] - 1.0) if n else 0.0
    hold_returns = bar_returns(hold, 1.0)
    out: dict[str, Any] = {
        "bars": n,
        "bars_per_year": bars_per_year,
        "years": years,
        "initial_cash": initial,
        "final_equity": final,
        "total_return": total,
        "annualized_return": annual,
        **return_figures(returns, bars_per_year),
        **return_moments(returns),
        "max_drawdown": max_dd,
        "max_drawdown_bars": longest_drawdown(sim.equity, initial),
        "calmar": ratio(annual, max_dd),
        "exposure": float(np.count_nonzero(sim.position) / n) if n else 0.0,
        **trade_figures(sim),
        "buy_and_hold_return": hold_total,
        "buy_and_hold_annualized_return": annualized(hold_total, years),
        "buy_and_hold_sharpe": return_figures(hold_returns, bars_per_year)["sharpe"],
        "buy_and_hold_max_drawdown": float(drawdown(hold, 1.0).max()) if n else 0.0,
    }
    return out
