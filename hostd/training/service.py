"""``ktrdr.hostd.training.v1.TrainingHostService``: the RPCs over :class:`~hostd.training.jobs.JobManager`
and :class:`~hostd.training.blobs.BlobStore`.

Requests are checked before anything changes (INVALID_ARGUMENT naming the field). StartJob checks,
in order: the job id, the kind (``JOB_KIND_TRAIN``: :mod:`ktrdr.jobs.train`; ``JOB_KIND_BACKTEST``:
:mod:`ktrdr.jobs.backtest`), the device preference, the spec and the input roles of that kind,
that every input blob is present (FAILED_PRECONDITION, reason ``BLOBS_MISSING``, the digests in
the message and in ``ErrorInfo.metadata["missing"]``), that the strategy loads (INVALID_ARGUMENT
with ``file:line:column``; a backtest without a ``strategy`` input uses its model's
``strategy.json``) and that a ``bars/...`` input exists for every series it needs; for a
backtest, also that the strategy builds exactly the model's feature spec (FAILED_PRECONDITION,
reason ``FEATURE_SPEC_MISMATCH``, naming the first differing column). A job id seen before returns that job (when the request is the
same).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2
from google.rpc import status_pb2

from hostd.training.blobs import DIGEST, BlobMismatch, BlobStore, StoreFull
from hostd.training.jobs import JobManager
from hostd.training.records import JOB_ID, Event, JobRecord, request_digest
from ktrdr import __version__
from ktrdr.common.v1 import common_pb2
from ktrdr.hostd.training.v1 import training_host_pb2 as pb
from ktrdr.jobs import backtest as backtest_wire
from ktrdr.jobs import train as wire
from ktrdr.rpc.errors import ApiError, invalid_argument, not_found
from ktrdr.rpc.registry import Call
from ktrdr.rpc.rich_status import error_info
from ktrdr.strategy import Strategy, StrategyError, load_strategy_text
from ktrdr.strategy.model import strategy_from_dict
from ktrdr.wire import StatusCode

#: Bytes per DownloadArtifact data message (well under the 4 MiB gRPC default).
CHUNK_BYTES = 1 << 20
#: How long CancelJob waits for the job's checkpoint before answering with the job as it is.
CANCEL_WAIT_S = 60.0
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_KINDS = {pb.JOB_KIND_TRAIN: wire.KIND, pb.JOB_KIND_BACKTEST: backtest_wire.KIND}
_KIND_NUMBERS = {name: number for number, name in _KINDS.items()}
_STATE_NUMBERS = {
    "QUEUED": pb.JOB_STATE_QUEUED,
    "RUNNING": pb.JOB_STATE_RUNNING,
    "SUCCEEDED": pb.JOB_STATE_SUCCEEDED,
    "FAILED": pb.JOB_STATE_FAILED,
    "CANCELLED": pb.JOB_STATE_CANCELLED,
}


def _timestamp(ns: int | None) -> timestamp_pb2.Timestamp | None:
    if ns is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(ns)
    return ts


def _progress(p: dict[str, Any]) -> common_pb2.Progress:
    if not p:
        return common_pb2.Progress()
    out = common_pb2.Progress(
        fraction=p["fraction"],
        message=p["message"],
        current=p["current"],
        total=p["total"],
        metrics=p["metrics"],
    )
    eta = p.get("eta_s")
    if eta is not None and eta == eta and eta != float("inf"):
        out.eta.CopyFrom(duration_pb2.Duration(seconds=int(eta), nanos=int((eta % 1) * 1e9)))
    return out


def job_message(job: JobRecord) -> pb.Job:
    """The proto of a job record."""
    out = pb.Job(
        job_id=job.job_id,
        kind=_KIND_NUMBERS[job.kind],
        state=_STATE_NUMBERS[job.state],
        stage=job.stage,
        progress=_progress(job.progress),
        device=job.device,
        create_time=_timestamp(job.create_ns),
        start_time=_timestamp(job.start_ns),
        end_time=_timestamp(job.end_ns),
        artifacts=[pb.Artifact(**a) for a in job.artifacts],
        last_seq=job.last_seq,
        labels=job.labels,
        has_checkpoint=job.has_checkpoint,
    )
    if job.error is not None:
        out.error.CopyFrom(status_pb2.Status(code=job.error.code, message=job.error.message))
        out.error.details.append(error_info(job.error.reason))
    if job.result is not None:
        out.result.CopyFrom(json_format.ParseDict(_finite(job.result), struct_pb2.Struct()))
    return out


def _finite(value: Any) -> Any:
    """JSON data with non-finite floats as None (a Struct cannot carry them)."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _event(job_id: str, e: Event) -> pb.JobEvent:
    return pb.JobEvent(
        job_id=job_id,
        seq=e.seq,
        time=_timestamp(e.time_ns),
        state=_STATE_NUMBERS[e.state],
        stage=e.stage,
        progress=_progress(e.progress),
        message=e.message,
    )


