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
    INLINE_JSON_BYTES,
    BodyCache,
    bad_frame,
    done_frame,
    dumps,
    encode,
    error_frame,
    parse_params,
    result_frame,
    result_prefix,
    splice_result,
    to_json,
)
from ktrdrd.errors import INTERNAL, UNIMPLEMENTED, ApiError
from ktrdrd.runtime import SOCKET_MODE, remove_socket
from ktrdrd.services.registry import Call, MethodSpec, Registry

log = logging.getLogger(__name__)

HIGH_WATER = 64 * 1024  # bytes queued in a connection's transport above which a call waits for drain
STREAM_BODY_CACHE = 8192  # streamed responses whose JSON body is kept for sharing between calls
STREAM_BODY_BYTES = 8 * 1024 * 1024  # ... and at most this many bytes of such bodies
FLUSH_SLICE = 32  # connections written between two yields to the loop in a flush round
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
        self._transport = writer.transport
        self._pushed: list[bytes] = []  # pushed frames waiting for the server's flush round
        self._pushed_bytes = 0

    async def send(self, frame: dict[str, Any]) -> None:
        await self.write(encode(frame))

    async def write(self, data: bytes) -> None:
        """Queue ``data`` on the socket now; wait only while the transport holds over :data:`HIGH_WATER`.

        Writes are synchronous, so frames leave in the order their calls wrote them, without a lock
        (``StreamWriter.drain`` may be awaited by several calls at once). ConnectionResetError once the
        connection is closing.
        """
        self._emit(data)
        if self._transport.get_write_buffer_size() > HIGH_WATER:
            await self._writer.drain()

    def _emit(self, data: bytes) -> None:
        """Queue ``data`` (after any pushed frames not yet flushed) on the socket, never waiting;
        ConnectionResetError once the connection is closing."""
        if self._transport.is_closing():
            raise ConnectionResetError("ctl connection closed")
        if self._pushed:
            self._pushed.append(data)
            data = b"".join(self._pushed)
            self._pushed.clear()
            self._pushed_bytes = 0
        self._writer.write(data)

    def push(self, data: bytes) -> bool:
        """Queue pushed frames for the server's next flush round; False once the client lags
        (over :data:`HIGH_WATER` bytes waiting). ConnectionResetError once the connection is closing."""
        transport = self._transport
        if transport.is_closing():
            raise ConnectionResetError("ctl connection closed")
        pushed = self._pushed
        if not pushed:  # the first frame since the last flush: join the next flush round
            self._server.flush_soon(self)
        pushed.append(data)
        self._pushed_bytes += len(data)
        return self._pushed_bytes + transport.get_write_buffer_size() <= HIGH_WATER

    def flush(self) -> None:
        """Write the pushed frames waiting, as one socket write."""
        if self._pushed:
            data = b"".join(self._pushed)
            self._pushed.clear()
            self._pushed_bytes = 0
            if not self._transport.is_closing():
                self._transport.write(data)

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
            self.flush()
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
                await self.handle(text)

    async def _finish_half_closed(self) -> None:
        """After EOF: let calls in flight finish unless the peer is gone entirely (then cancel them)."""
        sock = self._writer.get_extra_info("socket")
        while self._calls:
            if _peer_gone(sock):
                return
            await asyncio.wait(list(self._calls.values()), timeout=_HALF_CLOSED_POLL_S)

    def calls(self) -> list[asyncio.Task[None]]:
        """The calls in flight."""
        return list(self._calls.values())

    async def handle(self, text: str) -> None:
        """Take one request frame (a line of text): answer it or start its call as a task."""
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
        except Exception as exc:
            if isinstance(exc, ConnectionError) and self._transport.is_closing():
                return  # the connection closed under the call: nobody to answer, nothing to log
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
            await self.write(await _result_line(call_id, response))
        elif spec.server_streaming:
            prefix, frame, send = result_prefix(call_id), self._server.stream_frame, self.push

            def frames(batch: list[Any]) -> bytes:
                return b"".join([frame(prefix, response) for response in batch])

            def push(batch: list[Any]) -> bool:
                if len(batch) == 1:  # a live event, pushed to every watcher in a row
                    return send(frame(prefix, batch[0]))
                return send(frames(batch))

            request = parse_params(params, spec.request_type)
            async for batch in spec.stream_batches(request, Call("ctl", push=push)):
                await self.write(frames(batch))
            await self.send(done_frame(call_id))
        else:
            response = await spec.unary(parse_params(params, spec.request_type), call)
            await self.write(await _result_line(call_id, response))

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


