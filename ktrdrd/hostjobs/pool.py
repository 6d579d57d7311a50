"""The hosts that take jobs, their slots, and the daemon's queue of jobs waiting for one.

``pool = HostPool(links)`` (host name → :class:`~ktrdrd.hosts.link.HostLink`); ``await pool.run()``
(a background task until cancelled) learns each host's slots (``GetCapacity``) whenever it becomes
READY and hands free slots to waiting jobs. A job asks with ``slot = await pool.acquire(on_wait)``
and gives it back with ``pool.release(slot)``.

Placement: the waiting jobs are served first come, first served; each gets the READY host with
the most free slots (ties: the first configured), or the one it prefers (``prefer``, a host name).
A slot is the daemon's own count of the jobs it placed on a host against the host's
``slots_total``. While a job waits, ``on_wait(text)`` is called whenever its situation changes:
``"queued: position 3"`` (jobs ahead of it + 1) when hosts are READY but busy, or the hosts'
reasons (``"waiting for the training host 'local' at unix:/…: connection refused"``) when none is
READY. A job joining the back of the queue changes no other job's note: each note becomes one
journaled progress event of its operation, and a note carrying the queue's length made every
arrival an event for every waiting job (100 queued jobs: ~5,000 events, ~5 MiB of the daemon's
memory in the operations' event rings; ``bench train_daemon`` part (b)).

Each waiting job costs a few hundred bytes (an event and its callback): a queue of hundreds of
jobs is cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import grpc

from ktrdr.hostd.training.v1 import training_host_pb2 as pb
from ktrdrd.hostjobs.dispatch import CALL_TIMEOUT_S, SERVICE
from ktrdrd.hosts.link import READY, HostLink

log = logging.getLogger("ktrdrd.hostjobs")

#: Seconds between two looks at the hosts' states while jobs wait (links publish no events).
POLL_S = 0.2


@dataclass
class Slot:
    """A slot on one host, held by one job until released."""

    host: str
    channel: grpc.aio.Channel


@dataclass
class _Waiter:
    prefer: str
    on_wait: Callable[[str], None]
    granted: asyncio.Future[Slot] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    last_note: str = ""


class HostPool:
    """See the module docstring. Loop-thread only."""

    def __init__(self, links: Mapping[str, HostLink]) -> None:
        self.links = dict(links)
        self._total: dict[str, int] = {}
        self._used: dict[str, int] = dict.fromkeys(self.links, 0)
        self._waiters: list[_Waiter] = []
        self._changed = asyncio.Event()

    @property
    def queued(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._waiters)

    def link(self, host: str) -> HostLink | None:
        return self.links.get(host)

    async def acquire(self, on_wait: Callable[[str], None], prefer: str = "") -> Slot:
        """A slot (see the module docstring); waits in the queue. Cancelling leaves the queue."""
        waiter = _Waiter(prefer, on_wait)
        self._waiters.append(waiter)
        self._changed.set()
        try:
            return await asyncio.shield(waiter.granted)
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self.release(waiter.granted.result())
            else:
                waiter.granted.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            self._changed.set()
            raise

    def take(self, host: str) -> Slot | None:
        """Count a slot on ``host`` for a job already running there (a re-attach); None if unknown."""
        link = self.links.get(host)
        if link is None:
            return None
        self._used[host] += 1
        return Slot(host, link.channel)

    def release(self, slot: Slot) -> None:
        self._used[slot.host] = max(0, self._used[slot.host] - 1)
        self._changed.set()

    async def run(self) -> None:
        """Learn capacities and hand out slots until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), POLL_S)
            self._changed.clear()
            for name, link in self.links.items():
                if link.status.state == READY and name not in self._total:
                    await self._learn(name, link)
                elif link.status.state != READY:
                    self._total.pop(name, None)  # asked again when it is back (it may have changed)
            self._place()

    async def _learn(self, name: str, link: HostLink) -> None:
        capacity = link.channel.unary_unary(
            SERVICE + "GetCapacity",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.GetCapacityResponse.FromString,
        )
        try:
            answer = await capacity(pb.GetCapacityRequest(), timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            log.warning("training host capacity unknown", extra={"host": name, "error": exc.details()})
            return
        self._total[name] = max(1, answer.slots_total)
        log.info("training host capacity", extra={"host": name, "slots": self._total[name]})

    def _free(self, name: str) -> int:
        return self._total.get(name, 0) - self._used[name] if self.links[name].status.state == READY else 0

    def _place(self) -> None:
        self._waiters = [w for w in self._waiters if not w.granted.done()]
        for waiter in list(self._waiters):
            names = [waiter.prefer] if waiter.prefer in self.links else list(self.links)
            best = max(names, key=self._free, default=None)
            if best is None or self._free(best) <= 0:
                continue
            self._used[best] += 1
            waiter.granted.set_result(Slot(best, self.links[best].channel))
            self._waiters.remove(waiter)
        ready = [n for n in self.links if self.links[n].status.state == READY and n in self._total]
        for position, waiter in enumerate(self._waiters, 1):
            if ready:
                note = f"queued: position {position}"
            else:
                note = "; ".join(link.describe_wait() for link in self.links.values()) or "no training host"
            if note != waiter.last_note:
                waiter.last_note = note
                waiter.on_wait(note)
