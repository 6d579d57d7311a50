"""The explicit grammar: indicator ids, params, outputs; fuzzy inputs selecting outputs."""

from __future__ import annotations

import json
import textwrap

import pytest

from ktrdr.research.indicators import lookup
from ktrdr.strategy import StrategyError, load_strategy_text


def load(indicators: str, fuzzy: str, extra: str = ""):
    text = (
        "name: x\ntraining_data: {symbols: [AAPL, MSFT], timeframes: [4h, 1h]}\n"
        + "indicators:\n"
        + textwrap.indent(textwrap.dedent(indicators), "  ")
        + "fuzzy_sets:\n"
        + textwrap.indent(textwrap.dedent(fuzzy), "  ")
        + extra
    )
    return load_strategy_text(text, "x.yaml")


def messages(indicators: str, fuzzy: str) -> list[str]:
    with pytest.raises(StrategyError) as info:
        load(indicators, fuzzy)
    return [str(i) for i in info.value.issues]


TWO_RSI = """\
- {id: rsi_fast, type: RSI, params: {period: 7}}
- {id: rsi_slow, type: rsi, params: {period: 21, source: open}}
"""


def test_two_instances_of_one_type() -> None:
    loaded = load(TWO_RSI, "rsi_fast: {low: [0, 20, 40]}\nrsi_slow: {low: [0, 30, 50]}\n")
    s = loaded.strategy
    assert [(i.id, i.type, i.params["period"]) for i in s.indicators] == [
        ("rsi_fast", "rsi", 7),
        ("rsi_slow", "rsi", 21),
    ]
    assert s.indicator("rsi_slow").params["source"] == "open"
    assert s.data.timeframes == ("1h", "4h") and s.data.base_timeframe == "1h"
    assert loaded.warnings == []


def test_output_selection_three_spellings() -> None:
    macd = "- {id: macd, type: macd, params: {fast_period: 8, slow_period: 21}}\n"
    fuzzy = """\
    macd: {pos: {type: sigmoid, parameters: [0, 2]}}
    macd_signal: {input: macd.signal, pos: {type: sigmoid, parameters: [0, 2]}}
    macd_hist: {input: macd, output: histogram, pos: {type: sigmoid, parameters: [0, 2]}}
    """
    s = load(macd, fuzzy).strategy
    assert [(f.key, f.indicator, f.output) for f in s.fuzzy] == [
        ("macd", "macd", lookup("macd").default_output),
        ("macd_signal", "macd", "signal"),
        ("macd_hist", "macd", "histogram"),
    ]
    assert s.indicator("macd").params["signal_period"] == 9  # default filled


def test_unknown_output_is_an_error() -> None:
    [msg] = messages("- {id: macd, type: macd}\n", "m: {input: macd.signl, up: [0, 1, 2]}\n")
    assert "no output 'signl'" in msg and "did you mean 'signal'" in msg


def test_output_given_twice_is_an_error() -> None:
    [msg] = messages("- {id: macd, type: macd}\n", "m: {input: macd.signal, output: line, up: [0, 1, 2]}\n")
    assert "output given twice" in msg


def test_declared_outputs_restrict_what_fuzzy_sets_read() -> None:
    ok = load("- {id: macd, type: macd, outputs: [signal]}\n", "m: {input: macd.signal, up: [0, 1, 2]}\n")
    assert ok.strategy.fuzzy[0].output == "signal"
    [msg] = messages(
        "- {id: macd, type: macd, outputs: [signal]}\n", "m: {input: macd.line, up: [0, 1, 2]}\n"
    )
    assert "no declared output 'line'" in msg
    [msg] = messages("- {id: macd, type: macd, outputs: [sig]}\n", "macd: {up: [0, 1, 2]}\n")
    assert "has no output 'sig'" in msg


def test_flat_keys_beside_params_are_errors() -> None:
    [msg] = messages("- {id: r, type: rsi, period: 3, params: {period: 7}}\n", "r: {low: [0, 1, 2]}\n")
    assert "parameters go under 'params'" in msg


