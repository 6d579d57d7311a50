"""Hostile strategy documents: every problem is an issue with a line and column, and the work and the
answer stay bounded (the first MAX_ISSUES errors or warnings, a count of the rest, short echoes).

Positions are computed from the text each test writes; limits come from the modules that set them.
"""

from __future__ import annotations

import textwrap

import pytest

from ktrdr import symbols
from ktrdr.excerpts import ECHO_CHARS, MAX_MESSAGE_CHARS, clip, echo
from ktrdr.strategy import StrategyError, StrategyIssue, load_strategy_text
from ktrdr.strategy.inputs import MAX_NAME_CHARS
from ktrdr.strategy.loader import MAX_FEATURES, MAX_INDICATORS, MAX_SERIES
from ktrdr.strategy.reader import MAX_ISSUES, MAX_SUGGEST_CANDIDATES, MAX_SUGGEST_WORD, listing, suggest
from ktrdr.strategy.yamltree import MAX_DEPTH, MAX_INT_CHARS, MAX_PATH_KEY_CHARS
from tests.support.tinystrategy import SMALLEST_YAML

MINIMAL = SMALLEST_YAML


def failure(text: str) -> StrategyError:
    with pytest.raises(StrategyError) as info:
        load_strategy_text(text, source="bad.yaml")
    return info.value


def only_issue(text: str) -> StrategyIssue:
    error = failure(text)
    assert len(error.issues) == 1 and error.omitted == 0, [str(i) for i in error.issues]
    return error.issues[0]


def position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\ud800", "\x1b"])
def test_a_forbidden_character_is_an_issue_at_its_position(bad: str) -> None:
    text = MINIMAL + f"description: a{bad}b\n"
    issue = only_issue(text)
    assert (issue.line, issue.column) == position(text, text.index(bad))
    assert f"U+{ord(bad):04X}" in issue.message


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 100_000])
def test_deep_flow_nesting_is_an_issue_where_it_gets_too_deep(depth: int) -> None:
    text = MINIMAL + "description: " + "[" * depth + "]" * depth + "\n"
    issue = only_issue(text)
    line, first_bracket = MINIMAL.count("\n") + 1, len("description: ") + 1
    assert issue.line == line and "nesting" in issue.message
    # The root mapping is level 1, so the list that is one too deep is the MAX_DEPTH-th bracket
    # (libyaml, which looks ahead in flow collections, may stop first at its own limit of 1,000).
    assert issue.column in (first_bracket + MAX_DEPTH - 1, first_bracket + 999)


def test_deep_block_nesting_is_an_issue_where_it_gets_too_deep() -> None:
    nested = "".join(" " * level + "k:\n" for level in range(200)) + " " * 200 + "v\n"
    text = MINIMAL + "extra:\n" + textwrap.indent(nested, " ")
    issue = only_issue(text)
    first = MINIMAL.count("\n") + 1  # the line of "extra:"
    # The mapping under "extra:" is level 2 and starts on the next line at column 2; level L starts
    # L - 1 lines below "extra:" at column L.
    assert (issue.line, issue.column) == (first + MAX_DEPTH, MAX_DEPTH + 1)
    assert str(MAX_DEPTH) in issue.message


def test_nesting_up_to_the_limit_reads_normally() -> None:
    depth = MAX_DEPTH - 1  # under the root mapping
    text = MINIMAL + "description: " + "[" * depth + "]" * depth + "\n"
    issue = only_issue(text)
    assert issue.path == "description" and issue.message.startswith("expected a string, got a list")


@pytest.mark.parametrize("digits", [MAX_INT_CHARS + 1, 5000, 100_000])
def test_a_long_integer_is_an_issue_at_its_position(digits: int) -> None:
    text = MINIMAL.replace("period: 14", "period: " + "9" * digits)
    issue = only_issue(text)
    assert (issue.line, issue.column) == position(text, text.index("999"))
    assert f"{digits} characters" in issue.message and len(issue.message) <= MAX_MESSAGE_CHARS


def test_an_integer_of_the_longest_length_is_read_as_a_number() -> None:
    issue = only_issue(MINIMAL + "decisions: {confidence_threshold: " + "9" * MAX_INT_CHARS + "}\n")
    assert issue.path == "decisions.confidence_threshold" and "must be <= 1" in issue.message


