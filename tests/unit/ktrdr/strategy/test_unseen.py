"""Strategy files nobody on the team wrote (``unseen/``): what a user of the predecessor could write in
its v2 grammar — every indicator it documented under its own names and parameter spellings, every
membership shape it had, one to three timeframes and symbols, short and long look-backs, several
label and model settings, optional sections left out, anchors and flow style.

Each loads through the real loader, honours every parameter written, warns about every key without
effect, and its features are defined from the start of a period given the warm-up that
``data_requirements`` asks for. Broken copies of them are refused with the file, line, key and what
was expected. (Training and backtesting a few of them through the daemon:
tests/integration/ktrdrd/test_unseen_strategies.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from ktrdr import timeframes
from ktrdr.research.bars import resample
from ktrdr.research.features import build_features
from ktrdr.research.indicators import lookup
from ktrdr.research.synthetic import gbm_bars, to_ns
from ktrdr.strategy import StrategyError, data_requirements, load_strategy_file, load_strategy_text
from ktrdr.strategy.yamltree import parse
from tests.support.paths import STRATEGIES

UNSEEN = Path(__file__).parent / "unseen"
UNSEEN_FILES = sorted(UNSEEN.glob("*.yaml"))
REFERENCE = Path(__file__).parent / "reference"
SHORTHAND = {3: "triangular", 4: "trapezoidal"}


def test_at_least_ten_files_unlike_any_other() -> None:
    assert len(UNSEEN_FILES) >= 10
    others = {p.read_text() for p in [*REFERENCE.glob("*.yaml"), *STRATEGIES.glob("*.yaml")]}
    names = {
        yaml.safe_load(p.read_text())["name"] for p in [*REFERENCE.glob("*.yaml"), *STRATEGIES.glob("*.yaml")]
    }
    for path in UNSEEN_FILES:
        assert path.read_text() not in others
        assert yaml.safe_load(path.read_text())["name"] not in names, path.name


@pytest.mark.parametrize("path", UNSEEN_FILES, ids=lambda p: p.stem)
def test_loads_and_honours_every_parameter_and_set(path: Path) -> None:
    loaded = load_strategy_file(path)
    raw = parse(path.read_text()).value()  # keys as written (yaml.safe_load reads a key `off` as False)
    s = loaded.strategy
    assert s.name == raw["name"] == path.stem
    warned = {w.path for w in loaded.warnings}
    assert all(w.line > 1 and w.source == str(path) for w in loaded.warnings)
    assert len(s.indicators) == len(raw["indicators"])
    for i, (entry, spec) in enumerate(zip(raw["indicators"], s.indicators, strict=True)):
        defn = lookup(entry.get("type") or entry["name"])
        assert (spec.id, spec.type) == ((entry.get("feature_id") or entry["name"]).lower(), defn.name)
        nested = "params" in entry  # the predecessor's {type, feature_id, params} spelling
        written = entry["params"] if nested else entry
        for key, value in written.items():
            if key in ("name", "type", "feature_id"):
                continue
            param = defn.param_index.get(key)
            if param is None or param.inert:  # accepted without effect: warned where it is written
                at = f"indicators[{i}].params.{key}" if nested else f"indicators[{i}].{key}"
                assert at in warned, (path.name, key)
            if param is not None:
                assert spec.params[param.name] == (value.lower() if isinstance(value, str) else value)
    for fin in s.fuzzy:
        written = next(v for k, v in raw["fuzzy_sets"].items() if k.lower() == fin.key)
        sets = {k: v for k, v in written.items() if k not in ("input", "output", "transform")}
        assert [m.name for m in fin.sets] == list(sets)
        for m in fin.sets:
            w = sets[m.name]
            params = w if isinstance(w, list) else w["parameters"]
            assert m.type == (SHORTHAND[len(w)] if isinstance(w, list) else w["type"])
            assert list(m.parameters) == [float(x) for x in params]
    arch = raw.get("model", {}).get("architecture", {})
    assert s.model.hidden_layers == tuple(arch.get("hidden_layers", s.model.hidden_layers))
    training = raw.get("model", {}).get("training", {})
    for key in ("epochs", "batch_size", "learning_rate"):
        if key in training:
            assert getattr(s.optim, key) == float(training[key])


@pytest.mark.parametrize("path", UNSEEN_FILES, ids=lambda p: p.stem)
def test_features_are_defined_from_the_start_given_the_warmup_asked_for(path: Path) -> None:
    """Bars from the earliest time ``data_requirements`` asks for (synthetic, the base timeframe
    resampled to the others): every base bar of the period has finite features in [0, 1]."""
    s = load_strategy_file(path).strategy
    base_tf = timeframes.parse(s.data.base_timeframe)
    end = to_ns("2023-05-01")
    start = end - 150 * base_tf.ns
    first = min(r.start for r in data_requirements(s, start, end))
    base = gbm_bars(s.data.symbols[0], base_tf.text, first, end, seed=11, sigma=0.4)
    bars = {tf: base if tf == base_tf.text else resample(base, tf) for tf in s.data.timeframes}
    fm = build_features(s, bars, dtype=np.float64)
    in_period = fm.time >= start
    assert in_period.sum() == 150 and fm.valid[in_period].all(), path.name
    values = fm.values[in_period]
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1


def test_yaml_1_1_boolean_words_as_set_names_stay_names() -> None:
    """`on:`/`off:` are booleans to YAML 1.1; as fuzzy set names they are the words written."""
    s = load_strategy_file(UNSEEN / "bollinger_keltner_squeeze.yaml").strategy
    squeeze = next(f for f in s.fuzzy if f.key == "squeeze_intensity")
    assert [m.name for m in squeeze.sets] == ["off", "on"]


def test_anchors_aliases_and_yaml_1_2_exponents_read_as_meant() -> None:
    s = load_strategy_file(UNSEEN / "anchored_flow_style.yaml").strategy
    assert s.optim.learning_rate == 0.001 and s.labels.zigzag_threshold == 0.03  # 1e-3, 3e-2
    fast, slow = (f for f in s.fuzzy if f.key in ("rsi_fast", "rsi_slow"))
    assert fast.sets == slow.sets and fast.indicator != slow.indicator  # one anchored shape, two inputs
    assert [i.params["period"] for i in s.indicators if i.type == "rsi"] == [7, 28]


def test_feature_ids_name_instances_and_key_their_fuzzy_sets() -> None:
    s = load_strategy_file(UNSEEN / "feature_ids_two_speeds.yaml").strategy
    assert [(i.id, i.type, i.params["period"]) for i in s.indicators if i.type in ("rsi", "ema")] == [
        ("rsi_7", "rsi", 7),
        ("rsi_21", "rsi", 21),
        ("ema_12", "ema", 12),
        ("ema_48", "ema", 48),
    ]
    assert [(f.key, f.indicator) for f in s.fuzzy][:2] == [("rsi_7", "rsi_7"), ("rsi_21", "rsi_21")]


def test_integral_numbers_count_as_integers() -> None:
    """`epochs: 10.0` is 10 (as `period: 14.0` is for an indicator); 10.5 is refused."""
    text = (UNSEEN / "stoch_williams_reversal.yaml").read_text()
    s = load_strategy_text(text.replace("epochs: 30", "epochs: 30.0"), "s.yaml").strategy
    assert s.optim.epochs == 30 and isinstance(s.optim.epochs, int)
    with pytest.raises(StrategyError, match=r"model.training.epochs: expected an integer, got float 30.5"):
        load_strategy_text(text.replace("epochs: 30", "epochs: 30.5"), "s.yaml")


def test_keys_the_predecessor_parsed_but_never_used_are_warned_not_refused() -> None:
    loaded = load_strategy_file(UNSEEN / "full_legacy_blocks.yaml")
    warned = {w.path for w in loaded.warnings}
    for key in (
        "deployment",
        "orchestrator",
        "risk_management",
        "backtesting",
        "training_data.start_date",
        "training_data.symbols.selection_criteria",
        "model.input_size",
        "model.architecture.output_activation",
        "model.features.scaling_method",
        "model.training.analytics",
        "training.fitness_metrics",
        "decisions.filters.volume_filter",
        "indicators[2]",  # volume_sma without fuzzy sets never reaches the model
    ):
        assert key in warned, key


# (file, text replaced, replacement, key path of the error, what the message says)
BROKEN = [
    ("minimal_required_only", "  - name: rsi\n", "  - name: rsi\n    period: 0\n", "indicators[0].period", "must be >= 1, got 0"),
    ("minimal_required_only", "  - name: rsi\n", "  - name: rsi\n    period: -14\n", "indicators[0].period", "must be >= 1"),
    ("minimal_required_only", "  - name: rsi\n", '  - name: rsi\n    period: "14"\n', "indicators[0].period", "without quotes"),
    ("minimal_required_only", "  - name: rsi\n", "  - name: rsi\n    period: fourteen\n", "indicators[0].period", "expected a number, got 'fourteen'"),
    ("minimal_required_only", "  - name: rsi\n", "  - name: rsi\n    period: 14.5\n", "indicators[0].period", "expected an integer"),
    ("minimal_required_only", "  - name: rsi\n", "  - name: rsi\n    period:\n", "indicators[0].period", "no value given (null)"),
    ("minimal_required_only", "  - name: rsi\n", "  - name: rsi\n    length: 14\n", "indicators[0].length", "did you mean 'period'"),
    ("minimal_required_only", "  - name: rsi\n", "  - name: ZigZag\n    threshold: 0.05\n", "indicators[0].name", "ZigZag is the label"),
    ("minimal_required_only", "timeframe: 1h", "timeframe: 2y", "training_data.timeframes.timeframe", "2y"),
    ("minimal_required_only", "parameters: [0, 30, 50]", "parameters: [0, 60, 50]", "fuzzy_sets.rsi.low.parameters", "not monotonic"),
    ("minimal_required_only", "type: triangular\n      parameters: [50", "type: bell\n      parameters: [50", "fuzzy_sets.rsi.high.type", "expected one of"),
    ("minimal_required_only", "fuzzy_sets:", "fuzzy_set:", "fuzzy_set", "did you mean 'fuzzy_sets'"),
    ("trend_strength_multi_tf", "step_af: 0.02", "step_af: 0.05", "indicators[3].step_af", "different values"),
    ("trend_strength_multi_tf", 'base_timeframe: "1h"', 'base_timeframe: "4h"', "training_data.timeframes.base_timeframe", "fastest"),
    ("volume_flow_confirmation", "use_typical_price: true", "use_typical_price: maybe", "indicators[4].use_typical_price", "expected true or false"),
    ("stoch_williams_reversal", "parameters: [50, 15]", "parameters: [50, 0]", "fuzzy_sets.stochastic.mid.parameters", "sigma"),
    ("stoch_williams_reversal", 'optimizer: "sgd"', 'optimizer: "adagrad"', "model.training.optimizer", "expected one of adam"),
    ("stoch_williams_reversal", "dropout: 0.1", "dropout: 1.5", "model.architecture.dropout", "must be < 1.0"),
    ("ichimoku_donchian_breakout", "hidden_layers: [16, 8]", "hidden_layers: [16, 0]", "model.architecture.hidden_layers[1]", ">= 1"),
    ("crypto_momentum_scalper", "zigzag_threshold: 0.005", "zigzag_threshold: 5", "training.labels.zigzag_threshold", "must be < 1.0"),
    ("crypto_momentum_scalper", "data_split:\n    train: 0.7", "data_split:\n    train: 0.8", "training.data_split", "must sum to 1"),
    ("bollinger_keltner_squeeze", "  bb_width:\n", "  bb_widht:\n", "fuzzy_sets.bb_widht", "did you mean 'bb_width'"),
    ("windows_saved_30m", "period: 21", "period: 0", "indicators[0].period", "must be >= 1"),  # CRLF, BOM
    ("feature_ids_two_speeds", '- name: "rsi"\n    feature_id: "rsi_21"', '- name: "rsi"\n    feature_id: "rsi_7"', "indicators[1]", "duplicate indicator id 'rsi_7'"),
    ("feature_ids_two_speeds", '  rsi_21:\n', '  rsi_14:\n', "fuzzy_sets.rsi_14", "not defined (did you mean 'rsi_21'?)"),
    ("fisher_rvi_cycles", 'ma_type: "EMA"', 'ma_type: "WMA"', "indicators[2].ma_type", "expected one of sma, ema"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stem", "old", "new", "key", "says"), BROKEN, ids=[f"{b[0]}-{b[3]}-{i}" for i, b in enumerate(BROKEN)]
)
def test_a_broken_copy_is_refused_naming_file_line_and_key(
    stem: str, old: str, new: str, key: str, says: str
) -> None:
    text = (UNSEEN / f"{stem}.yaml").read_bytes().decode("utf-8")  # as written: CRLF stays
    assert text.count(old) == 1
    broken = text.replace(old, new)
    with pytest.raises(StrategyError) as caught:
        load_strategy_text(broken, source=f"{stem}.yaml")
    issue = next((i for i in caught.value.issues if i.path == key), None)
    assert issue is not None, [str(i) for i in caught.value.issues]
    assert says in issue.message, str(issue)
    first_changed = text[: text.index(old)].count("\n") + 1
    assert first_changed <= issue.line <= first_changed + new.count("\n"), str(issue)
    assert str(issue).startswith(f"{stem}.yaml:{issue.line}:{issue.column}: {key}: ")
