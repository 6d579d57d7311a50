"""Training datasets: chronological splits aligned in calendar time across symbols, with an embargo.

1. **Usable rows** of a symbol: feature row valid (:class:`~ktrdr.research.features.FeatureMatrix`),
   a label (y ≥ 0; labels not final by the end of the data are -1, e.g. ZigZag's provisional tail)
   and a bar opening at or after the requested ``start``: earlier bars only warm indicators up.
2. **Cut times**, one set for all symbols: the usable rows of all symbols are pooled and sorted by
   time; with m rows, the times of rows ⌊train·m⌋ and ⌊(train + validation)·m⌋ are the cuts c1 and
   c2 (a cut past the last row when the later fractions are 0). Nominally train is ``t < c1``,
   validation ``c1 ≤ t < c2``, test ``t ≥ c2``.
3. **Embargo** at each cut, E bars of the base timeframe (Δ each): E = max(``split.embargo``, the
   largest label horizon of any symbol + ``lookback_periods``), one figure for all symbols. A later
   part starts at ``c + E·Δ``; in addition, for every symbol, a row's label must read no bar at or
   after the next part's start (its bar + its symbol's horizon, by position) and a later part's
   row must not lag into the previous part (its bar - lookback, by position). On continuous bars
   the two position rules follow from E; with gaps (sessions, holidays) they keep the guarantee:
   **no label of any symbol reads a price inside a later part, and no lagged feature repeats a row
   of an earlier part.** A requested embargo below the minimum is raised to it.
4. Symbols are concatenated per part after splitting; order within a symbol is kept and
   ``symbol_index`` (position in ``strategy.data.symbols``) is recorded per row. Nothing is shuffled
   or sub-sampled here. A symbol whose history misses a part entirely is a warning, not an error.

Every row also carries what the evaluation needs beside its label (:mod:`ktrdr.research.skill`):
its bar position (the dataset keeps each symbol's base closes and bar times, from which the skill
section reads forward returns) and the persistence baseline's prediction
(:func:`ktrdr.research.labels.persistence_labels`). The **skill horizon** H over which a decision's
forward return is measured is ``label_lookahead`` for forward labels and, for ZigZag labels (whose
own horizon is a worst case), half the mean ZigZag leg length in bars over the usable rows: a BUY
decision says "we are in an up-leg", and from a bar of a leg the leg goes on for half its length
on average.

**Degenerate targets** are loud: a part in which a class has fewer than :data:`MIN_CLASS_ROWS`
rows or less than :data:`MIN_CLASS_FRACTION` of them is a warning (``Dataset.warnings``); in the
training part, fewer than :data:`MIN_CLASS_ROWS` rows of a class is an error — nothing can be
learned about it, and the metrics of a one-class split mean nothing.

``class_weights`` ("balanced", from the training part): w_c = N / (3 · n_c), 0 for an absent class.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ktrdr import timeframes
from ktrdr.research.bars import Bars, iso_minute
from ktrdr.research.features import FeatureMatrix, FeatureSpec, build_features
from ktrdr.research.labels import (
    CLASS_NAMES,
    HOLD,
    Labels,
    class_distribution,
    make_labels,
    persistence_labels,
)
from ktrdr.research.skill import SkillInputs, calendar_slots, segment_count
from ktrdr.strategy.model import SplitSpec, Strategy

PARTS = ("train", "validation", "test")
#: A class with fewer rows than this in a part is degenerate (an error in the training part).
MIN_CLASS_ROWS = 10
#: A class under this fraction of a part's rows is reported (warning only).
MIN_CLASS_FRACTION = 0.005


class DatasetError(ValueError):
    """Split settings or data that cannot make a dataset: bad fractions, too few rows, a
    degenerate training target."""


@dataclass(frozen=True, eq=False)
class Split:
    """One part: ``X`` (rows × features, the features' dtype), ``y`` (int64 classes), ``symbol_index``
    (int64), ``time`` (base bar open times, int64 ns UTC), ``distribution`` (see
    :func:`~ktrdr.research.labels.class_distribution`), ``position`` (int64, the row's bar in its
    symbol's base series) and ``persistence`` (int64 classes)."""

    X: np.ndarray
    y: np.ndarray
    symbol_index: np.ndarray
    time: np.ndarray
    distribution: dict[str, float | int]
    position: np.ndarray
    persistence: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/validation/test parts of all symbols, plus what the trainer, the evaluation and the
    model record need. ``embargo``: bars (one figure for all symbols); ``cuts``: (c1, c2) in ns;
    ``ranges``: per part, the open times of its first and last row (None when empty);
    ``skill_horizon``: bars; ``closes``: each symbol's base closes; ``calendar``/``slots``: the
    distinct base bar times of all symbols and each symbol's bars' places in it
    (:func:`~ktrdr.research.skill.calendar_slots`); ``warnings``: degenerate targets and symbols missing from a part."""

    symbols: tuple[str, ...]
    feature_spec: FeatureSpec
    train: Split
    validation: Split
    test: Split
    class_weights: np.ndarray | None
    embargo: int
    label_horizon: dict[str, int]
    label_source: str
    skill_horizon: int
    cuts: tuple[int, int]
    ranges: dict[str, tuple[int, int] | None]
    closes: tuple[np.ndarray, ...]
    calendar: np.ndarray
    slots: tuple[np.ndarray, ...]
    warnings: tuple[str, ...]

    def parts(self) -> dict[str, Split]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def skill_inputs(self, part: str) -> SkillInputs:
        """The evaluation's view of one part's rows; the same object on every call, so its
        prediction-independent :attr:`~ktrdr.research.skill.SkillInputs.plan` is computed once."""
        return self._skill_inputs[part]

    @functools.cached_property
    def _skill_inputs(self) -> dict[str, SkillInputs]:
        return {
            name: SkillInputs(
                y=p.y,
                symbol_index=p.symbol_index,
                position=p.position,
                persistence=p.persistence,
                closes=self.closes,
                slots=self.slots,
                calendar=self.calendar,
                horizon=self.skill_horizon,
                label_source=self.label_source,
            )
            for name, p in self.parts().items()
        }


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


def calendar_cuts(times: Sequence[np.ndarray], split: SplitSpec) -> tuple[int, int]:
    """The cut times (c1, c2) over the pooled usable row times of all symbols (module docstring)."""
    fr = check_fractions(split)
    pooled = np.sort(np.concatenate(list(times)))
    m = pooled.size
    if m == 0:
        raise DatasetError("no usable rows in any symbol")
    after = int(pooled[-1]) + 1

    def at(k: int) -> int:
        return int(pooled[k]) if k < m else after

    n_train = math.floor(fr[0] * m)
    n_val = math.floor(fr[1] * m)
    c1 = at(n_train)
    return c1, (at(n_train + n_val) if fr[2] > 0 else after)


def split_rows(
    time: np.ndarray,
    usable: np.ndarray,
    cuts: tuple[int, int],
    embargo_ns: int,
    horizon: int,
    lookback: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bar positions of train, validation and test for one symbol (module docstring, step 3).
    ``time``: the symbol's base bar open times; ``usable``: bool per bar; ``horizon``: the symbol's
    label horizon in bars."""
    n = time.size
    pos = np.flatnonzero(usable)
    t = time[pos]
    label_end = time[np.minimum(pos + horizon, n - 1)]
    lag_start = time[np.maximum(pos - lookback, 0)]
    c1, c2 = cuts
    starts = (None, c1 + embargo_ns, c2 + embargo_ns)  # where each part's rows may begin
    ends = (c1, c2, None)  # where each nominal part ends (exclusive)
    out = []
    for k in range(3):
        keep = np.ones(pos.size, dtype=bool)
        if starts[k] is not None:
            keep &= (t >= starts[k]) & (lag_start >= ends[k - 1])
        if ends[k] is not None:
            keep &= (t < ends[k]) & (label_end < starts[k + 1])
        out.append(pos[keep])
    return out[0], out[1], out[2]


def skill_horizon(strategy: Strategy, labels: Sequence[np.ndarray]) -> int:
    """H in bars (module docstring; at least 1); ``labels``: each symbol's labels on its usable rows."""
    spec = strategy.labels
    if spec.source != "zigzag":
        return spec.label_lookahead
    rows = sum(int((y != HOLD).sum()) for y in labels)  # leg rows: everything but the extremes
    legs = sum(segment_count(y, np.zeros(y.size, np.int64), "zigzag") for y in labels)
    return max(1, round(rows / legs / 2)) if legs else 1


def class_problems(part: str, y: np.ndarray) -> tuple[list[str], list[str]]:
    """(errors, warnings) about degenerate classes in one part (module docstring). Errors only for
    the training part."""
    n = y.size
    if n == 0:
        return [], []
    counts = np.bincount(y, minlength=3)[:3]
    errors, warnings = [], []
    present = [CLASS_NAMES[c] for c in range(3) if counts[c]]
    if len(present) == 1:
        warnings.append(
            f"{part} part: only one class ({present[0]}, all {n} rows): its accuracy means nothing"
        )
    for c, name in enumerate(CLASS_NAMES):
        k = int(counts[c])
        if k < MIN_CLASS_ROWS or k / n < MIN_CLASS_FRACTION:
            text = f"{part} part: class {name} has {k} of {n} rows ({k / n:.1%})"
            if part == "train" and k < MIN_CLASS_ROWS:
                errors.append(f"{text}, fewer than {MIN_CLASS_ROWS}: nothing to learn about it")
            elif len(present) > 1:
                warnings.append(text)
    return errors, warnings


def _balanced(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=3)[:3].astype(np.float64)
    w = np.zeros(3, dtype=np.float64)
    present = counts > 0
    w[present] = y.size / (3.0 * counts[present])
    return w.astype(np.float32)


def _no_usable_rows(
    strategy: Strategy,
    sym: str,
    in_window: np.ndarray,
    featured: np.ndarray,
    labelled: np.ndarray,
    start: int | None,
) -> str:
    """Why ``sym`` has no sample: how many bars of the window have features and how many a label,
    and what to change for the side that has none."""
    window = "" if start is None else f" from {iso_minute(start)} on"
    n_feat, n_lab = int(featured.sum()), int(labelled.sum())
    text = (
        f"{sym}: no usable rows among {int(in_window.sum())} bars{window}: {n_feat} have features, "
        f"{n_lab} a label, none has both"
    )
    if n_feat == 0:
        text += (
            "; too few bars for the warm-up (indicators, higher timeframes, history_required, "
            "lags): give more data before the start or shorten the warm-up"
        )
    if n_lab == 0:
        spec = strategy.labels
        if spec.source == "zigzag":
            text += (
                f"; ZigZag labels with zigzag_threshold {spec.zigzag_threshold:g} "
                f"({spec.zigzag_threshold:.1%}) complete no swing in these bars: lower it or give more data"
            )
        else:
            text += (
                f"; forward labels need label_lookahead ({spec.label_lookahead}) bars after a "
                "sample: shorten it or give more data"
            )
    return text


def assemble(
    strategy: Strategy,
    features: Mapping[str, FeatureMatrix],
    labels: Mapping[str, Labels],
    closes: Mapping[str, np.ndarray],
    *,
    start: int | None = None,
) -> Dataset:
    """Split every symbol of the strategy at common cut times and combine the parts (module
    docstring). ``closes``: each symbol's base closes (the rows of ``features``); ``start``: the
    first bar open time (ns) that may be a sample, None = all."""
    symbols = strategy.data.symbols
    if not symbols:
        raise DatasetError("strategy has no symbols")
    fractions = check_fractions(strategy.split)
    lookback = strategy.model.features.lookback_periods
    spec = None
    usable: dict[str, np.ndarray] = {}
    for sym in symbols:
        if sym not in features or sym not in labels or sym not in closes:
            raise DatasetError(f"no features or labels for symbol {sym}")
        fm, lab = features[sym], labels[sym]
        if lab.y.shape[0] != len(fm) or closes[sym].shape[0] != len(fm):
            raise DatasetError(f"{sym}: {lab.y.shape[0]} labels for {len(fm)} feature rows")
        if spec is None:
            spec = fm.spec
        else:
            spec.verify(fm.spec)
        in_window = np.ones(len(fm), dtype=bool) if start is None else fm.time >= start
        ok = fm.valid & (lab.y >= 0) & in_window
        if not ok.any():
            raise DatasetError(
                _no_usable_rows(
                    strategy, sym, in_window, fm.valid & in_window, (lab.y >= 0) & in_window, start
                )
            )
        usable[sym] = ok
    assert spec is not None
    embargo = max(strategy.split.embargo or 0, max(labels[s].horizon for s in symbols) + lookback)
    cuts = calendar_cuts([features[s].time[usable[s]] for s in symbols], strategy.split)
    embargo_ns = embargo * timeframes.parse(spec.base_timeframe).ns
    horizon = skill_horizon(strategy, [labels[s].y[usable[s]] for s in symbols])
    chunks: dict[str, list[tuple[np.ndarray, ...]]] = {p: [] for p in PARTS}
    warnings: list[str] = []
    for si, sym in enumerate(symbols):
        fm, y, close = features[sym], labels[sym].y, np.asarray(closes[sym], np.float64)
        persist = persistence_labels(strategy.labels, close)
        rows_by_part = split_rows(fm.time, usable[sym], cuts, embargo_ns, labels[sym].horizon, lookback)
        for name, fraction, rows in zip(PARTS, fractions, rows_by_part, strict=True):
            if fraction > 0 and rows.size == 0:
                warnings.append(
                    f"{sym}: no rows in the {name} part (its usable rows span "
                    f"{iso_minute(fm.time[usable[sym]][0])} .. {iso_minute(fm.time[usable[sym]][-1])})"
                )
            chunks[name].append(
                (
                    fm.values[rows],
                    y[rows],
                    np.full(rows.size, si, np.int64),
                    fm.time[rows],
                    rows.astype(np.int64),
                    persist[rows],
                )
            )
    parts = {}
    errors: list[str] = []
    for name, fraction in zip(PARTS, fractions, strict=True):
        X, y, si, t, position, persist = (np.concatenate(a) for a in zip(*chunks[name], strict=True))
        if fraction > 0 and y.size == 0:
            total = sum(int(u.sum()) for u in usable.values())
            raise DatasetError(
                f"too few rows for the split: {total} usable rows in {len(symbols)} symbol(s), fractions "
                f"{fractions[0]}/{fractions[1]}/{fractions[2]}, embargo {embargo} bars: the {name} part is empty"
            )
        part_errors, part_warnings = class_problems(name, y)
        errors += part_errors
        warnings += part_warnings
        parts[name] = Split(X, y, si, t, class_distribution(y), position, persist)
    if errors:
        raise DatasetError(
            "degenerate training target: "
            + "; ".join(errors)
            + ". Change the label threshold, the date range or the split."
        )
    weights = None
    if strategy.optim.class_weights == "balanced":
        weights = _balanced(parts["train"].y)
    elif strategy.optim.class_weights != "none":
        raise DatasetError(
            f"class_weights must be 'none' or 'balanced', got {strategy.optim.class_weights!r}"
        )
    ranges = {name: (int(p.time.min()), int(p.time.max())) if len(p) else None for name, p in parts.items()}
    calendar, slots = calendar_slots(tuple(features[s].time for s in symbols))
    return Dataset(
        symbols=tuple(symbols),
        feature_spec=spec,
        train=parts["train"],
        validation=parts["validation"],
        test=parts["test"],
        class_weights=weights,
        embargo=embargo,
        label_horizon={s: labels[s].horizon for s in symbols},
        label_source=strategy.labels.source,
        skill_horizon=horizon,
        cuts=cuts,
        ranges=ranges,
        closes=tuple(np.asarray(closes[s], np.float64) for s in symbols),
        calendar=calendar,
        slots=slots,
        warnings=tuple(warnings),
    )


def build_dataset(
    strategy: Strategy, data: Mapping[str, Mapping[str, Bars]], *, start: int | None = None
) -> Dataset:
    """Features and labels for every symbol (``data``: symbol → timeframe → bars), then
    :func:`assemble`. Labels are made on the base timeframe's closes (from the first bar, so a
    ZigZag walk is already under way at ``start``); ``start``: first sample bar open time (ns)."""
    check_fractions(strategy.split)
    features, labels, closes = {}, {}, {}
    for sym in strategy.data.symbols:
        if sym not in data:
            raise DatasetError(f"no bars for symbol {sym}; got {', '.join(sorted(data)) or 'none'}")
        fm = build_features(strategy, data[sym])
        features[sym] = fm
        closes[sym] = data[sym][fm.spec.base_timeframe].close
        labels[sym] = make_labels(strategy.labels, closes[sym])
    return assemble(strategy, features, labels, closes, start=start)
