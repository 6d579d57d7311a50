"""The ctl transport: an asyncio unix-socket server speaking NDJSON frames (see :mod:`.protocol`).

Each request runs as its own task, so one connection may have many calls in flight (told apart by
``id``). A frame that is not JSON, not a request, names an unknown method or carries bad params gets
an error frame and the connection stays usable. Bytes that are not UTF-8, or a frame over
:data:`FRAME_LIMIT`, close that connection only. When the peer goes away its in-flight calls are
cancelled; after a half-close (EOF on read, socket still open) calls in flight are allowed to finish.

Methods come from the same :class:`~ktrdrd.services.registry.Registry` as gRPC. Extra ctl-only methods
(test plugins) live in a mapping ``name -> async callable(params: dict)`` returning a JSON-ready dict,
or an async iterator of dicts for a stream; the mapping is read at call time, so it may be filled after
the server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import select
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from ktrdrd.ctl.protocol import (
    FRAME_LIMIT,
    bad_frame,
    done_frame,
    encode,
    error_frame,
    parse_params,
    result_frame,
    to_json,
)
from ktrdrd.errors import INTERNAL, UNIMPLEMENTED, ApiError
from ktrdrd.services.registry import Call, MethodSpec, Registry

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660
_HALF_CLOSED_POLL_S = 0.2
_END = object()


def _peer_gone(sock: socket.socket | None) -> bool:
    """True once the peer has closed its socket entirely (POLLHUP), not just its write half."""
    if sock is None:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLHUP)
    return any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, ev in poller.poll(0))


class _Connection:
    """One client connection: reads frames, runs calls as tasks, writes frames in order of completion."""

    def __init__(self, server: CtlServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._server = server
        self._reader = reader
        self._writer = writer
        self._calls: dict[Any, asyncio.Task[None]] = {}
        self._inputs: dict[Any, asyncio.Queue[Any]] = {}  # open client streams by id
        self._write_lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> None:
        async with self._write_lock:
            self._writer.write(encode(frame))
            await self._writer.drain()

    def stop_reading(self) -> None:
        """Take no more requests (as if the client half-closed); calls in flight go on."""
        self._reader.feed_eof()

    async def serve(self) -> None:
        try:
            await self._read_loop()
            await self._finish_half_closed()
        finally:
            for task in self._calls.values():
                task.cancel()
            if self._calls:
                await asyncio.gather(*self._calls.values(), return_exceptions=True)
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    async def _read_loop(self) -> None:
        while True:
            try:
                line = await self._reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                log.warning("ctl: frame over %d bytes; closing the connection", FRAME_LIMIT)
                return
            except ConnectionError:
                return
            if not line:
                return
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                log.warning("ctl: bytes that are not UTF-8; closing the connection")
                return
            if text.strip():
                await self._frame(text)

    async def _finish_half_closed(self) -> None:
        """After EOF: let calls in flight finish unless the peer is gone entirely (then cancel them)."""
        sock = self._writer.get_extra_info("socket")
        while self._calls:
            if _peer_gone(sock):
                return
            await asyncio.wait(list(self._calls.values()), timeout=_HALF_CLOSED_POLL_S)

    async def _frame(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except json.JSONDecodeError as exc:
            await self.send(error_frame(None, bad_frame(f"not JSON ({exc.msg} at column {exc.colno})")))
            return
        if not isinstance(frame, dict):
            await self.send(error_frame(None, bad_frame("a frame must be a JSON object")))
            return
        call_id = frame.get("id")
        if call_id is None or isinstance(call_id, (dict, list, bool)):
            await self.send(error_frame(None, bad_frame("'id' must be a number or string")))
            return
        if call_id in self._inputs:
            await self._stream_input(call_id, frame)
            return
        method = frame.get("method")
        if not isinstance(method, str):
            await self.send(error_frame(call_id, bad_frame("'method' must be a string")))
            return
        if call_id in self._calls:
            await self.send(error_frame(call_id, bad_frame(f"id {call_id!r} is already in use")))
            return
        task = asyncio.create_task(self._run(call_id, method, frame.get("params")))
        self._calls[call_id] = task
        task.add_done_callback(lambda _t, cid=call_id: self._calls.pop(cid, None))

    async def _stream_input(self, call_id: Any, frame: dict[str, Any]) -> None:
        queue = self._inputs[call_id]
        if frame.get("done") is True:
            del self._inputs[call_id]
            queue.put_nowait(_END)
        else:
            queue.put_nowait(frame.get("params"))

    async def _run(self, call_id: Any, method: str, params: Any) -> None:
        try:
            spec = self._server.registry.get(method)
            if spec is not None:
                await self._run_spec(call_id, spec, params)
            elif method in self._server.extra_methods:
                await self._run_extra(call_id, self._server.extra_methods[method], params)
            else:
                raise ApiError(UNIMPLEMENTED, f"unknown method {method!r}", "UNKNOWN_METHOD")
        except ApiError as exc:
            await self._send_quietly(error_frame(call_id, exc))
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            log.exception("ctl: unexpected error in %s", method)
            await self._send_quietly(
                error_frame(call_id, ApiError(INTERNAL, f"internal error in {method}", "INTERNAL"))
            )
        finally:
            self._inputs.pop(call_id, None)

    async def _send_quietly(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError):
            await self.send(frame)

    async def _run_spec(self, call_id: Any, spec: MethodSpec, params: Any) -> None:
        call = Call("ctl")
        if spec.client_streaming:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            self._inputs[call_id] = queue
            queue.put_nowait(params)
            response = await spec.unary(self._requests(queue, spec), call)
            await self.send(result_frame(call_id, to_json(response)))
        elif spec.server_streaming:
            async for response in spec.stream(parse_params(params, spec.request_type), call):
                await self.send(result_frame(call_id, to_json(response)))
            await self.send(done_frame(call_id))
        else:
            response = await spec.unary(parse_params(params, spec.request_type), call)
            await self.send(result_frame(call_id, to_json(response)))

    @staticmethod
    async def _requests(queue: asyncio.Queue[Any], spec: MethodSpec) -> AsyncIterator[Any]:
        while (params := await queue.get()) is not _END:
            yield parse_params(params, spec.request_type)

    async def _run_extra(self, call_id: Any, method: Any, params: Any) -> None:
        outcome = method(params if params is not None else {})
        if inspect.isasyncgen(outcome) or hasattr(outcome, "__aiter__"):
            async for item in outcome:
                await self.send(result_frame(call_id, item))
            await self.send(done_frame(call_id))
        else:
            await self.send(result_frame(call_id, await outcome))


class CtlServer:
    """The ctl socket server. ``start()`` binds (socket mode 0660); ``stop(grace)`` drains, then cancels."""

    def __init__(self, path: Path, registry: Registry, extra_methods: Mapping[str, Any] | None = None):
        self.path = path
        self.registry = registry
        self.extra_methods: Mapping[str, Any] = extra_methods if extra_methods is not None else {}
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.path), limit=FRAME_LIMIT)
        os.chmod(self.path, SOCKET_MODE)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = _Connection(self, reader, writer)
        self._connections[task] = connection
        try:
            await connection.serve()
        finally:
            self._connections.pop(task, None)

    def stop_accepting(self) -> None:
        """Close the listening socket; connections already open keep being served."""
        if self._server is not None:
            self._server.close()

    async def stop(self, grace: float) -> None:
        """Stop accepting and reading; calls in flight get ``grace`` seconds, then are cancelled."""
        self.stop_accepting()
        for connection in self._connections.values():
            connection.stop_reading()
        if self._connections:
            _, pending = await asyncio.wait(set(self._connections), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
