"""Walk-forward: retrain on a rolling window, backtest each following window out of sample, stitch.

**Windows** (:mod:`.windows`: :func:`~.windows.plan_windows`), lengths in calendar months and
days (:func:`~.windows.parse_span`: ``12M``, ``1Y``, ``2W``, ``30D``; UTC): window k trains on
``[start + k·S, start + k·S + T)`` and is tested on ``[start + k·S + T, start + (k+1)·S + T)``,
T the train window and S the test window (``--train-window 12M --test-window 1M``); the first
window must fit whole, the last test window is cut at ``end``. Test windows are therefore
contiguous and cover ``[start + T, end)``, and every train window ends exactly where its test
window starts: a model never sees a bar of its test window (training cuts its bars, labels
included, at the train window's end).

**Stitching** (:func:`stitch`): each test window is backtested on its own, starting flat with the
same initial cash, and a position still open at a window's end is closed at its last close (the
engine's convention); the next window starts flat. Under fraction-of-equity sizing a simulation
scales exactly with its initial cash (units, fees, slippage and P&L are all proportional), so the
stitched account is window k's simulation scaled by ``f_k`` = the stitched equity at the end of
window k-1 / the initial cash (``f_0 = 1``): one continuous equity curve (the first value of a
window equals the previous window's last), one trade list (bar indices into the stitched bars), and
one metric set computed over it exactly as for a single backtest (:func:`~ktrdr.research.backtest.engine.measure`).
Fixed-units sizing does not scale and is refused.

:func:`walk_forward` runs the whole thing in-process with the library trainer (what
``python -m`` users and the tests call); the daemon runs the same windows as a batch of training
jobs, then one backtest job per symbol that backtests every test window with its model
(:func:`backtest_windows`) and stitches them with :func:`stitch`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ktrdr.research.artifacts import LoadedModel, load_model_dir
from ktrdr.research.backtest.decisions import Decisions
from ktrdr.research.backtest.engine import (
    BacktestError,
    BacktestResult,
    BacktestSettings,
    backtest_model,
    backtest_probabilities,
    measure,
)
from ktrdr.research.backtest.inference import class_probabilities
from ktrdr.research.backtest.simulate import Simulation, Trades
from ktrdr.research.backtest.windows import WalkForwardError, Window
from ktrdr.research.bars import Bars, iso_minute
from ktrdr.strategy import LoadedStrategy
from ktrdr.strategy.model import Strategy

if TYPE_CHECKING:
    from ktrdr.research.trainer import TrainOptions


def backtest_windows(
    models: Sequence[LoadedModel],
    strategy: Strategy,
    bars: Mapping[str, Bars],
    windows: Sequence[tuple[int, int]],
    settings: BacktestSettings,
    *,
    on_window: Callable[[int], None] | None = None,
) -> list[BacktestResult]:
    """Test window k (``[start_ns, end_ns)``) backtested with ``models[k]`` on one symbol's ``bars``
    (every timeframe, warm-up included: features are built over all of them, each at bar t from
    bars up to t), starting flat, as :func:`stitch` wants them. A window's own permutation test is
    skipped (the stitched backtest has one). ``on_window(k)`` after each window."""
    if len(models) != len(windows):
        raise WalkForwardError(f"{len(models)} model(s) for {len(windows)} window(s)")
    base = bars[strategy.data.base_timeframe]
    out = []
    for k, (model, (lo, hi)) in enumerate(zip(models, windows, strict=True)):
        probabilities = class_probabilities(model, strategy, bars)
        window_settings = replace(settings, start_ns=lo, end_ns=hi, permutations=0)
        out.append(backtest_probabilities(probabilities, strategy, base, window_settings))
        if on_window is not None:
            on_window(k)
    return out


def window_summary(result: BacktestResult) -> dict[str, Any]:
    """One test window's row of the walk-forward table: its bars, total return, Sharpe (None when
    unbounded) and number of trades."""
    return {
        "range": {
            "first": iso_minute(int(result.bars.time[0])),
            "last": iso_minute(int(result.bars.time[-1])),
            "bars": len(result.bars),
        },
        "total_return": result.metrics["total_return"],
        "sharpe": result.metrics["sharpe"],
        "trades": result.metrics["trades"],
    }


def stitch(results: Sequence[BacktestResult], settings: BacktestSettings) -> BacktestResult:
    """One backtest from consecutive test windows' backtests (module docstring); ``settings`` as
    the windows ran (``units`` refused), for the metrics. Raises :class:`WalkForwardError`."""
    if not results:
        raise WalkForwardError("nothing to stitch: no windows")
    if settings.units is not None:
        raise WalkForwardError("walk-forward stitching needs fraction-of-equity sizing, not fixed units")
    for before, after in itertools.pairwise(results):
        if after.bars.time[0] <= before.bars.time[-1]:
            raise WalkForwardError("test windows overlap or are out of order")
    initial = results[0].simulation.initial_cash
    equity, position, trades, offsets, factors = [], [], [], [], []
    level, offset = 1.0, 0
    for r in results:
        sim = r.simulation
        factor = level * initial / sim.initial_cash
        equity.append(sim.equity * factor)
        position.append(sim.position * factor)
        trades.append(sim.trades)
        offsets.append(offset)
        factors.append(factor)
        level = float(equity[-1][-1]) / initial
        offset += len(r.bars)
    bars = _concat_bars([r.bars for r in results])
    sim = Simulation(
        np.concatenate(equity),
        np.concatenate(position),
        _concat_trades(trades, offsets, factors),
        initial,
        results[0].simulation.costs,
    )
    decisions = None
    if all(r.decisions is not None for r in results):
        parts = [r.decisions for r in results if r.decisions is not None]
        decisions = Decisions(
            *(np.concatenate([getattr(d, f) for d in parts]) for f in ("signal", "confidence", "target"))
        )
    probabilities = None
    if all(r.probabilities is not None for r in results):
        probabilities = np.concatenate([r.probabilities for r in results if r.probabilities is not None])
    target = np.concatenate([r.target for r in results])
    return BacktestResult(bars, target, decisions, sim, measure(bars, sim, settings), probabilities)


def _concat_bars(parts: Sequence[Bars]) -> Bars:
    first = parts[0]
    columns = [
        np.concatenate([getattr(b, c) for b in parts])
        for c in ("time", "open", "high", "low", "close", "volume")
    ]
    return Bars.from_arrays(first.symbol, first.timeframe, *columns, source="walk-forward test windows")


def _concat_trades(parts: Sequence[Trades], offsets: Sequence[int], factors: Sequence[float]) -> Trades:
    """Trades of every window, bar indices shifted by the window's offset, money scaled by its factor."""
    scaled = {"units", "fees", "slippage", "pnl"}
    shifted = {"entry_bar", "exit_bar"}
    fields: dict[str, np.ndarray] = {}
    for name in Trades.__dataclass_fields__:
        pieces = []
        for t, off, f in zip(parts, offsets, factors, strict=True):
            value = getattr(t, name)
            pieces.append(value * f if name in scaled else value + off if name in shifted else value)
        fields[name] = np.concatenate(pieces)
    return Trades(**fields)


