"""Feature build time for ``neuro_mean_reversion``: 3 symbols × 1h/4h/1d, two years of 1h bars.

``python -m bench features [--years Y] [--repeat R] [--seed S]``. Bars are seeded random walks
(24×7 hourly bars), resampled to 4h and 1d on UTC boundaries. Prints the median build time of the
features of all symbols, the target (≤ 1 s) and, as the in-run baseline, the share spent computing
the indicators alone through the registry (the floor any feature builder pays).

"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from ktrdr.research.allocator import keep_freed_memory
from ktrdr.research.bars import Bars, resample
from ktrdr.research.features import build_features
from ktrdr.research.indicators import lookup
from ktrdr.research.synthetic import random_walk
from ktrdr.strategy import Strategy, load_strategy_file

TARGET_S = 1.0


def neuro_mean_reversion() -> Strategy:
    """The shipped ``strategies/neuro_mean_reversion.yaml`` as the loader normalizes it."""
    return load_strategy_file(
        Path(__file__).resolve().parent.parent / "strategies" / "neuro_mean_reversion.yaml"
    ).strategy


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
    keep_freed_memory()  # as the product's compute processes do (ktrdr.research.allocator)
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
