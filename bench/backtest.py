"""Backtest speed: ktrdr's engine vs backtesting.py on the same precomputed signals, same run.

``python -m bench backtest [--bars 100000] [--hold 40] [--repeat 3] [--seed 3]``. Data: seeded
hourly random-walk bars whose opens gap from the previous close (tests/support/backtest.py);
signals: target positions -1/0/+1 held for blocks of ``--hold`` bars (about 1,100 trades over
100,000 bars), bar 0 flat. Both engines fill at the next open with a 0.1 % commission and 10
units per position. ktrdr is timed for the whole of :func:`~ktrdr.research.backtest.engine.backtest_targets`:
simulation, every metric, the bootstrap intervals and a 1,000-permutation test;
backtesting.py for ``Backtest.run`` (its loop and its statistics). Alternating, best of R; the
trade lists are checked to agree before timing. Target: ktrdr ≤ 0.5× backtesting.py's time.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from ktrdr.research.backtest.engine import BacktestSettings, backtest_targets
from ktrdr.research.backtest.simulate import Sizing
from tests.support.backtest import backtesting_py_frame, follow_targets_strategy, random_bars

TARGET = 0.5
FEE = 0.001
UNITS = 10


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench backtest", description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--hold", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    from backtesting import Backtest

    bars = random_bars(args.bars, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    target = np.repeat(rng.integers(-1, 2, -(-args.bars // args.hold)), args.hold)[: args.bars].astype(
        np.int8
    )
    target[0] = 0
    settings = BacktestSettings(calendar="crypto", fee_bps=FEE * 1e4, slippage_bps=0.0, units=UNITS)
    engine = Backtest(backtesting_py_frame(bars), follow_targets_strategy(), cash=100_000, commission=FEE)

    def ours():
        return backtest_targets(bars, target, settings, sizing=Sizing(units=UNITS))

    def theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a trade may remain open at the end
            return engine.run(targets=target, size=UNITS)

    result, stats = ours(), theirs()  # warm-up, and the check that both trade the same
    closed = ~result.simulation.trades.closed_at_end
    if not np.array_equal(
        result.simulation.trades.entry_bar[closed], np.sort(stats._trades.EntryBar.to_numpy())
    ):
        print("the engines' trades differ: the benchmark compares nothing")
        return 1
    t_ours, t_theirs = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ours()
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        theirs()
        t_theirs.append(time.perf_counter() - t0)
    best_ours, best_theirs = min(t_ours), min(t_theirs)
    ratio = best_ours / best_theirs
    print(f"backtest of {args.bars} bars, {len(result.simulation.trades)} trades, decisions precomputed:")
    print(f"  backtesting.py     {best_theirs * 1e3:9.1f} ms   (Backtest.run)")
    print(
        f"  ktrdr              {best_ours * 1e3:9.1f} ms   (simulation, metrics, bootstrap, 1000 permutations)"
    )
    print(
        f"  ratio ktrdr / backtesting.py {ratio:.3f}x (target <= {TARGET:.2f}x: {'OK' if ratio <= TARGET else 'OVER'})"
    )
    return 0 if ratio <= TARGET else 1
