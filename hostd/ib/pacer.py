"""The central pacer for IB's historical-data rules, so the gateway never answers 162 for pacing.

Rules (TWS API "Historical Data Limitations", applied to every historical-data request whatever its
bar size; anchors.md §4.3):

1. no identical request within 15 s;
2. fewer than 6 requests for the same contract, exchange and tick type within 2 s;
3. at most 60 requests in any 10 minutes (a request of weight 2, BID_ASK, counts twice);
4. at most 50 requests open at once.

:meth:`Pacer.acquire` waits until a request may go, then records it (it is *open* until
:meth:`Pacer.release`). Waiters are woken when a window or an open slot frees; the check-and-record is
one synchronous step on the event loop, so two waiters never take one slot.

``clock_scale`` K divides every window (as ``hostd gateway-sim --clock-scale K`` does), so tests run
the rules quickly. ``margin_s`` (real seconds, not scaled) is added to each window: the gateway sees a
request slightly after the pacer records it, and the arrival delay varies.
:meth:`Pacer.hold` stops every request for a while (the back-off after an unexpected 162).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

#: Called with (seconds to wait, the rule that holds the request) before each wait.
WaitListener = Callable[[float, str], None]


@dataclass(frozen=True)
class PacingRules:
    identical_window_s: float = 15.0
    burst_window_s: float = 2.0
    burst_max: int = 5  # "fewer than 6"
    rolling_window_s: float = 600.0
    rolling_max: int = 60
    open_max: int = 50
    #: Added to every scaled window, in real seconds.
    margin_s: float = 0.05


@dataclass(frozen=True)
class PacerSnapshot:
    """What :meth:`Pacer.snapshot` reports: counts, and seconds until the next request may go (0 =
    now) and until every queued request could have gone."""

    requests_in_window: int
    open_requests: int
    queued_requests: int
    next_slot_s: float
    queue_eta_s: float


class Pacer:
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
        self._sent: deque[float] = deque()  # one entry per unit of weight, oldest first
        self._bursts: dict[Hashable, deque[float]] = {}
        self._identical: dict[Hashable, float] = {}
        self._hold_until = 0.0
        self._hold_reason = ""
        self.open = 0
        self.queued = 0
        self._changed = asyncio.Event()

    def window(self, seconds: float) -> float:
        """A rule's window in this pacer's clock: scaled, plus the margin."""
        return seconds / self.clock_scale + self.rules.margin_s

    def _prune(self, now: float) -> None:
        rolling = self.window(self.rules.rolling_window_s)
        while self._sent and now - self._sent[0] >= rolling:
            self._sent.popleft()
        burst = self.window(self.rules.burst_window_s)
        for key in [k for k, q in self._bursts.items() if not q or now - q[-1] >= burst]:
            del self._bursts[key]
        identical = self.window(self.rules.identical_window_s)
        for key in [k for k, t in self._identical.items() if now - t >= identical]:
            del self._identical[key]

    def wait_for(self, identity: Hashable, burst_key: Hashable, weight: int = 1) -> tuple[float, str]:
        """(seconds until this request may go, the rule that holds it); (0, "") when it may go now;
        ``inf`` while the open-request limit holds it (it frees on a release)."""
        rules = self.rules
        now = self._clock()
        self._prune(now)
        waits: list[tuple[float, str]] = [(self._hold_until - now, self._hold_reason)]
        last = self._identical.get(identity)
        if last is not None:
            waits.append(
                (
                    last + self.window(rules.identical_window_s) - now,
                    f"identical request within {rules.identical_window_s:g} s",
                )
            )
        burst = self._bursts.get(burst_key, ())
        if len(burst) >= rules.burst_max:
            waits.append(
                (
                    burst[-rules.burst_max] + self.window(rules.burst_window_s) - now,
                    f"{rules.burst_max + 1} requests for one contract and tick type within {rules.burst_window_s:g} s",
                )
            )
        over = len(self._sent) + weight - rules.rolling_max
        if over > 0:
            waits.append(
                (
                    self._sent[over - 1] + self.window(rules.rolling_window_s) - now,
                    f"{rules.rolling_max} requests per {rules.rolling_window_s / 60:g} minutes",
                )
            )
        if self.open >= rules.open_max:
            waits.append((float("inf"), f"{rules.open_max} open requests"))
        wait, reason = max(waits)
        return (wait, reason) if wait > 0 else (0.0, "")

    async def acquire(
        self, identity: Hashable, burst_key: Hashable, weight: int = 1, on_wait: WaitListener | None = None
    ) -> None:
        """Wait until the request may go under every rule, then record it as sent and open."""
        self.queued += 1
        try:
            while True:
                wait, reason = self.wait_for(identity, burst_key, weight)
                if wait == 0:
                    break
                if on_wait is not None:
                    on_wait(wait, reason)
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), None if wait == float("inf") else wait)
        finally:
            self.queued -= 1
        now = self._clock()
        self._sent.extend([now] * weight)
        self._bursts.setdefault(burst_key, deque(maxlen=self.rules.burst_max)).append(now)
        self._identical[identity] = now
        self.open += 1

    def release(self) -> None:
        """An acquired request was answered, failed or was cancelled."""
        self.open = max(0, self.open - 1)
        self._wake()

    def hold(self, seconds: float, reason: str) -> None:
        """No request goes for ``seconds`` (already scaled by the caller via :meth:`window`)."""
        until = self._clock() + seconds
        if until > self._hold_until:
            self._hold_until, self._hold_reason = until, reason
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def snapshot(self) -> PacerSnapshot:
        now = self._clock()
        self._prune(now)
        next_slot = max(0.0, self._hold_until - now)
        if len(self._sent) >= self.rules.rolling_max:
            next_slot = max(next_slot, self._sent[0] + self.window(self.rules.rolling_window_s) - now)
        return PacerSnapshot(
            requests_in_window=len(self._sent),
            open_requests=self.open,
            queued_requests=self.queued,
            next_slot_s=next_slot,
            queue_eta_s=self.eta_s(self.queued),
        )

    def eta_s(self, requests: int) -> float:
        """Seconds until ``requests`` more requests could all have been sent under the rolling rule
        (a lower bound: the other rules and the answers' latency come on top)."""
        now = self._clock()
        self._prune(now)
        rules = self.rules
        free = rules.rolling_max - len(self._sent)
        if requests <= free:
            return max(0.0, self._hold_until - now)
        extra = requests - free  # requests that must wait for older ones to leave the window
        window = self.window(rules.rolling_window_s)
        rounds, index = divmod(extra - 1, rules.rolling_max)
        first_free = self._sent[index] + window - now if index < len(self._sent) else window
        return max(0.0, self._hold_until - now) + rounds * window + max(0.0, first_free)
