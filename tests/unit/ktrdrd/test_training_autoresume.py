"""Which interrupted ``train`` runs ktrdrd resumes by itself, when, in which order and how often
(:mod:`ktrdrd.training.autoresume`), over a real OperationsCore and journal; the ``train`` kind is a
stand-in that ends each run the way its params say. Also the small pure parts: the epoch a run had
reached, the resumed request, the host's "killed from outside", a job's error reason."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc

from hostd.training.pool import killed_from_outside
from ktrdr.hostd.training.v1 import training_host_pb2 as hpb
from ktrdr.rpc.errors import ApiError
from ktrdr.rpc.rich_status import error_info
from ktrdr.wire import StatusCode
from ktrdrd.hostjobs import dispatch
from ktrdrd.hostjobs.placements import Placement, Placements
from ktrdrd.hosts.link import READY, UNAVAILABLE
from ktrdrd.operations import Interrupted, OperationContext, OperationsCore
from ktrdrd.training.autoresume import AutoResumer, epoch_reached
from ktrdrd.training.batch import POLL_S, BatchKind
from ktrdrd.training.service import resumed_request
from tests.support.journal import opened


class StandIn:
    """A ``train`` kind: ``params.end`` says how a run ends (a reason of Interrupted, "FAILED", or
    absent: success); a resumed run (``resume_from``) succeeds."""

    async def run(self, ctx: OperationContext) -> dict[str, Any] | None:
        end = ctx.params.get("end", "")
        if ctx.params.get("resume_from") or not end:
            return None
        if end == "FAILED":
            raise ApiError(StatusCode.INTERNAL, "training loss is nan", "TRAINING_FAILED")
        raise Interrupted(f"lost ({end})", end)


class Channel:
    """A host's channel for GetJob: it answers (the job as asked), or is gone (UNAVAILABLE)."""

    def __init__(self) -> None:
        self.gone = False

    def unary_unary(self, method: str, **_: Any) -> Any:
        async def call(request: Any, timeout: float) -> Any:
            if self.gone:
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.aio.Metadata(),
                    grpc.aio.Metadata(),
                    "connection refused",
                )
            return hpb.GetJobResponse(job=hpb.Job(job_id=request.job_id))

        return call


def hosts(**states: str) -> SimpleNamespace:
    """A pool whose links have these states and channels that answer."""
    return SimpleNamespace(
        links={
            name: SimpleNamespace(status=SimpleNamespace(state=state), channel=Channel())
            for name, state in states.items()
        }
    )


async def ended(core: OperationsCore, end: str, **params: Any) -> Any:
    record = await core.start("train", params={"end": end, **params})
    return await core.wait(record.name, 10)


async def resumed_from(core: OperationsCore, record: Any) -> list[Any]:
    page, _ = await core.list(kind="train", labels={"resumed-from": record.id})
    return page


