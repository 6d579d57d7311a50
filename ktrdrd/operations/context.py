"""What a kind handler sees: :class:`OperationContext`, and the :class:`KindHandler` protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ktrdrd.journal.records import OperationRecord


class Interrupted(Exception):
    """Raised by a handler whose work was lost outside the daemon (its host went away): the
    operation ends INTERRUPTED with this message (reason ``reason``); ``ResumeOperation`` continues
    it where its kind can."""

    def __init__(self, message: str, reason: str = "HOST_LOST") -> None:
        super().__init__(message)
        self.message, self.reason = message, reason


class KindHandler(Protocol):
    """Runs operations of one kind. Register with ``OperationsCore.register_kind``.

    ``run`` returns the result (proto JSON of a ``google.protobuf.Any``, or None) → SUCCEEDED; raising
    ``ApiError`` or any exception → FAILED; returning (or raising CancelledError) after
    ``ctx.cancelled`` was set → CANCELLED; raising :class:`Interrupted` → INTERRUPTED. ``reattach`` has the same contract and is called after a
    daemon restart for an operation left PENDING/RUNNING; a handler without ``reattach`` leaves such
    operations INTERRUPTED.
    """

    async def run(self, ctx: OperationContext) -> dict[str, Any] | None: ...

    async def reattach(self, ctx: OperationContext) -> dict[str, Any] | None: ...


class OperationContext:
    """Handed to a handler: the operation's name and params, its cancel flag and its event methods."""

    def __init__(
        self,
        name: str,
        params: dict[str, Any],
        *,
        snapshot: Callable[[], OperationRecord],
        set_stage: Callable[[str], Awaitable[int]],
        progress: Callable[..., None],
        message: Callable[[str], Awaitable[int]],
        flush: Callable[[], Awaitable[int]],
    ) -> None:
        self.name = name
        self.params = params
        self.cancelled = asyncio.Event()
        self._snapshot = snapshot
        self._set_stage = set_stage
        self._progress = progress
        self._message = message
        self._flush = flush

    def snapshot(self) -> OperationRecord:
        """A copy of the operation as the handler last set it (e.g. to resume from ``progress.current``)."""
        return self._snapshot()

    async def set_stage(self, stage: str) -> int:
        """Set the stage; returns the event's seq once it is committed."""
        return await self._set_stage(stage)

    async def progress(
        self,
        fraction: float | None = None,
        message: str = "",
        current: int = 0,
        total: int = 0,
        eta_s: float | None = None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        """Update progress; cheap and never waits for the disk.

        Calls are coalesced: at most one ``progress`` event per operation per progress interval (5 ms
        by default) is written, carrying the latest values. ``fraction`` (0..1, clamped) defaults to
        ``current / total`` when ``total`` > 0, else keeps its last value. ``eta_s`` is seconds.
        ``await ctx.flush()`` returns once everything set so far is committed.
        """
        self._progress(fraction, message, current, total, eta_s, metrics)

    async def message(self, text: str) -> int:
        """Journal a log line for watchers; returns the event's seq once it is committed."""
        return await self._message(text)

    async def flush(self) -> int:
        """Write any coalesced progress now; returns the last seq, committed."""
        return await self._flush()