class TrainingHostService:
    descriptor = pb.DESCRIPTOR.services_by_name["TrainingHostService"]

    def __init__(self, jobs: JobManager, blobs: BlobStore, *, cuda_possible: bool) -> None:
        self.jobs = jobs
        self.blobs = blobs
        self.cuda_possible = cuda_possible

    def _job(self, job_id: str) -> JobRecord:
        job = self.jobs.jobs.get(job_id)
        if job is None:
            raise not_found(f"job {job_id!r}", "JOB_NOT_FOUND")
        return job

    async def StartJob(self, request: pb.StartJobRequest, call: Call) -> pb.StartJobResponse:
        if not JOB_ID.fullmatch(request.job_id):
            raise invalid_argument(
                "job_id", "1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"
            )
        if request.kind not in _KINDS:
            raise invalid_argument(
                "kind",
                f"this host runs JOB_KIND_TRAIN and JOB_KIND_BACKTEST jobs, got {pb.JobKind.Name(request.kind)}",
            )
        kind = _KINDS[request.kind]
        if request.device_preference not in ("", "cpu", "cuda"):
            raise invalid_argument(
                "device_preference", f"expected cuda, cpu or empty, got {request.device_preference!r}"
            )
        spec_dict = json_format.MessageToDict(request.spec)
        module = backtest_wire if kind == backtest_wire.KIND else wire
        try:
            parsed = module.parse_spec(spec_dict)
            if isinstance(parsed, backtest_wire.BacktestSpec):
                backtest_wire.check_roles((i.role for i in request.inputs), len(parsed.windows))
            else:
                wire.check_roles(i.role for i in request.inputs)
        except wire.JobSpecError as exc:
            key = exc.key if exc.key == "inputs" else f"spec.{exc.key}"
            raise invalid_argument(key, exc.description) from None
        inputs = []
        for n, item in enumerate(request.inputs):
            if not DIGEST.fullmatch(item.blob.sha256):
                raise invalid_argument(f"inputs[{n}].blob.sha256", "expected 64 lowercase hex characters")
            inputs.append((item.role, item.blob.sha256, item.blob.size_bytes))
        digest = request_digest(kind, spec_dict, inputs, request.device_preference)
        existing = self.jobs.jobs.get(request.job_id)
        if existing is None:
            await self._check_inputs(request, kind, inputs)
        job = JobRecord(
            job_id=request.job_id,
            kind=kind,
            spec=spec_dict,
            inputs=inputs,
            labels=dict(request.labels),
            device_preference=request.device_preference,
            request_digest=digest,
            create_ns=time.time_ns(),
        )
        return pb.StartJobResponse(job=job_message(self.jobs.submit(job, request.queue)))

    async def _check_inputs(
        self, request: pb.StartJobRequest, kind: str, inputs: list[tuple[str, str, int]]
    ) -> None:
        if request.device_preference == "cuda" and not self.cuda_possible:
            raise ApiError(StatusCode.FAILED_PRECONDITION, "this host has no CUDA device", "NO_CUDA")
        missing = self.blobs.missing(sha for _role, sha, _size in inputs)
        if missing:
            raise ApiError(
                StatusCode.FAILED_PRECONDITION,
                f"input blob(s) missing on this host; upload them first: {', '.join(missing)}",
                "BLOBS_MISSING",
                metadata={"missing": ",".join(missing)},
            )
        by_role = {role: sha for role, sha, _size in inputs}
        spec_dict = json_format.MessageToDict(request.spec)
        if wire.ROLE_STRATEGY in by_role:
            source = spec_dict.get("strategy_source", "strategy")
            path = Path(self.blobs.path(by_role[wire.ROLE_STRATEGY]))
            strategy = await asyncio.to_thread(_strategy_input, path, source)
        else:  # a backtest with the strategy its (first) model was trained with
            [first, *_] = backtest_wire.model_roles(len(backtest_wire.parse_spec(spec_dict).windows))
            path = Path(self.blobs.path(by_role[first[backtest_wire.MODEL_FILES.index("strategy.json")]]))
            strategy = await asyncio.to_thread(_model_strategy, path)
        data = strategy.data
        if kind == backtest_wire.KIND:
            symbol = backtest_wire.parse_spec(spec_dict).symbol
            absent = backtest_wire.missing_bars(symbol, data.timeframes, by_role)
        else:
            absent = wire.missing_bars_roles(wire.required_bars_roles(data.symbols, data.timeframes), by_role)
        if absent:
            raise invalid_argument("inputs", f"the strategy needs input(s) {', '.join(absent)}")
        if kind == backtest_wire.KIND:
            windows = len(backtest_wire.parse_spec(spec_dict).windows)
            where = backtest_wire.MODEL_FILES.index("feature_spec.json")
            for model in backtest_wire.model_roles(windows):  # each window's model
                spec_path = self.blobs.path(by_role[model[where]])
                await asyncio.to_thread(_check_feature_spec, strategy, Path(spec_path))

    async def WatchJob(self, request: pb.WatchJobRequest, call: Call) -> AsyncIterator[pb.WatchJobResponse]:
        job = self._job(request.job_id)
        yield pb.WatchJobResponse(snapshot=job_message(job))
        after = request.after_seq
        while True:
            fresh = [e for e in self.jobs.events[job.job_id] if e.seq > after]
            for e in fresh:
                yield pb.WatchJobResponse(event=_event(job.job_id, e))
                after = e.seq
            if job.done and after >= job.last_seq:
                return
            if job.done and not fresh:  # events from before a restart are gone; the snapshot has the end
                return
            await self.jobs.wait_change(job.job_id)

    async def CancelJob(self, request: pb.CancelJobRequest, call: Call) -> pb.CancelJobResponse:
        job = self._job(request.job_id)
        remaining = call.time_remaining()
        wait = CANCEL_WAIT_S if remaining is None else min(CANCEL_WAIT_S, max(0.0, remaining - 0.5))
        return pb.CancelJobResponse(job=job_message(await self.jobs.cancel(job, wait)))

    async def GetJob(self, request: pb.GetJobRequest, call: Call) -> pb.GetJobResponse:
        return pb.GetJobResponse(job=job_message(self._job(request.job_id)))

    async def ListJobs(self, request: pb.ListJobsRequest, call: Call) -> pb.ListJobsResponse:
        if request.page_size < 0:
            raise invalid_argument("page_size", f"must be >= 0, got {request.page_size}")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        token = request.page_token
        if token and not token.isdigit():
            raise invalid_argument("page_token", "not a token this host gave out")
        start = int(token or 0)
        wanted = set(request.state)
        jobs = sorted(self.jobs.jobs.values(), key=lambda j: (j.create_ns, j.job_id))
        chosen = [j for j in jobs if not wanted or _STATE_NUMBERS[j.state] in wanted]
        page = chosen[start : start + size]
        more = start + size < len(chosen)
        return pb.ListJobsResponse(
            jobs=[job_message(j) for j in page], next_page_token=str(start + size) if more else ""
        )

    async def UploadBlob(
        self, requests: AsyncIterator[pb.UploadBlobRequest], call: Call
    ) -> pb.UploadBlobResponse:
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("item") != "header":
            raise invalid_argument("header", "the first message must be the header")
        ref = first.header.blob
        if not DIGEST.fullmatch(ref.sha256):
            raise invalid_argument("header.blob.sha256", "expected 64 lowercase hex characters")
        if ref.size_bytes < 0:
            raise invalid_argument("header.blob.size_bytes", f"must be >= 0, got {ref.size_bytes}")
        if self.blobs.has(ref.sha256):
            return pb.UploadBlobResponse(blob=ref, already_present=True)
        try:
            upload = self.blobs.begin(ref.sha256, ref.size_bytes)
        except StoreFull as exc:
            raise ApiError(StatusCode.RESOURCE_EXHAUSTED, str(exc), "BLOB_TOO_LARGE") from None
        try:
            async for message in requests:
                if message.WhichOneof("item") != "data":
                    raise invalid_argument("header", "only one header, first")
                await asyncio.to_thread(upload.write, message.data)
            await asyncio.to_thread(upload.finish, self.jobs.pinned())
        except BlobMismatch as exc:
            raise invalid_argument(exc.field, str(exc), "BLOB_MISMATCH") from None
        except StoreFull as exc:
            raise ApiError(StatusCode.RESOURCE_EXHAUSTED, str(exc), "STORE_FULL") from None
        finally:
            upload.abort()
        return pb.UploadBlobResponse(blob=ref, already_present=False)

    async def HasBlobs(self, request: pb.HasBlobsRequest, call: Call) -> pb.HasBlobsResponse:
        return pb.HasBlobsResponse(missing=self.blobs.missing(request.sha256))

    async def DownloadArtifact(
        self, request: pb.DownloadArtifactRequest, call: Call
    ) -> AsyncIterator[pb.DownloadArtifactResponse]:
        job = self._job(request.job_id)
        path = self.jobs.artifact_path(job, request.name)
        if path is None:
            names = ", ".join(a["name"] for a in job.artifacts) or "none yet"
            raise not_found(
                f"artifact {request.name!r} of job {job.job_id} (it has: {names})", "ARTIFACT_NOT_FOUND"
            )
        record = next(a for a in job.artifacts if a["name"] == request.name)
        if not 0 <= request.offset <= record["size_bytes"]:
            raise invalid_argument(
                "offset", f"must be within 0..{record['size_bytes']}, got {request.offset}"
            )
        yield pb.DownloadArtifactResponse(header=pb.Artifact(**record))
        with open(path, "rb") as fh:
            fh.seek(request.offset)
            while chunk := await asyncio.to_thread(fh.read, CHUNK_BYTES):
                yield pb.DownloadArtifactResponse(data=chunk)

    async def GetCapacity(self, request: pb.GetCapacityRequest, call: Call) -> pb.GetCapacityResponse:
        info = self.jobs.device_info
        device_id = info.get("device", "cpu")
        kind = pb.DEVICE_KIND_CUDA if device_id.startswith("cuda") else pb.DEVICE_KIND_CPU
        total, free = len(self.jobs.slots), self.jobs.slots_free
        device = pb.Device(
            id=device_id,
            kind=kind,
            description=info.get("description", ""),
            memory_bytes=info.get("memory_bytes", 0),
            slots_total=total,
            slots_free=free,
        )
        return pb.GetCapacityResponse(
            host_id=socket.gethostname(),
            version=__version__,
            devices=[device],
            slots_total=total,
            slots_free=free,
            jobs_queued=len(self.jobs.queue),
        )


