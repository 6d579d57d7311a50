"""Indicator set on 100,000 bars: our catalogue vs TA-Lib, best-of-N, measured side by side.

``python -m bench indicators [--bars N] [--repeat N]``. For each indicator TA-Lib also computes
(default parameters, every output), prints our time, TA-Lib's time and the ratio, then the geometric
mean of the ratios (target <= 3x). Ours and TA-Lib alternate within each round, so both see the same
machine load.

"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
import talib

from ktrdr.research.allocator import keep_freed_memory
from ktrdr.research.bars import Bars
from ktrdr.research.indicators import lookup


def _bars(n: int) -> Bars:
    rng = np.random.default_rng(2024)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.005, n)))
    prev = np.concatenate(([close[0]], close[:-1]))
    spread = 1.0 + rng.exponential(0.003, (2, n))
    high = np.maximum(prev, close) * spread[0]
    low = np.minimum(prev, close) / spread[1]
    vol = rng.integers(1, 5_000, n).astype(np.float64)
    time_ns = np.arange(n, dtype=np.int64) * 60_000_000_000
    return Bars.from_arrays("BENCH", "1m", time_ns, prev, high, low, close, vol)


def _cases(b: Bars) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    """(name, ours, TA-Lib) with the same definition and default parameters."""
    h, lo, c, v = b.high, b.low, b.close, b.volume

    def ours(name: str) -> Callable[[], object]:
        defn = lookup(name)
        return lambda: defn(b)

    return [
        ("sma", ours("sma"), lambda: talib.SMA(c, 20)),
        ("ema", ours("ema"), lambda: talib.EMA(c, 20)),
        ("rsi", ours("rsi"), lambda: talib.RSI(c, 14)),
        ("macd", ours("macd"), lambda: talib.MACD(c, 12, 26, 9)),
        ("bbands", ours("bbands"), lambda: talib.BBANDS(c, 20, 2.0, 2.0, 0)),
        ("atr", ours("atr"), lambda: talib.ATR(h, lo, c, 14)),
        ("stoch", ours("stoch"), lambda: talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)),
        ("williams_r", ours("williams_r"), lambda: talib.WILLR(h, lo, c, 14)),
        ("cci", ours("cci"), lambda: talib.CCI(h, lo, c, 20)),
        ("mfi", ours("mfi"), lambda: talib.MFI(h, lo, c, v, 14)),
        (
            "adx",
            ours("adx"),
            lambda: (talib.ADX(h, lo, c, 14), talib.PLUS_DI(h, lo, c, 14), talib.MINUS_DI(h, lo, c, 14)),
        ),
        ("aroon", ours("aroon"), lambda: (talib.AROON(h, lo, 14), talib.AROONOSC(h, lo, 14))),
        ("obv", ours("obv"), lambda: talib.OBV(c, v)),
        ("roc", ours("roc"), lambda: talib.ROC(c, 10)),
        ("momentum", ours("momentum"), lambda: talib.MOM(c, 10)),
        ("psar", ours("psar"), lambda: talib.SAR(h, lo, 0.02, 0.2)),
        ("donchian", ours("donchian"), lambda: (talib.MAX(h, 20), talib.MIN(lo, 20))),
    ]


def _best(fn: Callable[[], object], times: list[float]) -> None:
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)


def _table(b: Bars, repeat: int) -> float:
    cases = _cases(b)
    ours_t: dict[str, list[float]] = {n: [] for n, _, _ in cases}
    ref_t: dict[str, list[float]] = {n: [] for n, _, _ in cases}
    for _ in range(repeat):
        for name, ours, ref in cases:
            _best(ours, ours_t[name])
            _best(ref, ref_t[name])
    print(f"{'indicator':<12}{'ours ms':>10}{'TA-Lib ms':>11}{'ratio':>8}")
    logs = []
    for name, _, _ in cases:
        o, r = min(ours_t[name]), min(ref_t[name])
        logs.append(math.log(o / r))
        print(f"{name:<12}{o * 1e3:>10.3f}{r * 1e3:>11.3f}{o / r:>7.2f}x")
    gm = math.exp(sum(logs) / len(logs))
    print(f"{'geomean':<12}{'':>21}{gm:>7.2f}x  (target <= 3x)")
    return gm


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench indicators", description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=15, help="rounds; the best time of each side counts")
    args = ap.parse_args(argv)
    keep_freed_memory()  # as the product's compute processes do (ktrdr.research.allocator)
    b = _bars(args.bars)
    print(f"indicators on {args.bars} bars, best of {args.repeat}")
    _table(b, args.repeat)
    return 0
