"""A journal that cannot be written (a real write failure, injected from outside the process).

The test lowers the daemon's RLIMIT_FSIZE to one byte with ``prlimit``: every write past the first
byte of any file then fails (EFBIG; Python ignores SIGXFSZ), exactly as a full disk fails SQLite's
writes, with no hook in the daemon. Raising the limit again is the disk "recovering".
"""

from __future__ import annotations

import resource
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

if TYPE_CHECKING:
    from tests.integration.conftest import Daemon

OPS = "ktrdr.daemon.v1.OperationsService/"
START = "ktrdr.test.v1/StartTicker"
UNAVAILABLE, RESOURCE_EXHAUSTED = 14, 8


def _journal_health(daemon: Daemon) -> int:
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service="ktrdr.journal"), timeout=10).status


def _until(predicate: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def _start_frame(daemon: Daemon) -> dict[str, Any]:
    frames = daemon.frames(START, {"params": {"steps": 100000, "interval_s": 0.02}}, 30)
    frame = next(frames)
    frames.close()
    return frame


def _start(daemon: Daemon) -> str:
    return _start_frame(daemon)["result"]["operation"]["name"]


@pytest.mark.slow
def test_write_failure_ends_operations_refuses_starts_and_recovers(daemon: Daemon) -> None:
    pid = daemon.proc.pid
    running = _start(daemon)
    waited: dict[str, Any] = {}

    def wait() -> None:
        waited.update(daemon.ctl(OPS + "WaitOperation", {"name": running}, timeout_s=60)["operation"])

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)  # the ticker journals progress every 20 ms
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
    try:
        waiter.join(30)
        assert not waiter.is_alive(), "WaitOperation did not return after the journal failed"
        assert waited["state"] == "OPERATION_STATE_INTERRUPTED" and waited["done"] is True
        assert waited["error"]["code"] in (UNAVAILABLE, RESOURCE_EXHAUSTED)
        assert "journal" in waited["error"]["message"]

        watched = daemon.ctl_stream(OPS + "WatchOperation", {"name": running})
        assert watched[0]["result"]["snapshot"]["state"] == "OPERATION_STATE_INTERRUPTED"
        assert watched[-1].get("done") is True

        refused = _start_frame(daemon)["error"]
        assert refused["code"] in (UNAVAILABLE, RESOURCE_EXHAUSTED)
        assert refused["data"]["reason"] in ("JOURNAL_WRITE_FAILED", "JOURNAL_FULL")
        assert refused["data"]["retryDelay"]
        assert _journal_health(daemon) == health_pb2.HealthCheckResponse.NOT_SERVING
        # reads go on
        got = daemon.ctl(OPS + "GetOperation", {"name": running})["operation"]
        assert got["state"] == "OPERATION_STATE_INTERRUPTED"
        listed = daemon.ctl(OPS + "ListOperations", {})["operations"]
        assert [op["state"] for op in listed if op["name"] == running] == ["OPERATION_STATE_INTERRUPTED"]
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, hard))

    _until(lambda: _journal_health(daemon) == health_pb2.HealthCheckResponse.SERVING)
    again = _start(daemon)
    daemon.ctl(OPS + "CancelOperation", {"name": again})
    done = daemon.ctl(OPS + "WaitOperation", {"name": again, "timeout": "30s"})["operation"]
    assert done["state"] == "OPERATION_STATE_CANCELLED"

    def committed_state() -> str:
        with sqlite3.connect(f"file:{daemon.db_path}?mode=ro", uri=True) as conn:
            return conn.execute(
                "SELECT state FROM operations WHERE id = ?", (running.split("/")[1],)
            ).fetchone()[0]

    assert _until(lambda: committed_state() == "INTERRUPTED")
    assert daemon.proc.poll() is None
