"""The ``train`` operation kind: ``data`` → ``dispatch`` → ``train`` → ``collect``.

Params (made by :mod:`.service`): ``strategy`` {content, source_name}, ``overrides`` [{path,
value}], ``symbols``, ``start_ns``/``end_ns`` (decimal strings), ``seed`` (int or null), ``force``,
``host`` ("" = any), ``resume_from`` (an operation name, or absent), ``auto_resumes`` (how many
automatic resumes led to this run; absent = 0) and ``resume_note`` (the first message of an
automatic resume, or absent) — see :mod:`.autoresume`.

- ``data``: the document with its overrides (:func:`.prepare.prepare`); each series the run needs
  must be in the bar cache over its whole range: what is missing is loaded through the IB host
  (``load_missing``) or, with no IB host, the operation FAILS (FAILED_PRECONDITION,
  ``DATA_MISSING``) naming the ranges and the ``ktrdrctl data load`` command that loads them. The
  bars of exactly those ranges become Parquet blobs. A request identical to one that produced a
  model (:func:`.prepare.request_digest`) returns that model unless ``force``.
- ``dispatch``: a slot on a training host (:class:`~ktrdrd.hostjobs.pool.HostPool`; while it waits the
  progress message says its queue position or why), the placement saved, the blobs the host lacks
  uploaded, the job started (job id = the operation id; a resume adds the old job's checkpoint).
- ``train``: the job's events become the operation's progress (epoch x/y, loss, val accuracy,
  samples/s, ETA). Cancel → CancelJob (the host checkpoints) → CANCELLED, with a message saying
  ``ktrdrctl ops resume``.
- ``collect``: the model files downloaded, registered (:class:`~ktrdrd.models.ModelRegistry`),
  the result a ``TrainingResult``, the request digest → result remembered for reuse.

How a job that did not succeed ends the operation:

- INTERRUPTED, reason :data:`LOST_REASONS` (resumed automatically, :mod:`.autoresume`): the host
  went away (``HOST_LOST``: the link broke, a call found no host), the host stopped the job after
  a checkpoint (``HOST_STOPPED``: SIGTERM, or a restart after a crash), or the job's worker was
  killed from outside (``WORKER_LOST``: the host's reason ``WORKER_KILLED``, SIGKILL of the OOM
  killer or a ``kill``) and a checkpoint exists.
- INTERRUPTED, reason ``JOB_CANCELLED_ON_HOST``: someone else cancelled the job on the host (not
  resumed automatically: a cancel is a person's decision).
- FAILED with the host's reason: everything else — the training failed (NaN loss, bad input), the
  worker crashed on its own (``WORKER_DIED``), or was killed from outside with no checkpoint to
  continue from (the message names the signal).

After a daemon restart, :meth:`TrainKind.reattach` finds the job by its saved placement and
follows it again from its first event (progress is a state, so replayed events change nothing);
the placement holds the request digest, so a re-attached run is remembered for reuse too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import json_format

from ktrdr.hostd.training.v1 import training_host_pb2 as hpb
from ktrdr.jobs import train as job_wire
from ktrdr.rpc.errors import ApiError, failed_precondition
from ktrdr.wire import NAME_PREFIX, StatusCode
from ktrdrd.hostjobs import dispatch
from ktrdrd.hostjobs.placements import Placement, Placements
from ktrdrd.hostjobs.pool import HostPool, Slot
from ktrdrd.operations import Interrupted, OperationContext
from ktrdrd.training import prepare as prep
from ktrdrd.training.reuse import ReuseIndex

log = logging.getLogger("ktrdrd.training")

KIND = "train"
#: The stage of a host job that the host stopped (not failed): it is resumable from its checkpoint.
HOST_STOPPED_STAGE = "interrupted"
#: The host's reason for a job whose worker a signal from outside killed (SIGKILL: the OOM killer).
WORKER_KILLED = "WORKER_KILLED"
#: Reasons of an INTERRUPTED ``train`` operation whose host or worker was lost (not a person's
#: cancel): the ones :mod:`.autoresume` resumes by itself.
LOST_REASONS = frozenset({"HOST_LOST", "HOST_STOPPED", "WORKER_LOST"})
#: Labels of a resumed run: the operation it continues (its id), and ``ktrdrd`` when ktrdrd
#: resumed it by itself (:mod:`.autoresume`).
RESUMED_FROM, RESUMED_BY = "resumed-from", "resumed-by"
#: Seconds before asking again a host that went away while its link still said READY.
HOST_RETRY_S = 0.5
T = TypeVar("T")

#: ``(ctx, requirements with missing ranges) -> None`` once they are loaded into the cache; None:
#: the daemon has no IB host.
Loader = Callable[[OperationContext, list[tuple[prep.Requirement, list[tuple[int, int]]]]], Awaitable[None]]


class CancelledByUser(Exception):
    """The operation's cancel flag was set while a step waited."""


