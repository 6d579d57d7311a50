"""Which bar series a run of a strategy needs, warm-up included.

Units: times are int nanoseconds since the epoch, UTC, on the bar-*open* grid of
:class:`~ktrdr.research.bars.Bars`; ``start``/``end`` may be given as int ns or as datetimes (naive
ones are taken as UTC). The run covers base bars opening in ``[start, end)``; ``end`` is passed
through unchanged.

Warm-up, in bars:

* base timeframe: ``W + L + H`` where ``W`` is the largest ``IndicatorDef.warmup(params)`` of the
  strategy's indicators, ``L`` = ``model.features.lookback_periods`` and ``H`` =
  ``data.history_required`` — the feature builder marks the first ``H`` rows invalid, the lags need
  ``L`` rows, the indicators ``W``.
* a higher timeframe: its own ``W + 1`` bars (the ``+ 1``: the bar in progress at a time is not
  used, only completed ones) before the time the base warm-up starts, i.e. before
  ``start - (L + H) * base``.

The conversion to time assumes continuous trading (24×7). Markets with sessions (equities) have
fewer bars per calendar span; ``warmup_bars`` is therefore returned too, and a reader of local
files should take ``warmup_bars`` bars before ``run_start`` when the time estimate falls short.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ktrdr import timeframes
from ktrdr.research.indicators import lookup
from ktrdr.strategy.model import Strategy


@dataclass(frozen=True)
class SeriesRequirement:
    """One series to load: bars of ``symbol`` at ``timeframe`` opening in ``[start, end)`` (int ns
    UTC). ``run_start``: the requested start; ``warmup_bars``: bars needed before it."""

    symbol: str
    timeframe: str
    start: int
    end: int
    run_start: int = 0
    warmup_bars: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "run_start": _iso(self.run_start),
            "warmup_bars": self.warmup_bars,
        }


def to_ns(t: int | datetime) -> int:
    """A time as int ns since the epoch, UTC (naive datetimes are UTC)."""
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        delta = t - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    if isinstance(t, bool) or not isinstance(t, int):
        raise TypeError(f"expected int ns or datetime, got {t!r}")
    return t


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def indicator_warmup(strategy: Strategy) -> int:
    """The largest indicator warm-up of the strategy, in bars (0 without indicators)."""
    return max((lookup(i.type).warmup(i.params) for i in strategy.indicators), default=0)


def data_requirements(
    strategy: Strategy, start: int | datetime, end: int | datetime
) -> list[SeriesRequirement]:
    """Every (symbol, timeframe) series the run needs, symbols in strategy order, timeframes
    fastest first. Raises ValueError when ``end <= start``."""
    s, e = to_ns(start), to_ns(end)
    if e <= s:
        raise ValueError(f"end must be after start (start={_iso(s)}, end={_iso(e)})")
    w = indicator_warmup(strategy)
    lags = strategy.model.features.lookback_periods + strategy.data.history_required
    base_ns = timeframes.parse(strategy.data.base_timeframe).ns
    out = []
    for symbol in strategy.data.symbols:
        for tf in strategy.data.timeframes:
            tf_ns = timeframes.parse(tf).ns
            if tf == strategy.data.base_timeframe:
                bars = w + lags
                first = s - bars * base_ns
            else:
                bars = w + 1 + -(-lags * base_ns // tf_ns)
                first = s - lags * base_ns - (w + 1) * tf_ns
            out.append(SeriesRequirement(symbol, tf, first, e, s, bars))
    return out
