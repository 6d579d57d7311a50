"""One job on one host, over the host's channel: the ``TrainingHostService`` calls a daemon makes,
generic over ``JobKind`` (train now, backtest next).

``refs = await upload_missing(channel, blobs)`` (``role -> bytes``) asks ``HasBlobs`` which
digests the host lacks and uploads only those (``UploadBlob``, chunks of :data:`CHUNK_BYTES`);
``job = await start_job(channel, JobSpec(...), refs)`` (idempotent on the job id: the same request
again returns the same job); ``job = await follow_job(channel, job_id, after_seq, on_event)``
calls ``on_event(JobEvent)`` for every event after ``after_seq`` and returns the job's final
snapshot once it is done; ``await cancel_job(channel, job_id)`` (the host checkpoints first);
``await get_job(...)``; ``await download_artifact(channel, job_id, name, path)``.

A call that fails because the host went away raises :class:`HostLost` with the reason in words
(:func:`ktrdrd.hosts.link.failure_reason`); any other refusal is an
:class:`~ktrdr.rpc.errors.ApiError` with the host's code and message.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2

from ktrdr.common.v1 import common_pb2
from ktrdr.hostd.training.v1 import training_host_pb2 as pb
from ktrdr.rpc.errors import ApiError
from ktrdrd.hosts.link import failure_reason

SERVICE = "/ktrdr.hostd.training.v1.TrainingHostService/"
#: Bytes per UploadBlob data message.
CHUNK_BYTES = 1 << 20
#: Seconds a unary call to a host may take (CancelJob waits for the job's checkpoint).
CALL_TIMEOUT_S = 120.0
#: gRPC codes that mean "the host is not there" rather than "the host refused".
_GONE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
TERMINAL_JOB_STATES = (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)


class HostLost(Exception):
    """The host went away during a call (its reason in words)."""


@dataclass(frozen=True)
class JobSpec:
    """What to start: ``kind`` a ``JobKind`` value, ``spec`` the kind's Struct-safe spec,
    ``inputs`` role → blob (sha256, size) as :func:`upload_missing` returns them."""

    job_id: str
    kind: int
    spec: Mapping[str, Any]
    inputs: Mapping[str, common_pb2.BlobRef]
    labels: Mapping[str, str] = field(default_factory=dict)


def error_reason(job: pb.Job) -> str:
    """The machine reason (``google.rpc.ErrorInfo``) of a job's error; "" when it carries none."""
    for detail in job.error.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def blob_ref(data: bytes) -> common_pb2.BlobRef:
    return common_pb2.BlobRef(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def _translate(exc: grpc.aio.AioRpcError) -> Exception:
    if exc.code() in _GONE:
        return HostLost(failure_reason(exc))
    from ktrdr.wire import StatusCode

    return ApiError(StatusCode(exc.code().value[0]), f"the host refused: {exc.details()}", "HOST_REFUSED")


def _unary(channel: grpc.aio.Channel, method: str, response: Any) -> Any:
    return channel.unary_unary(
        SERVICE + method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )


async def _call(channel: grpc.aio.Channel, method: str, request: Any, response: Any) -> Any:
    try:
        return await _unary(channel, method, response)(request, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        raise _translate(exc) from None


async def upload_missing(
    channel: grpc.aio.Channel, blobs: Mapping[str, bytes]
) -> dict[str, common_pb2.BlobRef]:
    """role → BlobRef for every blob, uploading only those the host lacks (HasBlobs, then UploadBlob)."""
    refs = {role: blob_ref(data) for role, data in blobs.items()}
    answer = await _call(
        channel,
        "HasBlobs",
        pb.HasBlobsRequest(sha256=sorted({r.sha256 for r in refs.values()})),
        pb.HasBlobsResponse,
    )
    missing = set(answer.missing)
    upload = channel.stream_unary(
        SERVICE + "UploadBlob",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.UploadBlobResponse.FromString,
    )
    for role, ref in refs.items():
        if ref.sha256 not in missing:
            continue
        missing.discard(ref.sha256)
        data = blobs[role]

        async def parts(
            data: bytes = data, ref: common_pb2.BlobRef = ref
        ) -> AsyncIterator[pb.UploadBlobRequest]:
            yield pb.UploadBlobRequest(header=pb.UploadBlobHeader(blob=ref))
            for offset in range(0, len(data), CHUNK_BYTES):
                yield pb.UploadBlobRequest(data=data[offset : offset + CHUNK_BYTES])

        try:
            await upload(parts(), timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
    return refs


async def start_job(channel: grpc.aio.Channel, job: JobSpec) -> pb.Job:
    """StartJob (queued on the host when its slots are busy); the same job id again returns that job."""
    request = pb.StartJobRequest(
        job_id=job.job_id,
        kind=job.kind,  # type: ignore[arg-type]
        spec=json_format.ParseDict(dict(job.spec), struct_pb2.Struct()),
        inputs=[pb.JobInput(role=role, blob=ref) for role, ref in job.inputs.items()],
        queue=True,
        labels=dict(job.labels),
    )
    return (await _call(channel, "StartJob", request, pb.StartJobResponse)).job


async def get_job(channel: grpc.aio.Channel, job_id: str) -> pb.Job:
    return (await _call(channel, "GetJob", pb.GetJobRequest(job_id=job_id), pb.GetJobResponse)).job


async def cancel_job(channel: grpc.aio.Channel, job_id: str) -> pb.Job:
    """CancelJob: the host checkpoints a running job, then stops it; returns the job as it is then."""
    return (await _call(channel, "CancelJob", pb.CancelJobRequest(job_id=job_id), pb.CancelJobResponse)).job


async def follow_job(
    channel: grpc.aio.Channel, job_id: str, after_seq: int, on_event: Callable[[pb.JobEvent], None]
) -> pb.Job:
    """Call ``on_event`` for each event with seq > ``after_seq`` until the job is done; returns its
    final snapshot (GetJob). HostLost when the stream breaks before the job is done."""
    watch = channel.unary_stream(
        SERVICE + "WatchJob",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.WatchJobResponse.FromString,
    )
    stream = watch(pb.WatchJobRequest(job_id=job_id, after_seq=after_seq))
    done = False
    try:
        async for item in stream:
            if item.HasField("snapshot"):
                done = item.snapshot.state in TERMINAL_JOB_STATES and item.snapshot.last_seq <= after_seq
            else:
                on_event(item.event)
                done = item.event.state in TERMINAL_JOB_STATES
            if done:
                break
    except grpc.aio.AioRpcError as exc:
        raise _translate(exc) from None
    finally:
        stream.cancel()
    if not done:
        raise HostLost("the host ended the job's event stream early")
    return await get_job(channel, job_id)


async def download_artifact(channel: grpc.aio.Channel, job_id: str, name: str, path: Path) -> int:
    """Write the job's artifact ``name`` to ``path`` (its writes run in a thread); returns its size."""
    download = channel.unary_stream(
        SERVICE + "DownloadArtifact",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.DownloadArtifactResponse.FromString,
    )
    chunks: list[bytes] = []
    try:
        async for item in download(
            pb.DownloadArtifactRequest(job_id=job_id, name=name), timeout=CALL_TIMEOUT_S
        ):
            if item.HasField("data"):
                chunks.append(item.data)
    except grpc.aio.AioRpcError as exc:
        raise _translate(exc) from None
    data = b"".join(chunks)
    await asyncio.to_thread(path.write_bytes, data)
    return len(data)
