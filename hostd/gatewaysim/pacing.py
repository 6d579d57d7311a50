"""IB's historical-data pacing rules, enforced the way TWS does: a violating request gets error 162.

The rules (TWS API "Historical Data Limitations"), applied to every historical-data request the
gateway accepts, across all its client connections:

1. no identical request (same contract, end, duration, bar size, whatToShow, useRTH, formatDate)
   within 15 s of the last accepted one;
2. fewer than 6 requests for the same contract, exchange and tick type (whatToShow) within 2 s;
3. at most 60 requests in any rolling 10 minutes;
4. at most 50 requests open (accepted, not yet answered or cancelled) at once.

A rejected request does not count against later ones. ``clock_scale`` divides every window (with 100,
"10 minutes" lasts 6 s) so tests and benchmarks can exercise the rules quickly; the counts stay.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

from hostd.ibpacing import PacingRules


class Pacer:
    """Admits or rejects requests; ``admit`` returns None (admitted and recorded) or the violation."""

    def __init__(
        self,
        rules: PacingRules | None = None,
        clock_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if clock_scale <= 0:
            raise ValueError(f"clock_scale must be > 0, got {clock_scale}")
        self.rules = rules or PacingRules()
        self.clock_scale = clock_scale
        self._clock = clock
        self._all: deque[float] = deque()
        self._by_burst_key: dict[Hashable, deque[float]] = {}
        self._last_identical: dict[Hashable, float] = {}
        self.open = 0

    def _window(self, seconds: float) -> float:
        return seconds / self.clock_scale

    def admit(self, identity: Hashable, burst_key: Hashable) -> str | None:
        """Check the four rules for a request; on success record it and count it open."""
        now = self._clock()
        rules = self.rules
        while self._all and now - self._all[0] >= self._window(rules.rolling_window_s):
            self._all.popleft()
        burst = self._by_burst_key.setdefault(burst_key, deque())
        while burst and now - burst[0] >= self._window(rules.burst_window_s):
            burst.popleft()
        last = self._last_identical.get(identity)
        if last is not None and now - last < self._window(rules.identical_window_s):
            return f"identical request within {rules.identical_window_s:g} s"
        if len(burst) >= rules.burst_max:
            return f"{rules.burst_max + 1} or more requests for the same contract and tick type within {rules.burst_window_s:g} s"
        if len(self._all) >= rules.rolling_max:
            return f"more than {rules.rolling_max} requests within {rules.rolling_window_s / 60:g} minutes"
        if self.open >= rules.open_max:
            return f"more than {rules.open_max} simultaneous open requests"
        self._all.append(now)
        burst.append(now)
        self._last_identical[identity] = now
        self._forget_old_identities(now)
        self.open += 1
        return None

    def close(self) -> None:
        """One admitted request was answered or cancelled."""
        self.open = max(0, self.open - 1)

    def _forget_old_identities(self, now: float) -> None:
        """Drop entries no rule can use any more, so the tables stay small however many contracts."""
        if len(self._last_identical) > 4 * self.rules.rolling_max:
            window = self._window(self.rules.identical_window_s)
            self._last_identical = {k: t for k, t in self._last_identical.items() if now - t < window}
            burst_window = self._window(self.rules.burst_window_s)
            self._by_burst_key = {
                k: q for k, q in self._by_burst_key.items() if q and now - q[-1] < burst_window
            }
