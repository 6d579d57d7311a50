"""Automatic resume of ``train`` operations whose host or worker was lost.

**Which.** A ``train`` operation that ended INTERRUPTED with one of
:data:`ktrdrd.training.kind.LOST_REASONS` (its host went away or stopped the job after a
checkpoint, or its worker was killed from outside and left a checkpoint) and that no operation
resumes yet (none is labelled ``resumed-from`` it). Never a CANCELLED one (a person's cancel), a
FAILED one (the training itself failed), or one INTERRUPTED for another reason (its job cancelled
on the host by someone else, the journal not writable).

**When.** Once the host holding its checkpoint (the host of its saved placement) is READY; with
no placement, or one on a host no longer configured, once any training host is READY. Looked for
when ktrdrd starts (so runs interrupted before a restart are found in the journal), whenever a
training host becomes READY, and whenever a ``train`` run is lost. Oldest first: each resumed run
then waits for a slot in the pool's first-come queue, so runs resume in submission order.

**How.** As ``ktrdrctl ops resume`` does (:func:`.service.resumed_request`): a new ``train``
operation with the same request, continuing from the old job's checkpoint, labelled
``resumed-from=<old id>`` and ``resumed-by=ktrdrd``, a child of the old one's batch parent if it
had one (the batch follows it: :mod:`.batch`; a run of a cancelled batch is not resumed), with
request id ``auto-resume-<old id>`` (a second look never starts a second one). Its first event says so: ``training host 'X' is back;
resuming operations/op_… from its last checkpoint (it had reached epoch 4 of 80; automatic resume 1
of 3)``; once the job runs, the kind says which epoch the checkpoint held.

**Bound.** Each run carries how many automatic resumes led to it (``params.auto_resumes``); one that
reached the limit (config ``training_auto_resumes``; 0 turns this off) is left INTERRUPTED, and its
message, written when it ended, says so and how to resume it by hand. A person's resume starts the
count again. So a job that kills its host or worker every time stops after the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ktrdr.rpc.errors import ApiError
from ktrdr.wire import NAME_PREFIX, OperationState, StatusCode
from ktrdrd.hostjobs import dispatch
from ktrdrd.hostjobs.placements import Placement, Placements
from ktrdrd.hostjobs.pool import HostPool
from ktrdrd.hosts.link import READY
from ktrdrd.operations import OperationRecord, OperationsCore
from ktrdrd.training import kind
from ktrdrd.training.service import resumed_request

log = logging.getLogger("ktrdrd.training")

#: Seconds between two looks at the hosts' states (links publish no events).
POLL_S = 0.5
#: Seconds to wait for a lost run's INTERRUPTED state to be committed before looking for it.
COMMIT_WAIT_S = 10.0
#: Seconds before looking again after a look failed.
RETRY_S = 5.0
#: Operations per journal page while looking.
PAGE_SIZE = 500


def epoch_reached(record: OperationRecord) -> tuple[int, int]:
    """(the epoch the run had reached, its epochs) by its last progress (0 before training)."""
    progress = record.progress or {}
    return int(progress.get("current", 0) or 0), int(progress.get("total", 0) or 0)


class AutoResumer:
    """See the module docstring. ``await run()`` in the background; loop-thread only."""

    def __init__(self, core: OperationsCore, pool: HostPool, placements: Placements, limit: int) -> None:
        self.core = core
        self.pool = pool
        self.placements = placements
        self.limit = limit
        self._lost: set[str] = set()  # runs lost since the last look (their state may be uncommitted)
        self._wake = asyncio.Event()
        self._settled: set[str] = set()  # ids looked at that will never be resumed automatically

    def lost(self, name: str) -> None:
        """A run ended (is ending) INTERRUPTED with a lost host or worker: look for it soon."""
        self._lost.add(name)
        self._wake.set()

    async def run(self) -> None:
        """Look for runs to resume (see the module docstring) until cancelled."""
        if self.limit <= 0:
            return
        ready_before: set[str] | None = None
        while True:
            ready = {name for name, link in self.pool.links.items() if link.status.state == READY}
            if ready_before is None or ready - ready_before or self._wake.is_set():
                self._wake.clear()
                try:
                    await self._look(ready)
                except Exception:  # the journal unreadable, say: never end the daemon over it
                    log.exception("looking for training runs to resume failed; trying again")
                    await asyncio.sleep(RETRY_S)
                    ready = set()  # so that the next turn looks again
            ready_before = ready
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):  # not wait_for: 3.11's can swallow a cancel
                    await self._wake.wait()

    async def _look(self, ready: set[str]) -> None:
        for name in list(self._lost):
            self._lost.discard(name)
            with contextlib.suppress(ApiError):
                await self.core.wait(name, COMMIT_WAIT_S)
        if not ready:
            return
        for record in await self._interrupted():
            placement = await self._placement(record)
            if placement is None:
                await self._resume(record, min(ready))
            elif placement.host in ready and await self._answers(placement):
                await self._resume(record, placement.host)
            # else it waits for the host that holds its checkpoint

    async def _interrupted(self) -> list[OperationRecord]:
        """INTERRUPTED ``train`` runs not settled yet, oldest first."""
        found: list[OperationRecord] = []
        token = ""
        while True:
            page, token = await self.core.list(
                kind=kind.KIND, states=[OperationState.INTERRUPTED], page_size=PAGE_SIZE, page_token=token
            )
            found += [record for record in page if record.id not in self._settled]
            if not token:
                break
        found.sort(key=lambda record: (record.create_time, record.id))
        eligible = []
        for record in found:
            reason = (record.error or {}).get("reason", "")
            attempts = int(record.params.get("auto_resumes", 0))
            if (
                reason not in kind.LOST_REASONS
                or attempts >= self.limit
                or await self._resumed(record)
                or await self._parent_cancelled(record)
            ):
                self._settled.add(record.id)
            else:
                eligible.append(record)
        return eligible

    async def _resumed(self, record: OperationRecord) -> bool:
        """Whether an operation (automatic or a person's) already resumes ``record``."""
        page, _ = await self.core.list(kind=kind.KIND, labels={kind.RESUMED_FROM: record.id}, page_size=1)
        return bool(page)

    async def _parent_cancelled(self, record: OperationRecord) -> bool:
        """Whether the run belongs to a batch that was cancelled (its runs stop with it)."""
        if not record.parent:
            return False
        try:
            parent = await self.core.get(record.parent)
        except ApiError:
            return False  # deleted since
        return parent.state == OperationState.CANCELLED

    async def _placement(self, record: OperationRecord) -> Placement | None:
        """Where the run's job (and so its checkpoint) is, on a configured host; None if nowhere."""
        placement = await self.placements.load(record.id)
        return placement if placement is not None and placement.host in self.pool.links else None

    async def _answers(self, placement: Placement) -> bool:
        """Whether the host answers now: a link may still say READY for a moment after its host
        went away (the run was lost just now), and "is back" must be true."""
        try:
            await dispatch.get_job(self.pool.links[placement.host].channel, placement.job_id)
        except dispatch.HostLost:
            return False
        except ApiError:
            pass  # it answers, without the job: the resumed run trains from the start
        return True

    async def _resume(self, record: OperationRecord, host: str) -> None:
        attempt = int(record.params.get("auto_resumes", 0)) + 1
        reached, total = epoch_reached(record)
        note = (
            f"training host {host!r} is back; resuming {record.name} from its last checkpoint "
            f"(it had reached epoch {reached} of {total}; automatic resume {attempt} of {self.limit})"
        )
        params, labels = resumed_request(record, auto_resumes=attempt, note=note)
        try:
            new = await self.core.start(
                kind.KIND,
                params=params,
                labels=labels,
                parent=record.parent,
                request_id=f"auto-resume-{record.id}",
            )
        except ApiError as exc:
            if exc.code in (StatusCode.UNAVAILABLE, StatusCode.RESOURCE_EXHAUSTED):
                return  # shutting down, or the journal refuses writes: the next look tries again
            log.warning("automatic resume refused", extra={"operation": record.name, "error": exc.message})
        else:
            resumed_as = new.name.removeprefix(NAME_PREFIX)
            log.info("training run resumed automatically",
                     extra={"operation": record.name, "resumed_as": resumed_as, "attempt": attempt})  # fmt: skip
        self._settled.add(record.id)
