"""What the loaded bars cover of a requested run ``[start, end)``: warm-up used and gaps at the ends.

Samples start at ``start`` (:func:`ktrdr.research.datasets.build_dataset`); base bars before it only
warm indicators, lags and ``history_required`` up. :func:`coverage` reports, per symbol, how many
base bars before ``start`` the data hold (``warmup_bars``) against the number the strategy asks for
(``warmup_required``, :func:`ktrdr.strategy.data_requirements`), the first and last base bar, and
warnings when the warm-up falls short or the data begin after ``start`` or end before ``end``
(the last base bar closes before ``end``). Times in reports are ISO-8601 UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ktrdr.research.bars import Bars, iso_minute
from ktrdr.strategy import Strategy, data_requirements


def coverage(
    strategy: Strategy, data: Mapping[str, Mapping[str, Bars]], start: int, end: int
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``({symbol: {warmup_bars, warmup_required, first_bar, last_bar}}, warnings)``; ``start``,
    ``end`` in ns UTC."""
    base = strategy.data.base_timeframe
    required = {
        r.symbol: r.warmup_bars for r in data_requirements(strategy, start, end) if r.timeframe == base
    }
    report: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for sym in strategy.data.symbols:
        bars = data[sym][base]
        warmup = int(np.searchsorted(bars.time, start, "left"))
        report[sym] = {
            "warmup_bars": warmup,
            "warmup_required": required[sym],
            "first_bar": iso_minute(bars.time[0]),
            "last_bar": iso_minute(bars.time[-1]),
        }
        if warmup < required[sym]:
            warnings.append(
                f"{sym}: {warmup} warm-up bars before {iso_minute(start)}, {required[sym]} wanted: "
                "the first samples come later, when the indicators are warm"
            )
        if bars.time[0] > start:
            warnings.append(
                f"{sym}: data begin at {iso_minute(bars.time[0])}, after the requested start {iso_minute(start)}"
            )
        if bars.close_time[-1] < end:
            warnings.append(
                f"{sym}: data end at {iso_minute(bars.close_time[-1])} (last bar's close), before the requested end {iso_minute(end)}"
            )
    return report, warnings
