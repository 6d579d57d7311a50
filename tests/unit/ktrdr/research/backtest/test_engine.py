"""A saved model backtested end to end: the shared feature builder with the spec verified, the
strategy's decisions, the date window, prefix invariance, bad settings refused before any work,
and the PNG."""

from __future__ import annotations

import dataclasses
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from ktrdr.research.artifacts import load_model_dir, save_model_dir
from ktrdr.research.backtest.costs import CostError
from ktrdr.research.backtest.decisions import decide
from ktrdr.research.backtest.engine import BacktestError, BacktestSettings, backtest_model
from ktrdr.research.backtest.inference import class_probabilities
from ktrdr.research.backtest.plot import plot_png
from ktrdr.research.features import FeatureSpecMismatch, feature_spec
from ktrdr.research.model import build_model
from ktrdr.research.synthetic import random_walk
from ktrdr.strategy import load_strategy_file

ROOT = Path(__file__).resolve().parents[5]
HOUR_NS = 3600 * 10**9


@pytest.fixture(scope="module")
def strategy():
    s = load_strategy_file(ROOT / "strategies" / "rsi_bbands_single.yaml").strategy
    # a low threshold so an untrained model trades
    return dataclasses.replace(s, decisions=dataclasses.replace(s.decisions, confidence_threshold=0.0))


@pytest.fixture(scope="module")
def model_dir(strategy, tmp_path_factory):
    spec = feature_spec(strategy)
    model = build_model(strategy.model, len(spec.columns), seed=3)
    with torch.no_grad():  # sharper than the initial weights: this model says BUY, HOLD and SELL
        for parameter in model.parameters():
            parameter.mul_(4)
    bars = random_walk("EURUSD", 300, seed=1)
    return save_model_dir(
        tmp_path_factory.mktemp("models") / "m", model, model_spec=strategy.model, symbols=("EURUSD",),
        strategy=strategy.to_dict(), feature_spec=spec, metrics={}, seed=1, device="cpu", data=[bars],
        timings={},
    )  # fmt: skip


@pytest.fixture(scope="module")
def bars():
    return random_walk("EURUSD", 2000, seed=2, bar_sigma=0.003)


def test_probabilities_come_from_the_shared_feature_builder(strategy, model_dir, bars):
    loaded = load_model_dir(model_dir)
    p = class_probabilities(loaded, strategy, {"1h": bars})
    warm = strategy.data.history_required
    assert p.shape == (2000, 3) and np.isnan(p[:warm]).all()
    np.testing.assert_allclose(p[warm:].sum(axis=1), 1.0, rtol=1e-6)
    # prefix invariance through the model: decisions on a prefix equal the full run's on it
    full = decide(p, strategy.decisions, direction="long_short")
    for k in (warm + 1, 700, 1999):
        part = class_probabilities(loaded, strategy, {"1h": bars.slice(0, k)})
        np.testing.assert_allclose(part, p[:k], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(
            decide(part, strategy.decisions, direction="long_short").target, full.target[:k]
        )


def test_a_model_trained_on_other_features_is_refused(strategy, model_dir, bars):
    rsi = strategy.indicator("rsi")
    other = dataclasses.replace(
        strategy,
        indicators=tuple(
            dataclasses.replace(i, params={**i.params, "period": 21}) if i.id == "rsi" else i
            for i in strategy.indicators
        ),
    )
    assert rsi.params["period"] == 14
    settings = BacktestSettings(calendar="forex")
    with pytest.raises(FeatureSpecMismatch, match=rf"{model_dir}.*column 0 'rsi_oversold': params"):
        backtest_model(load_model_dir(model_dir), other, {"1h": bars}, settings)


def test_backtest_model_over_a_window(strategy, model_dir, bars):
    start, end = int(bars.time[500]), int(bars.time[1500])
    settings = BacktestSettings(
        calendar="forex", start_ns=start, end_ns=end, direction="long_short", permutations=50
    )
    result = backtest_model(load_model_dir(model_dir), strategy, {"1h": bars}, settings)
    assert len(result.bars) == 1000 and result.bars.time[0] == start
    assert result.metrics["trades"] > 0 and (result.simulation.trades.side == -1).any()
    assert result.metrics["costs"] == {"fee_bps": 0.2, "slippage_bps": 1.0}  # forex defaults
    assert result.decisions is not None and result.decisions.target[0] == result.target[0]
    # the window starts flat: the first fill is at the open after the first decision in it
    first_change = int(np.flatnonzero(result.target)[0])
    assert result.simulation.trades.entry_bar[0] == first_change + 1
    report = result.report()
    json.dumps(report, allow_nan=False)  # JSON as it is: no NaN, no NumPy scalars
    assert report["symbol"] == "EURUSD" and len(report["trades"]) == result.metrics["trades"]
    assert set(report["trades"][0]) >= {"entry_time", "exit_time", "entry_price", "exit_price", "side", "units",
                                        "pnl", "fees", "holding_bars"}  # fmt: skip


def test_position_size_and_direction_come_from_the_strategy_unless_overridden(strategy, model_dir, bars):
    loaded = load_model_dir(model_dir)
    half = dataclasses.replace(strategy, decisions=dataclasses.replace(strategy.decisions, position_size=0.5))
    result = backtest_model(loaded, half, {"1h": bars}, BacktestSettings(calendar="forex", permutations=10))
    t = result.simulation.trades
    assert (t.side == 1).all()  # long_only is the default direction
    fee = 0.2 / 1e4
    assert t.units[0] * t.entry_price[0] * (1 + fee) == pytest.approx(0.5 * 100_000)
    result = backtest_model(
        loaded,
        half,
        {"1h": bars},
        BacktestSettings(calendar="forex", units=3, direction="long_short", permutations=10),
    )
    assert (result.simulation.trades.units == 3).all() and (result.simulation.trades.side == -1).any()


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        (BacktestSettings(calendar="forex", fee_bps=-1), CostError, "fee_bps must be a finite number of basis points >= 0, got -1"),
        (BacktestSettings(calendar="forex", slippage_bps=-0.5), CostError, "slippage_bps must be .* got -0.5"),
        (BacktestSettings(calendar="LSE"), CostError, "unknown calendar 'LSE'; known: XNYS, forex, crypto"),
        (BacktestSettings(calendar="forex", units=1, position_size=0.5), BacktestError, "position_size .* or units, not both"),
        (BacktestSettings(calendar="forex", start_ns=0, end_ns=1), BacktestError, "0 bar\\(s\\) in the range"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused(strategy, model_dir, bars, settings, error, message):
    with pytest.raises(error, match=message):
        backtest_model(load_model_dir(model_dir), strategy, {"1h": bars}, settings)


def test_plot_is_a_png(strategy, model_dir, bars):
    from matplotlib.image import imread

    settings = BacktestSettings(calendar="forex", direction="long_short", permutations=10)
    result = backtest_model(load_model_dir(model_dir), strategy, {"1h": bars}, settings)
    with ThreadPoolExecutor(2) as pool:  # as the daemon renders: in worker threads, concurrently
        pngs = list(pool.map(lambda _: plot_png(result, width_px=800, height_px=500), range(2)))
    for png in pngs:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        image = imread(io.BytesIO(png), format="png")
        assert image.shape[:2] == (500, 800) and image.std() > 0  # decodes, and is not blank
