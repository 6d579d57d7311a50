"""Simulate target positions on one symbol's bars: fills at the next open, costs on every fill.

Contract of :func:`simulate`:

* ``target[t]`` (-1, 0, +1) is the position wanted after bar t's close. The position *held during*
  bar b is ``target[b-1]`` (flat during bar 0); where it changes, the change is filled at bar b's
  **open**. A target set at the last bar is never filled (there is no next open).
* A change closes the open trade (if any) and then opens the new one, both at that open: a
  reversal long → short is two fills. Fill prices include slippage against the trader (a buy at
  ``open × (1 + s)``, a sell at ``open × (1 - s)``); every fill pays ``fee × |units| × fill price``
  in cash (:mod:`~ktrdr.research.backtest.costs`).
* Sizing (:class:`Sizing`): ``fraction`` f of equity: a new position gets
  ``units = f × equity / (fill × (1 + fee))`` (fractional units; equity is the cash at that moment,
  the account being flat between the two fills), so that the position and its entry fee together
  cost f × equity; or a fixed number of ``units`` per position (no cash limit: more than the equity
  is leverage). A short's units are computed the same way. With equity ≤ 0, fraction sizing
  opens nothing.
* Cash: a long entry pays ``units × fill + fee``; a short entry receives ``units × fill - fee``;
  exits reverse that. **Equity** at bar b = cash + signed units × close[b] (marked to the close).
* A trade still open after the last bar is closed at the last bar's **close**, with slippage and
  fee (``closed_at_end``); the last equity value is that liquidated cash, so
  ``equity[-1] = initial_cash + Σ trade pnl`` exactly.
* Trade P&L is net of both fees (entry and exit) and of slippage:
  ``pnl = side × units × (exit fill - entry fill) - entry fee - exit fee``; its return is
  ``pnl / (units × entry fill)``; ``holding_bars`` = exit bar - entry bar (an end-closed trade is
  held through the last bar: n - entry bar).

Vectorised: Python loops over the fills only; the equity curve is built from per-segment cash and
units with NumPy (``bench backtest`` measures it against backtesting.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ktrdr.research.backtest.costs import Costs
from ktrdr.research.bars import Bars


class SimulationError(ValueError):
    """Input the simulator cannot use: a target of the wrong length or values, bad sizing or cash."""


@dataclass(frozen=True)
class Sizing:
    """Exactly one of ``fraction`` (of equity, in (0, 1]) or ``units`` (> 0) per new position."""

    fraction: float | None = None
    units: float | None = None

    def __post_init__(self) -> None:
        if (self.fraction is None) == (self.units is None):
            raise SimulationError("sizing needs exactly one of fraction (of equity) or units")
        if self.fraction is not None and not (0 < self.fraction <= 1):
            raise SimulationError(f"sizing fraction must be in (0, 1], got {self.fraction!r}")
        if self.units is not None and not (math.isfinite(self.units) and self.units > 0):
            raise SimulationError(f"sizing units must be a finite number > 0, got {self.units!r}")


@dataclass(frozen=True, eq=False)
class Trades:
    """The closed trades, one entry per trade in each array (time order). ``side`` +1 long, -1
    short; ``entry_bar``/``exit_bar``: bar indices of the fills (an end-closed trade: the last
    bar, filled at its close); times in int64 ns UTC (entry: the entry bar's open time; exit: the
    exit bar's open time, or the last bar's close time); prices are fill prices; ``fees`` both
    fees; ``slippage`` what slippage cost on both fills (units × |fill - reference price|)."""

    side: np.ndarray
    units: np.ndarray
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    entry_time: np.ndarray
    exit_time: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    fees: np.ndarray
    slippage: np.ndarray
    pnl: np.ndarray
    returns: np.ndarray
    holding_bars: np.ndarray
    closed_at_end: np.ndarray

    def __len__(self) -> int:
        return int(self.side.shape[0])

    def records(self) -> list[dict[str, Any]]:
        """One JSON-able dict per trade, keys as the field names (``returns`` as ``return``)."""
        names = [f for f in self.__dataclass_fields__]
        columns = [getattr(self, f).tolist() for f in names]
        keys = ["return" if f == "returns" else f for f in names]
        return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


@dataclass(frozen=True, eq=False)
class Simulation:
    """What :func:`simulate` returns. ``equity`` (float64 per bar, marked to the close; the last
    value after closing an open trade), ``position`` (signed units held at each bar's close, before
    that closing), ``trades``, and the inputs ``initial_cash`` and ``costs``."""

    equity: np.ndarray
    position: np.ndarray
    trades: Trades
    initial_cash: float
    costs: Costs


def simulate(
    bars: Bars, target: np.ndarray, *, costs: Costs, sizing: Sizing, initial_cash: float = 100_000.0
) -> Simulation:
    """Run the targets on ``bars`` (module docstring). Raises :class:`SimulationError`."""
    n = len(bars)
    wanted = np.asarray(target)
    if wanted.shape != (n,):
        raise SimulationError(f"target has shape {wanted.shape}, expected ({n},) (one value per bar)")
    if n and not np.isin(wanted, (-1, 0, 1)).all():
        raise SimulationError("target values must be -1, 0 or +1")
    if not (math.isfinite(initial_cash) and initial_cash > 0):
        raise SimulationError(f"initial cash must be a finite amount > 0, got {initial_cash!r}")
    held = np.zeros(n, dtype=np.int64)
    held[1:] = wanted[:-1]
    fills = np.flatnonzero(held[1:] != held[:-1]) + 1
    opens, closes = bars.open, bars.close
    fee, slip = costs.fee, costs.slippage
    fixed_units = sizing.units
    fraction = sizing.fraction if sizing.fraction is not None else 0.0
    cash, units, side = float(initial_cash), 0.0, 0
    entry_bar, entry_fill, entry_fee = 0, 0.0, 0.0
    seg_start, seg_cash, seg_units = [0], [cash], [0.0]
    closed: list[tuple[int, float, int, int, float, float, float, float, bool]] = []

    def close_trade(bar: int, reference: float, at_end: bool) -> None:
        nonlocal cash
        fill = reference * (1 - side * slip)
        exit_fee = fee * units * fill
        cash += side * units * fill - exit_fee
        closed.append(
            (side, units, entry_bar, bar, entry_fill, fill, entry_fee + exit_fee, reference, at_end)
        )

    for bar in fills.tolist():
        reference = float(opens[bar])
        if side:
            close_trade(bar, reference, False)
        side = int(held[bar])
        units = 0.0
        if side:
            entry_fill = reference * (1 + side * slip)
            if fixed_units is not None:
                units = fixed_units
            else:
                units = max(fraction * cash, 0.0) / (entry_fill * (1 + fee))
            if units > 0:
                entry_bar, entry_fee = bar, fee * units * entry_fill
                cash -= side * units * entry_fill + entry_fee
            else:
                side = 0
        seg_start.append(bar)
        seg_cash.append(cash)
        seg_units.append(side * units)
    lengths = np.diff(np.append(seg_start, n))
    position = np.repeat(np.asarray(seg_units), lengths)
    equity = np.repeat(np.asarray(seg_cash), lengths) + position * closes
    if side and n:
        close_trade(n - 1, float(closes[-1]), True)
        equity[-1] = cash
    return Simulation(equity, position, _trades(bars, closed, opens), float(initial_cash), costs)


def _trades(bars: Bars, closed: list[tuple], opens: np.ndarray) -> Trades:
    """Trade arrays from the simulator's records ``(side, units, entry bar, exit bar, entry fill,
    exit fill, fees, exit reference price, closed at end)``."""
    rec = np.asarray(closed, dtype=np.float64).reshape(-1, 9)
    side = rec[:, 0].astype(np.int8)
    units = rec[:, 1]
    entry_bar = rec[:, 2].astype(np.int64)
    exit_bar = rec[:, 3].astype(np.int64)
    entry_price, exit_price, fees, exit_reference = rec[:, 4], rec[:, 5], rec[:, 6], rec[:, 7]
    at_end = rec[:, 8].astype(bool)
    pnl = side * units * (exit_price - entry_price) - fees
    return Trades(
        side=side,
        units=units,
        entry_bar=entry_bar,
        exit_bar=exit_bar,
        entry_time=bars.time[entry_bar],
        exit_time=np.where(at_end, bars.close_time[exit_bar], bars.time[exit_bar]),
        entry_price=entry_price,
        exit_price=exit_price,
        fees=fees,
        slippage=units * (np.abs(entry_price - opens[entry_bar]) + np.abs(exit_price - exit_reference)),
        pnl=pnl,
        returns=pnl / (units * entry_price),
        holding_bars=exit_bar - entry_bar + at_end,
        closed_at_end=at_end,
    )