@dataclass
class TrainingDeps:
    """What the kind uses: the hosts, the placement files, the model registry, the bar cache
    (``cache_of()``), the loader of missing bars, scratch space, the reuse index; the limit of
    automatic resumes per run (0: none) and ``on_lost(name)``, called when a run ends INTERRUPTED
    with one of :data:`LOST_REASONS` (before the state is committed)."""

    pool: HostPool
    placements: Placements
    models: Any  # ktrdrd.models.ModelRegistry
    cache_of: Callable[[], Awaitable[Any]]
    load_missing: Loader | None
    scratch: Path
    reuse: ReuseIndex
    auto_resume_limit: int = 0
    on_lost: Callable[[str], None] = lambda name: None


def _iso(ns: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resume_command(name: str) -> str:
    return f"ktrdrctl ops resume {name.removeprefix(NAME_PREFIX)}"


def resume_hint(name: str) -> str:
    return f"resume it from its last checkpoint with: {resume_command(name)}"


async def until_cancelled(ctx: OperationContext, work: Awaitable[T]) -> T:
    """``await work``, or CancelledByUser (the work cancelled) once ``ctx.cancelled`` is set."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(ctx.cancelled.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise CancelledByUser


def missing_ranges(entry: Any, req: prep.Requirement) -> list[tuple[int, int]]:
    """The parts of the requirement's range the cache entry does not cover (covered or known empty);
    for a series in the cache, closed market time is not missing (:func:`ktrdrd.data.gaps.find`)."""
    if entry is None:
        return [(req.start_ns, req.end_ns)]
    if entry.calendar:
        from ktrdr import timeframes
        from ktrdrd.data import gaps

        tf_ns = timeframes.parse(req.timeframe).ns
        return [
            (g.start_ns, g.end_ns)
            for g in gaps.find(entry, entry.calendar, tf_ns, req.start_ns, req.end_ns, "full")
        ]
    have = sorted([*entry.covered, *entry.known_empty])
    out, cursor = [], req.start_ns
    for start, end in have:
        if end <= cursor or start >= req.end_ns:
            continue
        if start > cursor:
            out.append((cursor, min(start, req.end_ns)))
        cursor = max(cursor, end)
    if cursor < req.end_ns:
        out.append((cursor, req.end_ns))
    return out


def _warmup_note(req: prep.Requirement, ranges: list[tuple[int, int]]) -> str:
    """`` (warm-up: N bars before START)`` when a missing range reaches before the run's start, so
    that a range starting before the asked-for period explains itself."""
    if req.warmup_bars and ranges[0][0] < req.run_start_ns:
        return f" (warm-up: {req.warmup_bars} bars before {_iso(req.run_start_ns)})"
    return ""


def load_command(missing: list[tuple[prep.Requirement, list[tuple[int, int]]]]) -> str:
    symbols = sorted({req.symbol for req, _ in missing})
    frames = sorted({req.timeframe for req, _ in missing})
    start = min(r[0] for _, ranges in missing for r in ranges)
    end = max(r[1] for _, ranges in missing for r in ranges)
    tf = " ".join(f"--timeframe {t}" for t in frames)
    return f"ktrdrctl data load {' '.join(symbols)} {tf} --start {_iso(start)} --end {_iso(end)}"


async def ensure_bars(
    ctx: OperationContext,
    cache_of: Callable[[], Awaitable[Any]],
    load_missing: Loader | None,
    requirements: Sequence[prep.Requirement],
) -> dict[str, str]:
    """Every required series complete in the cache (the ``data`` stage of ``train`` and
    ``backtest`` operations): what is missing is loaded with ``load_missing``, or, without it,
    FAILED_PRECONDITION ``DATA_MISSING`` naming the missing ranges and the load command.
    Returns each series' ``SYMBOL/TF@start-end`` → the digest of its cache file."""
    cache = await cache_of()
    missing = []
    for req in requirements:
        # Off the loop: the first look at a market's calendar builds its session table (~2 s),
        # later ones take ~3 ms.
        ranges = await asyncio.to_thread(missing_ranges, await cache.entry(req.symbol, req.timeframe), req)
        if ranges:
            missing.append((req, ranges))
    if missing and load_missing is None:
        listed = "; ".join(
            f"{req.symbol} {req.timeframe} "
            + ", ".join(f"{_iso(s)} .. {_iso(e)}" for s, e in ranges)
            + _warmup_note(req, ranges)
            for req, ranges in missing
        )
        raise failed_precondition(
            f"the bar cache lacks {listed}; ktrdrd has no IB host to load them from: load them "
            f"with `{load_command(missing)}` (or import files with `ktrdrctl data import`)",
            "DATA_MISSING",
        )
    if missing:
        assert load_missing is not None
        await until_cancelled(ctx, load_missing(ctx, missing))
        await ctx.set_stage("data")
    digests = {}
    for req in requirements:
        entry = await cache.entry(req.symbol, req.timeframe)
        digests[f"{req.symbol}/{req.timeframe}@{req.start_ns}-{req.end_ns}"] = entry.digest if entry else ""
    return digests


async def bar_blobs_of(
    cache_of: Callable[[], Awaitable[Any]], requirements: Sequence[prep.Requirement]
) -> dict[str, bytes]:
    """The bars of exactly the required ranges as ``bars/<SYMBOL>/<TF>`` Parquet blobs (read and
    encoded off the loop)."""
    cache = await cache_of()
    series = {}
    for req in requirements:
        series[(req.symbol, req.timeframe)] = await cache.read(
            req.symbol, req.timeframe, req.start_ns, req.end_ns, 0
        )
    return await asyncio.to_thread(prep.bar_blobs, series)


class TrainKind:
    """The handler (see the module docstring)."""

    def __init__(self, deps: TrainingDeps) -> None:
        self.deps = deps

    # -- entry points ------------------------------------------------------------------------------

    async def run(self, ctx: OperationContext) -> dict[str, Any] | None:
        return await self._guarded(ctx, reattach=False)

    async def reattach(self, ctx: OperationContext) -> dict[str, Any] | None:
        return await self._guarded(ctx, reattach=True)

    async def _guarded(self, ctx: OperationContext, *, reattach: bool) -> dict[str, Any] | None:
        try:
            return await self._run(ctx, reattach=reattach)
        except CancelledByUser:
            return None
        except Interrupted as exc:
            if exc.reason in LOST_REASONS:
                self.deps.on_lost(ctx.name)
            raise

    def _lost(self, ctx: OperationContext, what: str, reason: str = "HOST_LOST") -> Interrupted:
        """The Interrupted of a run whose host or worker was lost; its message says what happens next."""
        limit, done = self.deps.auto_resume_limit, int(ctx.params.get("auto_resumes", 0))
        if done < limit:
            label = f"{RESUMED_FROM}={ctx.name.removeprefix(NAME_PREFIX)}"
            then = (f"ktrdrd resumes it from its last checkpoint by itself, as a new operation, once the "
                    f"training host can take it (automatic resume {done + 1} of {limit}; "
                    f"`ktrdrctl ops list --label {label}` shows it); to resume it now instead: "
                    f"{resume_command(ctx.name)}")  # fmt: skip
        elif limit:
            then = (f"it was already resumed automatically {limit} times (training_auto_resumes), so it "
                    f"stays INTERRUPTED; {resume_hint(ctx.name)}")  # fmt: skip
        else:
            then = resume_hint(ctx.name)
        return Interrupted(f"{what}; {then}", reason)

    # -- stages ------------------------------------------------------------------------------------

    async def _run(self, ctx: OperationContext, *, reattach: bool) -> dict[str, Any] | None:
        op_id = ctx.name.removeprefix(NAME_PREFIX)
        placement = await self.deps.placements.load(op_id) if reattach else None
        if placement is not None:
            slot = self.deps.pool.take(placement.host)
            if slot is not None:
                try:
                    job = await self._follow_existing(ctx, slot, placement)
                finally:
                    self.deps.pool.release(slot)
                if job is not None:
                    return await self._finish(ctx, placement, job, await self._prepare(ctx))
        return await self._fresh(ctx, op_id)

    async def _prepare(self, ctx: OperationContext) -> prep.Prepared:
        p = ctx.params
        return await asyncio.to_thread(
            prep.prepare,
            p["strategy"]["content"],
            p["strategy"]["source_name"],
            p.get("overrides", []),
            p.get("symbols", []),
            int(p["start_ns"]),
            int(p["end_ns"]),
        )

    async def _fresh(self, ctx: OperationContext, op_id: str) -> dict[str, Any] | None:
        p = ctx.params
        if p.get("resume_note"):
            await ctx.message(p["resume_note"])
        await ctx.set_stage("data")
        prepared = await self._prepare(ctx)
        data_digests = await self._ensure_bars(ctx, prepared)
        spec = job_wire.TrainSpec(
            start_ns=int(p["start_ns"]),
            end_ns=int(p["end_ns"]),
            strategy_source=p["strategy"]["source_name"],
            seed=p.get("seed"),
        ).to_struct_dict()
        digest = prep.request_digest(prepared.document, data_digests, spec)
        if not p.get("force"):
            reused = await self._reuse(ctx, digest)
            if reused is not None:
                return reused
        await ctx.set_stage("dispatch")
        checkpoint = await self._checkpoint_of(ctx, p.get("resume_from", ""))
        prefer = checkpoint[0] if checkpoint else p.get("host", "")

        def waiting(note: str) -> None:
            asyncio.get_running_loop().create_task(ctx.progress(message=note))

        slot = await until_cancelled(ctx, self.deps.pool.acquire(waiting, prefer))
        try:
            placement = Placement(slot.host, op_id, digest)
            await self.deps.placements.save(op_id, placement)
            await ctx.message(f"placed on training host {slot.host!r} as job {op_id}")
            blobs = await self._bar_blobs(prepared)  # only now: a queued run holds no bars
            inputs = {job_wire.ROLE_STRATEGY: prepared.document.encode(), **blobs}
            try:
                refs = await until_cancelled(ctx, dispatch.upload_missing(slot.channel, inputs))
                if checkpoint is not None:
                    refs[job_wire.ROLE_CHECKPOINT] = checkpoint[1]
                await dispatch.start_job(
                    slot.channel,
                    dispatch.JobSpec(op_id, hpb.JOB_KIND_TRAIN, spec, refs, {"operation": ctx.name}),
                )
            except dispatch.HostLost as exc:
                raise self._lost(
                    ctx, f"training host {slot.host!r} lost before the job started: {exc}"
                ) from None
            job = await self._train(ctx, slot, placement, resumed=checkpoint is not None)
        finally:
            self.deps.pool.release(slot)
        return await self._finish(ctx, placement, job, prepared)

    async def _ensure_bars(self, ctx: OperationContext, prepared: prep.Prepared) -> dict[str, str]:
        """The stage ``data``: :func:`ensure_bars` of the run's requirements."""
        return await ensure_bars(ctx, self.deps.cache_of, self.deps.load_missing, prepared.requirements)

    async def _bar_blobs(self, prepared: prep.Prepared) -> dict[str, bytes]:
        return await bar_blobs_of(self.deps.cache_of, prepared.requirements)

    async def _reuse(self, ctx: OperationContext, digest: str) -> dict[str, Any] | None:
        result = await self.deps.reuse.find(digest)
        if result is None:
            return None
        version = result["modelVersion"]
        strategy, _, number = version.removeprefix("models/").partition("/versions/")
        try:
            await self.deps.models.get_version(strategy, int(number))
        except (ApiError, ValueError):
            return None  # deleted since: train again
        await ctx.message(f"identical to the run that made {version} (same strategy, data, seed, code): "
                          "returning that model; --force trains again")  # fmt: skip
        return {**result, "report": {**result.get("report", {}), "reused": True}}

    async def _checkpoint_of(self, ctx: OperationContext, previous: str) -> tuple[str, Any] | None:
        """(host, checkpoint BlobRef) of the operation this one resumes; None when it has none."""
        if not previous:
            return None
        placement = await self.deps.placements.load(previous.removeprefix(NAME_PREFIX))
        link = self.deps.pool.link(placement.host) if placement else None
        if placement is None or link is None:
            await ctx.message(f"{previous} left no job on a known host: training from the start")
            return None
        await ctx.progress(message=f"waiting for training host {placement.host!r} (it holds the checkpoint)")
        while True:
            channel = await until_cancelled(ctx, link.ready_channel())
            try:
                job = await dispatch.get_job(channel, placement.job_id)
                break
            except dispatch.HostLost:  # gone again, or gone before its link noticed: wait for it
                await until_cancelled(ctx, asyncio.sleep(HOST_RETRY_S))
            except ApiError as exc:
                if exc.code != StatusCode.NOT_FOUND:
                    raise
                await ctx.message(f"training host {placement.host!r} no longer knows the job of {previous}: "
                                  "training from the start")  # fmt: skip
                return None
        found = [a for a in job.artifacts if a.name == job_wire.CHECKPOINT]
        if not job.has_checkpoint or not found:
            await ctx.message(f"{previous} has no checkpoint: training from the start")
            return None
        from ktrdr.common.v1 import common_pb2

        await ctx.message(f"resuming from the checkpoint of {previous}")
        return placement.host, common_pb2.BlobRef(sha256=found[0].sha256, size_bytes=found[0].size_bytes)

    async def _follow_existing(
        self, ctx: OperationContext, slot: Slot, placement: Placement
    ) -> hpb.Job | None:
        """Re-attach: the job's final snapshot once done; None when the host does not know it."""
        link = self.deps.pool.link(placement.host)
        assert link is not None
        await until_cancelled(ctx, link.ready_channel())
        try:
            await dispatch.get_job(slot.channel, placement.job_id)
        except ApiError as exc:
            if exc.code == StatusCode.NOT_FOUND:
                return None
            raise
        await ctx.message(f"re-attached to job {placement.job_id} on training host {placement.host!r}")
        return await self._train(ctx, slot, placement)

    async def _train(
        self, ctx: OperationContext, slot: Slot, placement: Placement, *, resumed: bool = False
    ) -> hpb.Job:
        """Follow the job to its end. ``resumed``: it started from a checkpoint; its first epoch
        reported says which epoch the checkpoint held, in a message."""
        await ctx.set_stage("train")
        untold = [resumed]

        def on_event(event: hpb.JobEvent) -> None:
            pr = event.progress
            if untold[0] and pr.current:
                untold[0] = False
                asyncio.get_running_loop().create_task(ctx.message(
                    f"resumed from the checkpoint of epoch {pr.current - 1} of {pr.total}: "
                    f"training goes on with epoch {pr.current}"))  # fmt: skip
            if pr.total or pr.fraction:
                asyncio.get_running_loop().create_task(
                    ctx.progress(
                        fraction=pr.fraction,
                        message=pr.message,
                        current=pr.current,
                        total=pr.total,
                        eta_s=pr.eta.ToNanoseconds() / 1e9 if pr.HasField("eta") else None,
                        metrics=dict(pr.metrics),
                    )
                )
            if event.message:
                asyncio.get_running_loop().create_task(ctx.message(f"host: {event.message}"))

        follow = asyncio.ensure_future(dispatch.follow_job(slot.channel, placement.job_id, 0, on_event))
        cancel = asyncio.ensure_future(ctx.cancelled.wait())
        try:
            await asyncio.wait({follow, cancel}, return_when=asyncio.FIRST_COMPLETED)
            if not follow.done():
                with contextlib.suppress(dispatch.HostLost, ApiError):
                    await dispatch.cancel_job(slot.channel, placement.job_id)
                return await follow
            return follow.result()
        except dispatch.HostLost as exc:
            raise self._lost(ctx, f"training host {placement.host!r} lost during the job: {exc}") from None
        finally:
            cancel.cancel()
            if not follow.done():
                follow.cancel()

    async def _finish(
        self, ctx: OperationContext, placement: Placement, job: hpb.Job, prepared: prep.Prepared
    ) -> dict[str, Any] | None:
        op_id = ctx.name.removeprefix(NAME_PREFIX)
        if job.state == hpb.JOB_STATE_CANCELLED:
            if ctx.cancelled.is_set():
                note = " after a checkpoint" if job.has_checkpoint else ""
                await ctx.message(f"cancelled{note}; {resume_hint(ctx.name)}")
                return None
            raise Interrupted(
                f"the job was cancelled on training host {placement.host!r}, not through ktrdrd; "
                f"{resume_hint(ctx.name)}",
                "JOB_CANCELLED_ON_HOST",
            )
        if job.state != hpb.JOB_STATE_SUCCEEDED:
            if job.stage == HOST_STOPPED_STAGE:  # the host stopped (SIGTERM, or restarted after a crash)
                raise self._lost(ctx, f"host {placement.host!r}: {job.error.message}", "HOST_STOPPED")
            if job.has_checkpoint and dispatch.error_reason(job) == WORKER_KILLED:
                what = (f"training host {placement.host!r}: the job's worker was killed from outside (the "
                        f"OOM killer, or a kill): {job.error.message}")  # fmt: skip
                raise self._lost(ctx, what, "WORKER_LOST")
            raise ApiError(StatusCode(job.error.code or StatusCode.INTERNAL), f"training failed on host "
                           f"{placement.host!r}: {job.error.message}", "TRAINING_FAILED")  # fmt: skip
        await ctx.set_stage("collect")
        work = self.deps.scratch / op_id
        await asyncio.to_thread(shutil.rmtree, work, True)
        await asyncio.to_thread(work.mkdir, parents=True)
        try:
            channel = await self._channel(ctx, placement.host)
            for name in job_wire.MODEL_FILES:
                await dispatch.download_artifact(channel, placement.job_id, name, work / name)
            record = await self.deps.models.register(work, ctx.name)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        version = f"models/{record.strategy}/versions/{record.version}"
        result = result_of(version, record.metrics, json_format.MessageToDict(job.result), prepared)
        if placement.request_digest:  # "": placed by a ktrdrd that did not record it
            await self.deps.reuse.remember(placement.request_digest, result)
        await self.deps.placements.forget(op_id)
        return result

    async def _channel(self, ctx: OperationContext, host: str) -> Any:
        link = self.deps.pool.link(host)
        assert link is not None
        return await until_cancelled(ctx, link.ready_channel())


def result_of(
    version: str, metrics: dict[str, float], summary: dict[str, Any], prepared: prep.Prepared
) -> dict[str, Any]:
    """The ``TrainingResult`` as proto3 JSON (the operation's result): the registry's flat metrics
    (each split's accuracy beside its majority and persistence baselines) and a report with the
    skill verdict, the splits, the training summary and whether early stopping was on."""
    keys = ("verdict_split", "verdict", "splits", "epochs_trained", "best_epoch", "samples_per_s", "warnings")
    report = {key: summary[key] for key in keys if key in summary}
    report.update(early_stopping=prepared.early_stopping, epochs=prepared.epochs, reused=False)
    return {
        "@type": "type.googleapis.com/ktrdr.daemon.v1.TrainingResult",
        "modelVersion": version,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "report": json.loads(json.dumps(report, default=str)),
    }
