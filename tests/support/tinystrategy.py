"""The small RSI strategy the tests use: built in code (:func:`make_strategy`, no YAML) for the
research tests, and as the smallest valid strategy file (:data:`SMALLEST_YAML`) for the loader and
the daemon's strategy service."""

from __future__ import annotations

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

#: The smallest valid strategy document (one symbol, one timeframe, RSI with one fuzzy set); its last
#: line is line 10, so anything appended to it starts on line 11.
SMALLEST_YAML = """\
name: t
training_data:
  symbols: [AAPL]
  timeframes: [1h]
indicators:
  - name: rsi
    period: 14
fuzzy_sets:
  rsi:
    low: {type: triangular, parameters: [0, 20, 40]}
"""

#: Three RSI sets: shoulders at both ends and a triangle between.
RSI_SETS = (
    MembershipSpec("oversold", "left_shoulder", (20.0, 35.0)),
    MembershipSpec("neutral", "triangular", (30.0, 50.0, 70.0)),
    MembershipSpec("overbought", "right_shoulder", (65.0, 80.0)),
)


def make_strategy(
    *,
    symbols: tuple[str, ...] = ("AAA",),
    tfs: tuple[str, ...] = ("1h",),
    history: int = 0,
    lookback: int = 2,
    indicators: tuple[IndicatorSpec, ...] | None = None,
    fuzzy: tuple[FuzzyInputSpec, ...] | None = None,
    sets: tuple[MembershipSpec, ...] = RSI_SETS,
    labels: LabelSpec | None = None,
    split: SplitSpec | None = None,
    weights: str = "none",
) -> Strategy:
    """An RSI(14) strategy fuzzified with ``sets`` (unless ``indicators``/``fuzzy`` replace them),
    base timeframe ``tfs[0]``; every other part at its default unless given."""
    return Strategy(
        name="t",
        data=DataSpec(symbols, tfs, tfs[0], history),
        indicators=indicators or (IndicatorSpec("rsi", "rsi", {"period": 14}),),
        fuzzy=fuzzy or (FuzzyInputSpec("rsi", "rsi", "value", sets),),
        model=ModelSpec(features=FeatureSpecConfig(lookback_periods=lookback)),
        optim=OptimSpec(class_weights=weights),
        labels=labels or LabelSpec(),
        split=split or SplitSpec(),
    )
