"""The training host's jobs: the persisted table, the slots and their warm workers, the events.

**Table.** One JSON file per job, ``<state>/jobs/<job_id>.json``, rewritten atomically (temporary
file, fsync, rename, fsync of the directory) on every change of state or stage; progress between
those lives in memory. A job's files live in ``<state>/work/<job_id>/`` (the model directory
``model/`` and ``checkpoint.pt``).

**Slots.** ``slots`` jobs run at once; each slot owns one warm worker at a time
(:class:`hostd.training.pool.Worker`), started ahead of the job and replaced when it exits (one job
per worker). A job admitted to a slot is RUNNING (stage ``starting`` until its worker is ready);
without a free slot it is QUEUED (or refused, unless the client asked to queue) and is admitted in
submission order.

**Outcomes.** The worker's last message decides: ``done`` → SUCCEEDED with the result and the output
files as artifacts (a train job's model files, a backtest job's :data:`ktrdr.jobs.backtest.ARTIFACTS`); ``stopped`` on a cancel → CANCELLED; ``stopped`` on a shutdown → FAILED with
reason ``INTERRUPTED`` (code ABORTED); ``failed`` → FAILED with its reason (code :data:`REASON_CODES`); a worker that dies
first → FAILED with how it died and reason ``WORKER_KILLED`` when a signal from outside killed it
(:data:`hostd.training.pool.OUTSIDE_SIGNALS`: the OOM killer, a ``kill``), else ``WORKER_DIED``
(a crash of its own). Whenever the job's directory holds a
checkpoint, ``has_checkpoint`` is set, ``checkpoint.pt`` is an artifact and the checkpoint is also
put in the blob store, so a new job can name it as its ``checkpoint`` input without an upload.

**Restart.** Jobs that were RUNNING when the host went away become FAILED/INTERRUPTED (resumable
when a checkpoint exists); QUEUED jobs are queued again.

**Events.** Every change gets the job's next ``seq``; the events of the host's lifetime are kept in
memory (at most :data:`MAX_EVENTS` per job, the oldest progress events dropped first) for WatchJob.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostd.training.blobs import BlobStore, StoreFull
from hostd.training.pool import Worker, killed_from_outside
from hostd.training.records import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Event,
    JobError,
    JobRecord,
    progress_fields,
    step_fields,
)
from hostd.training.worker import OUTPUT_DIRS
from ktrdr.atomicfile import write_atomic
from ktrdr.jobs import backtest as backtest_wire
from ktrdr.jobs import train as wire
from ktrdr.rpc.errors import ApiError
from ktrdr.wire import StatusCode

log = logging.getLogger("hostd.training")

MAX_EVENTS = 10_000
#: The artifacts a successful job of each kind lists (files of its output directory).
OUTPUT_FILES = {wire.KIND: wire.MODEL_FILES, backtest_wire.KIND: backtest_wire.ARTIFACTS}
#: The status code of a failed job's reason (any other reason: INTERNAL).
REASON_CODES = {
    "BAD_INPUT": StatusCode.INVALID_ARGUMENT,
    "FEATURE_SPEC_MISMATCH": StatusCode.FAILED_PRECONDITION,
}


def _file_artifact(path: Path, name: str) -> dict[str, Any]:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"name": name, "size_bytes": path.stat().st_size, "sha256": h.hexdigest()}


@dataclass
class Slot:
    index: int
    worker: Worker | None = None
    ready: bool = False
    job_id: str | None = None
    sent: bool = False


@dataclass(frozen=True)
class HostSettings:
    state_dir: Path
    slots: int
    threads_per_job: int
    device: str  # "auto", "cpu", "cuda"


class JobManager:
    """See the module docstring. Every method runs on the host's event loop."""

    def __init__(self, settings: HostSettings, blobs: BlobStore) -> None:
        self.settings = settings
        self.blobs = blobs
        self.jobs: dict[str, JobRecord] = {}
        self.events: dict[str, deque[Event]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self.slots = [Slot(i) for i in range(settings.slots)]
        self.queue: deque[str] = deque()
        self.device_info: dict[str, Any] = {}
        self.stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._jobs_dir = settings.state_dir / "jobs"
        self._work_dir = settings.state_dir / "work"
        self._log_dir = settings.state_dir / "workers"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._device_known = asyncio.Event()
        self._persist_lock = asyncio.Lock()

    # -- start-up ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the table (restart rules of the module docstring), start the warm workers."""
        self._loop = asyncio.get_running_loop()
        for d in (self._jobs_dir, self._work_dir, self._log_dir):
            d.mkdir(parents=True, exist_ok=True)
        records = await asyncio.to_thread(self._read_table)
        for job in sorted(records, key=lambda j: (j.create_ns, j.job_id)):
            self.jobs[job.job_id] = job
            self.events[job.job_id] = deque()
            if job.state == RUNNING:
                job.state, job.stage = FAILED, "interrupted"
                job.end_ns = time.time_ns()
                job.error = JobError(
                    StatusCode.ABORTED,
                    "INTERRUPTED",
                    "the host stopped while the job ran; resume it from its checkpoint",
                )
                await self._collect_checkpoint(job)
                await self._persist(job)
            elif job.state == QUEUED:
                self.queue.append(job.job_id)
        for slot in self.slots:
            await self._spawn(slot)

    def _read_table(self) -> list[JobRecord]:
        out = []
        for path in self._jobs_dir.glob("*.json"):
            try:
                out.append(JobRecord.from_json(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("unreadable job record skipped", extra={"path": str(path), "error": str(exc)})
        return out

    async def wait_device(self, timeout_s: float) -> None:
        """Wait until a worker has said which device it trains on (or the timeout passes)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._device_known.wait(), timeout_s)

    # -- workers ----------------------------------------------------------------------------------

    async def _spawn(self, slot: Slot) -> None:
        assert self._loop is not None
        stderr = self._log_dir / f"slot{slot.index}-{time.time_ns()}.log"
        worker = Worker(
            self._loop,
            self._on_message,
            device=self.settings.device,
            threads=self.settings.threads_per_job,
            stderr_path=stderr,
        )
        slot.worker, slot.ready, slot.sent = worker, False, False
        await asyncio.to_thread(worker.start)

    def _slot_of(self, worker: Worker) -> Slot | None:
        return next((s for s in self.slots if s.worker is worker), None)

    def _on_message(self, worker: Worker, message: tuple[str, Any]) -> None:
        slot = self._slot_of(worker)
        if slot is None:
            return
        kind, arg = message
        job = self.jobs.get(slot.job_id) if slot.job_id and slot.sent else None
        if kind == "ready":
            worker.info = arg
            self.device_info = arg
            self._device_known.set()
            if arg["grpc_modules"]:
                log.error("worker imported grpc", extra={"modules": arg["grpc_modules"]})
            slot.ready = True
            self._dispatch()
        elif kind == "exit":
            self._on_exit(slot, worker, arg)
        elif job is None:
            return
        elif kind == "stage":
            job.stage = arg
            self._emit(job, f"stage {arg}")
            self._spawn_task(self._persist(job))
        elif kind in ("progress", "step"):
            job.progress = progress_fields(arg) if kind == "progress" else step_fields(arg)
            self._emit(job, job.progress["message"])
        elif kind in ("done", "stopped", "failed"):
            slot.job_id = None
            self._spawn_task(self._finish(job, kind, arg))

    def _on_exit(self, slot: Slot, worker: Worker, described: str | None) -> None:
        if slot.job_id is not None and slot.sent:
            job = self.jobs[slot.job_id]
            slot.job_id = None
            text = described or "worker exited before reporting the job's outcome"
            reason = "WORKER_KILLED" if killed_from_outside(worker.process.exitcode) else "WORKER_DIED"
            self._spawn_task(self._finish(job, "failed", {"reason": reason, "message": text}))
        if described:
            log.warning("worker ended", extra={"pid": worker.pid, "how": described})
        else:
            worker.stderr_path.unlink(missing_ok=True)
        slot.worker, slot.ready, slot.sent = None, False, False
        if not self.stopping:
            self._spawn_task(self._spawn(slot))

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- submitting -------------------------------------------------------------------------------

    @property
    def slots_free(self) -> int:
        return sum(1 for s in self.slots if s.job_id is None)

    def submit(self, job: JobRecord, queue: bool) -> JobRecord:
        """Admit a validated new job (RUNNING in a free slot, else QUEUED if ``queue``, else
        RESOURCE_EXHAUSTED with a retry delay). Same id again: the existing job, or ALREADY_EXISTS
        when the request differs."""
        existing = self.jobs.get(job.job_id)
        if existing is not None:
            if existing.request_digest != job.request_digest:
                raise ApiError(
                    StatusCode.ALREADY_EXISTS,
                    f"job {job.job_id} exists with a different spec or inputs; choose another job id",
                    "JOB_ID_REUSED",
                )
            return existing
        if self.stopping:
            raise ApiError(StatusCode.UNAVAILABLE, "the training host is stopping", "HOST_STOPPING")
        if (self.slots_free == 0 or self.queue) and not queue:
            raise ApiError(
                StatusCode.RESOURCE_EXHAUSTED,
                f"all {len(self.slots)} slots are busy; retry later or ask to queue",
                "NO_FREE_SLOT",
                retry_after_s=10.0,
            )
        self.jobs[job.job_id] = job
        self.events[job.job_id] = deque()
        self.queue.append(job.job_id)
        self.blobs.touch(sha for _role, sha, _size in job.inputs)
        self._emit(job, "queued")
        self._dispatch()
        self._spawn_task(self._persist(job))
        return job

    def _dispatch(self) -> None:
        """Admit queued jobs to free slots; send admitted jobs to ready workers."""
        for slot in self.slots:
            if slot.job_id is None and self.queue and not self.stopping:
                job = self.jobs[self.queue.popleft()]
                slot.job_id, slot.sent = job.job_id, False
                job.state, job.stage, job.start_ns = RUNNING, "starting", time.time_ns()
                self._emit(job, "admitted to a slot")
                self._spawn_task(self._persist(job))
            if slot.job_id is not None and not slot.sent and slot.ready and slot.worker is not None:
                self._send(slot, self.jobs[slot.job_id])

    def _send(self, slot: Slot, job: JobRecord) -> None:
        assert slot.worker is not None and slot.worker.info is not None
        device = "cpu" if job.device_preference == "cpu" else slot.worker.info["device"]
        job_dir = self._work_dir / job.job_id
        job_dir.mkdir(parents=True, exist_ok=True)
        order = {
            "kind": job.kind,
            "job_id": job.job_id,
            "spec": job.spec,
            "inputs": {role: str(self.blobs.path(sha)) for role, sha, _size in job.inputs},
            "job_dir": str(job_dir),
            "device": device,
        }
        job.device = device
        slot.sent = slot.worker.send(("job", order))
        slot.ready = False  # one job per worker: this one is spent
        if slot.sent:
            self._emit(job, f"running in worker pid {slot.worker.pid} on {device}")

    # -- outcomes ---------------------------------------------------------------------------------

    async def _finish(self, job: JobRecord, kind: str, arg: Any) -> None:
        if kind == "done":
            job.result = arg
            job.state, job.stage = SUCCEEDED, "done"
            out_dir = self._work_dir / job.job_id / OUTPUT_DIRS[job.kind]
            job.artifacts = await asyncio.to_thread(
                lambda: [_file_artifact(out_dir / name, name) for name in OUTPUT_FILES[job.kind]]
            )
            message = "succeeded"
        elif kind == "stopped" and arg["why"] == "cancel":
            job.state, job.stage = CANCELLED, "cancelled"
            message = "cancelled" + (" after a checkpoint" if arg["checkpoint"] else "")
        elif kind == "stopped":
            job.state, job.stage = FAILED, "interrupted"
            job.error = JobError(
                StatusCode.ABORTED,
                "INTERRUPTED",
                "the host stopped the job after a checkpoint; resume it from there",
            )
            message = job.error.message
        else:
            code = REASON_CODES.get(arg["reason"], StatusCode.INTERNAL)
            job.state, job.stage = FAILED, "failed"
            job.error = JobError(code, arg["reason"], arg["message"])
            message = f"failed: {arg['message']}"
        job.end_ns = time.time_ns()
        await self._collect_checkpoint(job)
        await self._persist(job)
        self._emit(job, message)
        self._dispatch()

    async def _collect_checkpoint(self, job: JobRecord) -> None:
        """Record the job's checkpoint (artifact, has_checkpoint, a copy in the blob store)."""
        path = self._work_dir / job.job_id / wire.CHECKPOINT
        if job.state == SUCCEEDED or not path.is_file():
            return
        job.has_checkpoint = True
        job.artifacts = [a for a in job.artifacts if a["name"] != wire.CHECKPOINT]
        job.artifacts.append(await asyncio.to_thread(_file_artifact, path, wire.CHECKPOINT))
        try:
            await asyncio.to_thread(self.blobs.add_file, path, self.pinned())
        except StoreFull as exc:
            log.warning("checkpoint not kept in the blob store", extra={"job": job.job_id, "error": str(exc)})

    def artifact_path(self, job: JobRecord, name: str) -> Path | None:
        """The file of the artifact ``name`` of ``job``, if the job lists it."""
        if not any(a["name"] == name for a in job.artifacts):
            return None
        if name == wire.CHECKPOINT:
            return self._work_dir / job.job_id / wire.CHECKPOINT
        return self._work_dir / job.job_id / OUTPUT_DIRS[job.kind] / name

    # -- cancel and stop --------------------------------------------------------------------------

    async def cancel(self, job: JobRecord, timeout_s: float) -> JobRecord:
        """Cancel: a queued job at once; a running one after its checkpoint (waits up to
        ``timeout_s`` for it). A finished job is returned as it is."""
        if job.done:
            return job
        if job.state == QUEUED:
            self.queue.remove(job.job_id)
            job.state, job.stage, job.end_ns = CANCELLED, "cancelled", time.time_ns()
            self._emit(job, "cancelled while queued")
            await self._persist(job)
            return job
        slot = next(s for s in self.slots if s.job_id == job.job_id)
        if not slot.sent:
            slot.job_id = None
            await self._finish(job, "stopped", {"why": "cancel", "checkpoint": False})
            return job
        assert slot.worker is not None
        job.stage = "cancelling"
        self._emit(job, "cancelling: checkpoint, then stop")
        slot.worker.send(("cancel", "cancel"))
        await self.wait_done(job, timeout_s)
        return job

    async def wait_done(self, job: JobRecord, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not job.done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            changed = self._changed.setdefault(job.job_id, asyncio.Event())
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return

    async def drain(self, timeout_s: float) -> None:
        """SIGTERM: every running job checkpoints and stops (FAILED/INTERRUPTED); queued jobs stay
        queued in the table. Workers still alive after ``timeout_s`` are killed."""
        self.stopping = True
        running = []
        for slot in self.slots:
            if slot.job_id is None:
                continue
            job = self.jobs[slot.job_id]
            running.append(job)
            if slot.sent and slot.worker is not None:
                slot.worker.send(("cancel", "shutdown"))
            else:
                slot.job_id = None
                await self._finish(job, "stopped", {"why": "shutdown", "checkpoint": False})
        deadline = time.monotonic() + timeout_s
        for job in running:
            await self.wait_done(job, max(0.0, deadline - time.monotonic()))
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=max(0.1, deadline - time.monotonic()))

    async def close(self) -> None:
        for slot in self.slots:
            if slot.worker is not None:
                slot.worker.kill()

    # -- table and events -------------------------------------------------------------------------

    def pinned(self) -> set[str]:
        """Digests the queued and running jobs use (never evicted)."""
        return {sha for job in self.jobs.values() if not job.done for _role, sha, _size in job.inputs}

    async def _persist(self, job: JobRecord) -> None:
        """Write the job's current record (one write at a time, so the last write holds the latest)."""
        async with self._persist_lock:
            await asyncio.to_thread(
                write_atomic, self._jobs_dir / f"{job.job_id}.json", job.to_json().encode()
            )

    def _emit(self, job: JobRecord, message: str) -> None:
        job.last_seq += 1
        events = self.events[job.job_id]
        events.append(Event(job.last_seq, time.time_ns(), job.state, job.stage, dict(job.progress), message))
        if len(events) > MAX_EVENTS:
            events.popleft()
        changed = self._changed.pop(job.job_id, None)
        if changed is not None:
            changed.set()

    async def wait_change(self, job_id: str) -> None:
        """Until the job's next event."""
        await self._changed.setdefault(job_id, asyncio.Event()).wait()