def test_same_parameter_twice_through_an_alias() -> None:
    [msg] = messages("- {name: macd, fast_period: 8, fast: 9}\n", "macd: {low: [0, 1, 2]}\n")
    assert "given twice" in msg


def test_duplicate_ids() -> None:
    [msg] = messages("- {name: rsi}\n- {name: RSI, period: 3}\n", "rsi: {low: [0, 1, 2]}\n")
    assert "duplicate indicator id 'rsi'" in msg


def test_bad_id() -> None:
    found = messages("- {id: 2fast, type: rsi}\n", "rsi: {low: [0, 1, 2]}\n")
    assert "indicator id '2fast' must match" in found[0]


def test_source_on_indicator_without_one() -> None:
    assert "source" not in lookup("atr").param_index
    loaded = load("- {name: atr, source: close}\n", "atr: {low: [0, 10, 20]}\n")
    [w] = loaded.warnings
    assert w.path == "indicators[0].source" and "no effect" in w.message
    [msg] = messages("- {name: atr, source: open}\n", "atr: {low: [0, 10, 20]}\n")
    assert "atr has no parameter 'source'" in msg


def test_shorthand_and_all_membership_types() -> None:
    fuzzy = """\
    rsi:
      a: [0, 10, 20]
      b: [0, 10, 20, 30]
      c: {type: gaussian, parameters: [50, 5]}
      d: {type: sigmoid, parameters: [50, -0.5]}
      e: {type: left_shoulder, parameters: [20, 30]}
      f: {type: right_shoulder, parameters: [70, 80]}
    """
    [fin] = load("- {name: rsi}\n", fuzzy).strategy.fuzzy
    assert [(m.name, m.type, len(m.parameters)) for m in fin.sets] == [
        ("a", "triangular", 3),
        ("b", "trapezoidal", 4),
        ("c", "gaussian", 2),
        ("d", "sigmoid", 2),
        ("e", "left_shoulder", 2),
        ("f", "right_shoulder", 2),
    ]


def test_shorthand_with_wrong_count() -> None:
    [msg] = messages("- {name: rsi}\n", "rsi: {a: [0, 10]}\n")
    assert "3 (triangular) or 4 (trapezoidal)" in msg


def test_transform_default_and_override() -> None:
    ind = "- {id: ma, type: sma, params: {period: 5}}\n- {id: r, type: rsi}\n- {id: bb, type: bbands}\n"
    fuzzy = (
        "ma: {near: [0.9, 1, 1.1]}\nraw: {input: ma, transform: none, x: [0, 1, 2]}\nr: {x: [0, 1, 2]}\n"
        "bb: {input: bb.lower, x: [0.9, 1, 1.1]}\nbbw: {input: bb.width, x: [0, 1, 2]}\n"
    )
    s = load(ind, fuzzy).strategy
    assert [f.transform for f in s.fuzzy] == ["close_ratio", "none", "none", "close_ratio", "none"]
    [msg] = messages(ind, "ma: {transform: log, near: [0.9, 1, 1.1]}\n")
    assert "expected one of none, close_ratio" in msg


def test_fuzzy_key_without_sets() -> None:
    [msg] = messages("- {name: rsi}\n", "rsi: {input: rsi}\n")
    assert "defines no sets" in msg


def test_unused_indicator_warns() -> None:
    loaded = load("- {name: rsi}\n- {name: ema}\n", "rsi: {a: [0, 1, 2]}\n")
    [w] = loaded.warnings
    assert w.path == "indicators[1]" and "never reaches the model" in w.message


