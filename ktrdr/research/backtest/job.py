"""One backtest job end to end, as the training host's worker runs it (and a library caller can).

:func:`run_backtest`: a strategy, a model directory, one symbol's bars and a
:class:`~ktrdr.jobs.backtest.BacktestSpec` → the job's result (:data:`ktrdr.jobs.backtest.RESULT_KEYS`)
and its artifacts written into a directory (``report.json``, ``trades.csv``, ``equity.csv``,
``plot.png``; formats in :mod:`ktrdr.jobs.backtest`). Steps, reported through ``step`` as they
start: :data:`STEPS`. A set ``cancel`` token stops the job between steps (:class:`Cancelled`).

Errors: :class:`~ktrdr.research.features.FeatureSpecMismatch` when the strategy builds other
features than the model was trained on; other ``ValueError`` subclasses (bars, costs, settings,
:class:`~ktrdr.research.artifacts.ArtifactError`) for bad input.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ktrdr import calendars
from ktrdr.atomicfile import write_atomic
from ktrdr.jobs import backtest as wire
from ktrdr.research.artifacts import ArtifactError, load_model_dir
from ktrdr.research.backtest.classifier import classifier_metrics
from ktrdr.research.backtest.engine import BacktestResult, BacktestSettings, backtest_probabilities
from ktrdr.research.backtest.inference import class_probabilities
from ktrdr.research.backtest.plot import plot_png
from ktrdr.research.backtest.walkforward import backtest_windows, stitch, window_summary
from ktrdr.research.bars import Bars, iso_minute
from ktrdr.research.labels import CLASS_NAMES
from ktrdr.research.train import select_bars
from ktrdr.research.trainer import CancelToken
from ktrdr.strategy import Strategy
from ktrdr.strategy.model import strategy_from_dict

#: The job's steps, in order (progress ``current`` counts them from 1); a walk-forward's: :func:`steps_of`.
STEPS = ("features", "simulate", "classifier", "artifacts")


def steps_of(spec: wire.BacktestSpec) -> tuple[str, ...]:
    """The steps of the job ``spec`` asks for: :data:`STEPS`, or for a walk-forward one step per
    test window (``window k/n``: its model's features, decisions and simulation), then ``stitch``
    and the last two of :data:`STEPS`."""
    n = len(spec.windows)
    if not n:
        return STEPS
    return (*(f"window {k}/{n}" for k in range(1, n + 1)), "stitch", *STEPS[2:])


class Cancelled(Exception):
    """The cancel token was set; the job stopped between steps and wrote no artifacts."""


def select_symbol_bars(
    strategy: Strategy, symbol: str, start_ns: int, end_ns: int, read: Callable[[str, str], tuple[Bars, str]]
) -> dict[str, Bars]:
    """timeframe → ``symbol``'s bars the backtest needs (warm-up included), by the same rule as
    training (:func:`ktrdr.research.train.select_bars`) applied to that one symbol."""
    one = replace(strategy, data=replace(strategy.data, symbols=(symbol,)))
    return select_bars(one, start_ns, end_ns, read)[symbol]


def settings_for(spec: wire.BacktestSpec) -> BacktestSettings:
    """The library settings of a job spec (calendar defaulting to the symbol's guess)."""
    return BacktestSettings(
        calendar=spec.calendar or calendars.guess(spec.symbol),
        fee_bps=spec.fee_bps,
        slippage_bps=spec.slippage_bps,
        initial_cash=spec.initial_cash,
        position_size=spec.position_size,
        direction=spec.direction,
        start_ns=spec.start_ns,
        end_ns=spec.end_ns,
        permutations=spec.permutations,
        seed=spec.seed,
    )


def model_strategy(model_dir: Path) -> Strategy:
    """The strategy a model was trained with, from its directory's ``strategy.json``. Raises
    :class:`~ktrdr.research.artifacts.ArtifactError` when the file is unreadable or not a strategy."""
    path = model_dir / "strategy.json"
    try:
        return strategy_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a strategy: {exc}") from None


def run_backtest(
    strategy: Strategy,
    model_dir: Path,
    bars: Mapping[str, Bars],
    spec: wire.BacktestSpec,
    out_dir: Path,
    *,
    warnings: Sequence[str] = (),
    step: Callable[[int, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Run the job (module docstring) with ``strategy`` (the strategy document's, or the model's
    own: :func:`model_strategy`); ``bars``: timeframe → ``spec.symbol``'s bars (as
    :func:`select_symbol_bars` gives them); ``warnings``: the strategy loader's, carried into the
    result. ``model_dir``: the model's directory, or for a walk-forward spec a directory holding
    window k's model in ``<k>/``. Writes :data:`~ktrdr.jobs.backtest.ARTIFACTS` into ``out_dir``
    (created) and returns the result. ``step(current, name)`` as each of :func:`steps_of` starts."""
    settings = settings_for(spec)
    settings.costs()  # bad costs refused before the model loads
    steps = steps_of(spec)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    done = 0

    def begin() -> None:
        nonlocal t, done
        if done:
            timings[f"{steps[done - 1]}_s"] = round(time.perf_counter() - t, 4)
            t = time.perf_counter()
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"cancelled before {steps[done]}")
        if step is not None:
            step(done + 1, steps[done])
        done += 1

    begin()
    base = bars[strategy.data.base_timeframe]
    windows: list[dict[str, Any]] = []
    if spec.windows:
        models = [load_model_dir(model_dir / str(k)) for k in range(len(spec.windows))]
        parts = backtest_windows(models, strategy, bars, spec.windows, settings, on_window=lambda _k: begin())
        windows = [window_summary(part) for part in parts]
        result = stitch(parts, settings)
        model = models[-1]
    else:
        model = load_model_dir(model_dir)
        probabilities = class_probabilities(model, strategy, bars)
        begin()
        result = backtest_probabilities(probabilities, strategy, base, settings)
    begin()
    classifier = classifier_metrics(strategy, base, result)
    begin()
    out: dict[str, Any] = {
        "strategy": strategy.name,
        "symbol": spec.symbol,
        "timeframe": result.bars.timeframe,
        "calendar": settings.calendar,
        "range": {
            "first": iso_minute(int(result.bars.time[0])),
            "last": iso_minute(int(result.bars.time[-1])),
            "bars": len(result.bars),
        },
        "decisions": _decisions(strategy, settings, result),
        "metrics": result.metrics,
        "classifier": classifier,
        "model": {
            "created_at": model.manifest.get("created_at"),
            "seed": model.manifest.get("seed"),
            "features": len(model.feature_spec.columns),
            "symbols": list(model.symbols),
        },
        "timings": timings,
        "warnings": [*warnings, *_warnings(result)],
    }
    if windows:
        out["windows"] = windows
    write_artifacts(out, result, out_dir)
    return out


def _decisions(strategy: Strategy, settings: BacktestSettings, result: BacktestResult) -> dict[str, Any]:
    """The decision rules in force and how often each signal fired."""
    assert result.decisions is not None
    signal = result.decisions.signal
    spec = strategy.decisions
    return {
        "confidence_threshold": spec.confidence_threshold,
        "min_signal_separation": spec.min_signal_separation,
        "position_awareness": spec.position_awareness,
        "direction": settings.direction or spec.direction,
        "position_size": settings.position_size or spec.position_size,
        "signals": {name: int(np.count_nonzero(signal == k)) for k, name in enumerate(CLASS_NAMES)},
    }


def _warnings(result: BacktestResult) -> list[str]:
    assert result.probabilities is not None
    undecided = int(np.count_nonzero(~np.isfinite(result.probabilities).all(axis=1)))
    if not undecided:
        return []
    return [
        f"{undecided} of {len(result.bars)} bars had no decision (features not warm: give more "
        "history before the start)"
    ]


def write_artifacts(report: dict[str, Any], result: BacktestResult, out_dir: Path) -> None:
    """The four artifacts of :mod:`ktrdr.jobs.backtest` into ``out_dir``, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trades = result.simulation.trades.records()
    for trade in trades:
        trade["entry_time"] = _iso(trade["entry_time"])
        trade["exit_time"] = _iso(trade["exit_time"])
    body = json.dumps({**report, "trades": trades}, indent=1, allow_nan=False) + "\n"
    write_atomic(out_dir / wire.REPORT, body.encode())
    write_atomic(
        out_dir / wire.TRADES, _csv(wire.TRADE_COLUMNS, ([t[c] for c in wire.TRADE_COLUMNS] for t in trades))
    )
    bars, sim = result.bars, result.simulation
    hold = sim.initial_cash * bars.close / bars.close[0]
    rows = zip(
        (_iso(int(x)) for x in bars.time),
        sim.equity.tolist(),
        sim.position.tolist(),
        bars.close.tolist(),
        hold.tolist(),
        strict=True,
    )
    write_atomic(out_dir / wire.EQUITY, _csv(wire.EQUITY_COLUMNS, rows))
    write_atomic(out_dir / wire.PLOT, plot_png(result))


def _iso(ns: int) -> str:
    return np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="s") + "Z"


def _csv(header: tuple[str, ...], rows: Any) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode()
