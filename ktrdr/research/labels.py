"""Training labels on the base timeframe's closes: BUY = 0, HOLD = 1, SELL = 2, -1 = no label.

Labels are targets and look ahead on purpose. Each labeler states its **horizon**: the largest
number of bars past a labelled row whose prices that row's label depends on. The dataset splitter
(:mod:`ktrdr.research.datasets`) leaves an embargo of at least horizon + lookback bars between
train, validation and test, so no training label reads a price of a later part.

* **ZigZag segments** (:func:`zigzag_labels`, ``source: zigzag``). Extremes of the close with a
  reversal threshold θ (a fraction, 0.03 = 3 %): bar 0 is the first extreme; while the direction is
  unknown, the first bar whose change from it reaches ±θ sets the direction and becomes an extreme;
  going up, a higher close moves the current extreme there, a fall of θ from it marks a new extreme
  and turns down (mirror image going down). Bars strictly between two consecutive extremes get BUY
  if the second is higher, else SELL; extremes get HOLD.

  Only *final* labels are given, those no later bar can change; every other bar gets -1. The walk
  is online, so on a longer series it repeats the shorter series' walk and goes on from there.
  With extremes e_0 = 0 < … < e_K at the end of the data: e_0 … e_K-1 are fixed (each was
  confirmed by the reversal that marked the next one), e_K is provisional. More data can only move
  e_K forward, to a bar whose close lies further in the same direction, or confirm it in place
  and add extremes after it. Hence:

  - bars before e_K are final: their segment's start is fixed, its end only moves forward, and its
    direction (the sign of close[e_K] - close[e_K-1]) cannot flip, because e_K only moves to a
    more extreme close; the bars stay strictly inside their segment, extremes stay extremes;
  - e_K and every bar after it get -1: e_K turns into a segment bar if the extreme moves on, and
    a bar after e_K lands in the segment before or after the final extreme depending on prices
    not seen yet. While the direction is unknown (K = 0) that is every bar but bar 0;
  - bar 0 is always an extreme: HOLD, final from the start.

  Horizon: the walk *sets* the last extreme at bar 0, at every reversal bar and at every bar that
  moves an extreme. A bar i > 0 is final once the last extreme lies after it, i.e. from the first
  bar j > i at which the walk sets an extreme; its wait is h(i) = j - i bars (bar 0: h = 0). The
  label of bar i is thus a function of the closes of bars 0 … i + h(i), and h(i) is the smallest
  number with that property: given only bars 0 … i + h(i) - 1, bar i is still -1.
  :attr:`Labels.horizon` is the largest h(i) over the labelled bars of the data; bars left
  unlabelled at the end do not count. ``label_lookahead`` does not bound it.
* **Forward window** (:func:`forward_labels`, ``source: forward``). For bar i, over the closes of
  bars i+1..i+L (L = ``label_lookahead``): gain g = max/close_i - 1, loss l = 1 - min/close_i.
  BUY if g ≥ θ and g > l; SELL if l ≥ θ and l > g; else HOLD. The last L bars get -1 (no full
  window). Horizon: L.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ktrdr.strategy.model import LabelSpec

BUY, HOLD, SELL = 0, 1, 2
CLASS_NAMES = ("buy", "hold", "sell")
NO_LABEL = -1


class LabelError(ValueError):
    """Label settings or prices the labelers cannot use."""


@dataclass(frozen=True, eq=False)
class Labels:
    """``y``: int64 per bar (0/1/2, or -1 = no label); ``horizon``: bars of look-ahead (see module)."""

    y: np.ndarray
    horizon: int
    source: str


def _check(close: np.ndarray, threshold: float) -> np.ndarray:
    c = np.asarray(close, dtype=np.float64)
    if c.ndim != 1:
        raise LabelError(f"closes must be one-dimensional, got shape {c.shape}")
    if not 0 < threshold < 1:
        raise LabelError(f"label threshold must be a fraction in (0, 1), got {threshold}")
    if c.size and (not np.isfinite(c).all() or (c <= 0).any()):
        i = int(np.flatnonzero(~np.isfinite(c) | (c <= 0))[0])
        raise LabelError(f"closes must be finite and > 0; row {i} is {c[i]}")
    return c


@dataclass(frozen=True, eq=False)
class ZigZagWalk:
    """The online ZigZag walk over a close series (int64 bar positions, ascending).

    ``extremes``: the extremes, the last one provisional. ``updates``: the bars at which the walk
    set the last extreme (bar 0, every reversal bar, every bar that moved an extreme);
    ``updates[-1] == extremes[-1]``. ``reversals``: the bars at which the walk set or flipped its
    direction (each is the bar at which an extreme after bar 0 was first placed)."""

    extremes: np.ndarray
    updates: np.ndarray
    reversals: np.ndarray


def zigzag_extremes(close: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(extremes, updates)`` of :func:`zigzag_walk`."""
    walk = zigzag_walk(close, threshold)
    return walk.extremes, walk.updates


def zigzag_walk(close: np.ndarray, threshold: float) -> ZigZagWalk:
    """The ZigZag walk of ``close`` (see module docstring and :class:`ZigZagWalk`)."""
    c = _check(close, threshold)
    if c.size == 0:
        return ZigZagWalk(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))
    prices = c.tolist()  # a plain loop over Python floats: the walk is inherently sequential
    extremes, updates, reversals = [0], [0], []
    ext_p = prices[0]
    direction = 0
    up, down = 1.0 + threshold, 1.0 - threshold
    for i in range(1, len(prices)):
        p = prices[i]
        if direction == 1:
            if p > ext_p:
                extremes[-1], ext_p = i, p
            elif p <= ext_p * down:
                extremes.append(i)
                reversals.append(i)
                ext_p, direction = p, -1
            else:
                continue
        elif direction == -1:
            if p < ext_p:
                extremes[-1], ext_p = i, p
            elif p >= ext_p * up:
                extremes.append(i)
                reversals.append(i)
                ext_p, direction = p, 1
            else:
                continue
        elif p >= ext_p * up or p <= ext_p * down:
            extremes.append(i)
            reversals.append(i)
            ext_p, direction = p, (1 if p > ext_p else -1)
        else:
            continue
        updates.append(i)
    return ZigZagWalk(
        np.asarray(extremes, np.int64), np.asarray(updates, np.int64), np.asarray(reversals, np.int64)
    )


