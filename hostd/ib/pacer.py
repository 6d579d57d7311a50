"""The central pacer for IB's historical-data rules, so the gateway never answers 162 for pacing.

Rules (TWS API "Historical Data Limitations", applied to every historical-data request whatever its
bar size):

1. no identical request within 15 s;
2. fewer than 6 requests for the same contract, exchange and tick type within 2 s;
3. at most 60 requests in any 10 minutes (a request of weight 2, BID_ASK, counts twice);
4. at most 50 requests open at once.

:meth:`Pacer.acquire` waits until a request may go, then records it and returns its
:class:`Slot`; the request is *open* until :meth:`Pacer.release`. A request counts in the windows from
the moment it is **answered** (its release), not from when it was sent: the gateway counts it when it
arrives, which is before the answer, so the pacer's windows always end after the gateway's however
long the request travelled. While open it counts as "now" in every window. Waiters are woken when a
window or an open slot frees; the check-and-record is one synchronous step on the event loop, so two
waiters never take one slot.

``clock_scale`` K divides every window (as ``hostd gateway-sim --clock-scale K`` does), so tests run
the rules quickly. ``margin_s`` (real seconds, not scaled) is added to each window: the gateway sees a
request slightly after the pacer records it, and the arrival delay varies.
:meth:`Pacer.hold` stops every request for a while (the back-off after an unexpected 162).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from hostd.ibpacing import PacingRules

#: Real seconds added to every scaled window (see the module docstring).
DEFAULT_MARGIN_S = 0.05
#: Called with (seconds to wait, the rule that holds the request) before each wait.
WaitListener = Callable[[float, str], None]


@dataclass(frozen=True)
class PacerSnapshot:
    """What :meth:`Pacer.snapshot` reports: counts, and seconds until the next request may go (0 =
    now) and until every queued request could have gone."""

    requests_in_window: int
    open_requests: int
    queued_requests: int
    next_slot_s: float
    queue_eta_s: float


class Slot:
    """One acquired request: ``at`` is when it was answered (``inf`` while it is open)."""

    __slots__ = ("at", "weight")

    def __init__(self, weight: int) -> None:
        self.at = float("inf")
        self.weight = weight


class Pacer:
    def __init__(
        self,
        rules: PacingRules | None = None,
        clock_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        margin_s: float = DEFAULT_MARGIN_S,
    ) -> None:
        if clock_scale <= 0:
            raise ValueError(f"clock_scale must be > 0, got {clock_scale}")
        self.rules = rules or PacingRules()
        self.margin_s = margin_s
        self.clock_scale = clock_scale
        self._clock = clock
        self._sent: list[Slot] = []
        self._bursts: dict[Hashable, list[Slot]] = {}
        self._identical: dict[Hashable, Slot] = {}
        self._hold_until = 0.0
        self._hold_reason = ""
        self.open = 0
        self.queued = 0
        self._changed = asyncio.Event()

    def window(self, seconds: float) -> float:
        """A rule's window in this pacer's clock: scaled, plus the margin."""
        return seconds / self.clock_scale + self.margin_s

    def _prune(self, now: float) -> None:
        rolling = self.window(self.rules.rolling_window_s)
        self._sent = [slot for slot in self._sent if now - slot.at < rolling]
        burst = self.window(self.rules.burst_window_s)
        self._bursts = {
            key: kept
            for key, slots in self._bursts.items()
            if (kept := [s for s in slots if now - s.at < burst])
        }
        identical = self.window(self.rules.identical_window_s)
        self._identical = {key: slot for key, slot in self._identical.items() if now - slot.at < identical}

    def _weight_in_window(self) -> int:
        return sum(slot.weight for slot in self._sent)

    def wait_for(self, identity: Hashable, burst_key: Hashable, weight: int = 1) -> tuple[float, str]:
        """(seconds until this request may go, the rule that holds it); (0, "") when it may go now;
        ``inf`` while only the answer of an open request can free it (a release wakes the waiters)."""
        rules = self.rules
        now = self._clock()
        self._prune(now)
        waits: list[tuple[float, str]] = [(self._hold_until - now, self._hold_reason)]
        last = self._identical.get(identity)
        if last is not None:
            waits.append(
                (
                    last.at + self.window(rules.identical_window_s) - now,
                    f"identical request within {rules.identical_window_s:g} s",
                )
            )
        burst = sorted(slot.at for slot in self._bursts.get(burst_key, ()))
        if len(burst) >= rules.burst_max:
            waits.append(
                (
                    burst[-rules.burst_max] + self.window(rules.burst_window_s) - now,
                    f"{rules.burst_max + 1} requests for one contract and tick type within {rules.burst_window_s:g} s",
                )
            )
        over = self._weight_in_window() + weight - rules.rolling_max
        if over > 0:
            times = sorted(slot.at for slot in self._sent for _ in range(slot.weight))
            waits.append(
                (
                    times[over - 1] + self.window(rules.rolling_window_s) - now,
                    f"{rules.rolling_max} requests per {rules.rolling_window_s / 60:g} minutes",
                )
            )
        if self.open >= rules.open_max:
            waits.append((float("inf"), f"{rules.open_max} open requests"))
        wait, reason = max(waits)
        return (wait, reason) if wait > 0 else (0.0, "")

    async def acquire(
        self, identity: Hashable, burst_key: Hashable, weight: int = 1, on_wait: WaitListener | None = None
    ) -> Slot:
        """Wait until the request may go under every rule, then record it as open; pass the slot
        to :meth:`release` when the request is answered, fails or is cancelled."""
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
        slot = Slot(weight)
        self._sent.append(slot)
        self._bursts.setdefault(burst_key, []).append(slot)
        self._identical[identity] = slot
        self.open += 1
        return slot

    def release(self, slot: Slot) -> None:
        """The request of ``slot`` was answered, failed or was cancelled: it counts from now."""
        if slot.at == float("inf"):
            slot.at = self._clock()
            self.open -= 1
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
        if self._weight_in_window() >= self.rules.rolling_max:
            oldest = min(slot.at for slot in self._sent)
            next_slot = max(next_slot, oldest + self.window(self.rules.rolling_window_s) - now)
        return PacerSnapshot(
            requests_in_window=self._weight_in_window(),
            open_requests=self.open,
            queued_requests=self.queued,
            next_slot_s=min(next_slot, 86_400.0),
            queue_eta_s=self.eta_s(self.queued),
        )

    def eta_s(self, requests: int) -> float:
        """Seconds until ``requests`` more requests could all have been sent under the rolling rule
        (a lower bound: the other rules and the answers' latency come on top; open requests count as
        answered now)."""
        now = self._clock()
        self._prune(now)
        rules = self.rules
        held = max(0.0, self._hold_until - now)
        times = sorted(min(slot.at, now) for slot in self._sent for _ in range(slot.weight))
        free = rules.rolling_max - len(times)
        if requests <= free:
            return held
        window = self.window(rules.rolling_window_s)
        rounds, index = divmod(requests - free - 1, rules.rolling_max)
        first_free = times[index] + window - now if index < len(times) else window
        return held + rounds * window + max(0.0, first_free)
