"""From a model's class probabilities per bar to the position to hold: the strategy's ``decisions``.

Input: per base bar t, the probabilities of BUY, HOLD, SELL (the class order of
:mod:`ktrdr.research.labels`), computed from bars up to t's close; a row with a non-finite value
(feature warm-up) is no decision. Output ``target[t]`` ∈ {-1, 0, +1}: the position wanted after
bar t's close, which the simulator fills at bar t+1's open.

Rules, applied per bar in time order (:class:`~ktrdr.strategy.model.DecisionSpec`):

1. **Signal**: the most probable class; HOLD when its probability is below
   ``confidence_threshold`` or the row has no decision.
2. **Direction**: ``long_only``: BUY → long, SELL → flat (SELL closes a long, never opens a
   short). ``long_short``: BUY → long, SELL → short (a SELL while long reverses the position).
3. **Position awareness**: a BUY or SELL that would leave the position as it is (BUY while long,
   SELL while short, SELL while flat in ``long_only``) is *redundant*. With
   ``position_awareness: true`` it is ignored entirely. With ``false`` it still counts as a
   signal for the separation rule (it restarts the clock when the clock allows a signal), but
   there is still one position at a time: nothing is added to a position.
4. **Separation**: a signal at t is acted on only when ``t - t_last >= min_signal_separation``,
   ``t_last`` the bar of the last signal acted on (in bars of the base timeframe); a signal
   refused by this rule does not restart the clock.

A decision at bar t reads rows ≤ t only, so the decisions of a prefix of the bars equal the full
run's decisions on that prefix (tested). The state machine runs over the non-HOLD bars only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ktrdr.research.labels import BUY, HOLD, SELL
from ktrdr.strategy.model import DecisionSpec

DIRECTIONS = ("long_only", "long_short")


class DecisionError(ValueError):
    """Probabilities or settings the decision rules cannot use (wrong shape, unknown direction)."""


@dataclass(frozen=True, eq=False)
class Decisions:
    """Per bar: ``signal`` (int8 class id after the confidence threshold: BUY, HOLD or SELL),
    ``confidence`` (float64, the most probable class's probability; 0 where there is no
    decision) and ``target`` (int8 position wanted after the bar's close: -1, 0, +1)."""

    signal: np.ndarray
    confidence: np.ndarray
    target: np.ndarray


def check_direction(direction: str) -> str:
    """``direction`` itself when it is one of :data:`DIRECTIONS`; :class:`DecisionError` otherwise."""
    if direction not in DIRECTIONS:
        raise DecisionError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return direction


def decide(probabilities: np.ndarray, spec: DecisionSpec, *, direction: str | None = None) -> Decisions:
    """Apply the rules of the module docstring to ``probabilities`` (shape (bars, 3)).
    ``direction``: overrides ``spec.direction`` when given."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != 3:
        raise DecisionError(f"probabilities must have shape (bars, 3), got {probs.shape}")
    sell_to = -1 if check_direction(direction or spec.direction) == "long_short" else 0
    decided = np.asarray(np.isfinite(probs).all(axis=1))
    safe = np.where(decided[:, None], probs, 0.0)
    confidence = safe.max(axis=1)
    confident = decided & (confidence >= spec.confidence_threshold)
    signal = np.where(confident, safe.argmax(axis=1), HOLD).astype(np.int8)
    separation = spec.min_signal_separation
    position, last = 0, None
    change_bars: list[int] = []
    change_positions: list[int] = []
    for t, cls in zip(*_signals(signal), strict=True):
        allowed = last is None or t - last >= separation
        wanted = 1 if cls == BUY else sell_to
        if wanted == position:  # redundant (rule 3)
            if allowed and not spec.position_awareness:
                last = t
            continue
        if not allowed:
            continue
        position, last = wanted, t
        change_bars.append(t)
        change_positions.append(position)
    return Decisions(signal, confidence, _step_function(len(signal), change_bars, change_positions))


def _signals(signal: np.ndarray) -> tuple[list[int], list[int]]:
    """Bars and classes of the BUY/SELL signals, as Python ints (the loop is faster on them)."""
    bars = np.flatnonzero((signal == BUY) | (signal == SELL))
    return bars.tolist(), signal[bars].tolist()


def _step_function(n: int, change_bars: list[int], values: list[int]) -> np.ndarray:
    """Per bar 0..n-1, the value set by the latest change at or before it; 0 before the first."""
    if not change_bars:
        return np.zeros(n, dtype=np.int8)
    which = np.searchsorted(np.asarray(change_bars), np.arange(n), side="right") - 1
    held = np.asarray(values, dtype=np.int8)[np.maximum(which, 0)]
    held[which < 0] = 0
    return held
