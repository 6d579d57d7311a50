"""The one feature builder: training and inference both call :func:`build_features`.

Pipeline for one symbol, given a :class:`~ktrdr.strategy.model.Strategy` and its bars per timeframe:

1. For every timeframe of ``strategy.data.timeframes`` (fastest first), every fuzzy input
   (definition order) and every set of it (definition order): compute the indicator through the
   registry (``lookup(type)(bars, **params)``), take the selected output, apply the input's
   ``transform`` (``close_ratio``: close / output) and fuzzify it (:mod:`ktrdr.research.fuzzy`).
   Only indicators that some fuzzy input reads are computed.
2. **Alignment** (:data:`ALIGNMENT`): features are sampled on the base timeframe's bars. A base
   bar opening at ``t`` closes at ``t + d_base``; a higher-timeframe bar is usable for it iff the
   higher bar's close time is ≤ that close time, and the latest usable one is taken. A
   higher-timeframe bar that is still forming is never used, and nothing is back-filled: before
   the first completed higher bar the value is NaN. Example: with 1h base and 1d higher bars, the
   row of the 10:00 bar sees the previous day's daily bar, never today's.
3. **Lags**: ``_lag_k`` (k = 1..``lookback_periods``) is the whole current block shifted by k base
   rows (NaN for the first k rows).

Column names and order (stable, persisted in the :class:`FeatureSpec`): the current block, then
lag 1 of every column of that block, then lag 2, … Within the current block: timeframe (fastest
first), fuzzy input, set. Names are ``{key}_{set}`` for one timeframe and ``{tf}_{key}_{set}``
(single prefix) for several, plus ``_lag_{k}``.

Output (:class:`FeatureMatrix`): one row per base bar, ``values`` float32 by default (the trainer's
dtype; memberships lie in [0, 1] so nothing is lost that matters), ``time`` the base bars' *open*
times (int64 ns UTC) and ``valid``: a row is valid iff every feature is finite and its position is
at least ``strategy.data.history_required`` (indicator warm-up, e.g. Wilder smoothing that depends
on its start). Invalid rows are kept (NaN where undefined) so that row i is always base bar i;
consumers drop them through the mask. The build is deterministic and prefix-invariant: the row of
base bar t is bit-identical whether the input ends at t or continues past it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ktrdr import timeframes
from ktrdr.research import fuzzy
from ktrdr.research.bars import Bars
from ktrdr.research.indicators import lookup
from ktrdr.strategy.model import Strategy

#: Version of the column layout and alignment; bump when either changes meaning.
SPEC_VERSION = 1

#: The alignment rule, persisted with every spec so a model states how it was fed.
ALIGNMENT = "close_time: latest higher-timeframe bar with close <= base bar close; no back-fill"


class FeatureError(ValueError):
    """Input the feature builder cannot use: a missing timeframe, an unknown indicator output."""


class FeatureSpecMismatch(ValueError):
    """Features built now differ from the ones a model was trained on."""


@dataclass(frozen=True)
class ColumnSource:
    """Where one feature column comes from. ``lag`` 0 is the current value."""

    name: str
    timeframe: str
    indicator: str
    type: str
    params: dict[str, Any]
    output: str
    transform: str
    key: str
    set: str
    membership: str
    parameters: tuple[float, ...]
    lag: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parameters"] = list(self.parameters)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnSource:
        return cls(
            **{**d, "params": dict(d["params"]), "parameters": tuple(float(p) for p in d["parameters"])}
        )


@dataclass(frozen=True)
class FeatureSpec:
    """The ordered feature columns of a strategy, persisted with a model and verified at inference."""

    columns: tuple[ColumnSource, ...]
    base_timeframe: str
    timeframes: tuple[str, ...]
    lookback: int
    alignment: str = ALIGNMENT
    version: int = SPEC_VERSION

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "alignment": self.alignment,
            "base_timeframe": self.base_timeframe,
            "timeframes": list(self.timeframes),
            "lookback": self.lookback,
            "columns": [c.to_dict() for c in self.columns],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            columns=tuple(ColumnSource.from_dict(c) for c in d["columns"]),
            base_timeframe=d["base_timeframe"],
            timeframes=tuple(d["timeframes"]),
            lookback=int(d["lookback"]),
            alignment=d["alignment"],
            version=int(d["version"]),
        )

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls.from_dict(json.loads(text))

    def verify(self, other: FeatureSpec) -> None:
        """Raise :class:`FeatureSpecMismatch` unless ``other`` equals this spec (self = the expected).

        The message names the first difference: version, alignment, column count, or the first
        column (position, name) and the field that differs with both values.
        """
        for attr in ("version", "alignment", "base_timeframe", "timeframes", "lookback"):
            want, got = getattr(self, attr), getattr(other, attr)
            if want != got:
                raise FeatureSpecMismatch(f"feature spec mismatch: {attr} expected {want!r}, got {got!r}")
        for i, (want, got) in enumerate(zip(self.columns, other.columns, strict=False)):
            w, g = want.to_dict(), got.to_dict()
            for fld in w:
                if w[fld] != g[fld]:
                    raise FeatureSpecMismatch(
                        f"feature spec mismatch at column {i} {want.name!r}: "
                        f"{fld} expected {w[fld]!r}, got {g[fld]!r}"
                    )
        if len(self.columns) != len(other.columns):
            n = min(len(self.columns), len(other.columns))
            extra = (self.columns if len(self.columns) > n else other.columns)[n].name
            raise FeatureSpecMismatch(
                f"feature spec mismatch: expected {len(self.columns)} columns, got {len(other.columns)} "
                f"(first unmatched column {n} {extra!r})"
            )


@dataclass(frozen=True, eq=False)
class FeatureMatrix:
    """Features of one symbol: ``values`` (rows = base bars, columns = ``spec.names``), ``time``
    (base bar open times, int64 ns UTC), ``valid`` (bool per row, see the module docstring)."""

    symbol: str
    spec: FeatureSpec
    values: np.ndarray
    time: np.ndarray
    valid: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])


def feature_spec(strategy: Strategy) -> FeatureSpec:
    """The spec :func:`build_features` produces for ``strategy`` (no data needed)."""
    tfs = tuple(timeframes.sort_fastest_first(strategy.data.timeframes))
    base = strategy.data.base_timeframe
    if tfs[0] != timeframes.parse(base).text:
        raise FeatureError(f"base timeframe {base!r} must be the fastest of {', '.join(tfs)}")
    lookback = strategy.model.features.lookback_periods
    if lookback < 0:
        raise FeatureError(f"model.features.lookback_periods must be >= 0, got {lookback}")
    multi = len(tfs) > 1
    current: list[ColumnSource] = []
    for tf in tfs:
        for fi in strategy.fuzzy:
            try:
                ind = strategy.indicator(fi.indicator)
            except KeyError:
                raise FeatureError(
                    f"fuzzy input {fi.key!r} reads indicator {fi.indicator!r}, "
                    "which the strategy does not define"
                ) from None
            for s in fi.sets:
                stem = f"{fi.key}_{s.name}"
                current.append(
                    ColumnSource(
                        name=f"{tf}_{stem}" if multi else stem,
                        timeframe=tf,
                        indicator=ind.id,
                        type=ind.type,
                        params=dict(ind.params),
                        output=fi.output,
                        transform=fi.transform,
                        key=fi.key,
                        set=s.name,
                        membership=s.type,
                        parameters=tuple(float(p) for p in s.parameters),
                        lag=0,
                    )
                )
    if not current:
        raise FeatureError("strategy has no fuzzy inputs: there would be no features")
    lagged = [replace(c, name=f"{c.name}_lag_{k}", lag=k) for k in range(1, lookback + 1) for c in current]
    return FeatureSpec(tuple(current + lagged), timeframes.parse(base).text, tfs, lookback)


def _timeframe_block(strategy: Strategy, tf: str, bars: Bars) -> np.ndarray:
    """Memberships of every fuzzy input on one timeframe's own bars: shape (len(bars), sets)."""
    cache: dict[str, dict[str, np.ndarray]] = {}
    blocks = []
    for fi in strategy.fuzzy:
        ind = strategy.indicator(fi.indicator)
        if ind.id not in cache:
            cache[ind.id] = lookup(ind.type)(bars, **ind.params)
        outputs = cache[ind.id]
        if fi.output not in outputs:
            raise FeatureError(
                f"fuzzy input {fi.key!r}: indicator {ind.id!r} ({ind.type}) has no output {fi.output!r}; "
                f"outputs: {', '.join(outputs)}"
            )
        blocks.append(fuzzy.memberships(fi.sets, _transform(fi.transform, bars, outputs[fi.output])))
    return np.hstack(blocks)


