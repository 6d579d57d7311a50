"""A training job as the host records it: states, the persisted record, events, progress fields.

A record is what ``<state>/jobs/<job_id>.json`` holds (:meth:`JobRecord.to_json`); times are ns
since the epoch; ``progress`` has the fields :func:`progress_fields` makes (``fraction, message,
current, total, eta_s, metrics``), which the service turns into ``ktrdr.common.v1.Progress``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
#: A job id (chosen by the client; also a file name on the host).
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass
class JobError:
    """Why a job failed: a gRPC status code (:class:`ktrdr.wire.StatusCode`), a machine reason, a
    message for people."""

    code: int
    reason: str
    message: str


@dataclass
class JobRecord:
    """One job as the table stores it (times: ns since the epoch; ``progress`` as
    :func:`progress_fields` makes it)."""

    job_id: str
    kind: str
    spec: dict[str, Any]
    inputs: list[tuple[str, str, int]]  # (role, sha256, size_bytes)
    labels: dict[str, str]
    device_preference: str
    request_digest: str
    create_ns: int
    state: str = QUEUED
    stage: str = "queued"
    device: str = ""
    start_ns: int | None = None
    end_ns: int | None = None
    error: JobError | None = None
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    last_seq: int = 0
    has_checkpoint: bool = False
    progress: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> JobRecord:
        d = json.loads(text)
        d["inputs"] = [tuple(i) for i in d["inputs"]]
        d["error"] = JobError(**d["error"]) if d["error"] else None
        return cls(**d)


@dataclass(frozen=True)
class Event:
    seq: int
    time_ns: int
    state: str
    stage: str
    progress: dict[str, Any]
    message: str


def progress_fields(p: dict[str, Any]) -> dict[str, Any]:
    """A trainer Progress (as a dict) → ``fraction, message, current, total, eta_s, metrics``."""
    epochs = max(int(p["epochs"]), 1)
    fraction = (p["epoch"] - 1 + p["batch"] / max(p["batches"], 1)) / epochs
    metrics = {
        "epoch": p["epoch"],
        "batch": p["batch"],
        "batches": p["batches"],
        "loss": p["loss"],
        "accuracy": p["accuracy"],
        "samples_per_s": p["samples_per_s"],
        "elapsed_s": p["elapsed_s"],
    }
    for key in ("val_loss", "val_accuracy"):
        if p[key] is not None:
            metrics[key] = p[key]
    return {
        "fraction": min(max(fraction, 0.0), 1.0),
        "message": f"epoch {p['epoch']}/{p['epochs']}",
        "current": int(p["epoch"]),
        "total": int(p["epochs"]),
        "eta_s": p["eta_s"],
        "metrics": metrics,
    }


def step_fields(p: dict[str, Any]) -> dict[str, Any]:
    """A backtest step ``{"current", "total", "name"}`` → the fields of :func:`progress_fields`
    (the fraction counts finished steps: step k of n starts at (k - 1) / n)."""
    total = max(int(p["total"]), 1)
    return {
        "fraction": min(max((p["current"] - 1) / total, 0.0), 1.0),
        "message": f"step {p['current']}/{total}: {p['name']}",
        "current": int(p["current"]),
        "total": total,
        "eta_s": None,
        "metrics": {},
    }


def request_digest(
    kind: str, spec: dict[str, Any], inputs: Iterable[tuple[str, str, int]], device: str
) -> str:
    """What makes two StartJob requests the same job (labels aside)."""
    canonical = json.dumps(
        {"kind": kind, "spec": spec, "inputs": sorted(inputs), "device": device}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