@pytest.mark.parametrize("number", ["1.0e+999", "-1.0e+999", ".inf", ".nan", "9" * MAX_INT_CHARS])
def test_numbers_beyond_a_float_are_errors_of_the_field(number: str) -> None:
    text = MINIMAL + f"model: {{architecture: {{dropout: {number}}}}}\n"
    issue = only_issue(text)
    assert issue.path == "model.architecture.dropout"
    assert (issue.line, issue.column) == position(text, text.index(number))


def test_an_alias_bomb_costs_what_its_text_costs() -> None:
    levels = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for k in range(1, 10):
        levels.append(f"l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 9) + "]")
    text = "\n".join(levels) + "\nname: *l9\nindicators: *l9\nfuzzy_sets: {x: *l9}\ntraining_data: *l9\n"
    error = failure(text)
    # 10 unknown keys, a list as name, 9 list items as indicators, fuzzy sets of no mapping,
    # training_data not a mapping: each reported once, nothing expanded.
    assert 10 < len(error.issues) < 40 and error.omitted == 0
    assert all(len(i.message) <= MAX_MESSAGE_CHARS for i in error.issues)


def test_many_errors_keep_the_first_and_count_the_rest() -> None:
    count = 5000
    text = MINIMAL + "".join(f"unknown_{n}: {n}\n" for n in range(count))
    error = failure(text)
    assert len(error.issues) == MAX_ISSUES and error.omitted == count - MAX_ISSUES
    first = MINIMAL.count("\n") + 1
    assert [i.line for i in error.issues] == list(range(first, first + MAX_ISSUES))
    assert str(error).endswith(f"... and {count - MAX_ISSUES} more errors")


def test_many_warnings_keep_the_first_and_count_the_rest() -> None:
    count = MAX_ISSUES + 25
    unused = "".join(f"  - {{id: r{n}, name: rsi}}\n" for n in range(count))
    loaded = load_strategy_text(MINIMAL.replace("indicators:\n", "indicators:\n" + unused), "many.yaml")
    assert len(loaded.warnings) == MAX_ISSUES and loaded.omitted_warnings == count - MAX_ISSUES


def test_errors_in_many_places_are_capped_too() -> None:
    # Unknown indicator parameters, fuzzy sets for undefined indicators and duplicate sets: each
    # kind of error is capped, including the ones whose messages list other names.
    indicators = "".join(f"  - {{id: r{n}, name: rsi, p{n}: 1}}\n" for n in range(300))
    sets = "".join(f"  f{n}: {{low: [0, 1, 2]}}\n" for n in range(300))
    text = MINIMAL.replace("indicators:\n", "indicators:\n" + indicators)
    error = failure(text.replace("fuzzy_sets:\n", "fuzzy_sets:\n" + sets))
    assert len(error.issues) == MAX_ISSUES and error.omitted == 2 * 300 - MAX_ISSUES
    assert all(len(i.message) <= MAX_MESSAGE_CHARS for i in error.issues)


def test_a_huge_key_is_echoed_as_a_short_excerpt() -> None:
    key = "k" * 100_000
    issue = only_issue(MINIMAL + f"? {key}\n: 1\n")  # an implicit key is at most 1,024 characters
    assert issue.message.startswith("unknown key 'kkk") and f"({len(key):,} characters)" in issue.message
    assert len(issue.message) <= MAX_MESSAGE_CHARS and len(issue.path) == MAX_PATH_KEY_CHARS + 1
    assert str(issue).count("k" * (ECHO_CHARS + 1)) == 0


def test_a_huge_value_is_echoed_as_a_short_excerpt() -> None:
    value = "x" * 100_000
    issue = only_issue(MINIMAL + f"model: {{training: {{epochs: {value}}}}}\n")
    assert issue.path == "model.training.epochs" and issue.message.startswith("expected an integer, got str")
    assert len(issue.message) <= MAX_MESSAGE_CHARS


def test_echo_and_clip() -> None:
    assert echo("abc") == "'abc'"
    long = "a" * 1000
    assert echo(long) == repr(long)[:ECHO_CHARS] + "… (1,000 characters)"
    assert echo(10**100).startswith("1" + "0" * (ECHO_CHARS - 1) + "…")
    assert clip("m" * (MAX_MESSAGE_CHARS + 5)) == "m" * (MAX_MESSAGE_CHARS - 1) + "…"
    assert clip("short") == "short"


