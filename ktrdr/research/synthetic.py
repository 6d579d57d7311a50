"""Seeded synthetic bars for tests, benchmarks and demos: a geometric random walk.

:func:`gbm_bars` draws continuous (24×7, no gaps) bars of one timeframe whose closes follow a
geometric Brownian motion: log-return per bar ~ N((μ − σ²/2)·Δ, σ²·Δ) with Δ the bar length in
years (365-day year). Each bar opens at the previous close; high/low extend beyond open/close by a
half-normal amount of the bar's volatility. Same arguments and seed → identical bars.

:func:`random_walk` is the same walk given as ``n`` bars with a per-bar volatility. Slower
timeframes come from :func:`ktrdr.research.bars.resample`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from ktrdr import timeframes
from ktrdr.research.bars import Bars

_YEAR_S = 365 * 86400


def to_ns(t: str | int | datetime) -> int:
    """ns since the epoch from an int (ns), a datetime (naive = UTC) or an ISO-8601 string."""
    if isinstance(t, int):
        return t
    import pandas as pd

    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)


def gbm_bars(
    symbol: str,
    timeframe: str,
    start: str | int | datetime,
    end: str | int | datetime,
    *,
    seed: int,
    s0: float = 100.0,
    sigma: float = 0.2,
    mu: float = 0.0,
) -> Bars:
    """Bars opening at ``start`` (floored to the timeframe) and every bar after while before ``end``.
    ``sigma``/``mu``: annualised volatility and drift."""
    tf = timeframes.parse(timeframe)
    t0 = to_ns(start) // tf.ns * tf.ns
    time = np.arange(t0, to_ns(end), tf.ns, dtype=np.int64)
    n = time.shape[0]
    rng = np.random.default_rng(seed)
    dt = tf.seconds / _YEAR_S
    step_sd = sigma * np.sqrt(dt)
    log_ret = rng.normal((mu - sigma**2 / 2) * dt, step_sd, n)
    close = s0 * np.exp(np.cumsum(log_ret))
    open_ = np.concatenate(([s0], close[:-1]))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, step_sd / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, step_sd / 2, n)))
    volume = np.round(rng.lognormal(8.0, 0.5, n))
    return Bars.from_arrays(symbol, tf.text, time, open_, high, low, close, volume, source=f"gbm({symbol})")


def random_walk(
    symbol: str,
    n: int,
    seed: int,
    *,
    timeframe: str = "1h",
    start: str | int | datetime = "2022-01-01",
    bar_sigma: float = 0.005,
) -> Bars:
    """``n`` consecutive bars from ``start`` whose log-returns have standard deviation
    ``bar_sigma`` per bar (no drift): :func:`gbm_bars` parametrised by bar count."""
    tf = timeframes.parse(timeframe)
    t0 = to_ns(start) // tf.ns * tf.ns
    sigma = bar_sigma * np.sqrt(_YEAR_S / tf.seconds)
    return gbm_bars(
        symbol, timeframe, t0, t0 + n * tf.ns, seed=seed, sigma=float(sigma), mu=float(sigma**2 / 2)
    )


def write_csv(bars: Bars, directory: str | Path) -> Path:
    """Write ``DIR/{SYMBOL}_{TF}.csv`` in the predecessor's layout (first column the ISO-8601 UTC
    open time, then open, high, low, close, volume); returns the path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{bars.symbol}_{bars.timeframe}.csv"
    frame = bars.to_frame()
    frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_csv(path, index_label="timestamp")
    return path
