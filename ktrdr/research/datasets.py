"""Training datasets: per-symbol chronological splits with an embargo, combined after splitting.

For each symbol (in ``strategy.data.symbols`` order):

1. Usable rows: feature row valid (:class:`~ktrdr.research.features.FeatureMatrix`) and a label
   (y ≥ 0; labels not final by the end of the data are -1, e.g. ZigZag's provisional tail). With m usable rows, the first ⌊train·m⌋ are the nominal train part, the next
   ⌊validation·m⌋ the validation part, the rest test.
2. Embargo: a part keeps only rows whose base-bar position is more than E bars after the last row
   of the previous non-empty part, so E bars lie between parts. E = max(``split.embargo``,
   label horizon + ``lookback_periods``): the horizon (:mod:`ktrdr.research.labels`) keeps every
   training label from reading a price of a later part, the lookback keeps lagged features of a
   later part from repeating training rows. A requested embargo below the minimum is raised to
   it; :attr:`Dataset.embargo` records the figure used per symbol.
3. Symbols are concatenated per part after splitting; order within a symbol is kept and
   ``symbol_index`` (position in ``strategy.data.symbols``) is recorded per row. Nothing is shuffled
   or sub-sampled here.

``class_weights`` ("balanced", from the training part): w_c = N / (3 · n_c), 0 for an absent class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ktrdr.research.bars import Bars
from ktrdr.research.features import FeatureMatrix, FeatureSpec, build_features
from ktrdr.research.labels import Labels, class_distribution, make_labels
from ktrdr.strategy.model import SplitSpec, Strategy

PARTS = ("train", "validation", "test")


class DatasetError(ValueError):
    """Split settings or data that cannot make a dataset: bad fractions, too few rows."""


@dataclass(frozen=True, eq=False)
class Split:
    """One part: ``X`` (rows × features, the features' dtype), ``y`` (int64 classes), ``symbol_index``
    (int64), ``time`` (base bar open times, int64 ns UTC), ``distribution`` (see
    :func:`~ktrdr.research.labels.class_distribution`)."""

    X: np.ndarray
    y: np.ndarray
    symbol_index: np.ndarray
    time: np.ndarray
    distribution: dict[str, float | int]

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/validation/test parts of all symbols, plus what the trainer and the model record need."""

    symbols: tuple[str, ...]
    feature_spec: FeatureSpec
    train: Split
    validation: Split
    test: Split
    class_weights: np.ndarray | None
    embargo: dict[str, int]
    label_horizon: dict[str, int]

    def parts(self) -> dict[str, Split]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def check_fractions(split: SplitSpec) -> tuple[float, float, float]:
    """The three fractions; :class:`DatasetError` unless each is in [0, 1], train > 0, sum = 1."""
    fr = (split.train, split.validation, split.test)
    for name, f in zip(PARTS, fr, strict=True):
        if not 0 <= f <= 1:
            raise DatasetError(f"training.data_split.{name} must be in [0, 1], got {f}")
    if split.train <= 0:
        raise DatasetError("training.data_split.train must be > 0")
    if not math.isclose(sum(fr), 1.0, abs_tol=1e-9):
        raise DatasetError(
            f"training.data_split fractions must sum to 1, got {' + '.join(map(str, fr))} = {sum(fr):g}"
        )
    return fr


def split_rows(
    symbol: str, usable: np.ndarray, split: SplitSpec, embargo: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bar positions of train, validation and test for one symbol (module docstring, steps 1–2).

    Raises :class:`DatasetError` naming the symbol and the counts when a part with a non-zero
    fraction would be empty.
    """
    fr = check_fractions(split)
    pos = np.flatnonzero(usable)
    m = pos.size
    if m == 0:
        raise DatasetError(
            f"{symbol}: no usable rows among {usable.size} bars: too few bars for the warm-up "
            "(indicators, higher timeframes, history_required, lags) and labels"
        )
    n_train = math.floor(fr[0] * m)
    n_val = math.floor(fr[1] * m)
    bounds = (0, n_train, n_train + n_val, m)
    parts = []
    last = None  # bar position of the last row of the previous non-empty part
    for k, name in enumerate(PARTS):
        rows = pos[bounds[k] : bounds[k + 1]]
        if last is not None:
            rows = rows[rows > last + embargo]
        if fr[k] > 0 and rows.size == 0:
            raise DatasetError(
                f"{symbol}: too few rows for the split: {m} usable rows of {usable.size} bars, "
                f"fractions {fr[0]}/{fr[1]}/{fr[2]}, embargo {embargo} bars: the {name} part is empty"
            )
        if rows.size:
            last = int(rows[-1])  # the embargo trims a part's head only, so this is its nominal end
        parts.append(rows)
    return parts[0], parts[1], parts[2]


def _balanced(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=3)[:3].astype(np.float64)
    w = np.zeros(3, dtype=np.float64)
    present = counts > 0
    w[present] = y.size / (3.0 * counts[present])
    return w.astype(np.float32)


def assemble(
    strategy: Strategy, features: Mapping[str, FeatureMatrix], labels: Mapping[str, Labels]
) -> Dataset:
    """Split every symbol of the strategy and combine the parts (module docstring)."""
    symbols = strategy.data.symbols
    if not symbols:
        raise DatasetError("strategy has no symbols")
    lookback = strategy.model.features.lookback_periods
    chunks: dict[str, list[tuple[np.ndarray, ...]]] = {p: [] for p in PARTS}
    embargo: dict[str, int] = {}
    spec = None
    for si, sym in enumerate(symbols):
        if sym not in features or sym not in labels:
            raise DatasetError(f"no features or labels for symbol {sym}")
        fm, lab = features[sym], labels[sym]
        if lab.y.shape[0] != len(fm):
            raise DatasetError(f"{sym}: {lab.y.shape[0]} labels for {len(fm)} feature rows")
        if spec is None:
            spec = fm.spec
        else:
            spec.verify(fm.spec)
        embargo[sym] = max(strategy.split.embargo or 0, lab.horizon + lookback)
        for name, rows in zip(
            PARTS, split_rows(sym, fm.valid & (lab.y >= 0), strategy.split, embargo[sym]), strict=True
        ):
            chunks[name].append(
                (fm.values[rows], lab.y[rows], np.full(rows.size, si, np.int64), fm.time[rows])
            )
    parts = {}
    for name in PARTS:
        X, y, si, t = (np.concatenate(a) for a in zip(*chunks[name], strict=True))
        parts[name] = Split(X, y, si, t, class_distribution(y))
    weights = None
    if strategy.optim.class_weights == "balanced":
        weights = _balanced(parts["train"].y)
    elif strategy.optim.class_weights != "none":
        raise DatasetError(
            f"class_weights must be 'none' or 'balanced', got {strategy.optim.class_weights!r}"
        )
    return Dataset(
        symbols=tuple(symbols),
        feature_spec=spec,
        train=parts["train"],
        validation=parts["validation"],
        test=parts["test"],
        class_weights=weights,
        embargo=embargo,
        label_horizon={s: labels[s].horizon for s in symbols},
    )


def build_dataset(strategy: Strategy, data: Mapping[str, Mapping[str, Bars]]) -> Dataset:
    """Features and labels for every symbol (``data``: symbol → timeframe → bars), then
    :func:`assemble`. Labels are made on the base timeframe's closes."""
    check_fractions(strategy.split)
    features, labels = {}, {}
    for sym in strategy.data.symbols:
        if sym not in data:
            raise DatasetError(f"no bars for symbol {sym}; got {', '.join(sorted(data)) or 'none'}")
        fm = build_features(strategy, data[sym])
        features[sym] = fm
        labels[sym] = make_labels(strategy.labels, data[sym][fm.spec.base_timeframe].close)
    return assemble(strategy, features, labels)