def _strategy_input(path: Path, source: str) -> Strategy:
    """The ``strategy`` input loaded: INVALID_ARGUMENT (``INVALID_STRATEGY`` with
    ``file:line:column``) when it is not a valid UTF-8 strategy document."""
    try:
        return load_strategy_text(path.read_text(encoding="utf-8"), source).strategy
    except UnicodeDecodeError as exc:
        raise invalid_argument("inputs", f"the strategy input is not UTF-8 text: {exc}") from None
    except StrategyError as exc:
        raise invalid_argument(
            "inputs", f"the strategy input is invalid: {exc}", "INVALID_STRATEGY"
        ) from None


def _model_strategy(path: Path) -> Strategy:
    """The strategy of a ``model/strategy.json`` input; INVALID_ARGUMENT when it is not one."""
    try:
        return strategy_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid_argument("inputs", f"model/strategy.json is not a strategy: {exc}") from None


def _check_feature_spec(strategy: Strategy, path: Path) -> None:
    """The model's feature spec (the ``model/feature_spec.json`` input at ``path``) must equal the
    one ``strategy`` builds: FAILED_PRECONDITION ``FEATURE_SPEC_MISMATCH`` naming the difference,
    INVALID_ARGUMENT when the file is not a feature spec."""
    from ktrdr.research.features import FeatureSpec, FeatureSpecMismatch, feature_spec

    try:
        stored = FeatureSpec.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid_argument("inputs", f"model/feature_spec.json is not a feature spec: {exc}") from None
    try:
        stored.verify(feature_spec(strategy))
    except FeatureSpecMismatch as exc:
        raise ApiError(
            StatusCode.FAILED_PRECONDITION,
            f"the model was trained on other features than strategy {strategy.name!r} builds: {exc}",
            "FEATURE_SPEC_MISMATCH",
        ) from None


def cuda_device_present() -> bool:
    """Whether an NVIDIA device node exists (without importing torch in the host)."""
    return os.path.exists("/dev/nvidia0") or os.path.exists("/proc/driver/nvidia/gpus")
