"""Fuzzy membership functions: vectorised, NaN in → NaN out, values in [0, 1].

Shapes and their parameters (in this order):

=================  ================  ==========================================================
type               parameters        value
=================  ================  ==========================================================
triangular         a, b, c           0 at x ≤ a and x ≥ c, 1 at x = b, linear in between
trapezoidal        a, b, c, d        0 at x ≤ a and x ≥ d, 1 on [b, c], linear in between
gaussian           mu, sigma         exp(-½((x - mu) / sigma)²), sigma > 0
sigmoid            center, slope     1 / (1 + exp(-slope (x - center))), slope ≠ 0
left_shoulder      a, b              1 at x ≤ a, 0 at x ≥ b, linear in between
right_shoulder     a, b              0 at x ≤ a, 1 at x ≥ b, linear in between
=================  ================  ==========================================================

Parameters must be finite and non-decreasing where the table orders them (a ≤ b ≤ c ≤ d).
Degenerate widths are exact, with no epsilon: a side of zero width is a step, and the
plateau/peak wins at the step (triangular [0, 0, 30] is 1 at 0; left_shoulder [50, 50] is 1 at 50;
right_shoulder [50, 50] is 1 at 50). ±inf inputs saturate like any value beyond the ends.
The shoulders saturate, so RSI 100 is fully "overbought" with ``right_shoulder [70, 90]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ktrdr.strategy.model import MembershipSpec


class FuzzyError(ValueError):
    """Membership parameters that do not fit their shape: wrong count, not finite, not ordered."""


def _ramp_up(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """0 at x ≤ a (when a < b), 1 at x ≥ b, linear in between; a == b is a step to 1 at x ≥ b."""
    if a == b:
        return (x >= b).astype(np.float64)
    return np.clip((x - a) / (b - a), 0.0, 1.0)


def _ramp_down(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """1 at x ≤ a, 0 at x ≥ b (when a < b), linear in between; a == b is a step to 0 at x > a."""
    if a == b:
        return (x <= a).astype(np.float64)
    return np.clip((b - x) / (b - a), 0.0, 1.0)


def _triangular(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return np.minimum(_ramp_up(x, a, b), _ramp_down(x, b, c))


def _trapezoidal(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return np.minimum(_ramp_up(x, a, b), _ramp_down(x, c, d))


def _gaussian(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    z = (x - mu) / sigma
    return np.exp(-0.5 * z * z)


def _sigmoid(x: np.ndarray, center: float, slope: float) -> np.ndarray:
    # 1/(1+e^-z) written with tanh: no overflow warnings for large |z|.
    return 0.5 * (1.0 + np.tanh(0.5 * slope * (x - center)))


#: type → (parameter names, function). The names document the order and appear in errors.
SHAPES: dict[str, tuple[tuple[str, ...], Callable[..., np.ndarray]]] = {
    "triangular": (("a", "b", "c"), _triangular),
    "trapezoidal": (("a", "b", "c", "d"), _trapezoidal),
    "gaussian": (("mu", "sigma"), _gaussian),
    "sigmoid": (("center", "slope"), _sigmoid),
    "left_shoulder": (("a", "b"), _ramp_down),
    "right_shoulder": (("a", "b"), _ramp_up),
}

_ORDERED = {"triangular", "trapezoidal", "left_shoulder", "right_shoulder"}


def validate(type_: str, parameters: Sequence[float], *, where: str = "membership") -> tuple[float, ...]:
    """Check a shape's parameters; returns them as floats.

    Raises :class:`FuzzyError` prefixed with ``where`` (e.g. ``fuzzy_sets.rsi.oversold``) naming
    what is wrong: unknown type (known ones listed), count, non-finite value, order, sigma ≤ 0,
    slope = 0.
    """
    if type_ not in SHAPES:
        raise FuzzyError(f"{where}: unknown membership type {type_!r}; known: {', '.join(SHAPES)}")
    names, _ = SHAPES[type_]
    if len(parameters) != len(names):
        raise FuzzyError(
            f"{where}: {type_} takes {len(names)} parameters [{', '.join(names)}], got {len(parameters)}"
        )
    try:
        values = tuple(float(p) for p in parameters)
    except (TypeError, ValueError):
        raise FuzzyError(f"{where}: parameters must be numbers, got {list(parameters)!r}") from None
    if not all(np.isfinite(values)):
        raise FuzzyError(f"{where}: parameters must be finite, got {list(values)!r}")
    if type_ in _ORDERED:
        for k in range(len(names) - 1):
            (n1, v1), (n2, v2) = (names[k], values[k]), (names[k + 1], values[k + 1])
            if v1 > v2:
                raise FuzzyError(
                    f"{where}: {type_} parameters must be non-decreasing ({', '.join(names)}), "
                    f"but {n1}={v1} > {n2}={v2}"
                )
    if type_ == "gaussian" and values[1] <= 0:
        raise FuzzyError(f"{where}: gaussian sigma must be > 0, got {values[1]}")
    if type_ == "sigmoid" and values[1] == 0:
        raise FuzzyError(f"{where}: sigmoid slope must be non-zero")
    return values


def membership(type_: str, parameters: Sequence[float], x: np.ndarray) -> np.ndarray:
    """Membership degrees of ``x`` (any shape) in one set; float64, NaN where ``x`` is NaN."""
    values = validate(type_, parameters)
    xs = np.asarray(x, dtype=np.float64)
    out = np.asarray(SHAPES[type_][1](xs, *values), dtype=np.float64)
    nan = np.isnan(xs)
    if nan.any():
        out = np.where(nan, np.nan, out)
    return out


def memberships(sets: Sequence[MembershipSpec], x: np.ndarray) -> np.ndarray:
    """One column per set, in the given order: an array of shape ``(len(x), len(sets))``."""
    xs = np.asarray(x, dtype=np.float64)
    out = np.empty((xs.shape[0], len(sets)), dtype=np.float64)
    for j, s in enumerate(sets):
        out[:, j] = membership(s.type, s.parameters, xs)
    return out