def test_lost_runs_resume_once_their_host_is_ready_in_submission_order_and_bounded(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(tmp_path / "ktrdr.db", register=False) as core:
            core.register_kind("train", StandIn())
            placements = Placements(tmp_path / "placements")
            pool = hosts(a=UNAVAILABLE, b=READY)
            resumer = AutoResumer(core, pool, placements, limit=2)  # type: ignore[arg-type]
            lost_on_a = await ended(core, "HOST_LOST")
            stopped_on_a = await ended(core, "HOST_STOPPED")
            worker_on_b = await ended(core, "WORKER_LOST")
            unplaced = await ended(core, "HOST_LOST")
            cancelled_on_host = await ended(core, "JOB_CANCELLED_ON_HOST")
            failed = await ended(core, "FAILED")
            at_limit = await ended(core, "HOST_LOST", auto_resumes=2)
            for record, host in ((lost_on_a, "a"), (stopped_on_a, "a"), (worker_on_b, "b"), (at_limit, "b")):
                await placements.save(record.id, Placement(host, record.id))
            assert {r.state for r in (lost_on_a, cancelled_on_host, at_limit)} == {"INTERRUPTED"}

            await resumer._look({"b"})  # a is away: only b's run and the one never placed
            assert [len(await resumed_from(core, r)) for r in (lost_on_a, stopped_on_a)] == [0, 0]
            (on_b,) = await resumed_from(core, worker_on_b)
            (anywhere,) = await resumed_from(core, unplaced)
            assert on_b.id < anywhere.id  # oldest first
            for skipped in (cancelled_on_host, failed, at_limit):
                assert await resumed_from(core, skipped) == []

            pool.links["a"].status.state = READY
            pool.links["a"].channel.gone = True  # its link says READY, but the host is gone: not back yet
            await resumer._look({"a", "b"})
            assert [len(await resumed_from(core, r)) for r in (lost_on_a, stopped_on_a)] == [0, 0]
            pool.links["a"].channel.gone = False
            await resumer._look({"a", "b"})
            await resumer._look({"a", "b"})  # a second look starts nothing twice
            (first,) = await resumed_from(core, lost_on_a)
            (second,) = await resumed_from(core, stopped_on_a)
            assert first.id < second.id
            assert first.labels == {"resumed-from": lost_on_a.id, "resumed-by": "ktrdrd"}
            assert first.params["auto_resumes"] == 1 and first.params["resume_from"] == lost_on_a.name
            assert "training host 'a' is back; resuming " + lost_on_a.name in first.params["resume_note"]
            assert "automatic resume 1 of 2" in first.params["resume_note"]
            assert (await core.wait(first.name, 10)).state == "SUCCEEDED"
            assert await resumed_from(core, at_limit) == []

    asyncio.run(scenario())


def test_a_run_a_person_resumed_is_not_resumed_again_and_limit_0_resumes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(tmp_path / "ktrdr.db", register=False) as core:
            core.register_kind("train", StandIn())
            lost = await ended(core, "HOST_LOST")
            params, labels = resumed_request(lost)
            await core.start("train", params=params, labels=labels)
            other = await ended(core, "HOST_LOST")
            placements = Placements(tmp_path / "placements")
            await AutoResumer(core, hosts(a=READY), placements, limit=0).run()  # type: ignore[arg-type]
            assert await resumed_from(core, other) == []
            await AutoResumer(core, hosts(a=READY), placements, limit=3)._look({"a"})  # type: ignore[arg-type]
            assert len(await resumed_from(core, lost)) == 1 and len(await resumed_from(core, other)) == 1

    asyncio.run(scenario())


def test_the_background_look_waits_for_the_host_to_become_ready(tmp_path: Path) -> None:
    """As after a daemon restart: the run is in the journal, its host not READY yet; once it is,
    the run is resumed without anything else asking."""

    async def scenario() -> None:
        async with opened(tmp_path / "ktrdr.db", register=False) as core:
            core.register_kind("train", StandIn())
            lost = await ended(core, "HOST_STOPPED")
            placements = Placements(tmp_path / "placements")
            await placements.save(lost.id, Placement("a", lost.id))
            pool = hosts(a=UNAVAILABLE)
            task = asyncio.create_task(AutoResumer(core, pool, placements, limit=3).run())  # type: ignore[arg-type]
            try:
                await asyncio.sleep(0.1)
                assert await resumed_from(core, lost) == []
                pool.links["a"].status.state = READY
                for _ in range(100):
                    if await resumed_from(core, lost):
                        break
                    await asyncio.sleep(0.05)
                (resumed,) = await resumed_from(core, lost)
                assert resumed.params["auto_resumes"] == 1
            finally:
                task.cancel()

    asyncio.run(scenario())


def test_a_batch_counts_the_run_that_resumes_its_lost_child(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(tmp_path / "ktrdr.db", register=False) as core:
            core.register_kind("train", StandIn())
            core.register_kind("train.batch", BatchKind(core, auto_resume_limit=3))
            runs = [{"end": "HOST_LOST", "strategy": {"source_name": f"{n}.yaml"}} for n in "ab"]
            runs[1].pop("end")
            parent = await core.start("train.batch", params={"runs": runs, "max_parallel": 0})
            for _ in range(100):
                lost, _ = await core.list(parent=parent.name, states=["INTERRUPTED"])
                if lost:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(2 * POLL_S)
            assert not (await core.get(parent.name)).done  # it waits for the lost run's resume
            await AutoResumer(core, hosts(a=READY), Placements(tmp_path), limit=3)._look({"a"})  # type: ignore[arg-type]
            done = await core.wait(parent.name, 10)
            assert done.state == "SUCCEEDED" and done.result is not None
            assert (done.result["succeeded"], done.result["failed"]) == (2, 0)
            (resumed,) = await resumed_from(core, lost[0])
            assert resumed.parent == parent.name

    asyncio.run(scenario())


def test_a_resumed_request_carries_the_count_and_a_person_s_resume_restarts_it() -> None:
    record = SimpleNamespace(
        name="operations/op_x",
        params={"strategy": {}, "force": False, "auto_resumes": 2, "resume_note": "old"},
        labels={"batch-index": "1", "resumed-by": "ktrdrd"},
    )
    params, labels = resumed_request(record, auto_resumes=3, note="back")  # type: ignore[arg-type]
    assert params == {"strategy": {}, "force": True, "auto_resumes": 3, "resume_note": "back",
                      "resume_from": "operations/op_x"}  # fmt: skip
    assert labels == {"batch-index": "1", "resumed-from": "op_x", "resumed-by": "ktrdrd"}
    params, labels = resumed_request(record)  # type: ignore[arg-type]
    assert params["auto_resumes"] == 0 and "resume_note" not in params
    assert labels == {"batch-index": "1", "resumed-from": "op_x"}


def test_the_epoch_reached_is_the_last_reported_one() -> None:
    record = SimpleNamespace(progress={"current": "5", "total": "80", "metrics": {"batch": 3.0}})
    assert epoch_reached(record) == (5, 80)  # type: ignore[arg-type]
    assert epoch_reached(SimpleNamespace(progress={"current": 0, "total": 0})) == (0, 0)  # type: ignore[arg-type]


def test_only_signals_from_outside_count_as_a_killed_worker() -> None:
    assert killed_from_outside(-signal.SIGKILL) and killed_from_outside(-signal.SIGTERM)
    assert not killed_from_outside(-signal.SIGSEGV) and not killed_from_outside(-signal.SIGABRT)
    assert not killed_from_outside(1) and not killed_from_outside(0) and not killed_from_outside(None)


def test_a_job_s_error_reason_is_read_from_its_error_info() -> None:
    job = hpb.Job()
    assert dispatch.error_reason(job) == ""
    job.error.code = StatusCode.INTERNAL
    job.error.details.append(error_info("WORKER_KILLED"))
    assert dispatch.error_reason(job) == "WORKER_KILLED"


def test_a_placement_keeps_its_request_digest_and_reads_old_files(tmp_path: Path) -> None:
    async def scenario() -> None:
        placements = Placements(tmp_path)
        await placements.save("op_a", Placement("local", "op_a", "d" * 64))
        assert await placements.load("op_a") == Placement("local", "op_a", "d" * 64)
        (tmp_path / "op_b.json").write_text('{"host": "local", "job_id": "op_b"}')
        assert await placements.load("op_b") == Placement("local", "op_b", "")

    asyncio.run(scenario())
