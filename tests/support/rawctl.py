"""Raw ctl-socket clients for fault tests: strict frame reading, partial and oversized writes, floods.

Unlike a well-behaved client these send any bytes they are given (no newline added unless asked),
and read replies strictly: a reply line must be JSON as RFC 8259 defines it (``NaN``, ``Infinity``
are refused), since a daemon that echoes a bare ``NaN`` breaks every other JSON reader.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from pathlib import Path
from typing import Any

INFO = "ktrdr.daemon.v1.SystemService/GetInfo"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_loads(line: bytes) -> dict[str, Any]:
    """One reply frame (a line) parsed as standard JSON; ValueError for ``NaN``/``Infinity``."""
    value = json.loads(line, parse_constant=_refuse_constant)
    if not isinstance(value, dict):
        raise ValueError(f"a frame must be a JSON object, got {line[:80]!r}")
    return value


def request_line(call_id: Any, method: str = INFO, params: dict[str, Any] | None = None) -> bytes:
    """A request frame, newline included."""
    frame = {"jsonrpc": "2.0", "id": call_id, "method": method, "params": params or {}}
    return json.dumps(frame).encode() + b"\n"


def vm_rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for pid {pid}")


class RawConn:
    """One ctl connection. Every blocking read or write gives up after ``timeout_s`` seconds."""

    def __init__(self, path: Path, timeout_s: float = 20.0) -> None:
        self.timeout_s = timeout_s
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:  # a full listen backlog refuses a unix connect with EAGAIN: wait for room
            try:
                self.sock.connect(str(path))
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.sock.close()
                    raise TimeoutError(f"{path}: listen backlog full for {timeout_s} s") from None
                time.sleep(0.01)
        self._buffer = b""

    def send(self, data: bytes) -> None:
        """Write ``data`` as it is (all of it, blocking)."""
        self.sock.sendall(data)

    def send_quietly(self, data: bytes) -> None:
        """Write ``data``; the daemon closing the connection meanwhile is not an error."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def call(self, call_id: Any, method: str = INFO, params: dict[str, Any] | None = None) -> None:
        self.send(request_line(call_id, method, params))

    def _line(self) -> bytes:
        """The next line (without its newline); b"" at end of stream before any byte of a line."""
        while b"\n" not in self._buffer:
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                line, self._buffer = self._buffer, b""
                assert not line, f"connection closed inside a frame: {line[:200]!r}"
                return b""
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def recv(self) -> dict[str, Any]:
        """The next reply frame, parsed strictly; AssertionError if the daemon closed instead."""
        line = self._line()
        assert line, "the daemon closed the connection"
        return strict_loads(line)

    def recv_for(self, call_id: Any) -> dict[str, Any]:
        """The next reply frame for ``call_id``, skipping others."""
        while (frame := self.recv())["id"] != call_id:
            pass
        return frame

    def info(self, call_id: Any = "info") -> dict[str, Any]:
        """A GetInfo call on this connection: its result (AssertionError for an error frame)."""
        self.call(call_id)
        frame = self.recv_for(call_id)
        assert "result" in frame, frame
        return frame["result"]

    def closed_by_peer(self) -> bool:
        """True when the daemon closes the connection with no further frame (waits up to the timeout)."""
        try:
            return self._line() == b""
        except TimeoutError:
            return False

    def read_until_closed(self) -> tuple[list[bytes], bytes]:
        """Every complete line until the daemon closes, and the bytes of an unfinished last line."""
        lines: list[bytes] = []
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return lines, self._buffer
            *complete, self._buffer = (self._buffer + chunk).split(b"\n")
            lines += complete

    def flood(self, data: bytes, stall_s: float) -> int:
        """Write ``data`` without ever reading, until all is sent or no byte is taken for ``stall_s``
        seconds (the daemon has stopped reading this connection). Returns the bytes sent."""
        view = memoryview(data)
        sent = 0
        self.sock.setblocking(False)
        try:
            while sent < len(view):
                _, writable, _ = select.select([], [self.sock], [], stall_s)
                if not writable:
                    break
                try:
                    sent += self.sock.send(view[sent : sent + (1 << 20)])
                except BlockingIOError:
                    continue
        finally:
            self.sock.settimeout(self.timeout_s)
        return sent

    def close(self) -> None:
        self.sock.close()


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Poll ``predicate()`` until it returns a truthy value (returned); AssertionError after
    ``timeout_s`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(interval_s)
    return value
