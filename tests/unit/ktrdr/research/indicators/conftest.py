"""Shared fixtures: a seeded random OHLCV series that satisfies the Bars invariants."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.research.bars import Bars


def random_bars(n: int, seed: int = 7, price: float = 100.0) -> Bars:
    """A geometric random walk with intrabar ranges; high >= max(open, close), low <= min(open, close)."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.empty(n)
    open_[0] = price
    open_[1:] = close[:-1] * np.exp(rng.normal(0.0, 0.002, n - 1))
    high = np.maximum(open_, close) * (1.0 + rng.exponential(0.004, n))
    low = np.minimum(open_, close) * (1.0 - rng.exponential(0.004, n))
    volume = rng.integers(100, 10_000, n).astype(np.float64)
    time = np.arange(n, dtype=np.int64) * 3_600_000_000_000 + 1_600_000_000_000_000_000
    return Bars.from_arrays("TEST", "1h", time, open_, high, low, close, volume)


@pytest.fixture(scope="session")
def bars() -> Bars:
    """3000 hourly bars around 100."""
    return random_bars(3000)


@pytest.fixture(scope="session")
def make_bars():
    """The random-bars factory, for tests that need other lengths or seeds."""
    return random_bars
