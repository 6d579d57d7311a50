"""OperationsCore: starts, runs, journals, cancels, waits on and streams operations.

Every state change, stage, message and (coalesced) progress update becomes an event with the next
per-operation seq. Events are delivered to watchers and reflected by ``get`` only once their write
committed, so whatever anyone has seen is in the database, and seqs are never reused.

States (:class:`ktrdr.wire.OperationState`): PENDING → RUNNING → SUCCEEDED | FAILED | CANCELLED.
INTERRUPTED (terminal, ``done``) marks an operation found PENDING/RUNNING when the journal was opened
whose kind has no handler able to reattach, or whose handler raised ``Interrupted`` (its host went
away). :data:`TRANSITIONS` is the whole lifecycle; every state
change goes through :meth:`OperationsCore._set_state`, which checks it (an illegal change is a bug:
:class:`IllegalTransition`). A CANCELLED operation carries ``error = {"code": 1 (CANCELLED), ...}``.

Journal write failures (disk full, I/O error): an operation whose event cannot be committed ends
INTERRUPTED (reason ``JOURNAL_WRITE_FAILED``) in memory at once, so ``wait`` and ``watch`` return; its
handler is cancelled; new starts are refused with the journal's error (RESOURCE_EXHAUSTED or
UNAVAILABLE) while :attr:`OperationsCore.journal_error` is set; reads go on. :meth:`maintain` probes
the disk every :data:`PROBE_INTERVAL_S` and, once it takes writes again, commits those terminal
states and clears the error.

Idempotent start: a non-empty ``request_id`` names one operation. Starting again with the same
request id, kind, params, labels and parent returns the existing operation (whatever its state);
the same request id with anything different is ALREADY_EXISTS, reason ``REQUEST_ID_REUSED``. A
request id becomes free again when its operation is deleted (by ``delete`` or retention).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ktrdr import logs
from ktrdr.excerpts import echo
from ktrdr.rpc import errors
from ktrdr.wire import NAME_PREFIX, TERMINAL_STATES, EventType, OperationState, StatusCode
from ktrdrd.journal import Journal
from ktrdrd.journal.errors import JournalWriteError
from ktrdrd.journal.records import EventRecord, OperationRecord, empty_progress
from ktrdrd.operations import paging
from ktrdrd.operations.context import Interrupted, KindHandler, OperationContext
from ktrdrd.operations.fanout import Hub
from ktrdrd.operations.ids import IdGenerator, parse_name

log = logging.getLogger("ktrdrd.operations")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_REQUEST_ID = 128
#: Operations that may be pending or running at once (config key ``max_active_operations``): each
#: holds a task and its records in memory, and a client starting operations in a loop would
#: otherwise grow the daemon without bound.
DEFAULT_MAX_ACTIVE = 10_000
MAX_LABEL_KEY = 63
MAX_LABEL_VALUE = 256
PROBE_INTERVAL_S = 1.0  # seconds between two attempts to write to a journal that failed
#: Labels one operation may carry (``labels`` of a start call); more is INVALID_ARGUMENT.
MAX_LABELS = 64
#: ``key=value`` selectors one ListOperations query may give (``filter.label``); more is
#: INVALID_ARGUMENT. Each selector is one more condition in the journal's SQL, and SQLite refuses an
#: expression deeper than 1,000 (1,000 selectors were an INTERNAL error). A query with more distinct
#: keys than :data:`MAX_LABELS` could match no operation anyway.
MAX_LABEL_SELECTORS = MAX_LABELS

PENDING, RUNNING = OperationState.PENDING, OperationState.RUNNING
SUCCEEDED, FAILED = OperationState.SUCCEEDED, OperationState.FAILED
CANCELLED, INTERRUPTED = OperationState.CANCELLED, OperationState.INTERRUPTED

#: The operation lifecycle: each state and the states it may change to. PENDING → RUNNING when the
#: handler starts; PENDING → CANCELLED when cancelled before it started; → FAILED when the handler
#: fails; → INTERRUPTED when the daemon restarted and no handler can reattach it, or when its events
#: cannot be journaled (from its last committed state). Terminal states never change.
TRANSITIONS: dict[OperationState, frozenset[OperationState]] = {
    PENDING: frozenset({RUNNING, CANCELLED, FAILED, INTERRUPTED}),
    RUNNING: frozenset({SUCCEEDED, FAILED, CANCELLED, INTERRUPTED}),
    **{state: frozenset() for state in TERMINAL_STATES},
}


class IllegalTransition(RuntimeError):
    """A state change the lifecycle does not allow: a bug in the core, never a user error."""


def check_transition(current: OperationState, target: OperationState) -> OperationState:
    """``target`` if :data:`TRANSITIONS` allows ``current`` → ``target``; else IllegalTransition."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"operation state {current} cannot change to {target}")
    return target


