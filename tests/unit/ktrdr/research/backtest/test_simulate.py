"""The simulator: fills at the next open, fee and slippage on every fill, sizing, the end close."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.research.backtest.costs import Costs
from ktrdr.research.backtest.simulate import SimulationError, Sizing, simulate
from tests.support.backtest import HOUR_NS, START_NS, bars_from, random_bars

OPENS = [10, 11, 12, 13, 14, 15]
CLOSES = [10.5, 11.5, 12.5, 13.5, 14.5, 15.5]


def test_a_long_then_a_short_by_hand():
    # fee 10 bp, slippage 20 bp, 10 units; long held during bars 1-2, short from bar 4 to the end
    sim = simulate(
        bars_from(OPENS, CLOSES), np.array([1, 1, 0, -1, -1, -1]),
        costs=Costs(fee_bps=10, slippage_bps=20), sizing=Sizing(units=10), initial_cash=1000.0,
    )  # fmt: skip
    t = sim.trades
    assert len(t) == 2
    assert t.side.tolist() == [1, -1] and t.units.tolist() == [10, 10]
    assert t.entry_bar.tolist() == [1, 4] and t.exit_bar.tolist() == [3, 5]
    # fills at the NEXT bar's open, slippage against the trader: buy 11 * 1.002, sell 13 * 0.998 ...
    assert t.entry_price.tolist() == pytest.approx([11.022, 13.972])
    assert t.exit_price.tolist() == pytest.approx([12.974, 15.531])  # ... the short closed at the last close
    assert t.fees.tolist() == pytest.approx([0.11022 + 0.12974, 0.13972 + 0.15531])  # both fees
    assert t.pnl.tolist() == pytest.approx([19.28004, -15.88503])
    assert t.returns.tolist() == pytest.approx([19.28004 / 110.22, -15.88503 / 139.72])
    assert t.slippage.tolist() == pytest.approx([10 * (0.022 + 0.026), 10 * (0.028 + 0.031)])
    assert t.holding_bars.tolist() == [2, 2] and t.closed_at_end.tolist() == [False, True]
    assert t.entry_time.tolist() == [START_NS + HOUR_NS, START_NS + 4 * HOUR_NS]
    assert t.exit_time.tolist() == [START_NS + 3 * HOUR_NS, START_NS + 6 * HOUR_NS]  # end: the last close
    assert sim.equity.tolist() == pytest.approx(
        [1000, 1004.66978, 1014.66978, 1019.28004, 1013.86032, 1003.39501]
    )
    assert sim.position.tolist() == [0, 10, 10, 0, -10, -10]


def test_final_equity_is_initial_cash_plus_the_trades_pnl():
    bars = random_bars(3000, seed=2)
    rng = np.random.default_rng(3)
    target = np.repeat(rng.integers(-1, 2, 150), 20)
    sim = simulate(bars, target, costs=Costs(3, 4), sizing=Sizing(fraction=0.7), initial_cash=5e4)
    assert len(sim.trades) > 40
    assert sim.equity[-1] == pytest.approx(5e4 + sim.trades.pnl.sum(), rel=1e-12)
    # marked to the close between fills (the last bar excluded: the end close): units x close moves
    unchanged = (sim.position[1:] == sim.position[:-1])[:-1]
    moves = np.diff(sim.equity)[:-1][unchanged]
    expected = (sim.position[1:] * np.diff(bars.close))[:-1][unchanged]
    np.testing.assert_allclose(moves, expected, rtol=1e-9, atol=1e-6)


def test_fraction_sizing_spends_the_fraction_of_equity_including_the_fee():
    sim = simulate(
        bars_from(OPENS, CLOSES), np.array([1, 0, 1, 1, 0, 0]),
        costs=Costs(fee_bps=10, slippage_bps=0), sizing=Sizing(fraction=0.5), initial_cash=1000.0,
    )  # fmt: skip
    t = sim.trades
    first = 0.5 * 1000 / (11 * 1.001)
    assert t.units[0] == pytest.approx(first)
    assert t.units[0] * 11 + t.fees[0] - 0.001 * first * 12 == pytest.approx(500)  # cost of the position
    equity_before_second = 1000 + t.pnl[0]
    assert t.units[1] == pytest.approx(0.5 * equity_before_second / (13 * 1.001))


def test_a_target_set_at_the_last_bar_is_never_filled():
    sim = simulate(
        bars_from(OPENS, CLOSES), np.array([0, 0, 0, 0, 0, 1]), costs=Costs(10, 10), sizing=Sizing(units=1)
    )
    assert len(sim.trades) == 0 and np.all(sim.equity == 100_000.0) and not sim.position.any()


def test_back_to_back_reversal_is_two_fills_at_the_same_open():
    sim = simulate(
        bars_from(OPENS, CLOSES), np.array([1, -1, -1, 1, 0, 0]), costs=Costs(0, 0), sizing=Sizing(units=1)
    )
    t = sim.trades
    assert t.entry_bar.tolist() == [1, 2, 4] and t.exit_bar.tolist() == [2, 4, 5]
    assert t.exit_price.tolist() == [12, 14, 15] and t.entry_price.tolist() == [11, 12, 14]
    assert t.pnl.tolist() == pytest.approx([1, -2, 1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": np.zeros(5)}, r"target has shape \(5,\), expected \(6,\)"),
        ({"target": np.array([0, 2, 0, 0, 0, 0])}, "target values must be -1, 0 or"),
        ({"initial_cash": -1.0}, "initial cash must be a finite amount > 0, got -1.0"),
    ],
)
def test_bad_input_is_refused(kwargs, message):
    args = {"target": np.zeros(6), "initial_cash": 1000.0, **kwargs}
    with pytest.raises(SimulationError, match=message):
        simulate(bars_from(OPENS, CLOSES), args["target"], costs=Costs(0, 0), sizing=Sizing(units=1),
                 initial_cash=args["initial_cash"])  # fmt: skip


def test_sizing_is_validated():
    with pytest.raises(SimulationError, match="exactly one of fraction"):
        Sizing()
    with pytest.raises(SimulationError, match="exactly one of fraction"):
        Sizing(fraction=0.5, units=1)
    with pytest.raises(SimulationError, match=r"fraction must be in \(0, 1\], got 1.5"):
        Sizing(fraction=1.5)
    with pytest.raises(SimulationError, match="units must be a finite number > 0, got -2"):
        Sizing(units=-2)
