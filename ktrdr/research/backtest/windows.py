"""Walk-forward windows: lengths (:class:`Span`, :func:`parse_span`) and the rolling train and test
windows of a period (:func:`plan_windows`), the arithmetic of :mod:`.walkforward`'s docstring.

Standard library only, so the daemon checks a request's windows without importing the research
stack.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime

_WINDOW = re.compile(r"([0-9]{1,3})([MYWD])")
DAY_NS = 86_400 * 10**9


class WalkForwardError(ValueError):
    """A window length or range that cannot make a walk-forward (bad text, no complete window).
    ``field``: the argument at fault (``train_window``, ``test_window``), "" when not one."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Span:
    """A window length: calendar ``months`` plus ``days`` (UTC; ``text`` as the user wrote it)."""

    months: int = 0
    days: int = 0
    text: str = ""


@dataclass(frozen=True)
class Window:
    """One walk-forward window: train on ``[train_start_ns, train_end_ns)``, test on
    ``[test_start_ns, test_end_ns)``, with ``train_end_ns == test_start_ns`` (ns since the epoch, UTC)."""

    index: int
    train_start_ns: int
    train_end_ns: int
    test_start_ns: int
    test_end_ns: int


def parse_span(text: str, *, field: str = "window") -> Span:
    """A window length: 1–999 of ``M`` (months), ``Y`` (12 months), ``W`` (7 days) or ``D`` (days):
    ``12M``, ``1Y``, ``2W``, ``30D``. Raises :class:`WalkForwardError` naming ``field``."""
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise WalkForwardError(
            f"{field}: expected a count and a unit M, Y, W or D like 12M, 1Y, 2W or 30D, got {text!r}", field
        )
    count, unit = int(match.group(1)), match.group(2)
    if count == 0:
        raise WalkForwardError(f"{field}: a window must be at least 1 {unit} long, got {text!r}", field)
    months = {"M": count, "Y": 12 * count}.get(unit, 0)
    days = {"W": 7 * count, "D": count}.get(unit, 0)
    return Span(months, days, text.strip())


def add_months(ns: int, months: int) -> int:
    """``ns`` moved by ``months`` calendar months (UTC; the day clipped to the month's length, the
    time of day kept)."""
    seconds, rest = divmod(ns, 10**9)
    moment = datetime.fromtimestamp(seconds, UTC)
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    moved = moment.replace(year=year, month=month + 1, day=day)
    return int(moved.timestamp()) * 10**9 + rest


def _offset(start_ns: int, steps: int, step: Span, plus: Span | None = None) -> int:
    """``start + steps·step (+ plus)``, the months added at once (no day clipping carried over)."""
    months = steps * step.months + (plus.months if plus else 0)
    days = steps * step.days + (plus.days if plus else 0)
    return add_months(start_ns, months) + days * DAY_NS


def plan_windows(start_ns: int, end_ns: int, train: Span, test: Span) -> list[Window]:
    """The windows of the module docstring. Raises :class:`WalkForwardError` with ``field``
    ``train_window`` when the range is not longer than one train window, ``test_window`` when the
    first test window does not fit whole before ``end_ns``."""
    if train.months + train.days < 1 or test.months + test.days < 1:
        raise WalkForwardError(f"window lengths must be positive, got {train} and {test}")
    first_test = _offset(start_ns, 0, test, train)
    if first_test >= end_ns:
        raise WalkForwardError(
            f"train_window {train.text or train}: the range {_day(start_ns)} .. {_day(end_ns)} is not "
            "longer than one train window, so it leaves no test window",
            "train_window",
        )
    if _offset(start_ns, 1, test, train) > end_ns:
        raise WalkForwardError(
            f"test_window {test.text or test}: the first test window, from {_day(first_test)}, ends "
            f"after {_day(end_ns)}: the range holds fewer than one full train and test window",
            "test_window",
        )
    out: list[Window] = []
    while True:
        k = len(out)
        test_start = _offset(start_ns, k, test, train)
        if test_start >= end_ns:
            return out
        test_end = min(_offset(start_ns, k + 1, test, train), end_ns)
        out.append(Window(k, _offset(start_ns, k, test), test_start, test_start, test_end))


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00")