@dataclass
class _Live:
    """An operation that is not done yet. ``current`` may be ahead of the disk; ``acked`` is committed."""

    current: OperationRecord
    acked: OperationRecord
    hub: Hub
    done: asyncio.Event
    ctx: OperationContext | None = None
    task: asyncio.Task[None] | None = None
    progress_timer: asyncio.TimerHandle | None = None
    last_progress_write: float = -math.inf
    last_write: asyncio.Future[None] | None = None
    kill_timer: asyncio.TimerHandle | None = None
    lost: bool = False  # ended in memory after a journal write failed; nothing more is written


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def validate_labels(labels: Any, field: str = "labels") -> dict[str, str]:
    """A copy of ``labels`` if it maps at most :data:`MAX_LABELS` non-empty keys (no ``=``, ≤ 63
    chars) to strings (≤ 256 chars), all printable (``str.isprintable``: no control characters such
    as NUL, newline or ESC, no format characters such as a right-to-left override: labels are shown
    in terminals and matched exactly). INVALID_ARGUMENT naming ``field`` otherwise; it echoes a
    short excerpt."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise errors.invalid_argument(field, "expected a map of string keys to string values")
    if len(labels) > MAX_LABELS:
        raise errors.invalid_argument(field, f"{len(labels):,} labels, over the limit of {MAX_LABELS}")
    for key, value in labels.items():
        if not isinstance(key, str) or not key or "=" in key or len(key) > MAX_LABEL_KEY:
            raise errors.invalid_argument(
                field, f"label key {echo(key)}: expected 1-{MAX_LABEL_KEY} chars, no '='"
            )
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE:
            raise errors.invalid_argument(
                field, f"label {echo(key)}: expected a string of ≤ {MAX_LABEL_VALUE} chars"
            )
        if not (key.isprintable() and value.isprintable()):
            raise errors.invalid_argument(field, f"label {echo(key)}={echo(value)}: {_UNPRINTABLE}")
    return dict(labels)


_UNPRINTABLE = "expected printable characters (no control or format characters)"


def parse_label_selectors(selectors: Sequence[str], field: str = "labels") -> dict[str, str]:
    """``["k=v", ...]`` → ``{"k": "v"}``; INVALID_ARGUMENT naming ``field`` for more than
    :data:`MAX_LABEL_SELECTORS` selectors or a selector without ``=``."""
    if len(selectors) > MAX_LABEL_SELECTORS:
        raise errors.invalid_argument(
            field, f"{len(selectors):,} label selectors, over the limit of {MAX_LABEL_SELECTORS}"
        )
    result: dict[str, str] = {}
    for selector in selectors:
        key, sep, value = selector.partition("=")
        if not sep or not key:
            raise errors.invalid_argument(field, f"label selector {echo(selector)}: expected key=value")
        result[key] = value
    return validate_labels(result, field)


class OperationsCore:
    """The operations service core. Create with :meth:`open`, end with :meth:`close`; loop-thread only."""

    def __init__(
        self,
        journal: Journal,
        *,
        retention_s: float,
        progress_interval_s: float,
        cancel_grace_s: float,
        max_active: int = DEFAULT_MAX_ACTIVE,
    ) -> None:
        self._journal = journal
        self._max_active = max_active
        self._creating = 0  # starts between their checks and their journal insert
        self._retention_s = retention_s
        self.deletions = 0  # bumped whenever operations may have been deleted (delete, retention)
        self._progress_interval_s = progress_interval_s
        self._cancel_grace_s = cancel_grace_s
        self._handlers: dict[str, KindHandler] = {}
        self._active: dict[str, _Live] = {}
        self._ids = IdGenerator()
        self._closing = False
        self._journal_error: JournalWriteError | None = None
        self._journal_listeners: list[Callable[[], None]] = []
        # Operations ended in memory whose terminal state is not committed yet: id → (record, event).
        self._unwritten: dict[str, tuple[OperationRecord, EventRecord]] = {}
        self._recovery = asyncio.Event()

    @classmethod
    async def open(
        cls,
        db_path: Path,
        *,
        retention_s: float = 30 * 86400,
        progress_interval_s: float = 0.005,
        cancel_grace_s: float = 10.0,
        synchronous: str = "FULL",
        max_active: int = DEFAULT_MAX_ACTIVE,
    ) -> OperationsCore:
        """Open (create, migrate) the journal at ``db_path`` and load the operations that are not done.

        ``retention_s``: terminal operations that ended longer ago are deleted now, and by
        :meth:`maintain` every ``retention_s / 10`` (1 s..1 h). ``progress_interval_s``: minimum seconds between two progress
        events of one operation. ``cancel_grace_s``: seconds a handler has to return after a cancel
        before its task is cancelled. ``max_active``: operations that may be pending or running at
        once (see :meth:`start`). Raises ``JournalOpenError`` (file untouched) when unusable.
        Call :meth:`register_kind` for every kind, then :meth:`resume_pending`.
        """
        if not retention_s > 0:
            raise ValueError(f"retention_s must be > 0, got {retention_s}")
        journal = await Journal.open(
            Path(db_path), retention_cutoff=time.time() - retention_s, synchronous=synchronous
        )
        core = cls(
            journal,
            retention_s=retention_s,
            progress_interval_s=progress_interval_s,
            cancel_grace_s=cancel_grace_s,
            max_active=max_active,
        )
        try:
            for rec in await journal.load_nonterminal():
                core._active[rec.id] = core._new_live(rec, Hub(rec.last_seq))
        except BaseException:
            await journal.close()
            raise
        return core

    @property
    def journal(self) -> Journal:
        """The journal store, for other tables kept in the same database (the bar catalog)."""
        return self._journal

    @property
    def journal_error(self) -> JournalWriteError | None:
        """Why journal writes fail now, or None while they succeed."""
        return self._journal_error

    def on_journal_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever :attr:`journal_error` is set or cleared."""
        self._journal_listeners.append(listener)

    @property
    def active_count(self) -> int:
        """Operations not done yet."""
        return len(self._active)

    def register_kind(self, kind: str, handler: KindHandler) -> None:
        """Run operations of ``kind`` with ``handler``; registering a kind twice is a ValueError."""
        if kind in self._handlers:
            raise ValueError(f"operation kind {kind!r} is already registered")
        self._handlers[kind] = handler

    @property
    def kinds(self) -> list[str]:
        """The registered kinds, sorted."""
        return sorted(self._handlers)

    async def resume_pending(self) -> None:
        """Hand each loaded PENDING/RUNNING operation to its kind's ``reattach`` (none → INTERRUPTED)."""
        endings: list[asyncio.Future[None]] = []
        for live in list(self._active.values()):
            if live.task is not None or live.current.done:
                continue
            handler = self._handlers.get(live.current.kind)
            if handler is not None and hasattr(handler, "reattach"):
                live.task = asyncio.create_task(
                    self._run(live, handler, reattach=True), name=live.current.name
                )
                continue
            error = {
                "code": StatusCode.ABORTED,
                "message": f"ktrdrd restarted while the operation was {live.current.state}; "
                f"no handler for kind {live.current.kind!r} can reattach it",
                "reason": "DAEMON_RESTARTED",
            }
            endings.append(self._finish(live, INTERRUPTED, error, None))
        if endings:
            await asyncio.gather(*(asyncio.shield(ending) for ending in endings), return_exceptions=True)

    # ---- API -------------------------------------------------------------------------------------

    async def start(
        self,
        kind: str,
        *,
        params: dict[str, Any],
        labels: dict[str, str] | None = None,
        parent: str = "",
        request_id: str = "",
    ) -> OperationRecord:
        """Create a PENDING operation of ``kind`` and run its handler; idempotent on ``request_id``.

        INVALID_ARGUMENT names the bad field (kind, params, labels, parent, request_id: ≤ 128
        printable characters); ALREADY_EXISTS
        (REQUEST_ID_REUSED) for a request id used with different arguments; UNAVAILABLE while closing;
        RESOURCE_EXHAUSTED (``TOO_MANY_OPERATIONS``, with a retry delay) while ``max_active``
        operations are pending or running, except for a retry of a start that created one.
        """
        handler = self._handlers.get(kind)
        if handler is None:
            known = ", ".join(self.kinds) or "none"
            raise errors.invalid_argument("kind", f"unknown operation kind {kind!r} (known: {known})")
        if not isinstance(params, dict):
            raise errors.invalid_argument("params", "expected a JSON object")
        try:
            params = json.loads(json.dumps(params))
        except (TypeError, ValueError) as exc:
            raise errors.invalid_argument("params", f"not JSON-serializable ({exc})") from exc
        labels = validate_labels(labels)
        if parent:
            parent = NAME_PREFIX + parse_name(parent, "parent")
            parent_id = parent.removeprefix(NAME_PREFIX)
            if parent_id not in self._active and await self._journal.get_operation(parent_id) is None:
                raise errors.invalid_argument("parent", f"no operation {parent}")
        if not isinstance(request_id, str) or len(request_id) > MAX_REQUEST_ID:
            raise errors.invalid_argument("request_id", f"expected a string of ≤ {MAX_REQUEST_ID} chars")
        if not request_id.isprintable():
            raise errors.invalid_argument("request_id", f"{echo(request_id)}: {_UNPRINTABLE}")
        if self._closing:
            raise errors.ApiError(StatusCode.UNAVAILABLE, "ktrdrd is shutting down", "SHUTTING_DOWN")
        if self._journal_error is not None:
            failure = self._journal_error
            raise JournalWriteError(
                failure.code,
                f"new operations are refused until the journal can be written: {failure.message}",
                failure.reason,
                retry_after_s=failure.retry_after_s,
            )
        if len(self._active) + self._creating >= self._max_active:
            existing = await self._journal.get_by_request_id(request_id) if request_id else None
            if existing is None:
                raise errors.ApiError(
                    StatusCode.RESOURCE_EXHAUSTED,
                    f"{len(self._active):,} operations are pending or running, the daemon's limit "
                    "(config key max_active_operations); retry once some have ended",
                    "TOO_MANY_OPERATIONS",
                    retry_after_s=5.0,
                )
            return self._same_request(existing, kind, params, labels, parent)  # a retry still answers
        # A task, so that a caller cancelled mid-way cannot leave a journaled operation without a runner.
        creation = asyncio.ensure_future(self._create(kind, handler, params, labels, parent, request_id))
        self._creating += 1
        creation.add_done_callback(self._created)
        return await asyncio.shield(creation)

    def _created(self, _creation: asyncio.Future[OperationRecord]) -> None:
        self._creating -= 1

    async def get(self, name: str) -> OperationRecord:
        """The operation as last committed; NOT_FOUND if there is none."""
        op_id = parse_name(name)
        live = self._active.get(op_id)
        if live is not None:
            return live.acked.copy()
        if op_id in self._unwritten:
            return self._unwritten[op_id][0].copy()
        rec = await self._journal.get_operation(op_id)
        if rec is None:
            raise errors.not_found(f"operation {NAME_PREFIX}{op_id}")
        return rec

    async def list(
        self,
        *,
        kind: str = "",
        states: Iterable[str] = (),
        labels: dict[str, str] | None = None,
        parent: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[OperationRecord], str]:
        """One page of operations matching every filter, newest first, and the next page token ("" at end).

        ``states``: state names (``RUNNING``...; :class:`OperationState` or plain strings); ``labels``: exact ``key=value`` matches (all must hold);
        ``page_size`` 0 → 100, capped at 1000. INVALID_ARGUMENT names the bad field.
        """
        if not isinstance(page_size, int) or page_size < 0:
            raise errors.invalid_argument("page_size", f"expected an integer ≥ 0, got {page_size!r}")
        page_size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        state_list = sorted(set(states))
        for state in state_list:
            if state not in OperationState.__members__:
                known = ", ".join(OperationState.__members__)
                raise errors.invalid_argument("state", f"unknown state {state!r} (expected one of {known})")
        labels = validate_labels(labels)
        if parent:
            parent = NAME_PREFIX + parse_name(parent, "parent")
        if not isinstance(kind, str):
            raise errors.invalid_argument("kind", "expected a string")
        filters = {"kind": kind, "states": state_list, "labels": labels, "parent": parent}
        before_id = paging.decode(page_token, filters) if page_token else ""
        rows = await self._journal.list_operations(
            kind=kind,
            states=state_list,
            labels=labels,
            parent=parent,
            before_id=before_id,
            limit=page_size + 1,
        )
        next_token = paging.encode(rows[page_size - 1].id, filters) if len(rows) > page_size else ""
        page = [self._unwritten[r.id][0].copy() if r.id in self._unwritten else r for r in rows[:page_size]]
        return page, next_token

    async def cancel(self, name: str) -> OperationRecord:
        """Ask the operation (and its children) to stop; returns the record as committed now.

        The handler sees ``ctx.cancelled`` and should return; its task is cancelled after the grace
        period. The operation becomes CANCELLED when the handler ends (``wait`` for it).
        NOT_FOUND, or FAILED_PRECONDITION reason OPERATION_DONE if it is already done.
        """
        op_id = parse_name(name)
        live = self._active.get(op_id)
        if live is None or live.current.done:
            state = live.current.state if live is not None else (await self.get(name)).state
            raise errors.failed_precondition(
                f"{NAME_PREFIX}{op_id} is already done ({state})", "OPERATION_DONE"
            )
        orphans = [self._request_cancel(live)]
        orphans += [self._request_cancel(child) for child in self._children(live.current.name)]
        endings = [self._finish(orphan, CANCELLED, None, None) for orphan in orphans if orphan is not None]
        if endings:
            await asyncio.gather(*(asyncio.shield(ending) for ending in endings), return_exceptions=True)
        return live.acked.copy()

    async def delete(self, name: str) -> None:
        """Delete a done operation and its events. NOT_FOUND, or FAILED_PRECONDITION OPERATION_NOT_DONE."""
        op_id = parse_name(name)
        live = self._active.get(op_id)
        outcome = "not_done" if live is not None else await self._journal.delete_operation(op_id)
        self.deletions += outcome == "deleted"
        if outcome == "missing":
            raise errors.not_found(f"operation {NAME_PREFIX}{op_id}")
        if outcome == "not_done":
            raise errors.failed_precondition(
                f"{NAME_PREFIX}{op_id} is not done; cancel it and wait before deleting", "OPERATION_NOT_DONE"
            )

    async def wait(self, name: str, timeout_s: float | None) -> OperationRecord:
        """Return once the operation is done or ``timeout_s`` seconds passed (None: no limit; ≤ 0: now)."""
        op_id = parse_name(name)
        live = self._active.get(op_id)
        if live is None:
            return await self.get(name)
        if timeout_s is None or timeout_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.done.wait(), timeout_s)
        return live.acked.copy()

    async def watch(self, name: str, after_seq: int = 0) -> AsyncIterator[OperationRecord | EventRecord]:
        """Yield the operation's snapshot, then every event with seq > ``after_seq`` until it is done.

        Events older than the snapshot come from the database, then live ones from the fan-out (or the
        database again when this watcher fell more than the fan-out ring behind). ``after_seq`` < 0
        means "from the snapshot on" (live events only). Yielded events are shared: do not mutate.
        NOT_FOUND (on the first iteration) when there is no such operation.
        """
        async for item in self.watch_batches(name, after_seq):
            if isinstance(item, list):
                for event in item:
                    yield event
            else:
                yield item

    async def watch_batches(
        self,
        name: str,
        after_seq: int = 0,
        push: Callable[[builtins.list[EventRecord]], bool] | None = None,
    ) -> AsyncIterator[OperationRecord | builtins.list[EventRecord]]:
        """:meth:`watch` with the events grouped: the snapshot, then non-empty lists of events in seq
        order, each list being every event available at once (up to the fan-out's slice size). The
        last list ends with the terminal event. The lists and events are shared: do not mutate.

        With ``push``, live events of a caught-up watcher are not yielded but handed to ``push`` from
        inside the fan-out (see :meth:`Hub.follow`) for as long as it returns True; then they are
        yielded again from where it stopped, and pushing resumes only after the consumer took the next
        yielded list (so a full consumer gets backpressure, not an ever-growing buffer). Either way
        every event is delivered once, in order.
        """
        op_id = parse_name(name)
        live = self._active.get(op_id)
        snapshot = live.acked.copy() if live is not None else await self.get(name)
        hub = live.hub if live is not None else None
        yield snapshot
        cursor = snapshot.last_seq if after_seq < 0 else after_seq
        if live is None and op_id in self._unwritten:  # ended in memory: its last event is not on disk
            terminal = self._unwritten[op_id][1]
            if cursor < terminal.seq:
                with contextlib.suppress(errors.ApiError):
                    committed = await self._journal.read_events(op_id, cursor)
                    if committed and committed[-1].seq < terminal.seq:
                        yield committed
                yield [terminal]
            return
        consumer_full = False  # push said so; pull until the consumer takes a yielded list
        while True:
            batch = hub.since(cursor) if hub is not None else None
            if batch == [] and hub is not None:
                if hub.closed:
                    return
                if push is None or consumer_full:
                    await hub.wait()
                    continue
                followed_to = await hub.follow(cursor, push)
                if followed_to is None:
                    return
                cursor, consumer_full = followed_to, True
                continue
            if batch is None:
                batch = await self._journal.read_events(op_id, cursor)
                if not batch:
                    return
            for i, event in enumerate(batch):
                if event.state in TERMINAL_STATES:
                    yield batch[: i + 1]
                    return
            yield batch
            cursor, consumer_full = batch[-1].seq, False

    async def apply_retention(self) -> int:
        """Delete terminal operations that ended more than ``retention_s`` ago; returns how many."""
        deleted = await self._journal.delete_expired(time.time() - self._retention_s)
        self.deletions += deleted > 0
        return deleted

    async def close(self) -> None:
        """Stop handlers without ending their operations (they stay PENDING/RUNNING for the next
        :meth:`resume_pending`), write pending progress, end watch streams, close the journal."""
        if self._closing:
            return
        self._closing = True
        tasks = [live.task for live in self._active.values() if live.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for live in self._active.values():
            if live.kill_timer is not None:
                live.kill_timer.cancel()
            if live.progress_timer is not None:
                self._flush_progress(live)
        for live in self._active.values():
            live.hub.close()
        await self._journal.close()

    # ---- running handlers ------------------------------------------------------------------------

    async def _create(
        self,
        kind: str,
        handler: KindHandler,
        params: dict[str, Any],
        labels: dict[str, str],
        parent: str,
        request_id: str,
    ) -> OperationRecord:
        now = time.time()
        name = NAME_PREFIX + self._ids.new_id()
        progress = empty_progress()
        rec = OperationRecord(
            name=name,
            kind=kind,
            state=PENDING,
            stage="",
            progress=progress,
            labels=labels,
            parent=parent,
            request_id=request_id,
            create_time=now,
            start_time=None,
            update_time=now,
            end_time=None,
            error=None,
            result=None,
            last_seq=1,
            params=params,
        )
        first = EventRecord(
            operation=name,
            seq=1,
            time=now,
            type=EventType.STATE,
            state=PENDING,
            stage="",
            progress=progress,
            message="",
        )
        try:
            existing = await self._journal.insert_operation(rec, first)
        except JournalWriteError as exc:
            self._journal_failed(exc)
            raise
        if existing is not None:
            return self._same_request(existing, kind, params, labels, parent)
        hub = Hub(0)
        hub.publish(first)
        live = self._new_live(rec, hub)
        self._active[rec.id] = live
        live.task = asyncio.create_task(self._run(live, handler, reattach=False), name=name)
        log.info("operation started", extra={"operation": name, "kind": kind})
        return rec.copy()

    def _same_request(
        self,
        existing: OperationRecord,
        kind: str,
        params: dict[str, Any],
        labels: dict[str, str],
        parent: str,
    ) -> OperationRecord:
        mine = (kind, _canonical(params), labels, parent)
        theirs = (existing.kind, _canonical(existing.params), existing.labels, existing.parent)
        if mine != theirs:
            raise errors.ApiError(
                StatusCode.ALREADY_EXISTS,
                f"request_id {existing.request_id!r} was already used by {existing.name} "
                "with a different kind, params, labels or parent",
                "REQUEST_ID_REUSED",
            )
        live = self._active.get(existing.id)
        return live.acked.copy() if live is not None else existing

    def _new_live(self, rec: OperationRecord, hub: Hub) -> _Live:
        live = _Live(current=rec, acked=dataclasses.replace(rec), hub=hub, done=asyncio.Event())
        live.ctx = OperationContext(
            rec.name,
            json.loads(json.dumps(rec.params)),
            snapshot=lambda: live.current.copy(),
            set_stage=partial(self._set_stage, live),
            progress=partial(self._set_progress, live),
            message=partial(self._write, live, EventType.MESSAGE),
            flush=partial(self._flush, live),
        )
        return live

    async def _run(self, live: _Live, handler: KindHandler, *, reattach: bool) -> None:
        assert live.ctx is not None
        ctx = live.ctx
        # Every log line of this task (its own context copy) names the operation.
        logs.current_op.set(live.current.name)
        result: dict[str, Any] | None = None
        error: dict[str, Any] | None = None
        try:
            if not ctx.cancelled.is_set():
                if live.current.state == PENDING:
                    self._set_state(live, RUNNING)
                    live.current.start_time = time.time()
                    await self._write(live, EventType.STATE)
                result = await (handler.reattach(ctx) if reattach else handler.run(ctx))
            state = CANCELLED if ctx.cancelled.is_set() else SUCCEEDED
        except asyncio.CancelledError:
            if self._closing:
                raise
            state = CANCELLED
        except errors.ApiError as exc:
            state, error = FAILED, {"code": exc.code, "message": exc.message, "reason": exc.reason}
        except Interrupted as exc:
            state = INTERRUPTED
            error = {"code": StatusCode.ABORTED, "message": exc.message, "reason": exc.reason}
        except Exception as exc:
            log.exception("operation handler failed", extra={"operation": live.current.name})
            state = FAILED
            error = {
                "code": StatusCode.INTERNAL,
                "message": f"{type(exc).__name__}: {exc}",
                "reason": "HANDLER_ERROR",
            }
        if state == SUCCEEDED and result is not None:
            try:
                if not isinstance(result, dict):
                    raise TypeError(f"expected a dict or None, got {type(result).__name__}")
                result = json.loads(json.dumps(result))
            except (TypeError, ValueError) as exc:
                state, result = FAILED, None
                error = {
                    "code": StatusCode.INTERNAL,
                    "message": f"handler result is not JSON ({exc})",
                    "reason": "BAD_RESULT",
                }
        if live.lost:
            return  # ended in memory when its journal write failed
        with contextlib.suppress(JournalWriteError):  # then the operation is interrupted (_acknowledged)
            await asyncio.shield(self._finish(live, state, error, result if state == SUCCEEDED else None))

    def _set_state(self, live: _Live, state: OperationState, *, committed_only: bool = False) -> None:
        """Change the operation's state: the one place that does, after checking :data:`TRANSITIONS`.

        The change is from its current state, or with ``committed_only`` from its last committed
        one (a journal failure discards the changes that were not committed).
        """
        base = live.acked.state if committed_only else live.current.state
        live.current.state = check_transition(base, state)

    def _finish(
        self,
        live: _Live,
        state: OperationState,
        error: dict[str, Any] | None,
        result: dict[str, Any] | None,
    ) -> asyncio.Future[None]:
        """Record the terminal ``state``; the future resolves once it is committed."""
        if live.kill_timer is not None:
            live.kill_timer.cancel()
        cur = live.current
        self._set_state(live, state)
        if state == CANCELLED:
            error = {
                "code": StatusCode.CANCELLED,
                "message": "the operation was cancelled",
                "reason": "CANCELLED",
            }
        if state == SUCCEEDED:
            cur.progress = {**cur.progress, "fraction": 1.0}
        cur.error, cur.result, cur.end_time = error, result, time.time()
        return self._submit(live, EventType.STATE)

    def _request_cancel(self, live: _Live) -> _Live | None:
        """Set the cancel flag; returns ``live`` when no task runs it (then the caller ends it)."""
        if live.current.done or live.ctx is None or live.ctx.cancelled.is_set():
            return None
        live.ctx.cancelled.set()
        if live.task is None:
            return live
        live.kill_timer = asyncio.get_running_loop().call_later(self._cancel_grace_s, live.task.cancel)
        return None

    def _children(self, parent: str) -> builtins.list[_Live]:
        return [live for live in self._active.values() if live.current.parent == parent]

    # ---- events ----------------------------------------------------------------------------------

    def _submit(self, live: _Live, type_: EventType, message: str = "") -> asyncio.Future[None]:
        """Give ``live.current`` the next seq and queue it with its event; acknowledged on commit."""
        if live.progress_timer is not None:  # this event carries the latest progress anyway
            live.progress_timer.cancel()
            live.progress_timer = None
        cur = live.current
        now = time.time()
        cur.last_seq += 1
        cur.update_time = now
        event = EventRecord(
            operation=cur.name,
            seq=cur.last_seq,
            time=now,
            type=type_,
            state=cur.state,
            stage=cur.stage,
            progress=cur.progress,
            message=message,
        )
        snapshot = dataclasses.replace(cur)
        future = self._journal.write_event(event, snapshot)
        future.add_done_callback(partial(self._acknowledged, live, event, snapshot))
        live.last_write = future
        return future

    def _acknowledged(
        self, live: _Live, event: EventRecord, snapshot: OperationRecord, future: asyncio.Future[None]
    ) -> None:
        if future.cancelled() or live.lost:
            return
        failure = future.exception()
        if failure is not None:
            if not isinstance(failure, JournalWriteError):
                log.error("journal write failed: %s", failure, extra={"operation": event.operation})
                failure = JournalWriteError(StatusCode.UNAVAILABLE, str(failure), "JOURNAL_WRITE_FAILED")
            self._journal_failed(failure)
            self._interrupt(live, failure)
            return
        live.acked = snapshot
        live.hub.publish(event)
        if snapshot.done:
            live.hub.close()
            live.done.set()
            self._active.pop(snapshot.id, None)
            log.info("operation %s", snapshot.state.lower(), extra={"operation": snapshot.name})
        if self._journal_error is not None:
            self._journal_ok()

    def _interrupt(self, live: _Live, failure: JournalWriteError) -> None:
        """End ``live`` INTERRUPTED in memory (its events cannot be committed): watchers and waiters
        see the end now; :meth:`maintain` commits it once the journal takes writes again."""
        live.lost = True
        for timer in (live.progress_timer, live.kill_timer):
            if timer is not None:
                timer.cancel()
        cur = live.current
        now = time.time()
        cur.last_seq += 1  # after every seq handed out, committed or not
        self._set_state(live, INTERRUPTED, committed_only=True)
        cur.result, cur.end_time, cur.update_time = None, now, now
        cur.error = {
            "code": failure.code,
            "message": f"stopped: its progress could not be journaled ({failure.message})",
            "reason": "JOURNAL_WRITE_FAILED",
        }
        event = EventRecord(
            operation=cur.name,
            seq=cur.last_seq,
            time=now,
            type=EventType.STATE,
            state=cur.state,
            stage=cur.stage,
            progress=cur.progress,
            message="",
        )
        snapshot = dataclasses.replace(cur)
        live.acked = snapshot
        self._unwritten[snapshot.id] = (snapshot, event)
        self._active.pop(snapshot.id, None)
        live.hub.publish(event)
        live.hub.close()
        live.done.set()
        if live.task is not None and live.task is not asyncio.current_task():
            live.task.cancel()
        log.warning("operation interrupted: the journal cannot be written", extra={"operation": cur.name})

    def _journal_failed(self, failure: JournalWriteError) -> None:
        if self._journal_error is None:
            log.error(
                "journal writes fail: new operations are refused, running ones are interrupted",
                extra={"reason": failure.reason, "error": failure.message},
            )
            self._journal_error = failure
            self._recovery.set()
            for listener in self._journal_listeners:
                listener()

    def _journal_ok(self) -> None:
        if self._journal_error is not None:
            self._journal_error = None
            log.info("journal writes succeed again")
            for listener in self._journal_listeners:
                listener()

    async def _write(self, live: _Live, type_: EventType, message: str = "") -> int:
        if live.current.done:
            raise RuntimeError(f"{live.current.name} is done; no more events")
        future = self._submit(live, type_, message)
        seq = live.current.last_seq
        await asyncio.shield(future)
        return seq

    async def _set_stage(self, live: _Live, stage: str) -> int:
        live.current.stage = stage
        return await self._write(live, EventType.STAGE)

    def _set_progress(
        self,
        live: _Live,
        fraction: float | None,
        message: str,
        current: int,
        total: int,
        eta_s: float | None,
        metrics: dict[str, float] | None,
    ) -> None:
        if live.current.done:
            return
        old = live.current.progress
        if fraction is None:
            fraction = current / total if total > 0 else old["fraction"]
        if math.isnan(fraction):
            raise ValueError("progress fraction is NaN")
        live.current.progress = {
            "fraction": min(1.0, max(0.0, float(fraction))),
            "message": message,
            "current": int(current),
            "total": int(total),
            "eta_s": None if eta_s is None else float(eta_s),
            "metrics": old["metrics"] if metrics is None else {str(k): float(v) for k, v in metrics.items()},
        }
        if live.progress_timer is None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, live.last_progress_write + self._progress_interval_s - loop.time())
            live.progress_timer = loop.call_later(delay, self._flush_progress, live)

    def _flush_progress(self, live: _Live) -> None:
        """Write the coalesced progress now (the timer callback; also called early by flush/close)."""
        if live.current.done:
            return
        live.last_progress_write = asyncio.get_running_loop().time()
        self._submit(live, EventType.PROGRESS)

    async def _flush(self, live: _Live) -> int:
        if live.progress_timer is not None:
            self._flush_progress(live)
        if live.last_write is not None:
            await asyncio.shield(live.last_write)
        return live.acked.last_seq

    async def maintain(self) -> None:
        """Background upkeep, run by the daemon until cancelled: retention every ``retention_s / 10``
        (1 s..1 h); while journal writes fail, a write attempt every :data:`PROBE_INTERVAL_S` that
        commits the interrupted operations' terminal states and clears :attr:`journal_error`."""
        loop = asyncio.get_running_loop()
        interval = min(max(self._retention_s / 10, 1.0), 3600.0)
        next_retention = loop.time() + interval
        while True:
            failing = self._journal_error is not None or bool(self._unwritten)
            timeout = max(0.0, next_retention - loop.time())
            if failing:
                timeout = min(timeout, PROBE_INTERVAL_S)
            self._recovery.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recovery.wait(), timeout)
            if self._journal_error is not None or self._unwritten:
                await self._recover()
            if loop.time() >= next_retention:
                next_retention = loop.time() + interval
                try:
                    deleted = await self.apply_retention()
                except errors.ApiError as exc:
                    log.warning("journal retention failed: %s", exc)
                else:
                    if deleted:
                        log.info("journal retention deleted %d operations", deleted)

    async def _recover(self) -> None:
        """Commit the terminal states kept in memory, then prove the journal writable; or stay failed."""
        try:
            for op_id, (snapshot, event) in list(self._unwritten.items()):
                await self._journal.write_event(event, snapshot)
                self._unwritten.pop(op_id, None)
            await self._journal.probe()
        except JournalWriteError as exc:
            self._journal_failed(exc)
            return
        self._journal_ok()
