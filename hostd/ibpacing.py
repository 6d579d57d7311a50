"""IB's historical-data pacing limits (TWS API "Historical Data Limitations"), written once.

Both sides of the TWS connection use them: the gateway simulator enforces them (a violation gets
error 162, :mod:`hostd.gatewaysim.pacing`) and the IB host paces its requests so that the gateway
never has to (:mod:`hostd.ib.pacer`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PacingRules:
    """The four limits; windows in seconds (before any clock scale), counts in requests."""

    #: No identical request (same contract, end, duration, bar size, whatToShow, useRTH, formatDate)
    #: within this many seconds.
    identical_window_s: float = 15.0
    #: Fewer than 6 requests for the same contract, exchange and tick type within 2 s.
    burst_window_s: float = 2.0
    burst_max: int = 5
    #: At most 60 requests in any rolling 10 minutes.
    rolling_window_s: float = 600.0
    rolling_max: int = 60
    #: At most 50 requests open (sent, not yet answered or cancelled) at once.
    open_max: int = 50
