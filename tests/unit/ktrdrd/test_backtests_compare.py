"""The deflated Sharpe ratio the daemon answers in CompareModelVersions: the best backtested
version's figures (as the library computes them), or the reason there are none."""

from __future__ import annotations

import pytest

from ktrdr.research.backtest.deflated import deflated_best
from ktrdrd.backtests.compare import deflated_sharpe


def metrics(sharpe: float, bars: int = 2000) -> dict[str, float]:
    return {
        "sharpe": sharpe,
        "bars_per_year": 1764.0,
        "bars": float(bars),
        "return_skewness": -0.1,
        "return_kurtosis": 3.5,
    }


def test_the_best_of_the_backtested_versions_is_deflated() -> None:
    trials = [
        ("models/t/versions/1", metrics(0.4)),
        ("models/t/versions/2", metrics(1.3)),
        ("models/t/versions/3", metrics(0.9)),
    ]
    out = deflated_sharpe(trials)
    expected = deflated_best([m for _n, m in trials])
    assert out["bestVersion"] == "models/t/versions/2" and out["trials"] == 3
    assert out["sharpe"] == 1.3 and "unavailableReason" not in out
    assert out["deflatedSharpeRatio"] == pytest.approx(expected["deflated_sharpe_ratio"])
    assert out["expectedMaxSharpe"] == pytest.approx(expected["expected_max_sharpe"])


def test_fewer_than_two_trials_or_an_unbounded_sharpe_give_a_reason() -> None:
    one = deflated_sharpe([("models/t/versions/1", metrics(1.0))])
    assert one["trials"] == 1 and "at least two" in one["unavailableReason"] and "bestVersion" not in one
    unbounded = {k: v for k, v in metrics(1.0).items() if k != "sharpe"}
    two = deflated_sharpe([("models/t/versions/1", metrics(1.0)), ("models/t/versions/2", unbounded)])
    assert two["trials"] == 2 and "models/t/versions/2 has no sharpe" in two["unavailableReason"]
    few_bars = deflated_sharpe([("a", metrics(1.0, bars=1)), ("b", metrics(0.5, bars=1))])
    assert "at least 2 return observations" in few_bars["unavailableReason"]
