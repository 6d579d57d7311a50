"""Bars for backtest tests: explicit opens and closes (with gaps, so a fill at the open differs
from one at the previous close), and seeded random ones."""

from __future__ import annotations

import numpy as np

from ktrdr.research.bars import Bars

HOUR_NS = 3600 * 10**9
START_NS = 1_700_000_000 * 10**9 // HOUR_NS * HOUR_NS


def bars_from(opens, closes, *, symbol: str = "AAA", timeframe: str = "1h") -> Bars:
    """Hourly bars with these opens and closes; highs and lows just around them."""
    o = np.asarray(opens, dtype=np.float64)
    c = np.asarray(closes, dtype=np.float64)
    t = START_NS + HOUR_NS * np.arange(o.size, dtype=np.int64)
    return Bars.from_arrays(
        symbol, timeframe, t, o, np.maximum(o, c) * 1.001, np.minimum(o, c) * 0.999, c, np.ones_like(o)
    )


def random_bars(n: int, seed: int, *, sigma: float = 0.01) -> Bars:
    """``n`` hourly bars of a seeded random walk whose opens gap away from the previous close."""
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, sigma, n)))
    opens = np.concatenate(([100.0], closes[:-1])) * np.exp(rng.normal(0, sigma / 3, n))
    return bars_from(opens, closes)
