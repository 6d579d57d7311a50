"""Bar timeframes: parsing, durations and ordering.

A timeframe is written as ``<count><unit>`` with unit ``m`` (minutes), ``h`` (hours), ``d`` (days)
or ``w`` (weeks), e.g. ``"1m"``, ``"15m"``, ``"1h"``, ``"4h"``, ``"1d"``, ``"1w"``. Bars are stamped
with their UTC *open* time; a bar covers ``[open, open + duration)`` and is complete at its close
time ``open + duration``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ktrdr.wire import TIMEFRAMES

_NS_PER_UNIT = {"m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}
_PATTERN = re.compile(r"^([1-9][0-9]*)([mhdw])$")

#: Timeframes the system supports end to end (IB bar sizes exist for each).
SUPPORTED = TIMEFRAMES


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
    """Parse ``"1h"`` etc. Raises :class:`TimeframeError` naming the supported values, and the
    supported one meant when ``text`` is another spelling of it (``1H``, ``60m``, ``H1``, ``1min``)."""
    m = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if m is None or text.strip() not in SUPPORTED:
        meant = _meant(text) if isinstance(text, str) else None
        hint = f"; did you mean {meant!r}?" if meant else ""
        raise TimeframeError(f"unknown timeframe {text!r}; supported: {', '.join(SUPPORTED)}{hint}")
    return Timeframe(int(m.group(1)) * _NS_PER_UNIT[m.group(2)], text.strip())


#: Other spellings of a bar size: ``60m``, ``1H``, ``1 hour``, ``1min``, and MetaTrader's ``H1``/``M5``.
_SPELLING = re.compile(
    r"\s*(?:(?P<count>[0-9]+)\s*(?P<unit>[a-z]+)|(?P<prefix>[mhdw])(?P<suffix>[0-9]+))\s*", re.IGNORECASE
)
_UNIT_WORDS = {
    "m": ("m", "min", "mins", "minute", "minutes", "t"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
    "w": ("w", "wk", "week", "weeks"),
}


def _meant(text: str) -> str | None:
    """The supported timeframe of the same duration as ``text`` in another spelling, if any (a
    hint only: ``15M`` could be pandas' months, so nothing but the canonical form is accepted)."""
    m = _SPELLING.fullmatch(text)
    if m is None:
        return None
    count = int(m["count"] or m["suffix"])
    word = (m["unit"] or m["prefix"]).lower()
    unit = next((u for u, words in _UNIT_WORDS.items() if word in words), None)
    if unit is None:
        return None
    duration = count * _NS_PER_UNIT[unit]
    return next((tf for tf in SUPPORTED if parse(tf).ns == duration), None)


def sort_fastest_first(texts: list[str] | tuple[str, ...]) -> list[str]:
    """Timeframe strings ordered fastest (shortest bar) first."""
    return [tf.text for tf in sorted(parse(t) for t in texts)]
