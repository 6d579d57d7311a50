"""Test support for ``hostd training``: the host as a real subprocess on a unix socket, gRPC helpers,
and the tiny training inputs (a small strategy document and synthetic bars as Parquet blobs).

``TrainHost(state_dir, sock_dir, *flags)`` starts ``python -m hostd training`` and reads its
listening line; ``host.upload(data)`` → BlobRef; ``host.start(job_id, inputs, ...)``;
``host.watch(job_id)`` collects a WatchJob stream; ``host.download(job_id, name)``;
``host.stop()`` sends SIGTERM and returns the exit status.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from ktrdr.common.v1 import common_pb2
from ktrdr.hostd.training.v1 import training_host_pb2 as pb
from ktrdr.jobs import train as wire
from ktrdr.research.synthetic import gbm_bars, to_ns
from tests.support.paths import REPO
from tests.support.tinystrategy import SMALLEST_YAML

START_TIMEOUT_S = 120.0
CALL_TIMEOUT_S = 120.0
SERVICE = "/ktrdr.hostd.training.v1.TrainingHostService/"
START, END = "2023-02-01", "2023-05-01"


def strategy_text(*, epochs: int = 3, learning_rate: float = 0.001) -> str:
    """The smallest strategy (AAPL 1h, RSI) with a small network and few epochs."""
    return SMALLEST_YAML + (
        "model:\n"
        "  architecture:\n"
        "    hidden_layers: [8]\n"
        "  training:\n"
        f"    epochs: {epochs}\n"
        "    batch_size: 64\n"
        f"    learning_rate: {learning_rate:.1e}\n"
        "training:\n"
        "  labels:\n"
        "    zigzag_threshold: 0.01\n"
    )


def bars_parquet() -> bytes:
    """AAPL 1h synthetic bars from a month before START to END, as a bars input."""
    return wire.bars_to_parquet(gbm_bars("AAPL", "1h", "2023-01-01", END, seed=4, sigma=0.4))


def spec(**extra: Any) -> struct_pb2.Struct:
    body = wire.TrainSpec(start_ns=to_ns(START), end_ns=to_ns(END), seed=7).to_struct_dict()
    body.update(extra)
    return json_format.ParseDict(body, struct_pb2.Struct())


def blob_ref(data: bytes) -> common_pb2.BlobRef:
    return common_pb2.BlobRef(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


class TrainHost:
    """A started ``hostd training`` process."""

    def __init__(
        self, state_dir: Path, sock_dir: Path, *flags: str, env: dict[str, str] | None = None
    ) -> None:
        self.socket = sock_dir / "train.sock"
        argv = [sys.executable, "-m", "hostd", "training", "--listen", f"unix:{self.socket}"]
        argv += ["--state-dir", str(state_dir), "--slots", "1", "--threads-per-job", "1"]
        self.log_path = state_dir.parent / f"host-{state_dir.name}.log"
        self.proc = subprocess.Popen(
            [*argv, "--log-format", "json", *flags],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "ab"),  # noqa: SIM115 (the child holds it)
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"hostd training exited with {self.proc.wait(5)} before listening"
        assert json.loads(line) == {"listening": f"unix:{self.socket}"}
        self.channel = grpc.insecure_channel(f"unix:{self.socket}")

    def unary(self, method: str, request: Any, response_type: Any) -> Any:
        call = self.channel.unary_unary(
            SERVICE + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return call(request, timeout=CALL_TIMEOUT_S)

    def upload(self, data: bytes, *, ref: common_pb2.BlobRef | None = None, chunk: int = 1 << 20) -> Any:
        call = self.channel.stream_unary(
            SERVICE + "UploadBlob",
            request_serializer=pb.UploadBlobRequest.SerializeToString,
            response_deserializer=pb.UploadBlobResponse.FromString,
        )
        header = pb.UploadBlobRequest(header=pb.UploadBlobHeader(blob=ref or blob_ref(data)))
        parts = [pb.UploadBlobRequest(data=data[i : i + chunk]) for i in range(0, len(data), chunk)]
        return call(iter([header, *parts]), timeout=CALL_TIMEOUT_S)

    def start(self, job_id: str, inputs: dict[str, bytes], **kwargs: Any) -> pb.Job:
        request = pb.StartJobRequest(
            job_id=job_id,
            kind=pb.JOB_KIND_TRAIN,
            spec=kwargs.pop("spec", None) or spec(),
            inputs=[pb.JobInput(role=role, blob=blob_ref(data)) for role, data in inputs.items()],
            **kwargs,
        )
        return self.unary("StartJob", request, pb.StartJobResponse).job

    def watch(self, job_id: str, after_seq: int = 0) -> list[pb.WatchJobResponse]:
        call = self.channel.unary_stream(
            SERVICE + "WatchJob",
            request_serializer=pb.WatchJobRequest.SerializeToString,
            response_deserializer=pb.WatchJobResponse.FromString,
        )
        return list(call(pb.WatchJobRequest(job_id=job_id, after_seq=after_seq), timeout=CALL_TIMEOUT_S))

    def get(self, job_id: str) -> pb.Job:
        return self.unary("GetJob", pb.GetJobRequest(job_id=job_id), pb.GetJobResponse).job

    def wait_progress(self, job_id: str, epochs: int = 1) -> int:
        """Follow the job until it reports ``epochs`` epochs past its first reported one (so at
        least that many ended, each with its periodic checkpoint); its worker's pid from its events."""
        call = self.channel.unary_stream(
            SERVICE + "WatchJob",
            request_serializer=pb.WatchJobRequest.SerializeToString,
            response_deserializer=pb.WatchJobResponse.FromString,
        )
        stream = call(pb.WatchJobRequest(job_id=job_id), timeout=CALL_TIMEOUT_S)
        pid, first = 0, 0
        for item in stream:
            match = re.search(r"worker pid (\d+)", item.event.message)
            if match:
                pid = int(match.group(1))
            first = first or item.event.progress.current
            if first and item.event.progress.current >= first + epochs:
                break
        stream.cancel()
        assert pid > 0
        return pid

    def download(self, job_id: str, name: str, offset: int = 0) -> tuple[pb.Artifact, bytes]:
        call = self.channel.unary_stream(
            SERVICE + "DownloadArtifact",
            request_serializer=pb.DownloadArtifactRequest.SerializeToString,
            response_deserializer=pb.DownloadArtifactResponse.FromString,
        )
        items = list(
            call(pb.DownloadArtifactRequest(job_id=job_id, name=name, offset=offset), timeout=CALL_TIMEOUT_S)
        )
        return items[0].header, b"".join(i.data for i in items[1:])

    def stop(self, timeout_s: float = 90.0) -> int:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def kill(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def result_dict(job: pb.Job) -> dict[str, Any]:
    return json_format.MessageToDict(job.result)
