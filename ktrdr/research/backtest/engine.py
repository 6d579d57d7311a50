"""One backtest end to end: model → probabilities → decisions → fills → metrics. What a job calls.

* :func:`backtest_model`: a loaded model directory, its strategy and one symbol's bars (every
  timeframe of the strategy, including warm-up history before ``settings.start_ns``) →
  :class:`BacktestResult`. Features are built over all the bars given (so indicators are warm at
  the start); decisions and the simulation cover only the base bars whose open time lies in
  ``[start_ns, end_ns)``, starting flat.
* :func:`backtest_targets`: the same from precomputed target positions (tests, benchmarks,
  other signal sources).

Costs default per asset class of ``settings.calendar`` (:mod:`~ktrdr.research.backtest.costs`),
annualisation uses :func:`ktrdr.calendars.bars_per_year` of that calendar and the base timeframe.
Bad settings raise a ``ValueError`` subclass naming the field (``CostError``, ``SimulationError``,
``DecisionError``, :class:`BacktestError`) before any work is done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ktrdr import calendars
from ktrdr.research.artifacts import LoadedModel
from ktrdr.research.backtest.costs import Costs, costs_for
from ktrdr.research.backtest.decisions import Decisions, check_direction, decide
from ktrdr.research.backtest.inference import class_probabilities
from ktrdr.research.backtest.metrics import backtest_metrics, bar_returns
from ktrdr.research.backtest.simulate import Simulation, Sizing, simulate
from ktrdr.research.backtest.uncertainty import bootstrap_block, bootstrap_intervals, permutation_p_value
from ktrdr.research.bars import Bars
from ktrdr.strategy.model import Strategy


class BacktestError(ValueError):
    """A backtest that cannot run as asked (no bars in the range, bad settings)."""


@dataclass(frozen=True)
class BacktestSettings:
    """How to run a backtest. ``calendar``: ``XNYS``, ``forex`` or ``crypto`` (cost defaults,
    annualisation). ``fee_bps``/``slippage_bps``: None = the asset class's default.
    ``position_size`` (fraction of equity) and ``direction``: None = the strategy's
    ``decisions``; ``units``: a fixed number of units per position instead of a fraction.
    ``start_ns``/``end_ns``: the simulated bars' open times lie in ``[start_ns, end_ns)`` (None =
    open). ``permutations``/``seed``: the permutation test."""

    calendar: str
    fee_bps: float | None = None
    slippage_bps: float | None = None
    initial_cash: float = 100_000.0
    position_size: float | None = None
    units: float | None = None
    direction: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    permutations: int = 1000
    seed: int = 0

    def costs(self) -> Costs:
        return costs_for(self.calendar, fee_bps=self.fee_bps, slippage_bps=self.slippage_bps)

    def sizing(self, strategy_fraction: float) -> Sizing:
        if self.units is not None:
            if self.position_size is not None:
                raise BacktestError("give position_size (fraction of equity) or units, not both")
            return Sizing(units=self.units)
        return Sizing(fraction=self.position_size if self.position_size is not None else strategy_fraction)


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """``bars``: the simulated base bars; ``target``: the positions wanted per bar;
    ``decisions``: the decision record when a model decided (None for given targets);
    ``simulation``; ``metrics``: :func:`~ktrdr.research.backtest.metrics.backtest_metrics` plus
    ``uncertainty`` (bootstrap intervals, ``permutation_p_value``) and ``costs``;
    ``probabilities``: the model's class probabilities per simulated bar (None for given targets)."""

    bars: Bars
    target: np.ndarray
    decisions: Decisions | None
    simulation: Simulation
    metrics: dict[str, Any]
    probabilities: np.ndarray | None = None

    def report(self) -> dict[str, Any]:
        """JSON-able: ``symbol, timeframe, metrics, trades`` (one dict per trade)."""
        return {
            "symbol": self.bars.symbol,
            "timeframe": self.bars.timeframe,
            "metrics": self.metrics,
            "trades": self.simulation.trades.records(),
        }


