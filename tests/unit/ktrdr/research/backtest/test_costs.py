"""Costs: defaults per asset class, overrides, and refusal of negative or non-finite values."""

from __future__ import annotations

import math

import pytest

from ktrdr.research.backtest.costs import DEFAULTS, CostError, Costs, costs_for


def test_defaults_per_asset_class_and_overrides():
    assert costs_for("XNYS") == DEFAULTS["equities"] == Costs(1.0, 2.0)
    assert costs_for("forex") == DEFAULTS["forex"] == Costs(0.2, 1.0)
    assert costs_for("crypto") == DEFAULTS["crypto"] == Costs(10.0, 5.0)
    assert costs_for("crypto", fee_bps=0) == Costs(0.0, 5.0)
    assert costs_for("XNYS", slippage_bps=7.5) == Costs(1.0, 7.5)
    assert Costs(25, 50).fee == 0.0025 and Costs(25, 50).slippage == 0.005


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fee_bps": -0.1}, "fee_bps must be a finite number of basis points >= 0, got -0.1"),
        ({"slippage_bps": -3}, "slippage_bps must be a finite number of basis points >= 0, got -3"),
        ({"fee_bps": math.nan}, "fee_bps must be a finite number"),
        ({"slippage_bps": math.inf}, "slippage_bps must be a finite number"),
        ({"fee_bps": 10_000}, "fee_bps must be below 10000 basis points"),
    ],
)
def test_bad_costs_are_refused(kwargs, message):
    with pytest.raises(CostError, match=message):
        costs_for("forex", **kwargs)


def test_unknown_calendar_is_refused():
    with pytest.raises(CostError, match="unknown calendar 'TSE'; known: XNYS, forex, crypto"):
        costs_for("TSE")
