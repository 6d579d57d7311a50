"""The backtest job's library runner (what the host's worker calls): steps in order, the classifier's
metrics beside the trading metrics on the same bars, a strategy with other features refused before
any artifact, a cancel between steps, decisions that read no bar after their own, and a walk-forward
job that backtests each test window with its own model and stitches them."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ktrdr.jobs.backtest import ARTIFACTS, RESULT_KEYS, BacktestSpec
from ktrdr.research.artifacts import load_model_dir
from ktrdr.research.backtest.engine import backtest_model
from ktrdr.research.backtest.job import (
    Cancelled,
    model_strategy,
    run_backtest,
    select_symbol_bars,
    settings_for,
    steps_of,
)
from ktrdr.research.features import FeatureSpecMismatch
from ktrdr.research.synthetic import gbm_bars, to_ns
from ktrdr.research.train import select_bars, train_on_bars
from ktrdr.research.trainer import TrainOptions
from ktrdr.strategy import load_strategy_text
from tests.support.traininghost import strategy_text

BARS = gbm_bars("AAPL", "1h", "2023-01-01", "2023-07-01", seed=11, sigma=0.4)
TEXT = strategy_text(epochs=2)
TRADING = TEXT + "decisions:\n  confidence_threshold: 0.0\n"
SPEC = BacktestSpec(symbol="AAPL", start_ns=to_ns("2023-05-01"), end_ns=to_ns("2023-07-01"), permutations=100)


def _read(_symbol: str, _timeframe: str):
    return BARS, "synthetic"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    loaded = load_strategy_text(TEXT)
    start, end = to_ns("2023-02-01"), to_ns("2023-05-01")
    path = tmp_path_factory.mktemp("job") / "model"
    data = select_bars(loaded.strategy, start, end, _read)
    train_on_bars(loaded, data, start, end, path, options=TrainOptions(device="cpu", threads=1))
    return path


def test_the_job_reports_steps_and_both_metric_sets(model_dir: Path, tmp_path: Path) -> None:
    loaded = load_strategy_text(TRADING)
    bars = select_symbol_bars(loaded.strategy, "AAPL", SPEC.start_ns, SPEC.end_ns, _read)
    assert bars["1h"].time[0] < SPEC.start_ns  # warm-up history before the start
    steps: list[tuple[int, str]] = []
    result = run_backtest(
        loaded.strategy, model_dir, bars, SPEC, tmp_path, step=lambda k, name: steps.append((k, name))
    )
    assert steps == [(1, "features"), (2, "simulate"), (3, "classifier"), (4, "artifacts")]
    assert tuple(sorted(result)) == tuple(sorted(RESULT_KEYS))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ARTIFACTS)
    classifier = result["classifier"]
    signals = result["decisions"]["signals"]
    assert classifier["samples"] + classifier["unlabelled_bars"] == result["range"]["bars"]
    assert sum(signals.values()) == result["range"]["bars"] and signals["hold"] < result["range"]["bars"]
    assert 0 <= classifier["accuracy"] <= 1 and 0 <= classifier["persistence_accuracy"] <= 1
    assert result["calendar"] == "XNYS" and result["metrics"]["costs"] == {
        "fee_bps": 1.0,
        "slippage_bps": 2.0,
    }
    # the job is the engine's backtest, nothing added
    direct = backtest_model(load_model_dir(model_dir), loaded.strategy, bars, settings_for(SPEC))
    assert result["metrics"]["final_equity"] == direct.metrics["final_equity"]


def test_a_strategy_with_other_features_is_refused_before_any_artifact(
    model_dir: Path, tmp_path: Path
) -> None:
    other = load_strategy_text(TEXT.replace("low: {type: triangular", "lowish: {type: triangular"))
    bars = select_symbol_bars(other.strategy, "AAPL", SPEC.start_ns, SPEC.end_ns, _read)
    with pytest.raises(FeatureSpecMismatch, match="other features"):
        run_backtest(other.strategy, model_dir, bars, SPEC, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_cancel_stops_the_job_between_steps(model_dir: Path, tmp_path: Path) -> None:
    loaded = load_strategy_text(TEXT)
    bars = select_symbol_bars(loaded.strategy, "AAPL", SPEC.start_ns, SPEC.end_ns, _read)
    token = threading.Event()
    with pytest.raises(Cancelled, match="before classifier"):
        run_backtest(
            loaded.strategy,
            model_dir,
            bars,
            SPEC,
            tmp_path / "out",
            step=lambda k, _n: k == 2 and token.set(),
            cancel=token,
        )
    assert not (tmp_path / "out").exists()


def test_decisions_read_no_bar_after_their_own(model_dir: Path) -> None:
    """A backtest on a prefix of the period trades exactly as the full one does on that prefix."""
    loaded = load_strategy_text(TRADING)
    model = load_model_dir(model_dir)
    bars = select_symbol_bars(loaded.strategy, "AAPL", SPEC.start_ns, SPEC.end_ns, _read)
    full = backtest_model(model, loaded.strategy, bars, settings_for(SPEC))
    cut = to_ns("2023-06-01")
    prefix = {tf: b.between(None, cut) for tf, b in bars.items()}
    part = backtest_model(model, loaded.strategy, prefix, settings_for(SPEC))
    n = len(part.bars)
    assert np.array_equal(part.target, full.target[:n])
    assert np.allclose(part.probabilities, full.probabilities[:n], equal_nan=True)
    # equity agrees up to the prefix's last bar, where the prefix closes its open trade
    assert np.allclose(part.simulation.equity[:-1], full.simulation.equity[: n - 1])


def test_the_models_own_strategy_is_the_one_it_was_trained_with(model_dir: Path) -> None:
    trained = load_strategy_text(TEXT).strategy
    assert model_strategy(model_dir) == trained


def test_a_walk_forward_job_backtests_each_window_with_its_model_and_stitches(
    model_dir: Path, tmp_path: Path
) -> None:
    loaded = load_strategy_text(TRADING)
    middle = to_ns("2023-06-01")
    spec = replace(SPEC, windows=((SPEC.start_ns, middle), (middle, SPEC.end_ns)))
    models = tmp_path / "models"
    for k in range(2):
        (models / str(k)).mkdir(parents=True)
        for path in model_dir.iterdir():
            (models / str(k) / path.name).symlink_to(path)
    bars = select_symbol_bars(loaded.strategy, "AAPL", SPEC.start_ns, SPEC.end_ns, _read)
    steps: list[str] = []
    result = run_backtest(
        loaded.strategy, models, bars, spec, tmp_path / "out", step=lambda _k, name: steps.append(name)
    )
    assert steps == list(steps_of(spec)) == ["window 1/2", "window 2/2", "stitch", "classifier", "artifacts"]
    first, second = result["windows"]
    assert first["range"]["first"].startswith("2023-05-01") and second["range"]["first"].startswith(
        "2023-06-01"
    )
    assert first["range"]["bars"] + second["range"]["bars"] == result["range"]["bars"]
    growth = (1 + first["total_return"]) * (1 + second["total_return"]) - 1
    assert result["metrics"]["total_return"] == pytest.approx(growth, rel=1e-9)
    assert result["metrics"]["trades"] == first["trades"] + second["trades"]
    assert result["metrics"]["uncertainty"]["permutations"] == SPEC.permutations  # one test, stitched
