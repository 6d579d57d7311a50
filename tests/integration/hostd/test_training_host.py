"""``hostd training`` as a real process on a unix socket: blobs, jobs in warm workers, every event in
order, artifacts that load as a model directory, cancel and resume, faults (NaN loss, a worker
killed by SIGKILL, SIGTERM of the host mid-job), and the bad requests that change nothing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hostd.training.pool import Worker
from ktrdr.hostd.training.v1 import training_host_pb2 as pb
from ktrdr.jobs import train as wire
from ktrdr.research.artifacts import load_model_dir
from ktrdr.research.features import feature_spec
from ktrdr.strategy import load_strategy_text
from tests.integration.conftest import NotifyListener
from tests.support.traininghost import (
    TrainHost,
    bars_parquet,
    blob_ref,
    result_dict,
    spec,
    strategy_text,
)

MAX_BLOB = 1_000_000
STRATEGY = strategy_text().encode()
BARS = bars_parquet()
INPUTS = {wire.ROLE_STRATEGY: STRATEGY, wire.bars_role("AAPL", "1h"): BARS}
#: A job long enough to act on while it runs (each test acts right after epoch 2) and short enough
#: that the resume tests, which train it to the end twice, stay quick.
LONG = {"epochs": 100, "options": {"progress_interval_s": 0.02, "checkpoint_every": 0}}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainHost]:
    root = tmp_path_factory.mktemp("trainhost")
    (root / "state").mkdir()
    started = TrainHost(root / "state", root, "--max-blob-bytes", str(MAX_BLOB))
    started.upload(STRATEGY)
    started.upload(BARS)
    yield started
    assert started.stop() == 0


def _details(exc: grpc.RpcError) -> dict[str, object]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    out: dict[str, object] = {}
    for detail in status.details if status else []:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                out[kind.__name__] = message
    return out


def test_a_job_runs_with_every_event_in_order_and_its_artifacts_load(host: TrainHost, tmp_path: Path) -> None:
    job = host.start("ok-1", INPUTS)
    assert job.state in (pb.JOB_STATE_RUNNING, pb.JOB_STATE_QUEUED)
    items = host.watch("ok-1")
    assert items[0].WhichOneof("item") == "snapshot"
    events = [i.event for i in items[1:]]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].state == pb.JOB_STATE_SUCCEEDED and events[-1].seq == host.get("ok-1").last_seq
    stages = [e.stage for e in events]
    assert stages.index("load") < stages.index("train") < stages.index("done")
    epochs = [e.progress.current for e in events if e.progress.message.startswith("epoch")]
    assert epochs == sorted(epochs) and epochs[-1] == 3 and events[-1].progress.fraction == 1.0

    done = host.get("ok-1")
    result = result_dict(done)
    assert tuple(sorted(result)) == tuple(sorted(wire.RESULT_KEYS))
    assert result["epochs_trained"] == 3 and done.device == "cpu" and not done.has_checkpoint
    assert [a.name for a in done.artifacts] == list(wire.MODEL_FILES)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for artifact in done.artifacts:
        header, data = host.download("ok-1", artifact.name)
        assert header == artifact and hashlib.sha256(data).hexdigest() == artifact.sha256
        (model_dir / artifact.name).write_bytes(data)
    strategy = load_strategy_text(STRATEGY.decode()).strategy
    loaded = load_model_dir(model_dir, expected=feature_spec(strategy))
    assert (
        loaded.manifest["seed"] == 7
        and loaded.metrics["evaluation"]["test"]["accuracy"] == (result["splits"]["test"]["accuracy"])
    )
    header, tail = host.download("ok-1", "metrics.json", offset=10)
    assert tail == (model_dir / "metrics.json").read_bytes()[10:]

    # StartJob again: the same job, not a second run; another request under the id is refused.
    again = host.start("ok-1", INPUTS)
    assert again.state == pb.JOB_STATE_SUCCEEDED and again.last_seq == done.last_seq
    with pytest.raises(grpc.RpcError) as exc:
        host.start("ok-1", INPUTS, spec=spec(epochs=5))
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS

    listed = host.unary(
        "ListJobs", pb.ListJobsRequest(state=[pb.JOB_STATE_SUCCEEDED], page_size=1), pb.ListJobsResponse
    )
    assert listed.jobs[0].state == pb.JOB_STATE_SUCCEEDED
    capacity = host.unary("GetCapacity", pb.GetCapacityRequest(), pb.GetCapacityResponse)
    assert (
        capacity.slots_total == 1 and capacity.devices[0].id == "cpu" and capacity.devices[0].memory_bytes > 0
    )


def test_a_missing_blob_is_failed_precondition_naming_its_digest(host: TrainHost) -> None:
    absent = b"bars never uploaded"
    with pytest.raises(grpc.RpcError) as exc:
        host.start("missing-1", {wire.ROLE_STRATEGY: STRATEGY, wire.bars_role("AAPL", "1h"): absent})
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    digest = hashlib.sha256(absent).hexdigest()
    info = _details(exc.value)["ErrorInfo"]
    assert info.reason == "BLOBS_MISSING" and info.metadata["missing"] == digest  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as gone:
        host.get("missing-1")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_uploads_store_nothing(host: TrainHost) -> None:
    data = b"some bytes"
    wrong = blob_ref(b"other bytes")
    wrong.size_bytes = len(data)
    with pytest.raises(grpc.RpcError) as exc:
        host.upload(data, ref=wrong)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(exc.value)["BadRequest"].field_violations[0].field == "header.blob.sha256"  # type: ignore[attr-defined]
    has = host.unary(
        "HasBlobs", pb.HasBlobsRequest(sha256=[wrong.sha256, blob_ref(data).sha256]), pb.HasBlobsResponse
    )
    assert list(has.missing) == [wrong.sha256, blob_ref(data).sha256]

    big = os.urandom(MAX_BLOB + 1)
    with pytest.raises(grpc.RpcError) as exc:
        host.upload(big)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and str(MAX_BLOB) in exc.value.details()


def test_bad_specs_and_strategies_are_refused_naming_the_key(host: TrainHost) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        host.start("bad-1", INPUTS, spec=spec(end_ns="1"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "spec.end_ns" in exc.value.details()
    with pytest.raises(grpc.RpcError) as exc:
        host.start("bad-2", INPUTS, spec=spec(colour="red"))
    assert "spec.colour: unknown key" in exc.value.details()
    broken = STRATEGY.replace(b"period: 14", b"period: -3")
    host.upload(broken)
    with pytest.raises(grpc.RpcError) as exc:
        host.start("bad-3", {**INPUTS, wire.ROLE_STRATEGY: broken})
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "strategy:7:" in exc.value.details()
    with pytest.raises(grpc.RpcError) as exc:
        host.start("bad-4", {wire.ROLE_STRATEGY: STRATEGY})
    assert "needs input(s) bars/AAPL/1h" in exc.value.details()


def test_nan_loss_fails_the_job_with_the_reason(host: TrainHost) -> None:
    exploding = strategy_text(learning_rate=1e30).encode()
    host.upload(exploding)
    host.start("nan-1", {**INPUTS, wire.ROLE_STRATEGY: exploding})
    host.watch("nan-1")
    job = host.get("nan-1")
    assert job.state == pb.JOB_STATE_FAILED
    assert "training loss is nan" in job.error.message and "lower the learning rate" in job.error.message


def test_cancel_checkpoints_and_a_resume_ends_like_an_uninterrupted_run(host: TrainHost) -> None:
    host.start("whole", INPUTS, spec=spec(**LONG))
    host.watch("whole")
    whole = result_dict(host.get("whole"))

    host.start("part", INPUTS, spec=spec(**LONG))
    host.wait_progress("part")
    cancelled = host.unary("CancelJob", pb.CancelJobRequest(job_id="part"), pb.CancelJobResponse).job
    assert cancelled.state == pb.JOB_STATE_CANCELLED and cancelled.has_checkpoint
    checkpoint = next(a for a in cancelled.artifacts if a.name == wire.CHECKPOINT)
    has = host.unary("HasBlobs", pb.HasBlobsRequest(sha256=[checkpoint.sha256]), pb.HasBlobsResponse)
    assert not has.missing  # kept in the blob store: a resume needs no upload

    inputs = [pb.JobInput(role=r, blob=blob_ref(d)) for r, d in INPUTS.items()]
    inputs.append(pb.JobInput(role=wire.ROLE_CHECKPOINT, blob=blob_ref(b"")))
    inputs[-1].blob.sha256, inputs[-1].blob.size_bytes = checkpoint.sha256, checkpoint.size_bytes
    request = pb.StartJobRequest(job_id="resumed", kind=pb.JOB_KIND_TRAIN, spec=spec(**LONG), inputs=inputs)
    host.unary("StartJob", request, pb.StartJobResponse)
    host.watch("resumed")
    resumed = result_dict(host.get("resumed"))
    assert resumed["epochs_trained"] == whole["epochs_trained"] == LONG["epochs"]
    assert resumed["splits"] == whole["splits"]


def test_a_worker_killed_by_a_signal_fails_only_its_job(host: TrainHost) -> None:
    host.start("killed", INPUTS, spec=spec(**LONG))
    pid = host.wait_progress("killed")
    os.kill(pid, signal.SIGKILL)
    host.watch("killed")
    job = host.get("killed")
    assert job.state == pb.JOB_STATE_FAILED and "killed by SIGKILL" in job.error.message
    info = error_details_pb2.ErrorInfo()
    assert job.error.details[0].Unpack(info) and info.reason == "WORKER_KILLED"  # from outside, not a crash
    host.start("after-kill", INPUTS)
    host.watch("after-kill")
    assert host.get("after-kill").state == pb.JOB_STATE_SUCCEEDED


def test_sigterm_checkpoints_running_jobs_and_a_restart_resumes_them(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    listener = NotifyListener(tmp_path / "notify.sock")
    host = TrainHost(state, tmp_path, env={"NOTIFY_SOCKET": str(listener.path)})
    try:
        ready = listener.wait_for("READY", "1", host.proc, 60)
        assert ready["MAINPID"] == str(host.proc.pid) and "1 slot(s) on cpu" in ready["STATUS"]
        host.upload(STRATEGY)
        host.upload(BARS)
        host.start("term-1", INPUTS, spec=spec(**LONG))
        host.wait_progress("term-1")
    finally:
        assert host.stop() == 0
        listener.wait_for("STOPPING", "1", host.proc, 5)
        listener.close()
    host = TrainHost(state, tmp_path)
    try:
        job = host.get("term-1")
        assert job.state == pb.JOB_STATE_FAILED and job.has_checkpoint
        assert job.error.code == grpc.StatusCode.ABORTED.value[0]
        checkpoint = next(a for a in job.artifacts if a.name == wire.CHECKPOINT)
        request = pb.StartJobRequest(
            job_id="term-2",
            kind=pb.JOB_KIND_TRAIN,
            spec=spec(**LONG),
            inputs=[
                *(pb.JobInput(role=r, blob=blob_ref(d)) for r, d in INPUTS.items()),
                pb.JobInput(
                    role=wire.ROLE_CHECKPOINT,
                    blob={"sha256": checkpoint.sha256, "size_bytes": checkpoint.size_bytes},
                ),
            ],
        )
        host.unary("StartJob", request, pb.StartJobResponse)
        host.watch("term-2")
        resumed = host.get("term-2")
        assert (
            resumed.state == pb.JOB_STATE_SUCCEEDED
            and result_dict(resumed)["epochs_trained"] == LONG["epochs"]
        )
    finally:
        assert host.stop() == 0


def test_a_warm_worker_never_imports_grpc(tmp_path: Path) -> None:
    """Started from this process, which has grpc loaded: the spawned worker has none of it."""

    async def ready_info() -> dict[str, object]:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[dict[str, object]] = loop.create_future()

        def on_message(_worker: Worker, message: tuple[str, object]) -> None:
            if message[0] == "ready" and not got.done():
                got.set_result(message[1])  # type: ignore[arg-type]

        worker = Worker(loop, on_message, device="cpu", threads=1, stderr_path=tmp_path / "w.log")
        await asyncio.to_thread(worker.start)
        try:
            return await asyncio.wait_for(got, 120)
        finally:
            worker.kill()

    assert "grpc" in __import__("sys").modules
    info = asyncio.run(ready_info())
    assert info["grpc_modules"] == [] and info["device"] == "cpu"


def test_a_busy_host_refuses_or_queues_and_cancels_queued_jobs(host: TrainHost) -> None:
    host.start("busy", INPUTS, spec=spec(**LONG))
    host.wait_progress("busy")
    with pytest.raises(grpc.RpcError) as exc:
        host.start("refused", INPUTS)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _details(exc.value)["RetryInfo"].retry_delay.seconds > 0  # type: ignore[attr-defined]
    queued = host.start("waiting", INPUTS, queue=True)
    assert queued.state == pb.JOB_STATE_QUEUED
    capacity = host.unary("GetCapacity", pb.GetCapacityRequest(), pb.GetCapacityResponse)
    assert (capacity.slots_free, capacity.jobs_queued) == (0, 1)
    cancelled = host.unary("CancelJob", pb.CancelJobRequest(job_id="waiting"), pb.CancelJobResponse).job
    assert cancelled.state == pb.JOB_STATE_CANCELLED and not cancelled.has_checkpoint
    host.unary("CancelJob", pb.CancelJobRequest(job_id="busy"), pb.CancelJobResponse)
    page = host.unary(
        "ListJobs", pb.ListJobsRequest(state=[pb.JOB_STATE_CANCELLED], page_size=1), pb.ListJobsResponse
    )
    rest = host.unary(
        "ListJobs",
        pb.ListJobsRequest(state=[pb.JOB_STATE_CANCELLED], page_size=1000, page_token=page.next_page_token),
        pb.ListJobsResponse,
    )
    names = [j.job_id for j in [*page.jobs, *rest.jobs]]
    assert {"busy", "waiting"} <= set(names) and len(names) == len(set(names))


def test_a_killed_host_leaves_its_running_job_resumable_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    host = TrainHost(state, tmp_path)
    try:
        host.upload(STRATEGY)
        host.upload(BARS)
        host.start("kill-9", INPUTS, spec=spec(epochs=400, options={"progress_interval_s": 0.02}))
        host.wait_progress("kill-9")
    finally:
        host.kill()
    host = TrainHost(state, tmp_path)
    try:
        job = host.get("kill-9")
        assert (
            job.state == pb.JOB_STATE_FAILED
            and job.has_checkpoint
            and "stopped while the job ran" in job.error.message
        )
        assert any(a.name == wire.CHECKPOINT for a in job.artifacts)
    finally:
        assert host.stop() == 0