def test_training_settings_are_read() -> None:
    extra = textwrap.dedent(
        """\
        model:
          symbol_embedding_dim: 8
          training:
            optimizer: SGD
            momentum: 0.5
            gradient_clip: 2.5
            weight_decay: 0
            early_stopping: {monitor: val_accuracy, patience: 3, min_delta: 0.01, restore_best: true}
            lr_scheduler: {type: step, step_size: 10, gamma: 0.5}
            class_weights: balanced
            seed: 42
        training:
          labels: {source: forward, zigzag_threshold: 0.02, label_lookahead: 6}
          data_split: {train: 0.8, validation: 0.1, test: 0.1, embargo: 30}
        """
    )
    s = load("- {name: rsi}\n", "rsi: {a: [0, 1, 2]}\n", extra).strategy
    o = s.optim
    assert (o.optimizer, o.momentum, o.gradient_clip, o.weight_decay) == ("sgd", 0.5, 2.5, 0.0)
    assert o.early_stopping is not None
    assert (o.early_stopping.monitor, o.early_stopping.patience, o.early_stopping.min_delta) == (
        "val_accuracy",
        3,
        0.01,
    )
    assert o.lr_scheduler is not None and (o.lr_scheduler.step_size, o.lr_scheduler.gamma) == (10, 0.5)
    assert (o.class_weights, o.seed) == ("balanced", 42)
    assert s.model.symbol_embedding_dim == 8
    assert (s.labels.source, s.labels.label_lookahead) == ("forward", 6)
    assert (s.split.train, s.split.embargo) == (0.8, 30)


def test_scheduler_keys_depend_on_type() -> None:
    with pytest.raises(StrategyError) as info:
        load(
            "- {name: rsi}\n",
            "rsi: {a: [0, 1, 2]}\n",
            "model: {training: {lr_scheduler: {type: exponential, step_size: 3}}}\n",
        )
    assert "unknown key 'step_size'" in str(info.value)


def test_early_stopping_shorthands() -> None:
    on = load("- {name: rsi}\n", "rsi: {a: [0, 1, 2]}\n", "model: {training: {early_stopping: true}}\n")
    assert on.strategy.optim.early_stopping is not None
    assert on.strategy.optim.early_stopping.min_delta == 1e-4
    off = load("- {name: rsi}\n", "rsi: {a: [0, 1, 2]}\n")
    assert off.strategy.optim.early_stopping is None


def test_normalized_is_json_and_complete() -> None:
    loaded = load(TWO_RSI, "rsi_fast: {low: [0, 20, 40]}\nrsi_slow: {low: [0, 30, 50]}\n")
    d = json.loads(json.dumps(loaded.normalized()))
    assert d["indicators"][1] == {"id": "rsi_slow", "type": "rsi", "params": {"period": 21, "source": "open"}}
    assert d["fuzzy"][0]["sets"][0] == {"name": "low", "type": "triangular", "parameters": [0.0, 20.0, 40.0]}
    assert d["data"]["symbols"] == ["AAPL", "MSFT"]
    assert d["optim"]["batch_size"] == 32
    assert d["source"] == "x.yaml"


def test_label_lookahead_with_zigzag_labels_warns_that_it_is_ignored() -> None:
    fuzzy = "rsi_fast: {low: [0, 20, 40]}\nrsi_slow: {low: [0, 30, 50]}\n"
    zigzag = load(TWO_RSI, fuzzy, "training:\n  labels: {source: zigzag, label_lookahead: 20}\n")
    [w] = zigzag.warnings
    assert w.path == "training.labels.label_lookahead" and w.line == 10
    assert "ignored by ZigZag labels" in w.message and "measured on the data" in w.message
    forward = load(TWO_RSI, fuzzy, "training:\n  labels: {source: forward, label_lookahead: 20}\n")
    assert forward.warnings == [] and forward.strategy.labels.label_lookahead == 20


def test_decisions_direction_and_position_size() -> None:
    fuzzy = "rsi_fast: {low: [0, 20, 40]}\nrsi_slow: {low: [0, 30, 50]}\n"
    default = load(TWO_RSI, fuzzy).strategy.decisions
    assert default.direction == "long_only" and default.position_size == 1.0
    given = load(
        TWO_RSI, fuzzy, "decisions: {direction: long_short, position_size: 0.25}\n"
    ).strategy.decisions
    assert given.direction == "long_short" and given.position_size == 0.25
    with pytest.raises(StrategyError) as info:
        load(TWO_RSI, fuzzy, "decisions: {direction: sideways, position_size: 1.5}\n")
    by_path = {i.path: i.message for i in info.value.issues}
    assert "long_only" in by_path["decisions.direction"] and "long_short" in by_path["decisions.direction"]
    assert "must be <= 1" in by_path["decisions.position_size"]
