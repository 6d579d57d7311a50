"""Blocking client for ktrdrd's ctl socket: NDJSON frames, JSON-RPC 2.0 shaped, no asyncio.

A request is one line ``{"jsonrpc":"2.0","id":N,"method":"pkg.Service/Method","params":{…}}``.
A unary call gets one frame back: ``{"id":N,"result":{…}}`` or ``{"id":N,"error":{"code":…,
"message":…,"data":{"reason":…,"fieldViolations":[…]}}}``; a server stream gets several ``result``
frames with the same id and then ``{"id":N,"done":true}`` (or an error frame). Params and results
are canonical proto3 JSON. Frames are at most :data:`ktrdr.wire.FRAME_LIMIT` bytes; error codes are
gRPC status code numbers (:class:`ktrdr.wire.StatusCode`).

Failures are split so the CLI can map them onto exit codes: :class:`DaemonUnreachable` (no
socket, refused, closed mid-call, no answer in time) and :class:`CtlError` (the daemon answered
with an error frame). A frame that is not JSON-RPC is a :class:`DaemonUnreachable` too: whatever
is listening is not a ktrdrd we can talk to.

The socket is ``_socket.socket``, the C type under :mod:`socket`: importing :mod:`socket` itself
(enum conversions, selectors, array) costs a few ms of every command's start-up, and a blocking
AF_UNIX client needs nothing from it. Lines are read with a small buffer of our own.
"""

from __future__ import annotations

import _socket
import json
from collections.abc import Iterable, Iterator
from typing import Any

from ktrdr.wire import FRAME_LIMIT, code_name


class DaemonUnreachable(Exception):
    """The daemon could not be asked or did not answer; ``missing`` when nothing listens at all."""

    def __init__(self, path: str, reason: str, *, missing: bool = False) -> None:
        super().__init__(f"cannot reach ktrdrd at {path}: {reason}")
        self.path = path
        self.reason = reason
        self.missing = missing


class RequestTooLarge(Exception):
    """A request that would exceed the frame cap; nothing was sent."""