class _MemoryWriter:
    """The part of a StreamWriter a connection uses, collecting frames in memory (see ``dispatch``)."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.transport = self

    def write(self, data: bytes) -> None:
        self.frames.extend(data.splitlines(keepends=True))

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


async def _result_line(call_id: Any, response: Any) -> bytes:
    """The result frame of a unary call; JSON built in a worker thread for a large response."""

    def build() -> bytes:
        return splice_result(result_prefix(call_id), dumps(to_json(response)))

    return build() if response.ByteSize() <= INLINE_JSON_BYTES else await asyncio.to_thread(build)


class CtlServer:
    """The ctl socket server. ``start()`` binds (socket mode 0660); ``stop(grace)`` drains, then cancels."""

    def __init__(self, path: Path, registry: Registry, extra_methods: Mapping[str, Any] | None = None):
        self.path = path
        self.registry = registry
        self.extra_methods: Mapping[str, Any] = extra_methods if extra_methods is not None else {}
        self.stream_bodies = BodyCache(STREAM_BODY_CACHE, STREAM_BODY_BYTES)
        self._last_frame: tuple[Any, bytes, bytes] = (None, b"", b"")
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._dirty: dict[_Connection, None] = {}  # connections with pushed frames to write
        self._flusher: asyncio.Task[None] | None = None

    def stream_frame(self, prefix: bytes, response: Any) -> bytes:
        """The result frame of a streamed (shared, immutable) ``response`` for the call whose
        :func:`result_prefix` is ``prefix``. The last frame built is kept, so pushing one event to
        many watchers with the same call id (clients number their calls alike) builds it once."""
        last_response, last_prefix, data = self._last_frame
        if response is last_response and prefix == last_prefix:
            return data
        data = splice_result(prefix, self.stream_bodies.body(response))
        self._last_frame = (response, prefix, data)
        return data

    def flush_soon(self, connection: _Connection) -> None:
        """Have ``connection``'s pushed frames written in the next flush round.

        A round writes each waiting connection once, yielding to the loop every
        :data:`FLUSH_SLICE` connections; frames pushed meanwhile join their connection's write if it
        is still waiting in the round, or the next round. So one socket write carries every event
        a client got since its last write, and publishing never waits for the writes.
        """
        self._dirty[connection] = None
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_rounds())

    async def _flush_rounds(self) -> None:
        while self._dirty:
            dirty, self._dirty = self._dirty, {}
            for i, connection in enumerate(dirty):
                connection.flush()
                if i % FLUSH_SLICE == FLUSH_SLICE - 1:
                    await asyncio.sleep(0)

    async def dispatch(self, line: str) -> list[bytes]:
        """Handle one request line in this process, exactly as a connection would; its reply frames.

        Every frame the call writes (one for a unary call, results then ``done`` for a stream), each
        ending with a newline. For benchmarks and tests of the dispatcher without a socket.
        """
        sink = _MemoryWriter()
        connection = _Connection(self, asyncio.StreamReader(), sink)  # type: ignore[arg-type]
        await connection.handle(line)
        await asyncio.gather(*connection.calls())
        return sink.frames

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

    async def stop(self, grace: float) -> None:
        """Stop accepting and reading; calls in flight get ``grace`` seconds, then are cancelled;
        the socket file is removed."""
        if self._server is not None:
            self._server.close()
        for connection in self._connections.values():
            connection.stop_reading()
        if self._connections:
            _, pending = await asyncio.wait(set(self._connections), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        remove_socket(self.path)
