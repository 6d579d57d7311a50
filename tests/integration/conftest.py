"""Fixtures that run a real ``ktrdrd`` subprocess on temporary directories.

``daemon`` is one started daemon; ``daemon_factory`` starts as many as a test needs (restarts, a
second instance on the same runtime dir). Readiness is exact: each daemon gets its own
``NOTIFY_SOCKET`` (a real datagram socket, as systemd provides) and the fixture waits for
``READY=1``. At teardown every daemon still running gets SIGTERM and must exit 0.

The daemon runs through the test launcher ``tests.support.testd`` (the product's ``ktrdrd`` plus the
test-only operation kinds of ``tests.support.kinds``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import REPO

TEST_PLUGINS = "tests.support.kinds"
LAUNCHER = "tests.support.testd"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


class NotifyListener:
    """A bound ``AF_UNIX``/``SOCK_DGRAM`` socket standing in for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[dict[str, str]] = []

    def _drain(self, timeout_s: float) -> None:
        self.sock.settimeout(timeout_s)
        with contextlib.suppress(TimeoutError):
            while True:
                data = self.sock.recv(65536)
                lines = data.decode().split("\n")
                self.messages.append(dict(line.split("=", 1) for line in lines if "=" in line))
                self.sock.settimeout(0.001)

    def wait_for(self, key: str, value: str, proc: subprocess.Popen, timeout_s: float) -> dict[str, str]:
        """Return the first message with ``key=value``; fail if ``proc`` exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            for message in self.messages:
                if message.get(key) == value:
                    return message
            if proc.poll() is not None:
                self._drain(0.05)
                if any(m.get(key) == value for m in self.messages):
                    continue
                raise AssertionError(f"ktrdrd exited with {proc.returncode} before {key}={value}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {key}={value} from ktrdrd within {timeout_s} s: {self.messages}")
            self._drain(0.1)

    def seen(self, key: str, value: str | None = None) -> list[dict[str, str]]:
        """Messages received so far (after reading what is queued) that carry ``key`` (= ``value``)."""
        self._drain(0.01)
        return [m for m in self.messages if key in m and (value is None or m[key] == value)]

    def close(self) -> None:
        self.sock.close()


class CtlError(Exception):
    """An error frame from the ctl socket; ``code`` is the gRPC code number."""

    def __init__(self, frame: dict[str, Any]) -> None:
        self.frame = frame
        self.code = frame["error"]["code"]
        super().__init__(frame["error"].get("message", ""))


@dataclass
class Daemon:
    """A ``ktrdrd`` process and its paths. ``ctl``/``ctl_stream`` speak NDJSON on ``ctl.sock``."""

    proc: subprocess.Popen
    runtime_dir: Path
    state_dir: Path
    log_path: Path
    notify: NotifyListener
    args: list[str] = field(default_factory=list)

    @property
    def grpc_socket(self) -> Path:
        return self.runtime_dir / "grpc.sock"

    @property
    def ctl_socket(self) -> Path:
        return self.runtime_dir / "ctl.sock"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "ktrdr.db"

    @property
    def grpc_target(self) -> str:
        return f"unix:{self.grpc_socket}"

    def logs(self) -> str:
        """Everything the daemon wrote to stdout/stderr so far."""
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines (non-JSON lines are skipped)."""
        records = []
        for line in self.logs().splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
        return records

    def frames(self, method: str, params: dict | None, timeout_s: float) -> Iterator[dict]:
        """Send one NDJSON request on a new connection; yield the frames as they come (lazily)."""
        request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(self.ctl_socket))
            sock.sendall(json.dumps(request).encode() + b"\n")
            with sock.makefile("rb") as reader:
                for line in reader:
                    yield json.loads(line)

    def ctl(self, method: str, params: dict | None = None, timeout_s: float = 30.0) -> dict:
        """A unary call: the ``result`` object, or CtlError for an error frame."""
        frames = self.frames(method, params, timeout_s)
        frame = next(frames)
        frames.close()
        if "error" in frame:
            raise CtlError(frame)
        return frame["result"]

    def ctl_stream(self, method: str, params: dict | None = None, timeout_s: float = 30.0) -> list[dict]:
        """A server-streaming call: every frame up to and including the ``done`` (or error) frame."""
        frames = []
        for frame in self.frames(method, params, timeout_s):
            frames.append(frame)
            if "error" in frame or frame.get("done"):
                break
        return frames

    def info(self) -> dict:
        return self.ctl("ktrdr.daemon.v1.SystemService/GetInfo")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Signal the daemon and wait for it; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"ktrdrd did not stop within {timeout_s} s:\n{self.logs()}") from None


class DaemonFactory:
    """Starts ktrdrd processes under one short temporary directory (unix socket paths are short)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="ktrdr-", dir="/tmp"))
        self.daemons: list[Daemon] = []
        self._count = 0

    def env(self, **extra: str) -> dict[str, str]:
        """The inherited environment without KTRDR_* / systemd variables, plus the test plugins; no
        embedded hosts (``KTRDR_HOSTS_EMBEDDED=false``: tests of hosts pass ``true``)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("KTRDR_") and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        }
        env.update(
            KTRDR_TEST_PLUGINS=TEST_PLUGINS,
            KTRDR_LOG_FORMAT="json",
            KTRDR_HOSTS_EMBEDDED="false",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def spawn(
        self,
        *,
        runtime_dir: Path | None = None,
        state_dir: Path | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Daemon:
        """Start ktrdrd without waiting for readiness."""
        self._count += 1
        runtime_dir = runtime_dir or self.base / "run"
        state_dir = state_dir or self.base / "state"
        notify = NotifyListener(self.base / f"notify{self._count}.sock")
        log_path = self.base / f"ktrdrd{self._count}.log"
        argv = [
            sys.executable,
            "-m",
            LAUNCHER,
            "--runtime-dir",
            str(runtime_dir),
            "--state-dir",
            str(state_dir),
        ]
        argv += list(args)
        full_env = self.env(NOTIFY_SOCKET=str(notify.path))
        full_env.update(env or {})
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        daemon = Daemon(proc, runtime_dir, state_dir, log_path, notify, argv)
        self.daemons.append(daemon)
        return daemon

    def start(self, **kwargs: Any) -> Daemon:
        """Start ktrdrd and wait for ``READY=1``."""
        daemon = self.spawn(**kwargs)
        try:
            daemon.notify.wait_for("READY", "1", daemon.proc, READY_TIMEOUT_S)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- ktrdrd output ---\n{daemon.logs()}") from None
        return daemon

    def close(self) -> list[str]:
        """SIGTERM every daemon still running; return a problem per one that did not exit 0."""
        problems = []
        for daemon in self.daemons:
            if daemon.proc.poll() is None:
                code = daemon.stop()
                if code != 0:
                    problems.append(f"ktrdrd {daemon.args} exited {code} on SIGTERM:\n{daemon.logs()}")
            daemon.notify.close()
        shutil.rmtree(self.base, ignore_errors=True)
        return problems


@pytest.fixture
def daemon_factory() -> Iterator[DaemonFactory]:
    factory = DaemonFactory()
    try:
        yield factory
    finally:
        problems = factory.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def daemon(daemon_factory: DaemonFactory) -> Daemon:
    return daemon_factory.start()