class CtlError(Exception):
    """An error frame: gRPC ``code`` number, ``message`` and ``data`` (reason, fieldViolations)."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data or {}

    @property
    def code_name(self) -> str:
        return code_name(self.code)

    @property
    def field_violations(self) -> list[tuple[str, str]]:
        """``(field, description)`` pairs from ``data.fieldViolations``."""
        found = self.data.get("fieldViolations") or self.data.get("field_violations") or []
        return [(str(v.get("field", "")), str(v.get("description", ""))) for v in found]


class CtlClient:
    """One connection to ``ctl.sock``. Calls are sequential; ids increase from 1.

    ``timeout`` (seconds, None = wait forever) bounds connecting and each wait for a frame of a
    unary call; streams wait for frames without a bound unless ``stream(..., timeout=)`` says so.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str, *, timeout: float | None = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: _socket.socket | None = None
        self._buffer = bytearray()  # received bytes not yet returned as lines
        self._next_id = 1

    def __enter__(self) -> CtlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._buffer.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def call(self, method: str, params: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Unary call; returns the ``result`` object. ``timeout`` overrides the client's for this call."""
        call_id = self._send(method, params)
        frame = self._read_frame(call_id, self.timeout if timeout is None else timeout)
        if frame.get("done"):
            raise DaemonUnreachable(self.path, f"{method} ended without a result")
        return frame["result"]

    def stream(
        self, method: str, params: dict[str, Any], *, timeout: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Server-streaming call; yields each ``result`` object until the ``done`` frame."""
        call_id = self._send(method, params)
        while True:
            frame = self._read_frame(call_id, timeout)
            if frame.get("done"):
                return
            yield frame["result"]

    def client_stream(
        self,
        method: str,
        first: dict[str, Any],
        rest: Iterable[dict[str, Any]],
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Client-streaming call: ``first`` in the request frame, each of ``rest`` in a continuation
        frame, then ``done``; returns the one ``result``. ``rest`` is consumed lazily (a file read as
        it is sent). The daemon may answer before the input ends (an error: a bad header, a size
        cap); sending stops then. ``timeout`` bounds the wait for the answer once sent."""
        call_id = self._send(method, first)
        for params in rest:
            self._write({"jsonrpc": "2.0", "id": call_id, "params": params})
            if self._answer_waiting():
                break
        else:
            self._write({"jsonrpc": "2.0", "id": call_id, "done": True})
        frame = self._read_frame(call_id, self.timeout if timeout is None else timeout)
        if frame.get("done"):
            raise DaemonUnreachable(self.path, f"{method} ended without a result")
        return frame["result"]

    # -- framing ---------------------------------------------------------------------------------

    def _connect(self) -> _socket.socket:
        if self._sock is not None:
            return self._sock
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            sock.close()
            raise DaemonUnreachable(self.path, e.strerror or str(e), missing=True) from None
        except TimeoutError:
            sock.close()
            raise DaemonUnreachable(self.path, f"no answer within {self.timeout:g}s") from None
        except OSError as e:
            sock.close()
            raise DaemonUnreachable(self.path, e.strerror or str(e)) from None
        self._sock = sock
        return sock

    def _send(self, method: str, params: dict[str, Any]) -> int:
        call_id = self._next_id
        self._next_id += 1
        self._write({"jsonrpc": "2.0", "id": call_id, "method": method, "params": params})
        return call_id

    def _write(self, frame: dict[str, Any]) -> None:
        sock = self._connect()
        data = json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        if len(data) - 1 > FRAME_LIMIT:  # the cap excludes the newline
            raise RequestTooLarge(
                f"the request is {len(data) - 1} bytes, over the {FRAME_LIMIT}-byte frame cap; nothing was sent"
            )
        try:
            sock.sendall(data)
        except OSError as e:
            raise DaemonUnreachable(self.path, f"sending failed: {e.strerror or e}") from None

    def _answer_waiting(self) -> bool:
        """Whether the daemon has sent something (or closed) that is not read yet; never waits."""
        assert self._sock is not None
        if self._buffer:
            return True
        timeout = self._sock.gettimeout()
        self._sock.settimeout(0.0)
        try:
            self._sock.recv(1, _socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            return True  # the read that follows reports it
        finally:
            self._sock.settimeout(timeout)
        return True

    def _read_frame(self, call_id: int, timeout: float | None) -> dict[str, Any]:
        """Next frame for ``call_id``: a result or done frame; raises on error frames."""
        assert self._sock is not None
        self._sock.settimeout(timeout)
        try:
            line = self._readline()
        except TimeoutError:
            raise DaemonUnreachable(self.path, f"no answer within {timeout:g}s") from None
        except OSError as e:
            raise DaemonUnreachable(self.path, f"receiving failed: {e.strerror or e}") from None
        if not line:
            raise DaemonUnreachable(self.path, "the daemon closed the connection")
        if len(line) - 1 > FRAME_LIMIT or not line.endswith(b"\n"):
            raise DaemonUnreachable(self.path, "the daemon sent an oversized or truncated frame")
        try:
            frame = json.loads(line)
        except ValueError:
            raise DaemonUnreachable(self.path, "the daemon sent a frame that is not JSON") from None
        if not isinstance(frame, dict) or frame.get("id") != call_id:
            raise DaemonUnreachable(self.path, f"unexpected frame for request {call_id}: {line[:200]!r}")
        error = frame.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise DaemonUnreachable(self.path, f"malformed error frame: {line[:200]!r}")
            raise CtlError(int(error.get("code", 2)), str(error.get("message", "")), error.get("data"))
        if not frame.get("done") and not isinstance(frame.get("result"), dict):
            raise DaemonUnreachable(self.path, f"frame without result: {line[:200]!r}")
        return frame

    def _readline(self) -> bytes:
        """The next line with its ``\\n``; more than ``FRAME_LIMIT`` bytes without one, or what was
        left when the peer closed (no ``\\n``; empty when nothing was), is returned as is."""
        assert self._sock is not None
        buffer, start = self._buffer, 0
        while True:
            end = buffer.find(b"\n", start)
            if end >= 0:
                line = bytes(buffer[: end + 1])
                del buffer[: end + 1]
                return line
            if len(buffer) > FRAME_LIMIT:
                break
            start = len(buffer)
            chunk = self._sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
        line = bytes(buffer)
        buffer.clear()
        return line
