"""The deflated Sharpe ratio (Bailey & López de Prado, 2014): is the best of many trials real?

The best Sharpe ratio of N trials is flattered: even with no skill anywhere, its expectation grows
with N. The deflated Sharpe ratio is the probability that the true Sharpe ratio of the selected
strategy exceeds the expected maximum of N skill-less trials,

    SR0 = sqrt(V) · ((1 - γ) · Φ⁻¹(1 - 1/N) + γ · Φ⁻¹(1 - 1/(N·e)))      (γ: Euler–Mascheroni)
    DSR = Φ( (SR - SR0) · sqrt(T - 1) / sqrt(1 - skew · SR + (kurtosis - 1) / 4 · SR²) )

with ``SR`` the best trial's Sharpe ratio, ``V`` the variance of the trials' Sharpe ratios, ``T``
the number of return observations, ``skew`` and ``kurtosis`` (not excess: 3 for normal returns)
of the best trial's returns. Every Sharpe figure here is **per observation** (per bar), not
annualised: divide an annualised Sharpe ratio by √A and its variance by A (A bars per year). With
N = 1, SR0 = 0 and DSR is the probabilistic Sharpe ratio against zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


class DeflatedSharpeError(ValueError):
    """Arguments outside the formula's domain (no trials, too few observations, negative variance)."""


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """SR0: the expected maximum Sharpe ratio of ``trials`` skill-less trials whose Sharpe ratios
    have variance ``sharpe_variance`` (per observation); 0 for one trial."""
    if trials < 1:
        raise DeflatedSharpeError(f"trials must be >= 1, got {trials}")
    if sharpe_variance < 0 or not math.isfinite(sharpe_variance):
        raise DeflatedSharpeError(
            f"the variance of the trials' Sharpe ratios must be >= 0, got {sharpe_variance}"
        )
    if trials == 1:
        return 0.0
    inv = _NORMAL.inv_cdf
    return math.sqrt(sharpe_variance) * (
        (1 - EULER_GAMMA) * inv(1 - 1 / trials) + EULER_GAMMA * inv(1 - 1 / (trials * math.e))
    )


def deflated_sharpe_ratio(
    best_sharpe: float,
    trials: int,
    sharpe_variance: float,
    skewness: float,
    kurtosis: float,
    observations: int,
) -> float:
    """DSR of the module docstring, a probability in [0, 1]. Raises :class:`DeflatedSharpeError`
    for ``observations`` < 2 or a non-positive variance term (impossible moments)."""
    if observations < 2:
        raise DeflatedSharpeError(f"need at least 2 return observations, got {observations}")
    threshold = expected_max_sharpe(trials, sharpe_variance)
    spread = 1 - skewness * best_sharpe + (kurtosis - 1) / 4 * best_sharpe**2
    if spread <= 0:
        raise DeflatedSharpeError(
            f"skewness {skewness} and kurtosis {kurtosis} give a non-positive variance term at Sharpe {best_sharpe}"
        )
    return _NORMAL.cdf((best_sharpe - threshold) * math.sqrt(observations - 1) / math.sqrt(spread))


def deflated_best(trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The deflated Sharpe ratio of the best of several backtests, from their metric sets
    (:func:`~ktrdr.research.backtest.metrics.backtest_metrics`: ``sharpe`` annualised,
    ``bars_per_year`` A, ``bars`` T, ``return_skewness``, ``return_kurtosis``). Sharpe ratios are
    taken per bar (÷ √A); V is their sample variance across the trials (0 for one trial).
    Returns ``best`` (index of the highest Sharpe), ``trials``, ``sharpe`` (its annualised Sharpe),
    ``expected_max_sharpe`` (SR0, annualised with the best's A) and ``deflated_sharpe_ratio``.
    Raises :class:`DeflatedSharpeError` for no trials or an unbounded (null) Sharpe ratio."""
    if not trials:
        raise DeflatedSharpeError("no trials to compare")
    per_bar = []
    for n, m in enumerate(trials):
        if m["sharpe"] is None:
            raise DeflatedSharpeError(f"trial {n} has an unbounded Sharpe ratio (returns without variance)")
        per_bar.append(m["sharpe"] / math.sqrt(m["bars_per_year"]))
    best = max(range(len(per_bar)), key=per_bar.__getitem__)
    count = len(per_bar)
    mean = sum(per_bar) / count
    variance = sum((x - mean) ** 2 for x in per_bar) / (count - 1) if count > 1 else 0.0
    m = trials[best]
    scale = math.sqrt(m["bars_per_year"])
    return {
        "best": best,
        "trials": count,
        "sharpe": m["sharpe"],
        "expected_max_sharpe": expected_max_sharpe(count, variance) * scale,
        "deflated_sharpe_ratio": deflated_sharpe_ratio(
            per_bar[best], count, variance, m["return_skewness"], m["return_kurtosis"], int(m["bars"])
        ),
    }
