"""Shared helpers for the strategy loader tests.

The tests resolve indicators through the real registry; they need the catalogue entries below.
"""

from __future__ import annotations

import pytest

from ktrdr.research.indicators import known_names

NEEDED_INDICATORS = ("rsi", "macd", "sma", "ema", "bbands", "stoch", "adx")


@pytest.fixture(autouse=True, scope="session")
def _catalogue_has_what_the_tests_use() -> None:
    missing = [n for n in NEEDED_INDICATORS if n not in known_names()]
    assert not missing, f"the indicator catalogue lacks {missing}; these tests need {NEEDED_INDICATORS}"
