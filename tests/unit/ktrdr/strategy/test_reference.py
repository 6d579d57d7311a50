"""The predecessor's eight v2 files load unchanged, every written parameter is honoured, and every
key without effect is reported as a warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ktrdr.research.indicators import lookup
from ktrdr.strategy import load_strategy_file
from tests.support.paths import STRATEGIES

REFERENCE = Path(__file__).parent / "reference"
REFERENCE_FILES = sorted(REFERENCE.glob("*.yaml"))
REPO_STRATEGIES = STRATEGIES


def test_all_eight_reference_files_are_present() -> None:
    assert len(REFERENCE_FILES) == 8


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda p: p.stem)
def test_reference_file_loads_and_honours_every_indicator_parameter(path: Path) -> None:
    loaded = load_strategy_file(path)
    raw = yaml.safe_load(path.read_text())
    s = loaded.strategy
    assert s.name == raw["name"]
    assert len(s.indicators) == len(raw["indicators"])
    warned = {w.path for w in loaded.warnings}
    for i, (entry, spec) in enumerate(zip(raw["indicators"], s.indicators, strict=True)):
        defn = lookup(entry.get("type", entry["name"]))
        assert spec.type == defn.name
        assert spec.id == entry["name"].lower()
        for key, value in entry.items():
            if key in ("name", "type"):
                continue
            param = defn.param_index.get(key)
            if param is None:
                # only a harmless price source on an indicator without one may be dropped, loudly
                assert key == "source" and value == "close"
                assert f"indicators[{i}].{key}" in warned
                continue
            expected = value.lower() if isinstance(value, str) else value
            assert spec.params[param.name] == expected, (path.name, key)
    # the fuzzy sets are exactly the file's
    for fin in s.fuzzy:
        written = next(v for k, v in raw["fuzzy_sets"].items() if k.lower() == fin.key)
        assert [m.name for m in fin.sets] == list(written)
        for m in fin.sets:
            assert m.type == written[m.name]["type"]
            assert list(m.parameters) == [float(x) for x in written[m.name]["parameters"]]
    # model and training keys are honoured
    assert s.model.hidden_layers == tuple(raw["model"]["architecture"]["hidden_layers"])
    assert s.model.dropout == raw["model"]["architecture"]["dropout"]
    assert s.model.features.lookback_periods == raw["model"]["features"]["lookback_periods"]
    assert s.optim.batch_size == raw["model"]["training"]["batch_size"]
    assert s.optim.epochs == raw["model"]["training"]["epochs"]
    assert s.labels.zigzag_threshold == raw["training"]["labels"]["zigzag_threshold"]
    assert s.labels.label_lookahead == raw["training"]["labels"]["label_lookahead"]
    assert s.data.history_required == raw["training_data"]["history_required"]
    # keys the predecessor files carry without effect are all reported
    for key in (
        "scope",
        "deployment",
        "model.architecture.output_activation",
        "decisions.filters.volume_filter",
    ):
        assert key in warned, (path.name, key)
    json.dumps(loaded.normalized())


def test_neuro_mean_reversion_in_full() -> None:
    loaded = load_strategy_file(REFERENCE / "neuro_mean_reversion.yaml")
    s = loaded.strategy
    assert s.data.symbols == ("AAPL", "MSFT", "GOOGL")
    assert s.data.timeframes == ("1h", "4h", "1d")
    assert s.data.base_timeframe == "1h"
    assert [(i.id, i.type) for i in s.indicators] == [("rsi", "rsi"), ("macd", "macd")]
    assert s.indicator("rsi").params["period"] == 14
    macd = s.indicator("macd").params
    assert (macd["fast_period"], macd["slow_period"], macd["signal_period"]) == (12, 26, 9)
    [rsi] = s.fuzzy
    assert (rsi.key, rsi.indicator, rsi.transform) == ("rsi", "rsi", "none")
    assert rsi.output == lookup("rsi").default_output
    assert [(m.name, m.parameters) for m in rsi.sets] == [
        ("oversold", (0.0, 20.0, 35.0)),
        ("neutral", (30.0, 50.0, 70.0)),
        ("overbought", (65.0, 80.0, 100.0)),
    ]
    assert (s.optim.learning_rate, s.optim.optimizer) == (0.001, "adam")
    assert (s.split.train, s.split.validation, s.split.test) == (0.7, 0.15, 0.15)
    assert s.decisions.confidence_threshold == 0.6
    assert s.decisions.min_signal_separation == 4
    assert s.version == "2.0"
    by_path = {w.path: w for w in loaded.warnings}
    assert set(by_path) == {
        "scope",
        "deployment",
        "indicators[1]",
        "model.architecture.output_activation",
        "model.features.scale_features",
        "decisions.filters.min_signal_separation",
        "decisions.filters.volume_filter",
        "training.labels.label_lookahead",
    }
    assert "ignored by ZigZag labels" in by_path["training.labels.label_lookahead"].message
    assert "never reaches the model" in by_path["indicators[1]"].message
    assert (by_path["deployment"].line, by_path["deployment"].column) == (28, 1)
    assert "hours" in by_path["decisions.filters.min_signal_separation"].message


def test_trend_momentum_aliases_and_sources() -> None:
    loaded = load_strategy_file(REFERENCE / "trend_momentum.yaml")
    s = loaded.strategy
    assert s.data.symbols == ("AAPL",) and s.data.timeframes == ("1h",)
    bb = s.indicator("bbands")
    assert bb.type == lookup("bollinger_bands").name
    assert bb.params["period"] == 20
    assert 2.0 in bb.params.values()  # std_dev: 2 reaches the band width parameter
    assert s.indicator("stoch").params["k_period"] == 14
    assert s.indicator("adx").params["period"] == 14
    assert [f.key for f in s.fuzzy] == ["adx", "rsi"]
    assert s.model.features.scale_features is False
    assert "model.features.scale_features" not in {w.path for w in loaded.warnings}


def test_universal_generalization_sma_ratio_and_embedding() -> None:
    loaded = load_strategy_file(REFERENCE / "universal_generalization_model.yaml")
    s = loaded.strategy
    assert s.model.symbol_embedding_dim == 16
    assert s.model.hidden_layers == (128, 64, 32)
    sma = next(f for f in s.fuzzy if f.key == "sma")
    assert sma.transform == "close_ratio"  # sets written around 1.0 mean close / SMA
    bb = s.indicator("bollingerbands")
    assert bb.type == lookup("bbands").name
    assert bb.params["period"] == 20 and 2.0 in bb.params.values()
    assert "model.features.include_price_context" in {w.path for w in loaded.warnings}


def test_zero_shot_input_size_is_reported() -> None:
    loaded = load_strategy_file(REFERENCE / "universal_zero_shot_model.yaml")
    [w] = [w for w in loaded.warnings if w.path == "model.input_size"]
    assert "computed" in w.message


def test_shipped_neuro_mean_reversion_is_the_reference_file() -> None:
    shipped = (REPO_STRATEGIES / "neuro_mean_reversion.yaml").read_bytes()
    assert shipped == (REFERENCE / "neuro_mean_reversion.yaml").read_bytes()