def measure(bars: Bars, sim: Simulation, settings: BacktestSettings) -> dict[str, Any]:
    """The metrics of :class:`BacktestResult` for a simulation ``sim`` run on ``bars``:
    :func:`~ktrdr.research.backtest.metrics.backtest_metrics` annualised by ``settings.calendar``,
    ``uncertainty`` (bootstrap intervals and the permutation p-value, seeded by ``settings``) and
    ``costs``."""
    per_year = calendars.bars_per_year(settings.calendar, bars.timeframe)
    metrics = backtest_metrics(sim, bars.close, per_year)
    returns = bar_returns(sim.equity, sim.initial_cash)
    metrics["uncertainty"] = {
        **bootstrap_intervals(returns, bootstrap_block(sim), per_year),
        "permutation_p_value": permutation_p_value(
            sim, bars.open, bars.close, permutations=settings.permutations, seed=settings.seed
        ),
        "permutations": settings.permutations,
        "seed": settings.seed,
    }
    metrics["costs"] = asdict(sim.costs)
    return metrics


def backtest_targets(
    bars: Bars,
    target: np.ndarray,
    settings: BacktestSettings,
    *,
    sizing: Sizing | None = None,
    decisions: Decisions | None = None,
    probabilities: np.ndarray | None = None,
) -> BacktestResult:
    """Simulate ``target`` (one value per bar of ``bars``) and measure it. ``sizing``: None = from
    ``settings`` (``units``, else ``position_size``, else the whole equity)."""
    costs = settings.costs()
    size = sizing or settings.sizing(1.0)
    if len(bars) < 2:
        raise BacktestError(
            f"{bars.symbol} {bars.timeframe}: {len(bars)} bar(s) in the range; a backtest needs at least 2"
        )
    sim = simulate(bars, target, costs=costs, sizing=size, initial_cash=settings.initial_cash)
    metrics = measure(bars, sim, settings)
    return BacktestResult(bars, np.asarray(target), decisions, sim, metrics, probabilities)


def backtest_model(
    loaded: LoadedModel, strategy: Strategy, bars: Mapping[str, Bars], settings: BacktestSettings
) -> BacktestResult:
    """Backtest ``loaded`` on one symbol (module docstring). Raises
    :class:`~ktrdr.research.features.FeatureSpecMismatch` when the strategy's features differ from
    the model's, :class:`BacktestError` when the range holds fewer than 2 base bars."""
    settings.costs()  # validate before the expensive part
    settings.sizing(strategy.decisions.position_size)
    check_direction(settings.direction or strategy.decisions.direction)
    probabilities = class_probabilities(loaded, strategy, bars)
    return backtest_probabilities(probabilities, strategy, bars[strategy.data.base_timeframe], settings)


def backtest_probabilities(
    probabilities: np.ndarray, strategy: Strategy, base: Bars, settings: BacktestSettings
) -> BacktestResult:
    """The part of :func:`backtest_model` after inference: ``probabilities`` (one row per bar of
    ``base``, the base timeframe's bars given) → decisions under the strategy's ``decisions`` →
    simulation of the bars in ``[settings.start_ns, settings.end_ns)`` → metrics."""
    direction = check_direction(settings.direction or strategy.decisions.direction)
    sizing = settings.sizing(strategy.decisions.position_size)
    lo = 0 if settings.start_ns is None else int(np.searchsorted(base.time, settings.start_ns, "left"))
    hi = len(base) if settings.end_ns is None else int(np.searchsorted(base.time, settings.end_ns, "left"))
    window = base.slice(lo, hi)
    decisions = decide(probabilities[lo:hi], strategy.decisions, direction=direction)
    return backtest_targets(
        window,
        decisions.target,
        settings,
        sizing=sizing,
        decisions=decisions,
        probabilities=probabilities[lo:hi],
    )
