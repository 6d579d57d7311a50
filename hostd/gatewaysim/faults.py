"""Fault injection knobs. One :class:`Faults` belongs to a running simulator and is read live, so a
test may change it between requests (``sim.faults.latency_s = 0.5``).

Connectivity loss (errors 1100/1102) is an action rather than a setting:
:meth:`hostd.gatewaysim.server.GatewaySim.connectivity_lost` / ``connectivity_restored``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Faults:
    #: Delay before every contract-details, head-timestamp and historical-data answer (seconds).
    latency_s: float = 0.0
    #: Close each connection when its (N+1)-th data request arrives (that request is never answered).
    drop_after_requests: int | None = None
    #: Close each connection this many seconds after its API started.
    drop_after_s: float | None = None
    #: Series (``AAPL``, ``EURUSD``) answered with error 200, as if IB had no such security.
    unknown_symbols: set[str] = field(default_factory=set)
    #: The next N historical-data requests are answered with error 321 (a validation error).
    reject_321: int = 0
    #: Client ids refused with error 326 as if another application held them.
    reserved_client_ids: set[int] = field(default_factory=set)

    def check(self) -> None:
        """Raise ValueError naming the first knob out of range."""
        if self.latency_s < 0:
            raise ValueError(f"latency must be >= 0 s, got {self.latency_s}")
        if self.drop_after_requests is not None and self.drop_after_requests < 0:
            raise ValueError(f"drop-after-requests must be >= 0, got {self.drop_after_requests}")
        if self.drop_after_s is not None and self.drop_after_s <= 0:
            raise ValueError(f"drop-after-seconds must be > 0, got {self.drop_after_s}")
        if self.reject_321 < 0:
            raise ValueError(f"reject-321 must be >= 0, got {self.reject_321}")
