"""Walk-forward: calendar-month windows whose test windows never overlap their train windows,
stitching that keeps the equity curve continuous and the arithmetic exact, and a whole walk-forward
with the library trainer on synthetic bars (tiny strategy, 2 epochs, three windows)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from ktrdr.research.backtest.engine import BacktestSettings, backtest_targets
from ktrdr.research.backtest.walkforward import stitch, walk_forward
from ktrdr.research.backtest.windows import Span, WalkForwardError, add_months, parse_span, plan_windows
from ktrdr.research.synthetic import gbm_bars, to_ns
from ktrdr.research.trainer import TrainOptions
from ktrdr.strategy import load_strategy_text
from tests.support.backtest import random_bars
from tests.support.traininghost import strategy_text


def test_window_lengths_parse_as_months_or_days() -> None:
    spans = [parse_span(t) for t in ("12M", "1M", "2Y", "2W", "30D")]
    assert [(s.months, s.days) for s in spans] == [
        (12, 0),
        (1, 0),
        (24, 0),
        (0, 14),
        (0, 30),
    ]
    for bad in ("12", "1H", "M", "-1M", "1.5M", "1000M"):
        with pytest.raises(WalkForwardError, match="like 12M, 1Y, 2W or 30D") as err:
            parse_span(bad, field="train_window")
        assert err.value.field == "train_window"
    for zero in ("0M", "0D"):
        with pytest.raises(WalkForwardError, match="at least 1") as err:
            parse_span(zero, field="test_window")
        assert err.value.field == "test_window"


def test_months_are_calendar_months_with_the_day_clipped() -> None:
    assert add_months(to_ns("2023-01-31T10:00"), 1) == to_ns("2023-02-28T10:00")
    assert add_months(to_ns("2023-11-01"), 14) == to_ns("2025-01-01")


def test_windows_roll_by_the_test_window_and_never_overlap_their_tests() -> None:
    start, end = to_ns("2022-01-01"), to_ns("2023-03-15")
    windows = plan_windows(start, end, Span(12), Span(1))
    assert len(windows) == 3
    assert [w.test_start_ns for w in windows] == [
        to_ns(d) for d in ("2023-01-01", "2023-02-01", "2023-03-01")
    ]
    assert windows[-1].test_end_ns == end  # the last test window is cut at the end
    for w in windows:
        assert w.train_end_ns <= w.test_start_ns < w.test_end_ns  # no test bar was a train bar
        assert add_months(w.train_start_ns, 12) == w.train_end_ns
    for before, after in itertools.pairwise(windows):
        assert before.test_end_ns == after.test_start_ns  # contiguous out-of-sample coverage
    with pytest.raises(WalkForwardError, match="not longer than one train window") as err:
        plan_windows(start, to_ns("2022-12-31"), Span(12), Span(1))
    assert err.value.field == "train_window"
    with pytest.raises(WalkForwardError, match="fewer than one full train and test window") as err:
        plan_windows(start, to_ns("2023-01-20"), Span(12), Span(1))  # the test window passes the end
    assert err.value.field == "test_window"


def test_day_windows_step_by_days_and_months_add_at_once() -> None:
    start = to_ns("2023-02-01")
    windows = plan_windows(start, to_ns("2023-04-14"), parse_span("30D"), parse_span("2W"))
    assert [w.train_start_ns for w in windows] == [start + k * 14 * 86_400 * 10**9 for k in range(3)]
    assert [w.test_end_ns - w.test_start_ns for w in windows] == [14 * 86_400 * 10**9] * 3
    # 31 Jan + 1 month + 1 month is 31 Mar (months add at once), not 28 Mar
    [first, second] = plan_windows(to_ns("2023-01-31"), to_ns("2023-04-30"), Span(1), Span(1))
    assert (first.test_start_ns, second.test_start_ns) == (to_ns("2023-02-28"), to_ns("2023-03-31"))


def _windows_of(n_windows: int, bars_per_window: int, seed: int) -> list:
    bars = random_bars(n_windows * bars_per_window, seed)
    rng = np.random.default_rng(seed)
    settings = BacktestSettings(calendar="crypto", position_size=0.5, permutations=50)
    out = []
    for k in range(n_windows):
        part = bars.slice(k * bars_per_window, (k + 1) * bars_per_window)
        target = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=len(part), p=[0.05, 0.9, 0.05])
        out.append(backtest_targets(part, target, settings))
    return out, bars, settings


def test_stitching_is_continuous_and_compounds_the_windows_exactly() -> None:
    results, bars, settings = _windows_of(4, 300, seed=5)
    stitched = stitch(results, settings)
    assert np.array_equal(stitched.bars.time, bars.time)
    equity = stitched.simulation.equity
    edge = 0
    for r in results[:-1]:
        edge += len(r.bars)
        # the next window starts flat at the previous window's final equity
        assert equity[edge] == pytest.approx(equity[edge - 1], rel=1e-12)
    growth = np.prod([1 + r.metrics["total_return"] for r in results]) - 1
    assert stitched.metrics["total_return"] == pytest.approx(growth, rel=1e-9)
    assert stitched.metrics["trades"] == sum(r.metrics["trades"] for r in results)
    trades = stitched.simulation.trades
    assert float(trades.pnl.sum()) == pytest.approx(equity[-1] - settings.initial_cash, rel=1e-9)
    assert np.all(stitched.bars.time[trades.entry_bar] == trades.entry_time)


def test_stitching_refuses_units_and_overlaps() -> None:
    results, _bars, settings = _windows_of(2, 100, seed=1)
    with pytest.raises(WalkForwardError, match="fraction-of-equity"):
        stitch(results, BacktestSettings(calendar="crypto", units=1.0))
    with pytest.raises(WalkForwardError, match="overlap"):
        stitch([results[1], results[0]], settings)


def test_a_walk_forward_trains_each_window_before_its_test_and_stitches(tmp_path: Path) -> None:
    text = strategy_text(epochs=2) + "decisions:\n  confidence_threshold: 0.0\n"
    loaded = load_strategy_text(text)
    bars = gbm_bars("AAPL", "1h", "2023-01-01", "2023-07-01", seed=9, sigma=0.4)
    windows = plan_windows(to_ns("2023-02-01"), to_ns("2023-07-01"), Span(2), Span(1))
    assert len(windows) == 3
    settings = BacktestSettings(calendar="XNYS", permutations=50)
    seen = []
    run = walk_forward(
        loaded,
        {"AAPL": {"1h": bars}},
        "AAPL",
        windows,
        settings,
        tmp_path,
        options=TrainOptions(device="cpu", threads=1),
        on_window=lambda w, r: seen.append(w.index),
    )
    assert seen == [0, 1, 2] and len(run.model_dirs) == 3
    for w, path, result in zip(run.windows, run.model_dirs, run.results, strict=True):
        manifest = json.loads((path / "manifest.json").read_text())
        trained_last = max(to_ns(d["last"]) for d in manifest["data"])
        assert trained_last < w.test_start_ns <= int(result.bars.time[0])  # out of sample
        assert int(result.bars.time[-1]) < w.test_end_ns
    stitched = run.stitched
    assert len(stitched.bars) == sum(len(r.bars) for r in run.results)
    assert np.all(np.diff(stitched.bars.time) > 0)
    assert stitched.metrics["trades"] == sum(r.metrics["trades"] for r in run.results) > 0
    assert all(np.isfinite(stitched.simulation.equity))
