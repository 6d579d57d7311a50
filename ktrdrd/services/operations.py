"""``ktrdr.daemon.v1.OperationsService``: a thin adapter over the operations core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ktrdr.daemon.v1 import operations_pb2 as pb
from ktrdr.rpc.errors import failed_precondition, invalid_argument
from ktrdr.rpc.registry import Call
from ktrdrd.operations import parse_label_selectors
from ktrdrd.services.convert import event_to_proto, operation_to_proto, state_from_proto

EVENT_CACHE_SIZE = 8192  # event responses kept for sharing (≥ the fan-out ring's 2 × 4096)
DONE_CACHE_SIZE = 1024  # GetOperation responses of finished operations kept
INLINE_RECORDS = 16  # ListOperations pages up to this size are converted on the loop (< ~0.5 ms)
#: Protobuf bytes a ListOperations page may hold; a larger page is cut to fit (with a next page
#: token), so that its JSON (2-3× the binary size) fits the ctl frame cap of 4 MiB.
PAGE_BYTES = 1024 * 1024


class OperationsService:
    """Get/List/Cancel/Delete/Wait/Watch over ``core`` (a ``ktrdrd.operations.OperationsCore``)."""

    descriptor = pb.DESCRIPTOR.services_by_name["OperationsService"]

    def __init__(self, core: Any, resumers: Mapping[str, Any] | None = None) -> None:
        self._core = core
        #: kind → ``async (record, request_id) -> new record`` (ResumeOperation of that kind).
        self._resumers = dict(resumers or {})
        self._events = _EventResponses()
        self._done = _DoneResponses(core)

    @staticmethod
    def _name(name: str) -> str:
        if not name:
            raise invalid_argument("name", "required: an operation name like operations/op_...")
        return name

    async def GetOperation(self, request: pb.GetOperationRequest, call: Call) -> pb.GetOperationResponse:
        name = self._name(request.name)
        response = self._done.get(name)
        if response is None:
            generation = self._core.deletions
            record = await self._core.get(name)
            response = pb.GetOperationResponse(operation=operation_to_proto(record))
            if record.done:
                self._done.put(name, response, generation)
        return response

    async def ResumeOperation(
        self, request: pb.ResumeOperationRequest, call: Call
    ) -> pb.ResumeOperationResponse:
        """Continue a CANCELLED, FAILED or INTERRUPTED operation as a new one, where its kind can
        (``train``: from its job's last checkpoint); FAILED_PRECONDITION ``NOT_RESUMABLE`` otherwise."""
        record = await self._core.get(self._name(request.name))
        resume = self._resumers.get(record.kind)
        if resume is None:
            raise failed_precondition(
                f"operations of kind {record.kind!r} cannot be resumed", "NOT_RESUMABLE"
            )
        new = await resume(record, request.request_id)
        return pb.ResumeOperationResponse(operation=operation_to_proto(new))

    async def ListOperations(
        self, request: pb.ListOperationsRequest, call: Call
    ) -> pb.ListOperationsResponse:
        """One page, newest first; a page over :data:`PAGE_BYTES` is cut short (its token goes on).
        ``view`` BASIC leaves out each operation's ``result``."""
        if request.view not in pb.OperationView.values():
            raise invalid_argument("view", f"unknown view {request.view} (expected BASIC or FULL)")
        basic = request.view == pb.OPERATION_VIEW_BASIC
        flt = request.filter
        states = tuple(state_from_proto(s, f"filter.state[{i}]") for i, s in enumerate(flt.state))
        labels = parse_label_selectors(flt.label, "filter.label")
        page_size = request.page_size
        while True:
            records, token = await self._core.list(
                kind=flt.kind,
                states=states,
                labels=labels,
                parent=flt.parent,
                page_size=page_size,
                page_token=request.page_token,
            )

            def build(records: list[Any] = records, token: str = token) -> pb.ListOperationsResponse:
                return pb.ListOperationsResponse(
                    operations=[operation_to_proto(r, result=not basic) for r in records],
                    next_page_token=token,
                )

            # ~20 µs per operation: a page larger than INLINE_RECORDS is built off the event loop.
            response = build() if len(records) <= INLINE_RECORDS else await asyncio.to_thread(build)
            size = response.ByteSize()
            if size <= PAGE_BYTES or len(records) <= 1:
                return response
            page_size = max(1, len(records) * PAGE_BYTES // size)

    async def CancelOperation(
        self, request: pb.CancelOperationRequest, call: Call
    ) -> pb.CancelOperationResponse:
        record = await self._core.cancel(self._name(request.name))
        return pb.CancelOperationResponse(operation=operation_to_proto(record))

    async def DeleteOperation(
        self, request: pb.DeleteOperationRequest, call: Call
    ) -> pb.DeleteOperationResponse:
        await self._core.delete(self._name(request.name))
        return pb.DeleteOperationResponse()

    async def WaitOperation(self, request: pb.WaitOperationRequest, call: Call) -> pb.WaitOperationResponse:
        timeout_s = request.timeout.ToNanoseconds() / 1e9 if request.HasField("timeout") else None
        if timeout_s is not None and timeout_s < 0:
            raise invalid_argument("timeout", "must not be negative")
        remaining = call.time_remaining()
        if remaining is not None:
            # Answer (not done) just before the client's deadline instead of letting the call expire.
            timeout_s = max(0.0, remaining - 0.05) if timeout_s is None else min(timeout_s, remaining)
        record = await self._core.wait(self._name(request.name), timeout_s)
        return pb.WaitOperationResponse(operation=operation_to_proto(record))

    async def WatchOperation(
        self, request: pb.WatchOperationRequest, call: Call
    ) -> AsyncIterator[pb.WatchOperationResponse | list[pb.WatchOperationResponse]]:
        """The snapshot, then lists of event responses (every event available at once, in seq order).

        An event's response is built once and shared by every watcher (see :class:`_EventResponses`).
        Where the transport offers ``call.push``, live events go to it from the fan-out directly.
        """
        if request.after_seq < 0:
            raise invalid_argument("after_seq", "must not be negative")
        push = None
        if call.push is not None:
            send, response = call.push, self._events.response

            def push(events: list[Any]) -> bool:
                if len(events) == 1:  # a live event from the fan-out: the common case, kept cheap
                    return send([response(events[0])])
                return send([response(event) for event in events])

        async for item in self._core.watch_batches(self._name(request.name), request.after_seq, push):
            if isinstance(item, list):
                yield [self._events.response(event) for event in item]
            else:
                yield pb.WatchOperationResponse(snapshot=operation_to_proto(item))


class _EventResponses:
    """Bounded cache of ``WatchOperationResponse(event=...)`` by (operation, seq), shared by watchers.

    An acknowledged event never changes, so one response serves every watcher; the oldest entries
    are dropped beyond ``capacity`` (a watcher that far behind gets a fresh, equal response).
    """

    def __init__(self, capacity: int = EVENT_CACHE_SIZE) -> None:
        self._capacity = capacity
        self._cache: dict[tuple[str, int], pb.WatchOperationResponse] = {}
        self._last: tuple[Any, pb.WatchOperationResponse | None] = (None, None)

    def response(self, event: Any) -> pb.WatchOperationResponse:
        last_event, last_response = self._last  # a live event reaches every watcher in a row
        if event is last_event and last_response is not None:
            return last_response
        response = self._lookup(event)
        self._last = (event, response)
        return response

    def _lookup(self, event: Any) -> pb.WatchOperationResponse:
        key = (event.operation, event.seq)
        response = self._cache.get(key)
        if response is None:
            response = self._cache[key] = pb.WatchOperationResponse(event=event_to_proto(event))
            if len(self._cache) > self._capacity:
                del self._cache[next(iter(self._cache))]
        return response


class _DoneResponses:
    """Bounded LRU of ``GetOperationResponse`` of finished operations by name, shared by callers.

    A finished operation never changes until it is deleted, so its response is built once. Any
    deletion (``DeleteOperation`` or retention) bumps ``core.deletions`` and empties the cache; a
    response read before a deletion that completes meanwhile is not stored (``put`` checks the
    generation it was read in).
    """

    def __init__(self, core: Any, capacity: int = DONE_CACHE_SIZE) -> None:
        self._core = core
        self._capacity = capacity
        self._generation = core.deletions
        self._cache: dict[str, pb.GetOperationResponse] = {}

    def get(self, name: str) -> pb.GetOperationResponse | None:
        if self._generation != self._core.deletions:
            self._cache.clear()
            self._generation = self._core.deletions
            return None
        response = self._cache.pop(name, None)
        if response is not None:
            self._cache[name] = response  # most recently used last
        return response

    def put(self, name: str, response: pb.GetOperationResponse, generation: int) -> None:
        if generation != self._core.deletions or generation != self._generation:
            return
        self._cache[name] = response
        if len(self._cache) > self._capacity:
            del self._cache[next(iter(self._cache))]
