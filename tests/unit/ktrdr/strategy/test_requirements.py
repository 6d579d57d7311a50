"""data_requirements: every series a run needs, with warm-up converted to time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ktrdr.research.indicators import lookup
from ktrdr.strategy import data_requirements, load_strategy_text

H = 3600 * 10**9
TEXT = """\
name: r
training_data:
  symbols: [AAPL, MSFT]
  timeframes: [1d, 1h, 4h]
  history_required: {history}
indicators:
  - {{id: rsi, type: rsi, params: {{period: 14}}}}
  - {{id: macd, type: macd, params: {{fast_period: 12, slow_period: 26, signal_period: 9}}}}
fuzzy_sets:
  rsi: {{low: [0, 20, 40]}}
  macd: {{up: {{type: sigmoid, parameters: [0, 1]}}}}
model: {{features: {{lookback_periods: {lags}}}}}
"""


def strategy(history: int = 10, lags: int = 2):
    return load_strategy_text(TEXT.format(history=history, lags=lags)).strategy


def test_every_symbol_and_timeframe_with_warmup() -> None:
    s = strategy(history=10, lags=2)
    w = max(
        lookup("rsi").warmup(s.indicator("rsi").params), lookup("macd").warmup(s.indicator("macd").params)
    )
    start = datetime(2024, 3, 1, tzinfo=UTC)
    end = datetime(2024, 6, 1, tzinfo=UTC)
    reqs = data_requirements(s, start, end)
    assert [(r.symbol, r.timeframe) for r in reqs] == [
        (sym, tf) for sym in ("AAPL", "MSFT") for tf in ("1h", "4h", "1d")
    ]
    s_ns = int(start.timestamp()) * 10**9
    e_ns = int(end.timestamp()) * 10**9
    base, h4, d1 = reqs[:3]
    assert base.warmup_bars == w + 2 + 10
    assert base.start == s_ns - (w + 12) * H
    assert all(r.end == e_ns and r.run_start == s_ns for r in reqs)
    # higher timeframes: their own warm-up + 1 (the bar in progress) before the base warm-up begins
    assert h4.start == s_ns - 12 * H - (w + 1) * 4 * H
    assert d1.start == s_ns - 12 * H - (w + 1) * 24 * H
    assert h4.start < base.start and d1.start < h4.start


def test_warmup_grows_with_parameters() -> None:
    s1 = strategy()
    s2 = load_strategy_text(
        TEXT.format(history=10, lags=2).replace("slow_period: 26", "slow_period: 60")
    ).strategy
    a = data_requirements(s1, 0, 10**15)[0]
    b = data_requirements(s2, 0, 10**15)[0]
    assert b.warmup_bars - a.warmup_bars == 60 - 26
    assert a.start - b.start == 34 * H


def test_ns_and_naive_datetimes_agree() -> None:
    s = strategy()
    start = datetime(2024, 1, 1)
    ns = int(start.replace(tzinfo=UTC).timestamp()) * 10**9
    assert data_requirements(s, start, datetime(2024, 2, 1)) == data_requirements(s, ns, ns + 31 * 24 * H)


def test_end_before_start_is_an_error() -> None:
    with pytest.raises(ValueError, match="end must be after start"):
        data_requirements(strategy(), 10 * H, 5 * H)


def test_to_dict_is_iso_utc() -> None:
    r = data_requirements(
        strategy(history=0, lags=0), datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)
    )[0]
    d = r.to_dict()
    assert d["run_start"] == "2024-01-02T00:00:00Z" and d["end"] == "2024-01-03T00:00:00Z"
    assert d["start"].endswith("Z") and d["start"] < d["run_start"]
