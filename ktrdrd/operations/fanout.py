"""In-memory fan-out of one operation's acknowledged events to any number of watchers.

One shared, bounded ring of recent events per operation instead of a queue per watcher: publishing
is O(1) plus one wake-up, so the writer and fast watchers never wait for a slow one. Each watcher
keeps its own cursor (last seq seen); a watcher whose cursor fell out of the ring (more than
``capacity`` events behind) gets ``None`` from :meth:`Hub.since` and re-reads from the database.

A caught-up watcher may instead be pushed live events (:meth:`Hub.follow`): its callback runs inside
:meth:`Hub.publish`, so no task wakes per watcher per event; it goes back to pulling when the callback
reports its consumer full.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable

from ktrdr.wire import TERMINAL_STATES
from ktrdrd.journal.records import EventRecord

DEFAULT_CAPACITY = 4096
MAX_SLICE = 512


class Hub:
    """Recent events of one operation; loop-thread only."""

    def __init__(self, last_seq: int, capacity: int | None = None) -> None:
        """``last_seq``: the operation's last acknowledged seq; ``capacity``: events kept (≥ this many)."""
        self.last_seq = last_seq
        self.closed = False
        self._capacity = capacity or DEFAULT_CAPACITY
        self._events: list[EventRecord] = []
        self._wake = asyncio.Event()
        self._followers: dict[Callable[[EventRecord | None], None], None] = {}

    def publish(self, event: EventRecord) -> None:
        """Add an acknowledged event (seq increasing) and wake every waiting watcher."""
        self._events.append(event)
        self.last_seq = event.seq
        if len(self._events) > 2 * self._capacity:
            del self._events[: -self._capacity]
        for follower in list(self._followers):
            follower(event)
        self._wake_all()

    def close(self) -> None:
        """No more events will come (the operation is done); wakes every watcher."""
        self.closed = True
        for follower in list(self._followers):
            follower(None)
        self._wake_all()

    def since(self, cursor: int) -> list[EventRecord] | None:
        """Up to ``MAX_SLICE`` events with seq > ``cursor``; [] if caught up; None if they left the ring."""
        if cursor >= self.last_seq:
            return []
        events = self._events
        if not events or events[0].seq > cursor + 1:
            return None
        start = bisect.bisect_right(events, cursor, key=lambda event: event.seq)
        return events[start : start + MAX_SLICE]

    async def wait(self) -> None:
        """Return after the next :meth:`publish` or :meth:`close`."""
        await self._wake.wait()

    async def follow(self, cursor: int, push: Callable[[list[EventRecord]], bool]) -> int | None:
        """Push every event published from now on (seq > ``cursor``) to ``push``, one list per event.

        ``push`` runs inside :meth:`publish` and must not block; it returns False once its consumer is
        full. Returns None after pushing a terminal event; otherwise, when ``push`` returned False or
        the hub closed, the seq of the last event pushed (pull from there). An exception from ``push``
        is raised here. The caller must be caught up (``since(cursor) == []``) and the hub open.
        """
        ended: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        last = cursor

        def deliver(event: EventRecord | None) -> None:
            nonlocal last
            if ended.done():
                return
            if event is None:
                ended.set_result(last)
                return
            if event.seq <= last:
                return
            try:
                more = push([event])
            except Exception as exc:  # the consumer's failure ends this watcher only
                ended.set_exception(exc)
                return
            last = event.seq
            if event.state in TERMINAL_STATES:
                ended.set_result(None)
            elif not more:
                ended.set_result(last)

        self._followers[deliver] = None
        try:
            return await ended
        finally:
            self._followers.pop(deliver, None)

    def _wake_all(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()
