"""Parabolic SAR: Wilder's stop-and-reverse recursion, computed exactly and mostly vectorised.

The recursion is sequential, but its state forgets its past: the state after a reversal depends only
on the extreme point of the trend that just ended, so two runs started from different states become
identical once they reverse together twice. :func:`parabolic_sar` uses this. The bars are cut into
chunks of :data:`CHUNK`; every chunk is run from a guessed state, all chunks side by side (one NumPy
operation per bar position covers every chunk); then every chunk is run again from the state the
previous chunk ended in; a final sequential sweep reruns (in plain Python) any chunk whose start
state still differs from its predecessor's end state. The result is therefore exactly the sequential
recursion, value for value, with the same floating-point operations in the same order.

Short trends are handled in mirrored coordinates (prices negated), where they behave like long
trends; negation is exact, so ``-(a + f * (b - a)) == (-a) + f * ((-b) - (-a))`` bit for bit.

State tuple: ``(is_long, sar, ep, af)`` in the trend's own coordinates (negated when short), the
state *before* a bar is processed.
"""

from __future__ import annotations

import numpy as np

CHUNK = 128
WARMUP = 96

State = tuple[bool, float, float, float]


class _Inputs:
    """Per-bar inputs in both coordinate systems, laid out for the lock-step run.

    ``adverse`` is the price that stops the trend (low when long, ``-high`` when short);
    ``favour`` the price that makes new extremes (high / ``-low``); ``clamp`` the bound the SAR may
    not cross: the extreme of the previous and current bar (at bar 1, bar 1's own value). Grids
    have one column per chunk and ``WARMUP + CHUNK`` rows: the chunk's bars preceded by the last
    ``WARMUP`` bars before it (repeated bar 1 for chunk 0, unused); the tail is padded with the last
    bar. ``long[j]`` stacks, for row ``j``, what a long trend reads: its adverse price, its favour and
    clamp, and the favour and clamp of the short trend it would reverse into; ``short[j]`` mirrors it.
    """

    def __init__(self, high: np.ndarray, low: np.ndarray) -> None:
        n = high.shape[0]
        floor = np.empty(n)
        ceil = np.empty(n)
        floor[1] = low[1]
        ceil[1] = high[1]
        np.minimum(low[1:-1], low[2:], out=floor[2:])
        np.maximum(high[1:-1], high[2:], out=ceil[2:])
        self.n = n
        self.chunks = m = -(-(n - 1) // CHUNK)
        rows = WARMUP + CHUNK

        def grid(x: np.ndarray) -> np.ndarray:
            # padded[WARMUP + i] = x[1 + i]; column c, row j reads padded[c * CHUNK + j].
            padded = np.empty(m * CHUNK + WARMUP + CHUNK)
            padded[WARMUP : WARMUP + n - 1] = x[1:]
            padded[:WARMUP] = x[1]
            padded[WARMUP + n - 1 :] = x[-1]
            view = np.lib.stride_tricks.as_strided(padded, (rows, m), (8, 8 * CHUNK), writeable=False)
            return np.ascontiguousarray(view)

        g_low, g_high = grid(low), grid(high)
        self.long = [g_low, g_high, grid(floor)]
        self.short = [np.negative(g_high), np.negative(g_low), np.negative(grid(ceil))]
        self._arrays = (low, high, floor, ceil)

    def lists(self, first: int, stop: int) -> list[list[float]]:
        """Bars ``first..stop-1`` of low, high, floor, ceil as Python lists (for the scalar path)."""
        return [a[first:stop].tolist() for a in self._arrays]


def _lockstep(
    inp: _Inputs, starts: tuple[np.ndarray, ...], acc: float, cap: float
) -> tuple[np.ndarray, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Run every chunk's column from its warm-up start state.

    Returns the SAR grid ``(CHUNK, chunks)`` of the chunks' own bars, the state at each chunk's
    first bar (after the warm-up) and the state after its last bar.

    A reversal sets ``sar = min(-ep, clamp)`` and clears ``ep`` to ``-inf`` and ``af`` to 0, after
    which the ordinary new-extreme step sets ``ep = favour`` and ``af = min(0 + acc, cap) = acc`` (as
    ``acc <= cap``): the values the sequential rule assigns, without a separate branch.
    """
    is_long = starts[0].copy()
    sar, ep, af = (np.array(a, dtype=np.float64) for a in starts[1:])
    (lo, hi, fl), (nhi, nlo, nce) = inp.long, inp.short
    m = is_long.shape[0]
    stay = np.empty(m, dtype=bool)
    grow = np.empty(m, dtype=bool)
    step = np.empty(m)
    sars = np.empty_like(lo)
    longs = np.empty(lo.shape, dtype=bool)
    at_start: tuple[np.ndarray, ...] = ()
    for j in range(WARMUP + CHUNK):
        if j == WARMUP:
            at_start = (is_long.copy(), sar.copy(), ep.copy(), af.copy())
        np.greater(np.where(is_long, lo[j], nhi[j]), sar, out=stay)
        np.equal(is_long, stay, out=is_long)  # flips where the trend reverses
        favour = np.where(is_long, hi[j], nlo[j])
        clamp = np.where(is_long, fl[j], nce[j])
        np.negative(ep, out=step)
        np.minimum(step, clamp, out=step)
        sar = np.where(stay, sar, step)
        ep = np.where(stay, ep, -np.inf)
        af *= stay
        sars[j] = sar
        longs[j] = is_long
        np.greater(favour, ep, out=grow)
        np.maximum(ep, favour, out=ep)
        np.add(af, acc, out=step)
        np.minimum(step, cap, out=step)
        af = np.where(grow, step, af)
        np.subtract(ep, sar, out=step)
        step *= af
        sar += step
        np.minimum(sar, clamp, out=sar)
    own = slice(WARMUP, None)
    out = sars[own]
    np.negative(out, out=out, where=~longs[own])
    return out, at_start, (is_long, sar, ep, af)


def _scalar(inp: _Inputs, chunk: int, state: State, acc: float, cap: float, out: np.ndarray) -> State:
    """Run one chunk sequentially from ``state``, writing its SAR values into ``out[:, chunk]``."""
    first = 1 + chunk * CHUNK
    stop = min(first + CHUNK, inp.n)
    low, high, floor, ceil = inp.lists(first, stop)
    is_long, sar, ep, af = state
    values = []
    for t in range(stop - first):
        adverse = low[t] if is_long else -high[t]
        rev = adverse <= sar
        if rev:
            is_long = not is_long
        favour, clamp = (high[t], floor[t]) if is_long else (-low[t], -ceil[t])
        if rev:
            sar, ep, af = min(-ep, clamp), favour, acc
        else:
            if favour > ep:
                ep, af = favour, min(af + acc, cap)
        values.append(sar if is_long else -sar)
        sar = min(sar + af * (ep - sar), clamp)
    out[: len(values), chunk] = values
    return is_long, sar, ep, af


def _take(states: tuple[np.ndarray, ...], i: int) -> State:
    return bool(states[0][i]), float(states[1][i]), float(states[2][i]), float(states[3][i])


def parabolic_sar(high: np.ndarray, low: np.ndarray, acceleration: float, maximum: float) -> np.ndarray:
    """Wilder's Parabolic SAR with TA-Lib's start (see the ``psar`` indicator); NaN at bar 0."""
    n = high.shape[0]
    result = np.full(n, np.nan)
    if n < 2:
        return result
    inp = _Inputs(high, low)
    down_move = low[0] - low[1]
    first_long = not (down_move > 0 and down_move > high[1] - high[0])
    first: State = (
        (True, float(low[0]), float(high[1]), acceleration)
        if first_long
        else (False, -float(high[0]), -float(low[1]), acceleration)
    )
    m = inp.chunks
    # Every column starts WARMUP bars before its chunk from a guess (long, SAR at that bar's low);
    # chunk 0 starts at bar 1 from the true state.
    guess_at = np.clip(np.arange(m) * CHUNK + 1 - WARMUP, 1, n - 1)
    starts = (np.ones(m, dtype=bool), low[guess_at].astype(np.float64), high[guess_at].astype(np.float64))
    starts += (np.full(m, float(acceleration)),)
    out, at_start, ends = _lockstep(inp, starts, acceleration, maximum)
    out[:, 0] = np.nan
    end = _scalar(inp, 0, first, acceleration, maximum, out)
    # Chunk c is right if its warm-up reached the state its predecessor truly ended in; else rerun it.
    for c in range(1, m):
        if _take(at_start, c) == end:
            end = _take(ends, c)
        else:
            end = _scalar(inp, c, end, acceleration, maximum, out)
    result[1:] = out.T.reshape(-1)[: n - 1]
    return result
