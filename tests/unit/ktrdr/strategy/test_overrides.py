"""``--set`` overrides applied to the parsed document, and sweep expansion."""

from __future__ import annotations

import pytest

from ktrdr.strategy import StrategyError, StrategyIssue, load_strategy_text
from ktrdr.strategy.overrides import (
    MAX_SWEEP_POINTS,
    Override,
    OverrideError,
    expand_sweeps,
    parse_override,
    parse_path,
    split_values,
)
from tests.support.tinystrategy import SMALLEST_YAML

# SMALLEST_YAML, with a model section and a second indicator (line numbers below refer to this).
TEXT = SMALLEST_YAML.replace(
    "    period: 14\n", "    period: 14\n  - {id: fast, type: rsi, params: {period: 7}}\n"
) + ("model:\n  training:\n    learning_rate: 0.001\n    epochs: 5\n")
LINES = TEXT.splitlines()


def line_of(prefix: str) -> int:
    return next(i for i, line in enumerate(LINES, 1) if line.strip().startswith(prefix))


def load(*sets: str):
    return load_strategy_text(TEXT, "s.yaml", [parse_override(s) for s in sets])


def errors(*sets: str) -> list[StrategyIssue]:
    with pytest.raises(StrategyError) as info:
        load(*sets)
    return info.value.issues


def test_values_by_position_by_name_and_new_keys() -> None:
    s = load(
        "indicators[0].period=21", "indicators[fast].params.period=9", "model.training.epochs=2"
    ).strategy
    assert [i.params["period"] for i in s.indicators] == [21, 9] and s.optim.epochs == 2
    assert load("model.training.seed=42").strategy.optim.seed == 42  # absent in the file: added
    assert load("decisions.confidence_threshold=0.7").strategy.decisions.confidence_threshold == 0.7
    assert load("model.architecture.hidden_layers=[8, 4]").strategy.model.hidden_layers == (8, 4)
    assert load("training_data.symbols[0]=MSFT").strategy.data.symbols == ("MSFT",)
    assert load("model.training.epochs=3", "model.training.epochs=4").strategy.optim.epochs == 4


def test_wrong_type_names_the_override_at_the_key_it_replaced() -> None:
    [issue] = errors("model.training.learning_rate=fast")
    assert (issue.line, issue.path) == (line_of("learning_rate:"), "model.training.learning_rate")
    assert "expected a number" in issue.message
    assert issue.message.endswith("(from --set model.training.learning_rate=fast)")


def test_other_issues_keep_their_lines() -> None:
    broken = TEXT.replace("epochs: 5", "epochs: -1")
    with pytest.raises(StrategyError) as info:
        load_strategy_text(broken, "s.yaml", [parse_override("indicators[0].period=30")])
    [issue] = info.value.issues
    assert issue.line == line_of("epochs:") and "from --set" not in issue.message


def test_paths_that_cannot_be_followed() -> None:
    [past_end] = errors("indicators[5].period=3")
    assert past_end.line == line_of("indicators:") and "the list has 2 item(s)" in past_end.message
    [no_name] = errors("indicators[fsat].period=3")
    assert "did you mean 'fast'" in no_name.message and "--set indicators[fsat].period=3" in no_name.message
    [into_scalar] = errors("name.first=x")
    assert into_scalar.line == 1 and "not a mapping" in into_scalar.message
    [typo] = errors("model.training.learnig_rate=0.1")
    assert typo.line == line_of("training:") and "did you mean 'learning_rate'" in typo.message
    assert typo.path == "model.training.learnig_rate" and "(from --set" in typo.message
    [section] = errors("model.trainng.epochs=3")
    assert "did you mean 'training'" in section.message and section.line == line_of("model:")
    [no_list] = errors("training_data.symbols.lst[0]=MSFT")
    assert no_list.line == line_of("symbols:") and "no key 'lst'" in no_list.message
    [not_yaml] = errors("model.training.epochs=[1")
    assert "not YAML" in not_yaml.message and not_yaml.line == line_of("epochs:")


@pytest.mark.parametrize("text", ["noequals", "=1", "a..b=1", "a[=1", "a b=1", "x[]=2"])
def test_malformed_overrides(text: str) -> None:
    with pytest.raises(OverrideError):
        parse_override(text)


def test_path_segments() -> None:
    assert parse_path("indicators[0].params.period") == ["indicators", 0, "params", "period"]
    assert parse_path("indicators[rsi].period") == ["indicators", "[rsi]", "period"]
    assert parse_path("a[1][2]") == ["a", 1, 2]


def test_sweeps_expand_to_the_cartesian_product() -> None:
    runs = expand_sweeps(["model.training.epochs=10,20", "model.architecture.hidden_layers=[64,32],[32]"])
    assert runs == [
        [Override("model.training.epochs", "10"), Override("model.architecture.hidden_layers", "[64,32]")],
        [Override("model.training.epochs", "10"), Override("model.architecture.hidden_layers", "[32]")],
        [Override("model.training.epochs", "20"), Override("model.architecture.hidden_layers", "[64,32]")],
        [Override("model.training.epochs", "20"), Override("model.architecture.hidden_layers", "[32]")],
    ]
    assert expand_sweeps([]) == [[]]
    pairs = expand_sweeps(
        [("model.training.epochs", ["10", "20"]), ("model.architecture.hidden_layers", ["[64,32]", "[32]"])]
    )
    assert pairs == runs  # the ParameterSweep form gives the same runs
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert len(expand_sweeps(["a=" + ",".join(map(str, range(MAX_SWEEP_POINTS)))])) == MAX_SWEEP_POINTS


def test_sweep_limits_and_mistakes() -> None:
    with pytest.raises(OverrideError, match=r"1,100 points \(100 × 11\), over the limit of 1,000"):
        expand_sweeps(["a=" + ",".join(map(str, range(100))), "b=" + ",".join(map(str, range(11)))])
    with pytest.raises(OverrideError, match="swept twice"):
        expand_sweeps(["a=1,2", "a=3"])
    with pytest.raises(OverrideError, match="empty value"):
        expand_sweeps(["a=1,,2"])
    with pytest.raises(OverrideError, match="expected PATH=VALUE"):
        expand_sweeps(["a"])
    with pytest.raises(OverrideError, match="at least one value"):
        expand_sweeps([("a", [])])
    with pytest.raises(OverrideError, match="bad override path"):
        expand_sweeps(["a..b=1,2"])
