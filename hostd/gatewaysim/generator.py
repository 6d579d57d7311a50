"""Seeded synthetic 1-minute bars whose every value is a pure function of (seed, symbol, time).

No state carries from one request to the next, so the same seed always yields the same bar for the
same minute, however requests overlap or are ordered.

The price is a continuous path defined for every UTC minute (traded or not):

- day level: ``L(D) = log(s0) + σ_day · Σ_{k=D-249..D} z(k)`` for day D since 1970-01-01, each
  ``z(k)`` a standard normal drawn by hashing ``(seed, symbol, "day", k)``: a moving sum over a year
  of trading days, so the level moves like a random walk from day to day yet stays within a few
  ``σ_day·√250`` of ``s0`` in any decade;
- within day D, a Brownian bridge from ``L(D)`` to ``L(D+1)`` built from per-minute normals hashed
  from ``(seed, symbol, "minute", t)``, scaled to ``σ_day / √1440`` per minute.

The 1-minute bar opening at t has open ``P(t)``, close ``P(t+60)``, a high and low beyond them by a
hashed half-normal amount, and a hashed log-normal volume. Prices are rounded to the contract's tick.
A calendar decides which minutes are traded (:mod:`ktrdr.calendars`); the path does not.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

_MINUTES_PER_DAY = 1440
_LEVEL_WINDOW_DAYS = 250
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_STREAM_DAY, _STREAM_MINUTE, _STREAM_HIGH, _STREAM_LOW, _STREAM_VOLUME = range(1, 6)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over a uint64 array (wrapping arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class PathParams:
    """Start price, daily volatility of the log price, typical minute volume, and tick size."""

    s0: float
    sigma_day: float
    volume_log_mean: float
    tick: float


class MinutePath:
    """The price path and minute bars of one (seed, symbol)."""

    def __init__(self, seed: int, symbol: str, params: PathParams) -> None:
        key = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
        self._key = key ^ np.uint64(zlib.crc32(symbol.encode()) << 32)
        self.params = params

    def _normal(self, stream: int, index: np.ndarray) -> np.ndarray:
        """Standard normals hashed from (key, stream, index): Box–Muller on two hashed uniforms."""
        base = _mix(self._key ^ np.uint64(stream * 0x100000001B3) ^ index.astype(np.uint64))
        u1 = ((_mix(base) >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53  # (0, 1]
        u2 = (_mix(base ^ _GOLDEN) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)

    def _day_levels(self, first_day: int, last_day: int) -> np.ndarray:
        """``L(D)`` for D in ``[first_day, last_day]`` (days since the epoch)."""
        days = np.arange(first_day - _LEVEL_WINDOW_DAYS, last_day + 1, dtype=np.int64)
        sums = np.cumsum(self._normal(_STREAM_DAY, days))
        window_sums = sums[_LEVEL_WINDOW_DAYS:] - sums[:-_LEVEL_WINDOW_DAYS]
        return np.log(self.params.s0) + self.params.sigma_day * window_sums

    def log_price(self, minute_s: np.ndarray) -> np.ndarray:
        """``log P(t)`` at minute-aligned UTC epoch seconds (may include a day's closing boundary)."""
        if minute_s.size == 0:
            return np.empty(0)
        day = minute_s // 86400
        first_day, last_day = int(day.min()), int(day.max())
        levels = self._day_levels(first_day, last_day + 1)
        n_days = last_day - first_day + 1
        minutes = (first_day * _MINUTES_PER_DAY + np.arange(n_days * _MINUTES_PER_DAY, dtype=np.int64)) * 60
        walk = self._normal(_STREAM_MINUTE, minutes).reshape(n_days, _MINUTES_PER_DAY)
        walk = np.concatenate((np.zeros((n_days, 1)), np.cumsum(walk, axis=1)), axis=1)
        fraction = np.arange(_MINUTES_PER_DAY + 1) / _MINUTES_PER_DAY
        sigma_minute = self.params.sigma_day / np.sqrt(_MINUTES_PER_DAY)
        bridge = (walk - fraction * walk[:, -1:]) * sigma_minute
        trend = levels[:-1, None] + fraction * (levels[1:] - levels[:-1])[:, None]
        grid = (
            trend + bridge
        )  # grid[d, m]: log price at minute m of day first_day + d (m = 1440 is next 00:00)
        row = day - first_day
        col = (minute_s - day * 86400) // 60
        return grid[row, col]

    def minute_bars(self, minute_s: np.ndarray) -> dict[str, np.ndarray]:
        """OHLCV of the 1-minute bars opening at ``minute_s``: keys open, high, low, close, volume."""
        params = self.params
        log_open = self.log_price(minute_s)
        log_close = self.log_price(minute_s + 60)
        sigma_minute = params.sigma_day / np.sqrt(_MINUTES_PER_DAY)
        index = minute_s.astype(np.int64)
        up = np.abs(self._normal(_STREAM_HIGH, index)) * sigma_minute / 2
        down = np.abs(self._normal(_STREAM_LOW, index)) * sigma_minute / 2
        open_, close = self._round(np.exp(log_open)), self._round(np.exp(log_close))
        high = np.maximum(self._round(np.exp(np.maximum(log_open, log_close) + up)), np.maximum(open_, close))
        low = np.minimum(
            self._round(np.exp(np.minimum(log_open, log_close) - down)), np.minimum(open_, close)
        )
        volume = np.round(np.exp(params.volume_log_mean + 0.8 * self._normal(_STREAM_VOLUME, index)))
        return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}

    def _round(self, price: np.ndarray) -> np.ndarray:
        tick = self.params.tick
        decimals = max(0, -int(np.floor(np.log10(tick))) + 1)
        return np.round(np.round(price / tick) * tick, decimals)