def _transform(kind: str, bars: Bars, x: np.ndarray) -> np.ndarray:
    """What gets fuzzified: ``none`` the output; ``close_ratio`` close / output (NaN where output is
    0 or NaN)."""
    if kind == "none":
        return x
    if kind == "close_ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x != 0, bars.close / x, np.nan)
    raise FeatureError(f"unknown fuzzy input transform {kind!r}; known: none, close_ratio")


def align_to_base(base: Bars, higher: Bars) -> np.ndarray:
    """Per base row, the index of the latest ``higher`` bar whose close time ≤ the base bar's
    close time; -1 where there is none yet. This is :data:`ALIGNMENT`."""
    return np.searchsorted(higher.close_time, base.close_time, side="right") - 1


def build_features(
    strategy: Strategy,
    bars: Mapping[str, Bars],
    *,
    expected: FeatureSpec | None = None,
    dtype: type = np.float32,
) -> FeatureMatrix:
    """Features of one symbol. ``bars``: timeframe → that symbol's bars, one entry per timeframe of
    the strategy. ``expected``: the spec a model was trained on; verified first (inference), raising
    :class:`FeatureSpecMismatch`. Raises :class:`FeatureError` on missing or mismatched input.
    """
    spec = feature_spec(strategy)
    if expected is not None:
        expected.verify(spec)
    missing = [tf for tf in spec.timeframes if tf not in bars]
    if missing:
        raise FeatureError(
            f"no bars for timeframe(s) {', '.join(missing)}; strategy needs {', '.join(spec.timeframes)}"
        )
    symbols = {bars[tf].symbol for tf in spec.timeframes}
    if len(symbols) != 1:
        raise FeatureError(f"bars of one symbol expected, got {', '.join(sorted(symbols))}")
    for tf in spec.timeframes:
        if timeframes.parse(bars[tf].timeframe).text != tf:
            raise FeatureError(f"bars given for {tf} are {bars[tf].timeframe} bars")
    base = bars[spec.base_timeframe]
    n = len(base)
    blocks = []
    for tf in spec.timeframes:
        block = _timeframe_block(strategy, tf, bars[tf])
        if tf != spec.base_timeframe:
            idx = align_to_base(base, bars[tf])
            block = block[np.maximum(idx, 0)] if len(bars[tf]) else np.full((n, block.shape[1]), np.nan)
            block[idx < 0] = np.nan
        blocks.append(block)
    current = np.hstack(blocks)
    out = np.full((n, len(spec.columns)), np.nan, dtype=dtype)
    width = current.shape[1]
    for k in range(spec.lookback + 1):
        if k < n:
            out[k:, k * width : (k + 1) * width] = current[: n - k]
    valid = np.isfinite(out).all(axis=1)
    valid[: strategy.data.history_required] = False
    return FeatureMatrix(symbols.pop(), spec, out, base.time.copy(), valid)
