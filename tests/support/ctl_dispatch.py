"""In-process ctl dispatch (no socket): for benchmarks and tests of the dispatcher.

``frames = await dispatch(server, line)`` hands one request line to a :class:`ktrdrd.ctl.server.Connection`
whose transport is a :class:`MemoryTransport`, and returns every frame the call wrote (one for a unary
call, results then ``done`` for a stream), each ending with a newline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ktrdrd.ctl.server import Connection, CtlServer


class MemoryTransport(asyncio.Transport):
    """A transport that keeps what is written (frames split at newlines): for in-process dispatch."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.frames.extend(bytes(data).splitlines(keepends=True))

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def dispatch(server: CtlServer, line: str | bytes) -> list[bytes]:
    """Handle one request line in this process, exactly as a connection would; its reply frames.

    Every frame the call writes (one for a unary call, results then ``done`` for a stream), each
    ending with a newline. The ctl dispatcher without a socket, for benchmarks and tests.
    """
    sink = MemoryTransport()
    connection = Connection(server)
    connection.attach(sink)  # not connection_made: no worker, no reading, not tracked
    await connection.handle(line if isinstance(line, bytes) else line.encode())
    await asyncio.gather(*connection.calls())
    return sink.frames
