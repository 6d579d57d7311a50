"""The ctl transport: an asyncio unix-socket server speaking NDJSON frames (see :mod:`.protocol`).

Every connection is a :class:`Connection` (an ``asyncio.Protocol``) with one worker task that takes
complete frames from its receive buffer in order and starts each call as its own task, so one
connection may have many calls in flight (told apart by ``id``). Replies are written in order of
completion.

Bounds (:class:`Limits`, from the daemon's configuration), so that one greedy client slows only itself:

- at most ``max_connections`` connections; one more is accepted, told ``TOO_MANY_CONNECTIONS`` and closed;
- at most ``max_calls`` calls in flight per connection, and no reading while the connection's unsent
  replies exceed ``send_buffer_bytes``: the worker waits and the socket is not read (backpressure,
  no error), so memory stays bounded whatever the client pipelines;
- a frame over :data:`FRAME_LIMIT` is answered ``FRAME_TOO_LARGE`` and the connection closed; a
  partial frame left incomplete for ``frame_timeout_s`` is answered ``FRAME_TIMEOUT`` and closed;
- the worker yields to the loop between frames, so a flood of frames (empty lines included) shares
  the loop with every other client;
- a reply that would exceed the frame cap is answered ``REPLY_TOO_LARGE`` instead;
- closing never waits on a peer that does not read: unsent bytes get ``close_timeout_s`` (while they
  keep draining), then the connection is aborted.

A frame that is not a valid request (see :func:`.protocol.decode_request`), names an unknown method
or carries bad params gets an error frame and the connection stays usable. When the peer goes away
its calls in flight are cancelled; after a half-close (EOF on read, socket still open) calls in flight
are allowed to finish.

Methods come from the same :class:`~ktrdr.rpc.registry.Registry` as gRPC. Extra ctl-only methods
(an embedding program's, e.g. the test suite's operation kinds) live in a mapping
``name -> async callable(params: dict)`` returning a JSON-ready dict, or an async iterator of dicts for
a stream; the mapping is read at call time, so it may be filled after the server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import select
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ktrdr.rpc.errors import ApiError
from ktrdr.rpc.registry import Call, MethodSpec, Registry
from ktrdr.wire import FRAME_LIMIT, StatusCode
from ktrdrd.ctl.protocol import (
    INLINE_JSON_BYTES,
    BadFrame,
    BodyCache,
    bad_frame,
    clip,
    decode_request,
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
from ktrdrd.rundirs import SOCKET_MODE, remove_socket

log = logging.getLogger(__name__)

PUSH_HIGH_WATER = 64 * 1024  # bytes waiting for a connection above which pushed events stop (pull mode)
STREAM_BODY_CACHE = 8192  # streamed responses whose JSON body is kept for sharing between calls
STREAM_BODY_BYTES = 8 * 1024 * 1024  # ... and at most this many bytes of such bodies
FLUSH_SLICE = 32  # connections written between two yields to the loop in a flush round
INPUT_QUEUE = 16  # client-stream frames queued for their call before the connection stops reading
ENDED_INPUTS = 256  # ids of client streams answered early whose further input frames are dropped
EMPTY_LINES_PER_YIELD = 64  # empty lines skipped between two yields to the loop
_HALF_CLOSED_POLL_S = 0.2
_END = object()


@dataclass(frozen=True)
class Limits:
    """Per-server bounds on clients (config keys ``ctl_*``; see docs/operations.md for defaults)."""

    max_connections: int = 1024
    max_calls: int = 64
    send_buffer_bytes: int = 1024 * 1024
    frame_timeout_s: float = 10.0
    close_timeout_s: float = 1.0


def _peer_gone(sock: socket.socket | None) -> bool:
    """True once the peer has closed its socket entirely (POLLHUP), not just its write half."""
    if sock is None:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLHUP)
    return any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, ev in poller.poll(0))


class Connection(asyncio.Protocol):
    """One client connection: a receive buffer, a frame worker, calls as tasks, bounded writes."""

    def __init__(self, server: CtlServer) -> None:
        self._server = server
        self._limits = server.limits
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()  # received bytes not yet taken as frames
        self._scan = 0  # bytes of _buffer known to hold no newline
        self._partial = 0  # bytes at the end of _buffer after its last newline
        self._reading = True
        self._eof = False  # the peer shut down its write half, or we stopped reading
        self._lost = self._loop.create_future()  # resolved by connection_lost
        self._wake: asyncio.Future[None] | None = None  # the worker's wait for frames or slots
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._frame_timer: asyncio.TimerHandle | None = None
        self._calls: dict[Any, asyncio.Task[None]] = {}
        self._inputs: dict[Any, asyncio.Queue[Any]] = {}  # open client streams by id
        # Client streams whose call ended before the client's ``done``: their remaining input frames
        # are dropped quietly (the call already answered), not taken as bad frames.
        self._ended_inputs: dict[Any, None] = {}
        self._pushed: list[bytes] = []  # pushed frames waiting for the server's flush round
        self._pushed_bytes = 0
        self.worker: asyncio.Task[None] | None = None

    def attach(self, transport: asyncio.Transport) -> None:
        """Write replies to ``transport`` without reading from it (in-process dispatch: frames are
        handed to :meth:`handle` directly)."""
        self._transport = transport

    # ---- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport.set_write_buffer_limits(high=self._limits.send_buffer_bytes)
        self.worker = self._loop.create_task(self._serve())
        self._server.track(self)

    def data_received(self, data: bytes) -> None:
        if self._eof:
            return
        self._buffer += data
        newline = data.rfind(b"\n")
        if newline >= 0:
            self._partial = len(data) - newline - 1
            self._cancel_frame_timer()  # a frame completed: the partial one (if any) starts its clock
        else:
            self._partial += len(data)
        self._check_partial()
        self._wake_worker()

    def eof_received(self) -> bool:
        self._eof = True
        self._cancel_frame_timer()
        self._wake_worker()
        return True  # keep the write half open: replies to calls in flight still go out

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._cancel_frame_timer()
        if not self._lost.done():
            self._lost.set_result(None)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("ctl connection lost"))
        self._drain_waiters.clear()
        for task in self._calls.values():
            task.cancel()
        self._wake_worker()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        self._wake_worker()

    # ---- reading ------------------------------------------------------------------------------

    def _check_partial(self) -> None:
        """Bound the partial frame at the buffer's end (size and time); pause reading when a full
        buffer of frames is waiting for the worker."""
        if self._partial > FRAME_LIMIT:
            self._fail(bad_frame(f"frame over {FRAME_LIMIT} bytes", "FRAME_TOO_LARGE"))
            return
        if self._partial and self._frame_timer is None and self._reading:
            self._frame_timer = self._loop.call_later(self._limits.frame_timeout_s, self._frame_timed_out)
        if len(self._buffer) - self._partial > self._limits.send_buffer_bytes:
            self._pause_reading()  # complete frames are waiting: read more once they are taken

    def _cancel_frame_timer(self) -> None:
        if self._frame_timer is not None:
            self._frame_timer.cancel()
            self._frame_timer = None

    def _frame_timed_out(self) -> None:
        self._frame_timer = None
        seconds = f"{self._limits.frame_timeout_s:g}"
        self._fail(bad_frame(f"incomplete frame: no newline for {seconds} s", "FRAME_TIMEOUT"))

    def _fail(self, error: ApiError) -> None:
        """Answer a framing error (id null), stop reading and close the connection."""
        log.warning("ctl: %s; closing the connection", error.message)
        self._buffer.clear()
        self._scan = self._partial = 0
        self._eof = True
        self._cancel_frame_timer()
        self._emit_quietly(encode(error_frame(None, error)))
        self._wake_worker()

    def _pause_reading(self) -> None:
        if self._reading and self._transport is not None and not self._transport.is_closing():
            self._reading = False
            self._cancel_frame_timer()
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self._reading and not self._eof and self._transport is not None:
            self._reading = True
            if not self._transport.is_closing():
                self._transport.resume_reading()
            self._check_partial()

    def _next_frame(self) -> bytes | None:
        """The next complete frame (without its newline) from the buffer, or None."""
        index = self._buffer.find(b"\n", self._scan)
        if index < 0:
            self._scan = len(self._buffer)
            return None
        frame = bytes(self._buffer[:index])
        del self._buffer[: index + 1]
        self._scan = 0
        return frame

    def _wake_worker(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _sleep_until_woken(self) -> None:
        self._wake = self._loop.create_future()
        try:
            await self._wake
        finally:
            self._wake = None

    def _busy(self) -> bool:
        """True while the connection may not take another call (slots or unsent replies)."""
        return len(self._calls) >= self._limits.max_calls or self._write_paused

    def stop_reading(self) -> None:
        """Take no more requests (as if the client half-closed); calls in flight go on."""
        self._eof = True
        self._buffer.clear()
        self._scan = self._partial = 0
        self._cancel_frame_timer()
        if self._transport is not None and not self._transport.is_closing() and self._reading:
            self._reading = False
            self._transport.pause_reading()
        self._wake_worker()

    async def _serve(self) -> None:
        try:
            await self._read_frames()
            await self._finish_half_closed()
        except asyncio.CancelledError:
            pass
        finally:
            await self._close()

    async def _read_frames(self) -> None:
        empty = 0
        while True:
            if self._lost.done():  # gone while busy: no resume_writing or free slot will wake us
                return
            if self._busy():
                self._pause_reading()
                await self._sleep_until_woken()
                continue
            frame = self._next_frame()
            if frame is None:
                if self._eof:
                    return
                self._resume_reading()
                await self._sleep_until_woken()
                continue
            if len(frame) > FRAME_LIMIT:
                self._fail(bad_frame(f"frame over {FRAME_LIMIT} bytes", "FRAME_TOO_LARGE"))
                return
            if not frame.strip():
                empty += 1
                if empty % EMPTY_LINES_PER_YIELD == 0:
                    await asyncio.sleep(0)
                continue
            if not await self.handle(frame):
                return
            await asyncio.sleep(0)  # one frame at a time: other connections get the loop between

    async def _finish_half_closed(self) -> None:
        """After EOF: let calls in flight finish unless the peer is gone entirely (then cancel them)."""
        sock = self._transport.get_extra_info("socket") if self._transport is not None else None
        while self._calls:
            if self._lost.done() or _peer_gone(sock):
                return
            await asyncio.wait(list(self._calls.values()), timeout=_HALF_CLOSED_POLL_S)

    async def _close(self) -> None:
        """Cancel calls still in flight, write what is pushed, close; abort a peer that does not read."""
        for task in self._calls.values():
            task.cancel()
        if self._calls:
            await asyncio.gather(*self._calls.values(), return_exceptions=True)
        self.flush()
        await self.close_bounded(self._limits.close_timeout_s)

    async def close_bounded(self, timeout_s: float) -> None:
        """Close the transport, letting unsent bytes drain while they make progress within
        ``timeout_s`` periods; abort once a period passes with no progress."""
        transport = self._transport
        if transport is None:
            return
        if not transport.is_closing():
            transport.close()
        left = transport.get_write_buffer_size()
        while not self._lost.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._lost), timeout_s)
            if self._lost.done():
                break
            now = transport.get_write_buffer_size()
            if now >= left:
                transport.abort()
                break
            left = now

    def abort(self) -> None:
        """Drop the connection at once (unsent bytes discarded)."""
        if self._transport is not None:
            self._transport.abort()

    # ---- writing ------------------------------------------------------------------------------

    async def send(self, frame: dict[str, Any]) -> None:
        await self.write(encode(frame))

    async def write(self, data: bytes) -> None:
        """Queue ``data`` on the socket now; wait only while the unsent bytes exceed the high-water mark.

        Writes are synchronous, so frames leave in the order their calls wrote them, without a lock.
        ConnectionResetError once the connection is closing.
        """
        self._emit(data)
        if self._write_paused:
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _emit(self, data: bytes) -> None:
        """Queue ``data`` (after any pushed frames not yet flushed) on the socket, never waiting;
        ConnectionResetError once the connection is closing."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("ctl connection closed")
        if self._pushed:
            self._pushed.append(data)
            data = b"".join(self._pushed)
            self._pushed.clear()
            self._pushed_bytes = 0
        transport.write(data)

    def _emit_quietly(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionError):
            self._emit(data)

    def push(self, data: bytes) -> bool:
        """Queue pushed frames for the server's next flush round; False once the client lags
        (over :data:`PUSH_HIGH_WATER` bytes waiting). ConnectionResetError once the connection is closing."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("ctl connection closed")
        pushed = self._pushed
        if not pushed:  # the first frame since the last flush: join the next flush round
            self._server.flush_soon(self)
        pushed.append(data)
        self._pushed_bytes += len(data)
        return self._pushed_bytes + transport.get_write_buffer_size() <= PUSH_HIGH_WATER

    def flush(self) -> None:
        """Write the pushed frames waiting, as one socket write."""
        if self._pushed:
            data = b"".join(self._pushed)
            self._pushed.clear()
            self._pushed_bytes = 0
            if self._transport is not None and not self._transport.is_closing():
                self._transport.write(data)

    # ---- calls --------------------------------------------------------------------------------

    def calls(self) -> list[asyncio.Task[None]]:
        """The calls in flight."""
        return list(self._calls.values())

    async def handle(self, frame: bytes | str) -> bool:
        """Take one request frame: answer it or start its call as a task. False: close the connection."""
        try:
            request = decode_request(frame)
        except BadFrame as exc:
            await self._send_quietly(error_frame(exc.call_id, exc.error))
            return not exc.fatal
        call_id = request.id
        queue = self._inputs.get(call_id)
        if queue is not None and request.method is None:
            if request.done:
                del self._inputs[call_id]
                await queue.put(_END)
            else:
                await queue.put(request.params)
            return True
        if call_id in self._ended_inputs and request.method is None:
            if request.done:
                del self._ended_inputs[call_id]
            return True
        # A frame that names a call in flight but is not part of it (a second request with its id, a
        # continuation of a call that takes none) is answered with id null: an error frame with the
        # id would read as that call's answer, and its real answer comes later.
        in_flight = call_id in self._calls
        if request.method is None:
            problem = "'method' must be a string"
            if in_flight:
                problem = f"id {clip(repr(call_id))} is a call in flight that takes no further frames"
            await self._send_quietly(error_frame(None if in_flight else call_id, bad_frame(problem)))
            return True
        if in_flight:
            await self._send_quietly(
                error_frame(
                    None, bad_frame(f"id {clip(repr(call_id))} is already in use by a call in flight")
                )
            )
            return True
        spec = self._server.registry.get(request.method)
        if spec is not None and spec.client_streaming:
            # Created now, not in the call's task: its next frames may be in this very read.
            self._inputs[call_id] = asyncio.Queue(INPUT_QUEUE)
        task = self._loop.create_task(self._run(call_id, request.method, spec, request.params))
        self._calls[call_id] = task
        task.add_done_callback(functools.partial(self._call_done, call_id))
        return True

    def _call_done(self, call_id: Any, _task: asyncio.Task[None]) -> None:
        self._calls.pop(call_id, None)
        queue = self._inputs.pop(call_id, None)
        if queue is not None:  # answered before the client's ``done``
            self._ended_inputs[call_id] = None
            if len(self._ended_inputs) > ENDED_INPUTS:
                del self._ended_inputs[next(iter(self._ended_inputs))]
            while not queue.empty():  # frees a worker waiting to put into it
                queue.get_nowait()
        self._wake_worker()

    async def _run(self, call_id: Any, method: str, spec: MethodSpec | None, params: Any) -> None:
        try:
            if spec is not None:
                await self._run_spec(call_id, spec, params)
            elif method in self._server.extra_methods:
                await self._run_extra(call_id, self._server.extra_methods[method], params)
            else:
                raise ApiError(
                    StatusCode.UNIMPLEMENTED, f"unknown method {clip(repr(method))}", "UNKNOWN_METHOD"
                )
        except ApiError as exc:
            await self._send_quietly(error_frame(call_id, exc))
        except Exception as exc:
            if isinstance(exc, ConnectionError) and (self._transport is None or self._transport.is_closing()):
                return  # the connection closed under the call: nobody to answer, nothing to log
            log.exception("ctl: unexpected error in %s", clip(method))
            await self._send_quietly(
                error_frame(
                    call_id, ApiError(StatusCode.INTERNAL, f"internal error in {clip(method)}", "INTERNAL")
                )
            )

    async def _send_quietly(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError):
            await self.send(frame)

    async def _run_spec(self, call_id: Any, spec: MethodSpec, params: Any) -> None:
        call = Call("ctl")
        if spec.client_streaming:
            queue = self._inputs[call_id]
            response = await spec.unary(self._requests(params, queue, spec), call)
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
    async def _requests(first: Any, queue: asyncio.Queue[Any], spec: MethodSpec) -> AsyncIterator[Any]:
        yield parse_params(first, spec.request_type)
        while (params := await queue.get()) is not _END:
            yield parse_params(params, spec.request_type)

    async def _run_extra(self, call_id: Any, method: Any, params: Any) -> None:
        outcome = method(params if params is not None else {})
        if inspect.isasyncgen(outcome) or hasattr(outcome, "__aiter__"):
            async for item in outcome:
                await self.write(_fitting(encode(result_frame(call_id, item))))
            await self.send(done_frame(call_id))
        else:
            await self.write(_fitting(encode(result_frame(call_id, await outcome))))


def _fitting(line: bytes) -> bytes:
    """``line`` if it fits the frame cap; else RESOURCE_EXHAUSTED (raised, so the call answers it)."""
    if len(line) > FRAME_LIMIT + 1:
        raise ApiError(
            StatusCode.RESOURCE_EXHAUSTED,
            f"the reply is {len(line) - 1} bytes, over the {FRAME_LIMIT}-byte frame cap; "
            "ask for less (a smaller page or range)",
            "REPLY_TOO_LARGE",
        )
    return line


async def _result_line(call_id: Any, response: Any) -> bytes:
    """The result frame of a unary call; JSON built in a worker thread for a large response."""

    def build() -> bytes:
        return splice_result(result_prefix(call_id), dumps(to_json(response)))

    line = build() if response.ByteSize() <= INLINE_JSON_BYTES else await asyncio.to_thread(build)
    return _fitting(line)


class _Refused(asyncio.Protocol):
    """A connection over ``max_connections``: told so in one error frame, then closed."""

    def __init__(self, limit: int) -> None:
        self._limit = limit

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        error = ApiError(
            StatusCode.RESOURCE_EXHAUSTED,
            f"too many ctl connections (limit {self._limit}); retry later",
            "TOO_MANY_CONNECTIONS",
            retry_after_s=1.0,
        )
        transport.write(encode(error_frame(None, error)))
        transport.close()
        asyncio.get_running_loop().call_later(1.0, transport.abort)  # a peer that never reads

    def data_received(self, data: bytes) -> None:
        pass


class CtlServer:
    """The ctl socket server. ``start()`` binds (socket mode 0660); ``stop(grace)`` drains, then cancels."""

    def __init__(
        self,
        path: Path,
        registry: Registry,
        extra_methods: Mapping[str, Any] | None = None,
        limits: Limits | None = None,
    ):
        self.path = path
        self.registry = registry
        self.limits = limits or Limits()
        self.extra_methods: Mapping[str, Any] = extra_methods if extra_methods is not None else {}
        self.stream_bodies = BodyCache(STREAM_BODY_CACHE, STREAM_BODY_BYTES)
        self._last_frame: tuple[Any, bytes, bytes] = (None, b"", b"")
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[Connection, None] = {}
        self._dirty: dict[Connection, None] = {}  # connections with pushed frames to write
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def call_count(self) -> int:
        return sum(len(c.calls()) for c in self._connections)

    def stream_frame(self, prefix: bytes, response: Any) -> bytes:
        """The result frame of a streamed (shared, immutable) ``response`` for the call whose
        :func:`result_prefix` is ``prefix``. The last frame built is kept, so pushing one event to
        many watchers with the same call id (clients number their calls alike) builds it once."""
        last_response, last_prefix, data = self._last_frame
        if response is last_response and prefix == last_prefix:
            return data
        data = _fitting(splice_result(prefix, self.stream_bodies.body(response)))  # checked once per frame
        self._last_frame = (response, prefix, data)
        return data

    def flush_soon(self, connection: Connection) -> None:
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

    def track(self, connection: Connection) -> None:
        """Count ``connection`` until its worker ends."""
        self._connections[connection] = None
        assert connection.worker is not None

        def forget(_task: asyncio.Task[None]) -> None:
            self._connections.pop(connection, None)

        connection.worker.add_done_callback(forget)

    def _protocol(self) -> asyncio.Protocol:
        if self._closing or len(self._connections) >= self.limits.max_connections:
            return _Refused(self.limits.max_connections)
        return Connection(self)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(self._protocol, path=str(self.path), backlog=1024)
        os.chmod(self.path, SOCKET_MODE)

    def stop_accepting(self) -> None:
        """Close the listening socket and stop reading every connection (calls in flight go on)."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.stop_reading()

    async def stop(self, grace: float) -> None:
        """Stop accepting and reading; calls in flight get ``grace`` seconds, then are cancelled;
        closing then takes at most about ``limits.close_timeout_s`` per stalled peer (in parallel)
        before connections are aborted; the socket file is removed."""
        self.stop_accepting()
        workers = [c.worker for c in self._connections if c.worker is not None]
        if workers:
            _, pending = await asyncio.wait(workers, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                _, stuck = await asyncio.wait(pending, timeout=self.limits.close_timeout_s * 2 + 1)
                for connection in list(self._connections):
                    connection.abort()
                if stuck:
                    await asyncio.wait(stuck, timeout=1.0)
        remove_socket(self.path)

    def abort_all(self) -> None:
        """Stop at once: every connection dropped, its calls cancelled (a second stop signal)."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.abort()
