"""Feature build time for ``neuro_mean_reversion``: 3 symbols × 1h/4h/1d, two years of 1h bars.

``python -m bench features [--years Y] [--repeat R] [--seed S]``. Bars are seeded random walks
(24×7 hourly bars), resampled to 4h and 1d on UTC boundaries. Prints the median build time of the
features of all symbols, the target (≤ 1 s) and, as the in-run baseline, the share spent computing
the indicators alone through the registry (the floor any feature builder pays).

:func:`random_walk` and :func:`resample` are also the synthetic-data helpers of the feature tests.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ktrdr import timeframes
from ktrdr.research.bars import Bars
from ktrdr.research.features import build_features
from ktrdr.research.indicators import lookup
from ktrdr.strategy.model import (
    DataSpec,
    FeatureSpecConfig,
    FuzzyInputSpec,
    IndicatorSpec,
    LabelSpec,
    MembershipSpec,
    ModelSpec,
    OptimSpec,
    SplitSpec,
    Strategy,
)

TARGET_S = 1.0
START_NS = 1_640_995_200 * 10**9  # 2022-01-01T00:00:00Z


def random_walk(symbol: str, n: int, seed: int, *, timeframe: str = "1h", start_ns: int = START_NS) -> Bars:
    """``n`` consecutive bars of a geometric random walk (0.5 % per bar), seeded, valid OHLC."""
    rng = np.random.default_rng(seed)
    step = timeframes.parse(timeframe).ns
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.005, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    wick = np.abs(rng.normal(0.0, 0.002, (2, n)))
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - wick[1])
    volume = rng.integers(1_000, 10_000, n).astype(np.float64)
    time_ = start_ns + step * np.arange(n, dtype=np.int64)
    return Bars.from_arrays(symbol, timeframe, time_, open_, high, low, close, volume)


def resample(bars: Bars, timeframe: str) -> Bars:
    """Aggregate to a slower timeframe on UTC boundaries (epoch-aligned): open first, high max, low
    min, close last, volume sum. A trailing group that is not yet complete stays as the still
    forming bar, as a live feed would show it."""
    d = timeframes.parse(timeframe).ns
    key = bars.time // d * d
    starts = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1))
    ends = np.concatenate((starts[1:], [len(bars)])) - 1
    return Bars.from_arrays(
        bars.symbol,
        timeframe,
        key[starts],
        bars.open[starts],
        np.maximum.reduceat(bars.high, starts),
        np.minimum.reduceat(bars.low, starts),
        bars.close[ends],
        np.add.reduceat(bars.volume, starts),
    )


def neuro_mean_reversion() -> Strategy:
    """The reference ``neuro_mean_reversion`` as the loader normalizes it: RSI 14 fuzzified on 1h,
    4h and 1d, lookback 2 (MACD has no fuzzy sets, so it is not computed)."""
    sets = (
        MembershipSpec("oversold", "triangular", (0.0, 20.0, 35.0)),
        MembershipSpec("neutral", "triangular", (30.0, 50.0, 70.0)),
        MembershipSpec("overbought", "triangular", (65.0, 80.0, 100.0)),
    )
    return Strategy(
        name="neuro_mean_reversion",
        data=DataSpec(("AAPL", "MSFT", "GOOGL"), ("1h", "4h", "1d"), "1h", 200),
        indicators=(
            IndicatorSpec("rsi", "rsi", {"period": 14, "source": "close"}),
            IndicatorSpec("macd", "macd", {"fast_period": 12, "slow_period": 26, "signal_period": 9}),
        ),
        fuzzy=(FuzzyInputSpec("rsi", "rsi", "value", sets),),
        model=ModelSpec(features=FeatureSpecConfig(lookback_periods=2)),
        optim=OptimSpec(),
        labels=LabelSpec(),
        split=SplitSpec(),
    )


def make_data(strategy: Strategy, n_hours: int, seed: int) -> dict[str, dict[str, Bars]]:
    """symbol → timeframe → bars: hourly random walks resampled to the strategy's timeframes."""
    data = {}
    for i, sym in enumerate(strategy.data.symbols):
        base = random_walk(sym, n_hours, seed + i)
        data[sym] = {tf: base if tf == "1h" else resample(base, tf) for tf in strategy.data.timeframes}
    return data


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench features", description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    strategy = neuro_mean_reversion()
    data = make_data(strategy, int(args.years * 365 * 24), args.seed)
    rsi = strategy.indicator("rsi")

    def features() -> None:
        for sym in strategy.data.symbols:
            build_features(strategy, data[sym])

    def indicators_only() -> None:
        for sym in strategy.data.symbols:
            for tf in strategy.data.timeframes:
                lookup(rsi.type)(data[sym][tf], **rsi.params)

    def timed(fn) -> float:
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
        return statistics.median(runs)

    features()  # warm-up: imports, registry
    t_feat, t_ind = timed(features), timed(indicators_only)
    n = len(data[strategy.data.symbols[0]]["1h"])
    print(f"feature build, neuro_mean_reversion, 3 symbols x 1h/4h/1d, {n} 1h bars each:")
    print(
        f"  features           {t_feat * 1e3:8.1f} ms   (target <= {TARGET_S * 1e3:.0f} ms: "
        f"{t_feat / TARGET_S:.3f}x of the budget, {'OK' if t_feat <= TARGET_S else 'OVER'})"
    )
    print(f"  indicators alone   {t_ind * 1e3:8.1f} ms   (features / indicators = {t_feat / t_ind:.2f}x)")
    return 0 if t_feat <= TARGET_S else 1