def test_suggestions_and_listings_are_bounded() -> None:
    assert suggest("perod", ["period", "source"]) == " (did you mean 'period'?)"
    assert suggest("p" * (MAX_SUGGEST_WORD + 1), ["p" * (MAX_SUGGEST_WORD + 1)]) == ""
    many = [f"name{n}" for n in range(MAX_SUGGEST_CANDIDATES + 1)]
    assert suggest("name1", many) == ""
    assert suggest("name1", many[:MAX_SUGGEST_CANDIDATES]) == " (did you mean 'name1'?)"
    assert listing(["a", "b"]) == "a, b"
    shown = listing([f"n{k}" for k in range(1000)])
    assert shown.endswith(", … (1000 in all)") and shown.count(",") == 30


def test_a_strategy_at_the_extent_limits_loads() -> None:
    indicators = "".join(f"  - {{id: r{n}, name: rsi}}\n" for n in range(MAX_INDICATORS - 1))
    symbols = ", ".join(f"S{n}" for n in range(MAX_SERIES))
    text = MINIMAL.replace("indicators:\n", "indicators:\n" + indicators).replace("[AAPL]", f"[{symbols}]")
    text += f"model: {{features: {{lookback_periods: {MAX_FEATURES - 1}}}}}\n"
    loaded = load_strategy_text(text, "edge.yaml")
    assert (
        len(loaded.strategy.indicators) == MAX_INDICATORS and len(loaded.strategy.data.symbols) == MAX_SERIES
    )


def test_a_strategy_over_the_extent_limits_is_refused() -> None:
    indicators = "".join(f"  - {{id: r{n}, name: rsi}}\n" for n in range(MAX_INDICATORS))
    symbols = ", ".join(f"S{n}" for n in range(MAX_SERIES + 1))
    text = MINIMAL.replace("indicators:\n", "indicators:\n" + indicators).replace("[AAPL]", f"[{symbols}]")
    text += "model: {features: {lookback_periods: 1000000000}}\n"
    issues = failure(text).issues
    assert [(i.path, i.message) for i in issues] == [
        (
            "training_data",
            f"{MAX_SERIES + 1:,} series to load (symbols × timeframes = {MAX_SERIES + 1:,} × 1), "
            f"over the limit of {MAX_SERIES:,}",
        ),
        ("indicators", f"{MAX_INDICATORS + 1:,} indicators, over the limit of {MAX_INDICATORS:,}"),
        (
            "fuzzy_sets",
            "the model would have 1,000,000,001 input features (timeframes × fuzzy sets × "
            f"(1 + lookback_periods) = 1 × 1 × (1 + 1,000,000,000)), over the limit of {MAX_FEATURES:,}",
        ),
    ]


def test_names_longer_than_the_limit_are_errors() -> None:
    long = "a" * (MAX_NAME_CHARS + 1)
    text = MINIMAL.replace("low: {", f"{long}: {{")
    text += f"  {long}: {{low: [0, 1, 2]}}\n"
    messages = [i.message for i in failure(text).issues]
    assert len(messages) == 2 and all(f"{MAX_NAME_CHARS} characters" in m for m in messages), messages
    # Symbols follow the one symbol rule (ktrdr.symbols), which the cache and the daemon apply too.
    too_long = "a" * (symbols.MAX_CHARS + 1)
    (issue,) = failure(MINIMAL.replace("[AAPL]", f"[{too_long}]")).issues
    assert symbols.RULE in issue.message
    assert load_strategy_text(MINIMAL.replace("[AAPL]", f"[{too_long[:-1]}]")).strategy.data.symbols == (
        too_long[:-1],
    )
    # An indicator id is checked by the same rule as a fuzzy key.
    text = MINIMAL.replace("name: rsi\n", f"name: rsi\n    id: {long}\n")
    assert f"{MAX_NAME_CHARS} characters" in failure(text).issues[0].message
    fits = MINIMAL.replace("low: {", f"{long[:-1]}: {{")
    assert any(len(s.name) == MAX_NAME_CHARS for f in load_strategy_text(fits).strategy.fuzzy for s in f.sets)