@dataclass(frozen=True, eq=False)
class WalkForward:
    """What :func:`walk_forward` returns: the windows, each window's model directory and backtest,
    and the stitched backtest."""

    windows: list[Window]
    model_dirs: list[Path]
    results: list[BacktestResult]
    stitched: BacktestResult


def walk_forward(
    loaded: LoadedStrategy,
    data: Mapping[str, Mapping[str, Bars]],
    symbol: str,
    windows: Sequence[Window],
    settings: BacktestSettings,
    work_dir: Path,
    *,
    options: TrainOptions | None = None,
    on_window: Callable[[Window, BacktestResult], None] | None = None,
) -> WalkForward:
    """Train one model per window on its train window (every symbol of the strategy, from
    ``data``: symbol → timeframe → bars covering everything), backtest ``symbol`` on its test
    window, stitch. Models go to ``work_dir/window-NN`` (which must not exist)."""
    from ktrdr.research.backtest.job import select_symbol_bars
    from ktrdr.research.train import select_bars, train_on_bars

    strategy = loaded.strategy

    def read(sym: str, timeframe: str) -> tuple[Bars, str]:
        if sym not in data or timeframe not in data[sym]:
            raise BacktestError(f"no {sym} {timeframe} bars given")
        return data[sym][timeframe], f"{sym} {timeframe} bars"

    model_dirs, results = [], []
    for w in windows:
        path = work_dir / f"window-{w.index:02d}"
        train_data = select_bars(strategy, w.train_start_ns, w.train_end_ns, read)
        train_on_bars(loaded, train_data, w.train_start_ns, w.train_end_ns, path, options=options)
        test_bars = select_symbol_bars(strategy, symbol, w.test_start_ns, w.test_end_ns, read)
        window_settings = replace(settings, start_ns=w.test_start_ns, end_ns=w.test_end_ns)
        result = backtest_model(load_model_dir(path), strategy, test_bars, window_settings)
        if on_window is not None:
            on_window(w, result)
        model_dirs.append(path)
        results.append(result)
    return WalkForward(list(windows), model_dirs, results, stitch(results, settings))
