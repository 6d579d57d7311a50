"""Bad strategy files: each problem is an error naming file:line:column, the key path and what was
expected; all errors of a file are reported together."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.strategy import StrategyError, StrategyIssue, load_strategy_file, load_strategy_text
from tests.support.tinystrategy import SMALLEST_YAML

MINIMAL = SMALLEST_YAML + "training:\n  data_split: {train: 0.7, validation: 0.15, test: 0.15}\n"


def errors(text: str) -> list[StrategyIssue]:
    with pytest.raises(StrategyError) as info:
        load_strategy_text(text, source="bad.yaml")
    return info.value.issues


def one_error(text: str) -> StrategyIssue:
    found = errors(text)
    assert len(found) == 1, [str(e) for e in found]
    return found[0]


def test_minimal_is_valid() -> None:
    s = load_strategy_text(MINIMAL).strategy
    assert s.data.symbols == ("AAPL",)


def test_yaml_syntax_error_names_the_line() -> None:
    e = one_error(MINIMAL.replace("symbols: [AAPL]", "symbols: [AAPL"))
    assert e.line == 4
    assert "YAML syntax error" in e.message
    assert str(e).startswith("bad.yaml:4:")


def test_unknown_key_suggests_the_right_one() -> None:
    # the misspelt key is reported where it is written, and the required one as missing
    found = errors(MINIMAL.replace("  timeframes:", "  timeframe:"))
    assert any("did you mean 'timeframes'" in x.message for x in found)
    e = next(x for x in found if "unknown key" in x.message)
    assert (e.line, e.column, e.path) == (4, 3, "training_data.timeframe")


def test_unknown_top_level_key() -> None:
    e = one_error(MINIMAL + "modle: {}\n")
    assert "unknown key 'modle'" in e.message and "did you mean 'model'" in e.message
    assert e.line == 13


def test_wrong_type() -> None:
    text = MINIMAL + "model:\n  training: {batch_size: big, epochs: 1.5}\n"
    found = errors(text)
    by_path = {e.path: e for e in found}
    assert "expected an integer, got str 'big'" in by_path["model.training.batch_size"].message
    assert by_path["model.training.batch_size"].line == 14
    assert "expected an integer" in by_path["model.training.epochs"].message


def test_unknown_indicator_lists_the_known_ones() -> None:
    e = one_error(MINIMAL.replace("name: rsi", "name: rsx").replace("  rsi:\n", "  rsx:\n"))
    assert "unknown indicator 'rsx'" in e.message
    assert "did you mean 'rsi'" in e.message
    for known in ("rsi", "macd", "sma", "ema", "bbands", "adx"):
        assert known in e.message.split("known:")[1]
    assert (e.line, e.path) == (6, "indicators[0].name")


def test_unknown_indicator_parameter_suggests() -> None:
    e = one_error(MINIMAL.replace("period: 14", "perod: 14"))
    assert "no parameter 'perod'" in e.message and "did you mean 'period'" in e.message
    assert (e.line, e.path) == (7, "indicators[0].perod")


def test_bad_indicator_parameter_value() -> None:
    e = one_error(MINIMAL.replace("period: 14", "period: -3"))
    assert e.path == "indicators[0].period" and "period" in e.message


def test_fuzzy_set_for_missing_indicator() -> None:
    text = MINIMAL.replace(
        "fuzzy_sets:\n", "fuzzy_sets:\n  macd:\n    up: {type: triangular, parameters: [0, 1, 2]}\n"
    )
    e = one_error(text)
    assert "fuzzy sets for indicator 'macd', which is not defined" in e.message
    assert (e.line, e.path) == (9, "fuzzy_sets.macd")


@pytest.mark.parametrize(
    ("membership", "params", "needle"),
    [
        ("triangular", "[0, 40, 20]", "not monotonic"),
        ("triangular", "[10, 10, 10]", "not monotonic"),
        ("triangular", "[0, 20]", "got 2 parameters"),
        ("trapezoidal", "[0, 30, 20, 40]", "not monotonic"),
        ("gaussian", "[50, 0]", "sigma"),
        ("sigmoid", "[50, 0]", "slope is 0"),
        ("left_shoulder", "[40, 20]", "not increasing"),
        ("right_shoulder", "[20, 20]", "not increasing"),
    ],
)
def test_bad_membership_parameters(membership: str, params: str, needle: str) -> None:
    e = one_error(
        MINIMAL.replace(
            "{type: triangular, parameters: [0, 20, 40]}", f"{{type: {membership}, parameters: {params}}}"
        )
    )
    assert needle in e.message and "set 'low'" in e.message
    assert (e.line, e.path) == (10, "fuzzy_sets.rsi.low.parameters")


def test_unknown_membership_type() -> None:
    e = one_error(MINIMAL.replace("type: triangular", "type: triangle"))
    assert "did you mean 'triangular'" in e.message


def test_split_fractions_must_sum_to_one() -> None:
    e = one_error(MINIMAL.replace("test: 0.15", "test: 0.2"))
    assert "sum to 1" in e.message and "1.05" in e.message
    assert (e.line, e.path) == (12, "training.data_split")


def test_split_tolerance() -> None:
    s = load_strategy_text(MINIMAL.replace("test: 0.15", "test: 0.1500000001")).strategy
    assert s.split.test == pytest.approx(0.15)


def test_unknown_timeframe() -> None:
    e = one_error(MINIMAL.replace("timeframes: [1h]", "timeframes: [1h, 2h]"))
    assert "unknown timeframe '2h'" in e.message and "1h" in e.message
    assert (e.line, e.path) == (4, "training_data.timeframes[1]")


def test_empty_symbol_list() -> None:
    e = one_error(MINIMAL.replace("symbols: [AAPL]", "symbols: []"))
    assert "empty symbol list" in e.message
    assert (e.line, e.path) == (3, "training_data.symbols")


def test_empty_symbol_list_in_mode_form() -> None:
    e = one_error(MINIMAL.replace("symbols: [AAPL]", "symbols: {mode: multi_symbol, list: []}"))
    assert "empty symbol list" in e.message


def test_base_timeframe_must_be_fastest() -> None:
    text = MINIMAL.replace(
        "timeframes: [1h]", "timeframes: {mode: multi_timeframe, list: [1h, 4h], base_timeframe: 4h}"
    )
    assert "fastest" in one_error(text).message


def test_duplicate_key() -> None:
    e = one_error(MINIMAL.replace("name: t\n", "name: t\nname: u\n"))
    assert "duplicate key 'name'" in e.message and e.line == 2


def test_missing_required_sections() -> None:
    found = errors("name: t\n")
    assert {e.message for e in found} >= {
        "missing required key 'training_data'",
        "missing required key 'indicators'",
        "missing required key 'fuzzy_sets'",
    }


def test_all_errors_are_collected_in_file_order() -> None:
    text = (
        MINIMAL.replace("symbols: [AAPL]", "symbols: []")
        .replace("period: 14", "perod: 14")
        .replace("test: 0.15", "test: 0.3")
        + "model: {architecture: {dropout: 2}}\n"
    )
    found = errors(text)
    assert [e.line for e in found] == sorted(e.line for e in found)
    assert len(found) == 4
    rendered = str(StrategyError(found)).splitlines()
    assert len(rendered) == 4
    assert all(line.startswith("bad.yaml:") for line in rendered)
    assert rendered[0].startswith("bad.yaml:3:12: training_data.symbols: ")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(StrategyError) as info:
        load_strategy_file(tmp_path / "absent.yaml")
    assert "cannot read file" in str(info.value)


def test_empty_document() -> None:
    assert "empty" in one_error("# nothing\n").message


def test_top_level_must_be_a_mapping() -> None:
    assert "expected a mapping" in one_error("- a\n- b\n").message


def test_unsafe_tag_is_rejected_with_its_line() -> None:
    e = one_error(MINIMAL.replace("name: t", "name: !!python/name:os.system t"))
    assert e.line == 1 and "YAML syntax error" in e.message


def test_a_constraint_between_indicator_parameters_is_an_error_at_load_time():
    text = MINIMAL.replace(
        "    period: 14\n",
        "    period: 14\n  - name: macd\n    fast_period: 30\n    slow_period: 20\n",
    )
    issue = one_error(text)
    assert (issue.line, issue.path) == (9, "indicators[1].fast_period")
    assert "macd: fast_period (30) must be less than slow_period (20)" in issue.message


def test_parameters_checked_one_by_one_do_not_trip_constraints_against_defaults():
    # fast_period 30 alone would exceed the default slow_period 26; together with 50 it is valid.
    text = MINIMAL.replace(
        "    period: 14\n",
        "    period: 14\n  - name: macd\n    fast_period: 30\n    slow_period: 50\n",
    )
    macd = load_strategy_text(text, source="ok.yaml").strategy.indicator("macd")
    assert (macd.params["fast_period"], macd.params["slow_period"]) == (30, 50)
