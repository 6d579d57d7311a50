"""Walk-forward: retrain on a rolling window, backtest each following window out of sample, stitch.

**Windows** (:func:`plan_windows`), lengths in calendar months and days (:class:`Span`,
:func:`parse_span`: ``12M``, ``1Y``, ``2W``, ``30D``; UTC): window k trains on
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

import calendar
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
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
from ktrdr.research.bars import Bars, iso_minute
from ktrdr.strategy import LoadedStrategy
from ktrdr.strategy.model import Strategy

if TYPE_CHECKING:
    from ktrdr.research.trainer import TrainOptions

_WINDOW = re.compile(r"([0-9]{1,3})([MYWD])")
DAY_NS = 86_400 * 10**9


class WalkForwardError(BacktestError):
    """A window length or range that cannot make a walk-forward (bad text, no complete window).
    ``field``: the argument at fault (``train_window``, ``test_window``), "" when not one."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Span:
    """A window length: calendar ``months`` plus ``days`` (UTC; ``text`` as the user wrote it)."""

    months: int = 0
    days: int = 0
    text: str = ""


@dataclass(frozen=True)
class Window:
    """One walk-forward window: train on ``[train_start_ns, train_end_ns)``, test on
    ``[test_start_ns, test_end_ns)``, with ``train_end_ns == test_start_ns`` (ns since the epoch, UTC)."""

    index: int
    train_start_ns: int
    train_end_ns: int
    test_start_ns: int
    test_end_ns: int


def parse_span(text: str, *, field: str = "window") -> Span:
    """A window length: 1–999 of ``M`` (months), ``Y`` (12 months), ``W`` (7 days) or ``D`` (days):
    ``12M``, ``1Y``, ``2W``, ``30D``. Raises :class:`WalkForwardError` naming ``field``."""
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise WalkForwardError(
            f"{field}: expected a count and a unit M, Y, W or D like 12M, 1Y, 2W or 30D, got {text!r}", field
        )
    count, unit = int(match.group(1)), match.group(2)
    if count == 0:
        raise WalkForwardError(f"{field}: a window must be at least 1 {unit} long, got {text!r}", field)
    months = {"M": count, "Y": 12 * count}.get(unit, 0)
    days = {"W": 7 * count, "D": count}.get(unit, 0)
    return Span(months, days, text.strip())


def add_months(ns: int, months: int) -> int:
    """``ns`` moved by ``months`` calendar months (UTC; the day clipped to the month's length, the
    time of day kept)."""
    seconds, rest = divmod(ns, 10**9)
    moment = datetime.fromtimestamp(seconds, UTC)
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    moved = moment.replace(year=year, month=month + 1, day=day)
    return int(moved.timestamp()) * 10**9 + rest


def _offset(start_ns: int, steps: int, step: Span, plus: Span | None = None) -> int:
    """``start + steps·step (+ plus)``, the months added at once (no day clipping carried over)."""
    months = steps * step.months + (plus.months if plus else 0)
    days = steps * step.days + (plus.days if plus else 0)
    return add_months(start_ns, months) + days * DAY_NS


def plan_windows(start_ns: int, end_ns: int, train: Span, test: Span) -> list[Window]:
    """The windows of the module docstring. Raises :class:`WalkForwardError` with ``field``
    ``train_window`` when the range is not longer than one train window, ``test_window`` when the
    first test window does not fit whole before ``end_ns``."""
    if train.months + train.days < 1 or test.months + test.days < 1:
        raise WalkForwardError(f"window lengths must be positive, got {train} and {test}")
    first_test = _offset(start_ns, 0, test, train)
    if first_test >= end_ns:
        raise WalkForwardError(
            f"train_window {train.text or train}: the range {_day(start_ns)} .. {_day(end_ns)} is not "
            "longer than one train window, so it leaves no test window",
            "train_window",
        )
    if _offset(start_ns, 1, test, train) > end_ns:
        raise WalkForwardError(
            f"test_window {test.text or test}: the first test window, from {_day(first_test)}, ends "
            f"after {_day(end_ns)}: the range holds fewer than one full train and test window",
            "test_window",
        )
    out: list[Window] = []
    while True:
        k = len(out)
        test_start = _offset(start_ns, k, test, train)
        if test_start >= end_ns:
            return out
        test_end = min(_offset(start_ns, k + 1, test, train), end_ns)
        out.append(Window(k, _offset(start_ns, k, test), test_start, test_start, test_end))


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00")


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
