"""Vectorised numerical building blocks shared by the indicator catalogue.

Every function takes and returns float64 NumPy arrays and is *causal*: element ``t`` of a result
depends only on elements ``0..t`` of the inputs. Results have the input's length; positions where a
value is not yet defined are NaN.

Recursive filters (EMA, Wilder smoothing) are computed by :func:`linear_filter`, a blocked closed
form of ``y[t] = d * y[t-1] + u[t]``: each block of 16 values is one small matrix product with
weights ``d**k <= 1`` (never ``d**-k``, so nothing grows), and the block boundaries carry over by the
same filter one level up. Agreement with a sequential loop is ~1e-14 relative.

Rolling window sums are computed from prefix sums that restart every ``period`` values (so rounding
error stays proportional to one window, not to the whole series), shifted by a per-block reference
value so that rolling variances do not lose digits to large price levels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_BLOCK = 16
_ROW_ALIGN = 32
_NEGLIGIBLE = 1e-18  # a decay below this contributes less than float64 rounding
# OpenBLAS runs a product of at most this many multiply-adds (m * n * k) on the calling thread only.
# Larger ones are split over threads, which on a loaded machine wait for each other's cores.
_SERIAL_MULADDS = 4 * 65536


@lru_cache(maxsize=512)
def _filter_kernel(d: float) -> tuple[np.ndarray, np.ndarray]:
    """(E, tail): E[k, i] = d**(i-k) for i >= k else 0; tail[i] = d**(i+1)."""
    j = np.arange(_BLOCK, dtype=np.float64)
    lag = j[None, :] - j[:, None]
    e = np.where(lag >= 0, d ** np.maximum(lag, 0.0), 0.0)
    e.setflags(write=False)
    tail = d ** (j + 1.0)
    tail.setflags(write=False)
    return e, tail


def _rows(n: int, width: int) -> int:
    """Rows for ``n`` values in rows of ``width``, rounded up to a multiple of ``_ROW_ALIGN``.

    BLAS processes full groups of rows with one micro-kernel whatever the matrix height, so with
    aligned heights every row's sums are formed in the same order: a result never depends on how
    many bars follow it (bit-identical prefixes, the no-look-ahead guarantee the features rely on).
    """
    return -(-n // (width * _ROW_ALIGN)) * _ROW_ALIGN


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in row slices small enough for BLAS to compute each on the calling thread.

    ``a``'s height and every slice's height are multiples of ``_ROW_ALIGN`` (see :func:`_rows`), so
    the values do not depend on the slicing; single-threaded products are also the fastest here.
    """
    k, w = b.shape
    step = max(_ROW_ALIGN, (_SERIAL_MULADDS // (k * w) - 1) // _ROW_ALIGN * _ROW_ALIGN)
    out = np.empty((a.shape[0], w))
    for i in range(0, a.shape[0], step):
        np.matmul(a[i : i + step], b, out=out[i : i + step])
    return out


def linear_filter(u: np.ndarray, d: float) -> np.ndarray:
    """``y[t] = d * y[t-1] + u[t]`` with ``y[-1] = 0``, for ``0 <= d <= 1``; a new array."""
    n = u.shape[0]
    if n == 0 or d < _NEGLIGIBLE:
        return np.array(u, dtype=np.float64)
    m = _rows(n, _BLOCK)
    blocks = np.zeros(m * _BLOCK)
    blocks[:n] = u
    blocks = blocks.reshape(m, _BLOCK)
    e, tail = _filter_kernel(float(d))
    y = _matmul(blocks, e)
    used = -(-n // _BLOCK)
    if used > 1:
        d_block = d**_BLOCK
        ends = y[:used, -1]
        carry = ends.copy() if d_block < _NEGLIGIBLE else linear_filter(ends, d_block)
        y[1:used] += np.multiply.outer(carry[:-1], tail)
    return y.reshape(-1)[:n]


def first_valid(x: np.ndarray) -> int:
    """Index of the first non-NaN element (``len(x)`` if there is none)."""
    ok = ~np.isnan(x)
    return int(ok.argmax()) if ok.any() else int(x.shape[0])


def seeded_filter(x: np.ndarray, period: int, alpha: float) -> np.ndarray:
    """Exponential smoothing ``y = y + alpha * (x - y)`` seeded with a simple mean.

    The seed is the mean of the first ``period`` valid values of ``x`` (leading NaNs are skipped;
    values after them must be finite); it is the output at the last of those values and the result
    is NaN before. ``alpha = 2/(period+1)`` is the EMA; ``alpha = 1/period`` is Wilder's smoothing.
    This is TA-Lib's seeding for EMA, RSI and ATR.
    """
    n = x.shape[0]
    out = np.full(n, np.nan)
    start = first_valid(x)
    seed_at = start + period - 1
    if seed_at >= n:
        return out
    u = alpha * x[seed_at:]
    u[0] = x[start : seed_at + 1].mean()
    out[seed_at:] = linear_filter(u, 1.0 - alpha)
    return out


def ema(x: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, ``alpha = 2/(period+1)``, seeded with the SMA (TA-Lib's EMA)."""
    return seeded_filter(x, period, 2.0 / (period + 1.0))


def wilder(x: np.ndarray, period: int) -> np.ndarray:
    """Wilder's smoothing (``alpha = 1/period``), seeded with the simple mean of ``period`` values."""
    return seeded_filter(x, period, 1.0 / period)


@lru_cache(maxsize=64)
def _upper_ones(k: int) -> np.ndarray:
    ones = np.triu(np.ones((k, k)))
    ones.setflags(write=False)
    return ones


def _block_prefix(blocks: np.ndarray) -> np.ndarray:
    """Prefix sums along each row (a matrix product for short rows: faster than cumsum)."""
    k = blocks.shape[1]
    return _matmul(blocks, _upper_ones(k)) if k <= 64 else np.cumsum(blocks, axis=1)


def _windowed(x: np.ndarray, period: int, squares: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window sums of ``x - r`` (and of its squares) for windows ending at ``t >= period-1``.

    Returns ``(ref, s1, s2)`` for each window end ``t = period-1 .. n-1``: ``ref`` is the shift used
    for that window, ``s1 = sum(x - ref)``, ``s2 = sum((x - ref)**2)`` (``s2`` empty unless
    ``squares``). Blocks of ``period`` values; a window spans the tail of the previous block and
    the head of its own.
    """
    n, k = x.shape[0], period
    m = _rows(n, k)
    padded = np.empty(m * k)
    padded[:n] = x
    padded[n:] = x[-1]
    blocks = padded.reshape(m, k)
    ref = blocks[:, 0].copy()
    dev = blocks - ref[:, None]
    p1 = _block_prefix(dev)
    p2 = _block_prefix(dev * dev) if squares else None
    # Window ending at (b, j): block b's prefix [0..j] + block b-1's values [j+1..k-1].
    head1 = p1[1:]
    rest1 = p1[:-1, -1:] - p1[:-1]
    count = np.arange(k - 1, -1, -1, dtype=np.float64)  # values taken from block b-1
    delta = (ref[:-1] - ref[1:])[:, None]  # re-reference block b-1's values to ref[b]
    s1 = np.empty((m, k))
    s1[0] = np.nan
    s1[0, -1] = p1[0, -1]
    s1[1:] = head1 + rest1 + count * delta
    s2 = np.empty(0)
    if squares:
        rest2 = p2[:-1, -1:] - p2[:-1]
        s2 = np.empty((m, k))
        s2[0] = np.nan
        s2[0, -1] = p2[0, -1]
        s2[1:] = p2[1:] + rest2 + 2.0 * delta * rest1 + count * delta * delta
        s2 = s2.reshape(-1)[k - 1 : n]
    refs = np.repeat(ref, k)[k - 1 : n]
    return refs, s1.reshape(-1)[k - 1 : n], s2


def rolling_sum(x: np.ndarray, period: int) -> np.ndarray:
    """Sum of the last ``period`` values (NaN for ``t < period-1``)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n >= period:
        ref, s1, _ = _windowed(x, period, squares=False)
        out[period - 1 :] = s1 + period * ref
    return out


def rolling_mean(x: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average of the last ``period`` values (NaN for ``t < period-1``)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n >= period:
        ref, s1, _ = _windowed(x, period, squares=False)
        out[period - 1 :] = ref + s1 / period
    return out


def rolling_mean_std(x: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and *population* standard deviation (``ddof=0``) of the last ``period`` values."""
    n = x.shape[0]
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    if n >= period:
        ref, s1, s2 = _windowed(x, period, squares=True)
        m1 = s1 / period
        mean[period - 1 :] = ref + m1
        std[period - 1 :] = np.sqrt(np.maximum(s2 / period - m1 * m1, 0.0))
    return mean, std


def _rolling_extreme(x: np.ndarray, period: int, op: np.ufunc) -> np.ndarray:
    """Rolling max/min by doubling: after step k, ``a[i]`` covers ``x[i : i + 2**k]``."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n < period:
        return out
    a = np.array(x, dtype=np.float64)
    b = np.empty(n)
    width, valid = 1, n
    while 2 * width <= period:
        op(a[: valid - width], a[width:valid], out=b[: valid - width])
        valid -= width
        a, b = b, a
        width *= 2
    op(a[: n - period + 1], a[period - width : n - width + 1], out=out[period - 1 :])
    return out


def rolling_max(x: np.ndarray, period: int) -> np.ndarray:
    """Maximum of the last ``period`` values (NaN for ``t < period-1``)."""
    return _rolling_extreme(x, period, np.maximum)


def rolling_min(x: np.ndarray, period: int) -> np.ndarray:
    """Minimum of the last ``period`` values (NaN for ``t < period-1``)."""
    return _rolling_extreme(x, period, np.minimum)


def bars_since_extreme(x: np.ndarray, period: int, highest: bool) -> np.ndarray:
    """Bars since the highest (or lowest) of the last ``period`` values, ties to the most recent.

    Element ``i`` of the result is for the window ending at ``t = i + period - 1`` (so there are
    ``n - period + 1`` of them, none if ``n < period``); values are integers ``0 .. period-1``. By
    doubling as in :func:`_rolling_extreme`, carrying each span's best value and its position.
    """
    n = x.shape[0]
    if n < period:
        return np.empty(0, dtype=np.int64)
    better = np.greater_equal if highest else np.less_equal
    val = np.array(x, dtype=np.float64)
    pos = np.arange(n)
    width = 1

    def merge(left: slice, right: slice) -> tuple[np.ndarray, np.ndarray]:
        take = better(val[right], val[left])  # the later span wins ties: the most recent extreme
        return np.where(take, val[right], val[left]), np.where(take, pos[right], pos[left])

    while 2 * width <= period:
        val, pos = merge(slice(0, val.shape[0] - width), slice(width, val.shape[0]))
        width *= 2
    count = n - period + 1
    _, pos = merge(slice(0, count), slice(period - width, period - width + count))
    return np.arange(period - 1, n) - pos


def lag(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` delayed by ``k >= 0`` bars (NaN for the first ``k``)."""
    out = np.full(x.shape[0], np.nan)
    if k < x.shape[0]:
        out[k:] = x[: x.shape[0] - k]
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """``max(H-L, |H-C[t-1]|, |L-C[t-1]|)``; NaN at bar 0 (no previous close), as in TA-Lib."""
    n = high.shape[0]
    out = np.full(n, np.nan)
    if n > 1:
        prev = close[:-1]
        tr = high[1:] - low[1:]
        np.maximum(tr, np.abs(high[1:] - prev), out=tr)
        np.maximum(tr, np.abs(low[1:] - prev), out=tr)
        out[1:] = tr
    return out


def safe_ratio(num: np.ndarray, den: np.ndarray, fallback: float) -> np.ndarray:
    """``num / den`` with ``fallback`` where ``den == 0`` (NaN stays NaN)."""
    out = np.full(num.shape[0], fallback)
    np.divide(num, den, out=out, where=den != 0)
    out[np.isnan(num) | np.isnan(den)] = np.nan
    return out
