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
  if the second is higher, else SELL; extremes and the bars after the last extreme are HOLD.
  Horizon: a bar's label is final once the extreme after it is confirmed, i.e. when the next
  reversal is seen. The horizon is the largest such distance, measured on the data
  (:attr:`Labels.horizon`); bars whose label was not final by the end of the data (the last two
  segments) are counted up to the end of the data. ``label_lookahead`` does not bound it.
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


def zigzag_extremes(close: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """ZigZag extremes of ``close`` (see module docstring).

    Returns ``(extremes, marked)``: the extreme positions, ascending (the last one provisional), and
    for each the position of the bar at which it was first marked (the reversal bar; 0 for bar 0).
    """
    c = _check(close, threshold)
    if c.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    prices = c.tolist()  # a plain loop over Python floats: the walk is inherently sequential
    extremes, marked = [0], [0]
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
                marked.append(i)
                ext_p, direction = p, -1
        elif direction == -1:
            if p < ext_p:
                extremes[-1], ext_p = i, p
            elif p >= ext_p * up:
                extremes.append(i)
                marked.append(i)
                ext_p, direction = p, 1
        elif p >= ext_p * up or p <= ext_p * down:
            extremes.append(i)
            marked.append(i)
            ext_p, direction = p, (1 if p > ext_p else -1)
    return np.asarray(extremes, np.int64), np.asarray(marked, np.int64)


def zigzag_labels(close: np.ndarray, threshold: float) -> Labels:
    """ZigZag segment labels and their measured horizon (module docstring)."""
    c = _check(close, threshold)
    n = c.size
    y = np.full(n, HOLD, dtype=np.int64)
    ext, marked = zigzag_extremes(c, threshold)
    if ext.size >= 2:
        seg = np.searchsorted(ext, np.arange(n), side="right") - 1  # segment of each bar
        inside = (seg >= 0) & (seg < ext.size - 1)
        inside[ext] = False
        rising = c[ext[1:]] > c[ext[:-1]]
        y[inside] = np.where(rising[seg[inside]], BUY, SELL)
    # A bar in segment (e_k, e_k+1) is final when e_k+1 stops moving: when e_k+2 is marked.
    rows = np.arange(n)
    final_at = np.full(n, n, dtype=np.int64)
    nxt = np.searchsorted(ext, rows, side="left")  # first extreme at or after the bar
    known = nxt + 1 < ext.size
    final_at[known] = marked[nxt[known] + 1]
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
    """Counts and fractions per class over labelled rows (-1 ignored):
    ``buy_count, hold_count, sell_count, buy_pct, hold_pct, sell_pct, total`` (pct as fractions 0..1)."""
    yy = np.asarray(y)
    counts = np.bincount(yy[yy >= 0], minlength=3)[:3]
    total = int(counts.sum())
    out: dict[str, float | int] = {
        f"{name}_count": int(k) for name, k in zip(CLASS_NAMES, counts, strict=True)
    }
    for name, k in zip(CLASS_NAMES, counts, strict=True):
        out[f"{name}_pct"] = float(k) / total if total else 0.0
    out["total"] = total
    return out
