"""Trading costs: a fee and a slippage on every fill, in basis points, with defaults per asset class.

* ``fee_bps``: commission, in basis points (1 bp = 0.01 %) of the fill's traded value
  ``|units| × fill price``, paid in cash on every fill (entry and exit).
* ``slippage_bps``: the fill price moves against the trader by this many basis points of the
  reference price (the bar's open): a buy fills at ``open × (1 + s)``, a sell at ``open × (1 - s)``.

Defaults (:data:`DEFAULTS`), chosen a little above what a small account pays at a retail broker
for liquid instruments, so that a backtest errs on the expensive side:

* ``equities`` (calendar ``XNYS``): fee 1 bp (a per-share commission of ~$0.0035 plus exchange and
  regulatory fees is 0.5–1 bp on a $50–100 share), slippage 2 bp (half the quoted spread of a
  liquid large cap plus a little impact).
* ``forex``: fee 0.2 bp (interbank-style brokers charge ~0.2 bp of traded value), slippage 1 bp
  (half the spread of a major pair, ~0.5 pip at 1.10, widened for hourly fills at the open).
* ``crypto``: fee 10 bp (the common taker fee of large spot exchanges), slippage 5 bp (spreads and
  impact are wider than in the other classes, and the open of a 24 h market is not an auction).

Negative or non-finite values raise :class:`CostError` (a rebate is not modelled; the service maps
the error to ``INVALID_ARGUMENT``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Asset class of each calendar of :mod:`ktrdr.calendars`.
ASSET_CLASS = {"XNYS": "equities", "forex": "forex", "crypto": "crypto"}


class CostError(ValueError):
    """Costs that cannot be used: negative, not finite, or an unknown asset class."""


@dataclass(frozen=True)
class Costs:
    """Fee and slippage in basis points (module docstring); validated on construction."""

    fee_bps: float
    slippage_bps: float

    def __post_init__(self) -> None:
        for name in ("fee_bps", "slippage_bps"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise CostError(f"{name} must be a finite number of basis points >= 0, got {value!r}")
            if value >= 10_000:
                raise CostError(f"{name} must be below 10000 basis points (100 %), got {value!r}")

    @property
    def fee(self) -> float:
        """The fee as a fraction of traded value (1 bp = 0.0001)."""
        return self.fee_bps / 10_000

    @property
    def slippage(self) -> float:
        """The slippage as a fraction of the reference price."""
        return self.slippage_bps / 10_000


DEFAULTS = {
    "equities": Costs(fee_bps=1.0, slippage_bps=2.0),
    "forex": Costs(fee_bps=0.2, slippage_bps=1.0),
    "crypto": Costs(fee_bps=10.0, slippage_bps=5.0),
}


def costs_for(calendar: str, *, fee_bps: float | None = None, slippage_bps: float | None = None) -> Costs:
    """The asset class's default costs for ``calendar`` (``XNYS``, ``forex``, ``crypto``), each
    overridden when given. Raises :class:`CostError` for an unknown calendar or a bad value."""
    if calendar not in ASSET_CLASS:
        raise CostError(f"unknown calendar {calendar!r}; known: {', '.join(ASSET_CLASS)}")
    default = DEFAULTS[ASSET_CLASS[calendar]]
    return Costs(
        fee_bps=default.fee_bps if fee_bps is None else fee_bps,
        slippage_bps=default.slippage_bps if slippage_bps is None else slippage_bps,
    )
