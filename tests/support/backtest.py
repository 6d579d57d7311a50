"""Backtest test support: bars with explicit opens and closes (with gaps, so a fill at the open
differs from one at the previous close), seeded random bars, and the backtesting.py strategy that
follows ktrdr target positions (the agreement test and ``bench backtest`` run it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def backtesting_py_frame(bars: Bars) -> pd.DataFrame:
    """``bars`` as backtesting.py wants them: Open, High, Low, Close, Volume on a naive index."""
    df = bars.to_frame().rename(columns=str.capitalize)
    df.index = df.index.tz_localize(None)
    return df


def follow_targets_strategy():
    """A backtesting.py ``Strategy`` class that holds ``targets[i]`` (-1, 0, +1) × ``size`` after
    bar i, like ktrdr's target positions: a change closes the open trade and opens the new one with
    market orders (filled at the next open). Run with ``bt.run(targets=..., size=...)``."""
    from backtesting import Strategy

    class FollowTargets(Strategy):
        targets: np.ndarray = np.zeros(0)
        size: float = 1.0

        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            want, have = int(self.targets[i]), int(np.sign(self.position.size))
            if want == have:
                return
            if have:
                self.position.close()
            if want > 0:
                self.buy(size=self.size)
            elif want < 0:
                self.sell(size=self.size)

    return FollowTargets
