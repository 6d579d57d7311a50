"""Timeframes: only the canonical spellings are accepted; another spelling of one is named in the error."""

from __future__ import annotations

import pytest

from ktrdr import timeframes


@pytest.mark.parametrize(
    "text, meant",
    [("1H", "1h"), ("60m", "1h"), ("H1", "1h"), ("1 hour", "1h"), ("M5", "5m"), ("1min", "1m"),
     ("240m", "4h"), ("1D", "1d"), ("7d", "1w"), ("1W", "1w")],
)  # fmt: skip
def test_another_spelling_is_refused_naming_the_timeframe_meant(text: str, meant: str) -> None:
    with pytest.raises(timeframes.TimeframeError, match=f"did you mean '{meant}'"):
        timeframes.parse(text)


@pytest.mark.parametrize("text", ["2h", "1mo", "abc", "", "0m"])
def test_no_hint_when_no_supported_timeframe_has_that_length(text: str) -> None:
    with pytest.raises(timeframes.TimeframeError) as refused:
        timeframes.parse(text)
    assert "did you mean" not in str(refused.value) and "supported: 1m, 5m" in str(refused.value)


def test_the_canonical_spellings_parse() -> None:
    assert [timeframes.parse(t).seconds for t in timeframes.SUPPORTED] == [
        60,
        300,
        900,
        1800,
        3600,
        14400,
        86400,
        604800,
    ]
