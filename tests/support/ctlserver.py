"""Helpers for ktrdrctl's tests: a scripted ctl server, proto3-JSON builders, process runners.

The server is a real AF_UNIX socket speaking NDJSON.

Each method gets a handler ``params -> iterable of frames``; a frame is a dict (the server adds
``jsonrpc`` and the request ``id``: ``{"result": ...}``, ``{"error": ...}``, ``{"done": True}``) or
raw ``bytes`` written as they are, or ``CLOSE``. Handlers may be generators that block or sleep between frames
(a live watch). Every request received is recorded in ``server.requests``.

``run_ktrdrctl`` runs ``python -m ktrdrctl`` with pipes; ``PtyProcess`` runs it on a pseudo-terminal.
The integration tests (tests/integration/test_cli*.py) import this module too.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ktrdr.wire import TERMINAL_STATES
from tests.support.paths import REPO

Handler = Callable[[dict[str, Any]], Iterable[dict[str, Any] | bytes]]
OPS = "ktrdr.daemon.v1.OperationsService/"
SYSTEM = "ktrdr.daemon.v1.SystemService/"
#: A frame value that makes the server close the connection.
CLOSE = b"<close>"


def result(value: dict[str, Any]) -> list[dict[str, Any]]:
    """A unary answer."""
    return [{"result": value}]


def error(code: int, message: str, **data: Any) -> list[dict[str, Any]]:
    """An error frame with gRPC ``code``; ``data`` holds reason / fieldViolations."""
    return [{"error": {"code": code, "message": message, **({"data": data} if data else {})}}]


def stream(values: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A server stream: each value as a result frame, then done."""
    for value in values:
        yield {"result": value}
    yield {"done": True}


class ScriptedServer:
    """NDJSON server on ``path`` in background threads; one thread per connection."""

    def __init__(self, runtime_dir: Path) -> None:
        self.runtime_dir = runtime_dir
        self.path = runtime_dir / "ctl.sock"
        self.handlers: dict[str, Handler] = {}
        self.client_streams: set[str] = set()  # methods answered at their input's ``done`` frame
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()  # handlers that block wait on this
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(16)
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def on(self, method: str, handler: Handler, *, client_stream: bool = False) -> None:
        """Answer ``method`` with ``handler(params)``; a client stream's handler gets the first
        message's params once the client's ``done`` frame arrives."""
        self.handlers[method] = handler
        if client_stream:
            self.client_streams.add(method)

    def params_of(self, method: str) -> list[dict[str, Any]]:
        """Params of every request for ``method``, in arrival order."""
        return [r["params"] for r in self.requests if r.get("method") == method]

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        streams: dict[Any, dict[str, Any]] = {}  # client streams whose input has not ended: id → request
        with contextlib.suppress(OSError), conn, conn.makefile("rb") as reader:
            for line in reader:
                request = json.loads(line)
                self.requests.append(request)
                if request.get("method") in self.client_streams:
                    streams[request["id"]] = request
                    continue
                if "method" not in request:  # more input of a client stream, or its end
                    if not request.get("done") or request["id"] not in streams:
                        continue
                    request = streams.pop(request["id"])
                handler = self.handlers.get(request["method"])
                frames = handler(request["params"]) if handler else error(12, f"{request['method']}?")
                for frame in frames:
                    if frame is CLOSE:
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                    if isinstance(frame, bytes):
                        conn.sendall(frame)
                    else:
                        conn.sendall(
                            json.dumps({"jsonrpc": "2.0", "id": request["id"], **frame}).encode() + b"\n"
                        )

    def close(self) -> None:
        self.release.set()
        self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def ktrdrctl_env(**extra: str) -> dict[str, str]:
    """The environment for a ktrdrctl subprocess: no KTRDR_* from outside, UTC times."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
    env.update(TZ="UTC", PYTHONPATH=str(REPO), **extra)
    return env


def run_ktrdrctl(*argv: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m ktrdrctl ARGV`` as a subprocess, capturing text output."""
    return subprocess.run(
        [sys.executable, "-m", "ktrdrctl", *argv],
        cwd=REPO,
        env=ktrdrctl_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def operation(
    op_id: str = "op_01jabcdefghjkmnpqrstvwxyz0", state: str = "RUNNING", **fields: Any
) -> dict[str, Any]:
    """An Operation in canonical proto3 JSON (defaults omitted, int64 as strings)."""
    op = {
        "name": f"operations/{op_id}",
        "kind": "train",
        "state": f"OPERATION_STATE_{state}",
        "createTime": "2026-11-28T14:00:00Z",
        "startTime": "2026-11-28T14:00:01.500Z",
        "updateTime": "2026-11-28T14:00:30Z",
        "lastSeq": "3",
    }
    if state in TERMINAL_STATES:
        op["done"] = True
        op["endTime"] = "2026-11-28T14:01:01.500Z"
    op.update(fields)
    return op


def event(seq: int, state: str = "RUNNING", kind: str = "PROGRESS", **fields: Any) -> dict[str, Any]:
    """A WatchOperationResponse carrying an OperationEvent."""
    body = {
        "operation": "operations/op_01jabcdefghjkmnpqrstvwxyz0",
        "seq": str(seq),
        "time": "2026-11-28T14:00:40Z",
        "type": f"OPERATION_EVENT_TYPE_{kind}",
        "state": f"OPERATION_STATE_{state}",
    }
    body.update(fields)
    return {"event": body}


class PtyProcess:
    """A ktrdrctl child whose stdin/stdout/stderr are a pseudo-terminal; collects all output."""

    def __init__(self, *argv: str) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ktrdrctl", *argv],
            cwd=REPO,
            env=ktrdrctl_env(COLUMNS="120"),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.output = b""

    def read_until(self, needle: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            left = deadline - time.monotonic()
            assert left > 0, f"no {needle!r} in {self.output!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready and not self._read():
                raise AssertionError(f"output ended without {needle!r}: {self.output!r}")
        return self.output

    def _read(self) -> bool:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO once the child has closed the terminal
            return False
        self.output += data
        return bool(data)

    def finish(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        while select.select([self.master], [], [], 0.1)[0] and self._read():
            pass
        os.close(self.master)
        return code
