"""Look-ahead check of a user's strategy on the user's data: the prefix-invariance test.

``python -m ktrdr.research.check STRATEGY --data DIR [--start T] [--end T] [--cuts K]``

The features of a bar must not depend on any later bar (``docs/evaluation.md``). The check builds
every symbol's features on the whole data, then again on the data as they stood when base bar
``c - 1`` had just closed, for ``K`` cut points ``c`` spread evenly over the bars of ``[start,
end)``, and compares the rows before the cut bit for bit (NaN equal to NaN; the validity mask too).
"As they stood": every timeframe keeps the bars opened before that moment, and a slower bar still
forming then is replaced by what it was at that moment (open, high, low, close and volume of the
base bars so far) — a feature that reads a forming bar's final values is look-ahead.

Prints ``clean`` or the first differing row (symbol, bar open time, row) and column (name) with
both values. Exit codes: 0 clean, 1 look-ahead found, 2 bad input (strategy, data, arguments).
Labels are not checked: they look ahead by design.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ktrdr.research.bars import Bars
from ktrdr.research.features import FeatureMatrix, build_features
from ktrdr.research.synthetic import to_ns
from ktrdr.research.train import load_bars
from ktrdr.strategy import Strategy, load_strategy_file


@dataclass(frozen=True)
class Difference:
    """The first place where the features on a prefix differ from those on the whole data."""

    symbol: str
    cut: int  # bars in the prefix
    row: int
    time: int  # the row's bar open time, ns
    column: str
    full: float
    prefix: float

    def describe(self) -> str:
        when = np.datetime_as_string(np.datetime64(self.time, "ns"), unit="m") + "Z"
        return (
            f"look-ahead: {self.symbol} row {self.row} (bar opening {when}), column {self.column!r}: "
            f"{self.full!r} with all the data, {self.prefix!r} with the data up to bar {self.cut - 1}"
        )


def as_of(bars: Mapping[str, Bars], base_tf: str, cut: int) -> dict[str, Bars]:
    """The bars of every timeframe as they stood when base bar ``cut - 1`` had just closed
    (module docstring)."""
    base = bars[base_tf].slice(0, cut)
    now = int(base.close_time[-1])
    out = {base_tf: base}
    for tf, b in bars.items():
        if tf == base_tf:
            continue
        opened = b.between(None, now)
        if len(opened) and int(opened.close_time[-1]) > now:
            forming = base.between(int(opened.time[-1]), None)
            keep = opened.slice(0, len(opened) - 1)
            if len(forming):
                fields = [np.append(getattr(keep, f), v) for f, v in _aggregate(forming).items()]
                opened = Bars.from_arrays(
                    b.symbol, tf, np.append(keep.time, opened.time[-1]), *fields, source="as-of"
                )
            else:
                opened = keep
        out[tf] = opened
    return out


def _aggregate(b: Bars) -> dict[str, float]:
    return {
        "open": float(b.open[0]),
        "high": float(b.high.max()),
        "low": float(b.low.min()),
        "close": float(b.close[-1]),
        "volume": float(b.volume.sum()),
    }


def first_difference(full: FeatureMatrix, prefix: FeatureMatrix, symbol: str) -> Difference | None:
    """The first row (then column) where ``prefix`` differs from the same rows of ``full``."""
    n = len(prefix)
    a, b = full.values[:n], prefix.values
    differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    differs |= (full.valid[:n] != prefix.valid)[:, None]
    if not differs.any():
        return None
    row, col = map(int, np.argwhere(differs)[0])
    return Difference(
        symbol, n, row, int(full.time[row]), full.spec.names[col], float(a[row, col]), float(b[row, col])
    )


def check(
    strategy: Strategy, data: Mapping[str, Mapping[str, Bars]], start: int | None, cuts: int
) -> Difference | None:
    """Run the prefix-invariance test (module docstring); the first difference or None."""
    base_tf = strategy.data.base_timeframe
    for sym in strategy.data.symbols:
        bars = data[sym]
        full = build_features(strategy, bars)
        base = bars[base_tf]
        first = 1 if start is None else max(1, int(np.searchsorted(base.time, start)))
        points = np.unique(np.linspace(first, len(base), cuts + 1, endpoint=False)[1:].astype(int))
        for cut in points:
            diff = first_difference(full, build_features(strategy, as_of(bars, base_tf, int(cut))), sym)
            if diff is not None:
                return diff
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ktrdr.research.check", description=__doc__.split("\n\n")[0])
    p.add_argument("strategy", help="strategy YAML file")
    p.add_argument("--data", required=True, help="directory of {SYMBOL}_{TF}.csv or .parquet files")
    p.add_argument("--start", help="first base bar open time to check (ISO-8601, UTC; default: the data's)")
    p.add_argument("--end", help="end (exclusive) of the checked bars (ISO-8601, UTC; default: the data's)")
    p.add_argument("--cuts", type=int, default=8, help="cut points per symbol (default 8)")
    args = p.parse_args(argv)
    if args.cuts < 1:
        print("error: --cuts must be >= 1", file=sys.stderr)
        return 2
    try:
        strategy = load_strategy_file(args.strategy).strategy
        start = to_ns(args.start) if args.start else None
        end = to_ns(args.end) if args.end else None
        data = load_bars(strategy, Path(args.data), start if start is not None else -(2**62), end or 2**62)
        diff = check(strategy, data, start, args.cuts)
    except (ValueError, FileNotFoundError) as exc:  # strategy, bars, features errors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if diff is None:
        symbols = ", ".join(strategy.data.symbols)
        print(f"clean: features of {symbols} are identical on every prefix ({args.cuts} cuts per symbol)")
        return 0
    print(diff.describe())
    return 1


if __name__ == "__main__":
    sys.exit(main())