def zigzag_direction(close: np.ndarray, threshold: float) -> np.ndarray:
    """Per bar, the direction of the ZigZag walk once that bar is seen: 1 up, -1 down, 0 not yet
    known (int64). Bar t's value depends only on closes 0..t (the walk is online)."""
    c = _check(close, threshold)
    walk = zigzag_walk(c, threshold)
    out = np.zeros(c.size, np.int64)
    if walk.reversals.size:
        leg = np.searchsorted(walk.reversals, np.arange(c.size), side="right") - 1
        first = 1 if c[walk.reversals[0]] > c[0] else -1
        out = np.where(leg < 0, 0, np.where(leg % 2 == 0, first, -first))
    return out


def persistence_labels(spec: LabelSpec, close: np.ndarray) -> np.ndarray:
    """The persistence baseline's prediction per bar from past prices only (no look-ahead):
    the value at bar t depends only on closes 0..t.

    * ZigZag: the leg the online walk is in at bar t (BUY going up, SELL going down, HOLD before
      the first reversal) — what a model that merely recognises the present would predict.
    * Forward window of L bars: the label of bar t - L, the latest one final at bar t
      (HOLD for the first L bars).
    """
    c = np.asarray(close, dtype=np.float64)
    if spec.source == "zigzag":
        d = zigzag_direction(c, spec.zigzag_threshold)
        return np.where(d > 0, BUY, np.where(d < 0, SELL, HOLD)).astype(np.int64)
    if spec.source == "forward":
        y = make_labels(spec, c).y
        out = np.full(c.size, HOLD, np.int64)
        lag = spec.label_lookahead
        out[lag:] = y[: max(c.size - lag, 0)]
        return np.where(out < 0, HOLD, out)
    raise LabelError(f"unknown label source {spec.source!r}; known: zigzag, forward")


def zigzag_labels(close: np.ndarray, threshold: float) -> Labels:
    """ZigZag segment labels, -1 where not final, and the horizon over final labels (module
    docstring)."""
    c = _check(close, threshold)
    n = c.size
    y = np.full(n, NO_LABEL, dtype=np.int64)
    if n == 0:
        return Labels(y, 0, "zigzag")
    walk = zigzag_walk(c, threshold)
    ext, updates = walk.extremes, walk.updates
    y[0] = HOLD
    rows = np.arange(1, ext[-1])  # final bars after bar 0: those before the provisional extreme
    seg = np.searchsorted(ext, rows, side="right") - 1  # ext[seg] <= row < ext[seg + 1]
    rising = c[ext[1:]] > c[ext[:-1]]
    y[rows] = np.where(ext[seg] == rows, HOLD, np.where(rising[seg], BUY, SELL))
    final_at = updates[np.searchsorted(updates, rows, side="right")]  # first update after the bar
    horizon = int((final_at - rows).max(initial=0))
    return Labels(y, horizon, "zigzag")


def forward_labels(close: np.ndarray, threshold: float, lookahead: int) -> Labels:
    """Forward-window labels over ``lookahead`` bars (module docstring); vectorised."""
    c = _check(close, threshold)
    if lookahead < 1:
        raise LabelError(f"label_lookahead must be >= 1, got {lookahead}")
    n = c.size
    y = np.full(n, NO_LABEL, dtype=np.int64)
    m = n - lookahead
    if m > 0:
        win = sliding_window_view(c[1:], lookahead)[:m]
        gain = win.max(axis=1) / c[:m] - 1.0
        loss = 1.0 - win.min(axis=1) / c[:m]
        lab = np.full(m, HOLD, dtype=np.int64)
        lab[(gain >= threshold) & (gain > loss)] = BUY
        lab[(loss >= threshold) & (loss > gain)] = SELL
        y[:m] = lab
    return Labels(y, lookahead, "forward")


def make_labels(spec: LabelSpec, close: np.ndarray) -> Labels:
    """The labels a strategy's ``training.labels`` asks for."""
    if spec.source == "zigzag":
        return zigzag_labels(close, spec.zigzag_threshold)
    if spec.source == "forward":
        return forward_labels(close, spec.zigzag_threshold, spec.label_lookahead)
    raise LabelError(f"unknown label source {spec.source!r}; known: zigzag, forward")


def class_distribution(y: np.ndarray) -> dict[str, float | int]:
    """Counts and fractions per class over labelled rows: ``buy_count, hold_count, sell_count,
    buy_pct, hold_pct, sell_pct, total`` (pct as fractions 0..1 of ``total``, the labelled rows),
    and ``no_label_count``, the rows labelled -1, which the fractions leave out."""
    yy = np.asarray(y)
    counts = np.bincount(yy[yy >= 0], minlength=3)[:3]
    total = int(counts.sum())
    out: dict[str, float | int] = {
        f"{name}_count": int(k) for name, k in zip(CLASS_NAMES, counts, strict=True)
    }
    for name, k in zip(CLASS_NAMES, counts, strict=True):
        out[f"{name}_pct"] = float(k) / total if total else 0.0
    out["total"] = total
    out["no_label_count"] = int((yy == NO_LABEL).sum())
    return out
