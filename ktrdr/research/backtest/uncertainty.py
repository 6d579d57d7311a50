"""How much of a backtest's result noise could produce: bootstrap intervals and a permutation test.

* **Block-bootstrap intervals** for the Sharpe ratio and the total return. Per-bar strategy
  returns are dependent (a position is held for many bars), so they are resampled in circular
  moving blocks of ``B = max(ceil(mean holding bars), ceil(n^(1/3)), 1)`` bars. The standard error
  of a mean under that bootstrap is computed exactly by
  :func:`ktrdr.research.skill.block_bootstrap_se` (the skill section's bootstrap; no Monte Carlo
  noise), and an interval is ``estimate ± t(k-1) · sqrt(k / (k-1)) · SE`` with k blocks per
  replicate, as there. Sharpe: the mean per-bar return's interval divided by the returns' standard
  deviation, times √A (first order: the deviation is taken as known; its noise is small beside the
  mean's for per-bar returns). Total return: the interval of the mean log return g = log(1 + r),
  mapped back by ``exp(n · g) - 1``. None when fewer than two blocks fit.
* **Permutation p-value** against random-entry strategies: the same trades (sides and holding
  times) placed at random, without overlap, on the same bars (every arrangement of the trades and
  the flat bars between them equally likely), seeded. The statistic is the trades' summed gross
  log return ``Σ side · (log P[exit] - log P[entry])`` on the fill prices' path ``P`` (opens,
  then the last close for an end-closed trade); costs are left out since every arrangement pays
  about the same. ``p = (1 + #{random ≥ actual}) / (1 + permutations)``; 1.0 without trades.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ktrdr.research.backtest.simulate import Simulation
from ktrdr.research.skill import LEVEL, block_bootstrap_se, t_quantile


def bootstrap_block(sim: Simulation) -> int:
    """B of the module docstring."""
    holding = float(sim.trades.holding_bars.mean()) if len(sim.trades) else 0.0
    return max(math.ceil(holding), math.ceil(sim.equity.size ** (1 / 3)), 1)


def _mean_interval(values: np.ndarray, block: int) -> tuple[float, float] | None:
    bootstrap = block_bootstrap_se(values, np.ones_like(values), block)
    if bootstrap is None:
        return None
    se, k = bootstrap
    half = t_quantile(k - 1) * math.sqrt(k / (k - 1)) * se
    mean = float(values.mean())
    return mean - half, mean + half


def bootstrap_intervals(returns: np.ndarray, block: int, bars_per_year: float) -> dict[str, Any]:
    """``level, block_bars, sharpe_ci, total_return_ci`` (each ``[low, high]`` or None) for per-bar
    returns ``returns`` (module docstring)."""
    out: dict[str, Any] = {"level": LEVEL, "block_bars": block, "sharpe_ci": None, "total_return_ci": None}
    mean_ci = _mean_interval(returns, block)
    if mean_ci is None:
        return out
    std = float(returns.std(ddof=1))
    scale = math.sqrt(bars_per_year)
    if std > 0:
        out["sharpe_ci"] = [mean_ci[0] / std * scale, mean_ci[1] / std * scale]
    else:  # constant returns: the Sharpe ratio is 0 (all zero) or unbounded; no interval
        out["sharpe_ci"] = [0.0, 0.0] if mean_ci == (0.0, 0.0) else None
    growth = np.log1p(np.maximum(returns, -1 + 1e-12))
    log_ci = _mean_interval(growth, block)
    if log_ci is not None:
        out["total_return_ci"] = [math.expm1(returns.size * log_ci[0]), math.expm1(returns.size * log_ci[1])]
    return out


def fill_path(opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """Log prices ``log P[k]``, k = 0..n: the opens, then the last close (module docstring)."""
    return np.log(np.append(opens, closes[-1:]))


def permutation_p_value(
    sim: Simulation, opens: np.ndarray, closes: np.ndarray, *, permutations: int, seed: int
) -> float:
    """The permutation p-value of the module docstring (one-sided: large = no better than random)."""
    trades = sim.trades
    count = len(trades)
    if count == 0 or permutations < 1:
        return 1.0
    log_price = fill_path(opens, closes)
    side = trades.side.astype(np.float64)
    holding = trades.holding_bars
    entry = trades.entry_bar
    actual = float(np.sum(side * (log_price[entry + holding] - log_price[entry])))
    slots = opens.size - 1  # entries fill at opens 1..n-1; exits at opens 2..n-1 or the last close (n)
    flat = slots - int(holding.sum())
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((permutations, count)), axis=1)
    gaps = np.sort(
        np.stack([rng.choice(flat + count, count, replace=False) for _ in range(permutations)]), axis=1
    ) - np.arange(count)
    held = holding[order]
    starts = 1 + gaps + np.cumsum(held, axis=1) - held
    gains = (side[order] * (log_price[starts + held] - log_price[starts])).sum(axis=1)
    return float((1 + np.count_nonzero(gains >= actual - 1e-12)) / (1 + permutations))
