"""One symbol rule for strategy files, job specs, the bar cache and the daemon's requests."""

from __future__ import annotations

import pytest

from ktrdr import symbols


@pytest.mark.parametrize("text", ["AAPL", "EURUSD", "BRK.B", "ES_F", "X-1", "9", "A" * symbols.MAX_CHARS])
def test_symbols_that_are_accepted(text: str) -> None:
    assert symbols.is_symbol(text)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "aapl",
        "-AAPL",
        ".AAPL",
        "A/B",
        "../X",
        "A B",
        "AAPL\n",
        "A\x00",
        "A" * (symbols.MAX_CHARS + 1),
        7,
        None,
    ],
)
def test_values_that_are_not_symbols(value: object) -> None:
    assert not symbols.is_symbol(value)


def test_what_a_user_writes_is_normalized_before_the_check() -> None:
    assert symbols.normalize("  eurusd\n") == "EURUSD" and symbols.is_symbol(symbols.normalize(" eurusd "))
