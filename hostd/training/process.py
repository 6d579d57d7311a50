"""``hostd training`` as a process: the training host on the shared lifecycle (:mod:`hostd.lifecycle`).

Start: the blob store and the job table are opened under ``--state-dir`` (interrupted jobs marked
resumable), one warm worker per slot is started, health ``""``,
``ktrdr.hostd.training.v1.TrainingHostService`` and ``ktrdr.hostd.training`` go SERVING, READY.
SIGTERM/SIGINT: STOPPING, health NOT_SERVING, every running job checkpoints and stops (it ends
FAILED with reason INTERRUPTED and ``has_checkpoint``), workers still alive after
:data:`DRAIN_TIMEOUT_S` are killed, exit 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from grpc_health.v1 import health

from hostd import lifecycle
from hostd.training.blobs import BlobStore, Limits
from hostd.training.jobs import HostSettings, JobManager
from hostd.training.service import TrainingHostService, cuda_device_present
from ktrdr.rpc import hostauth
from ktrdr.rpc.registry import Registry
from ktrdr.sdnotify import Notifier

log = logging.getLogger("hostd.training")

HEALTH_ALIAS = "ktrdr.hostd.training"
#: How long running jobs have to checkpoint on SIGTERM (the unit's TimeoutStopSec is longer).
DRAIN_TIMEOUT_S = 60.0
#: How long start-up waits for the first worker to report its device (for READY's status line).
DEVICE_WAIT_S = 120.0


@dataclass(frozen=True)
class HostConfig:
    listen: str
    state_dir: Path
    slots: int
    threads_per_job: int
    device: str
    max_blob_bytes: int
    max_store_bytes: int
    #: TLS + bearer token for TCP listening (None: unix socket, or plain TCP on loopback only).
    auth: hostauth.ServerAuth | None = None


class TrainingHost:
    """The training host as a :class:`hostd.lifecycle.HostApp`."""

    health_aliases = (HEALTH_ALIAS,)

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.blobs = BlobStore(
            config.state_dir / "blobs", Limits(config.max_blob_bytes, config.max_store_bytes)
        )
        settings = HostSettings(config.state_dir, config.slots, config.threads_per_job, config.device)
        self.jobs = JobManager(settings, self.blobs)
        cuda = config.device == "cuda" or (config.device == "auto" and cuda_device_present())
        self.registry = Registry([TrainingHostService(self.jobs, self.blobs, cuda_possible=cuda)])

    async def start(self, health_servicer: health.aio.HealthServicer, notifier: Notifier) -> str:
        await self.jobs.start()
        await self.jobs.wait_device(DEVICE_WAIT_S)
        await lifecycle.set_health(health_servicer, lifecycle.health_names(self), True)
        device = self.jobs.device_info.get("device", "unknown device")
        status = (
            f"{self.config.slots} slot(s) on {device}, {self.config.threads_per_job} thread(s) per CPU job"
        )
        notifier.status(status)
        return status

    async def drain(self) -> None:
        await self.jobs.drain(DRAIN_TIMEOUT_S)

    async def close(self) -> None:
        await self.jobs.close()
