"""Bar timeframes: parsing, durations and ordering.

A timeframe is written as ``<count><unit>`` with unit ``m`` (minutes), ``h`` (hours), ``d`` (days)
or ``w`` (weeks), e.g. ``"1m"``, ``"15m"``, ``"1h"``, ``"4h"``, ``"1d"``, ``"1w"``. Bars are stamped
with their UTC *open* time; a bar covers ``[open, open + duration)`` and is complete at its close
time ``open + duration``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NS_PER_UNIT = {"m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}
_PATTERN = re.compile(r"^([1-9][0-9]*)([mhdw])$")

#: Timeframes the system supports end to end (IB bar sizes exist for each).
SUPPORTED = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")


class TimeframeError(ValueError):
    """An unknown or malformed timeframe string."""


@dataclass(frozen=True, order=True)
class Timeframe:
    """A bar duration. Ordered by duration, so ``min(tfs)`` is the fastest."""

    ns: int
    text: str

    @property
    def seconds(self) -> float:
        return self.ns / 1e9

    def __str__(self) -> str:
        return self.text


def parse(text: str) -> Timeframe:
    """Parse ``"1h"`` etc. Raises :class:`TimeframeError` naming the supported values."""
    m = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if m is None or text.strip() not in SUPPORTED:
        raise TimeframeError(f"unknown timeframe {text!r}; supported: {', '.join(SUPPORTED)}")
    return Timeframe(int(m.group(1)) * _NS_PER_UNIT[m.group(2)], text.strip())


def sort_fastest_first(texts: list[str] | tuple[str, ...]) -> list[str]:
    """Timeframe strings ordered fastest (shortest bar) first."""
    return [tf.text for tf in sorted(parse(t) for t in texts)]
