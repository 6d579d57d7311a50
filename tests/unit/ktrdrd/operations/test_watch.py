"""Watch: snapshot, then every event with seq > after_seq, from the database and the live fan-out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ktrdr.rpc import errors
from ktrdr.wire import EventType, OperationState, StatusCode
from ktrdrd.journal.records import EventRecord, OperationRecord
from ktrdrd.operations import OperationsCore, fanout
from tests.support.journal import opened

TICKS = {"steps": 40, "interval_s": 0.002, "messages": True}


async def collect(
    core: OperationsCore, name: str, after_seq: int = 0, hold: asyncio.Event | None = None
) -> list[Any]:
    """Every item of a watch; with ``hold``, the watcher stalls after its first item until it is set."""
    items = []
    async for item in core.watch(name, after_seq):
        items.append(item)
        if hold is not None:
            await hold.wait()
    return items


def check_stream(items: list[Any], first_seq: int) -> list[EventRecord]:
    """The snapshot comes first, then consecutive seqs from ``first_seq`` to a terminal state event."""
    assert isinstance(items[0], OperationRecord)
    events = items[1:]
    assert all(isinstance(e, EventRecord) for e in events)
    assert [e.seq for e in events] == list(range(first_seq, first_seq + len(events)))
    assert events[-1].type == "state" and events[-1].state == "SUCCEEDED"
    return events


def test_live_watchers_and_resume_after_seq(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            rec = await core.start("test.ticker", params=TICKS)
            watchers = [asyncio.create_task(collect(core, rec.name)) for _ in range(20)]
            await asyncio.sleep(0.03)
            late_live = asyncio.create_task(collect(core, rec.name, after_seq=-1))
            done = await core.wait(rec.name, 10)
            for items in await asyncio.gather(*watchers):
                events = check_stream(items, 1)
                assert events[-1].seq == done.last_seq
                assert [e.message for e in events if e.type == "message"] == [
                    f"tick {i}" for i in range(1, 41)
                ]
            live_items = await late_live
            check_stream(live_items, live_items[0].last_seq + 1)

            # After the fact: snapshot + events from the database, resumable anywhere.
            resumed = await collect(core, rec.name, after_seq=10)
            assert resumed[0].done and check_stream(resumed, 11)[-1].seq == done.last_seq
            assert await collect(core, rec.name, after_seq=done.last_seq) == [done]

    asyncio.run(scenario())


def test_slow_watcher_falls_back_to_database(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "DEFAULT_CAPACITY", 4)

    async def scenario() -> None:
        async with opened(db_path) as core:
            reads: list[int] = []
            read_events = core._journal.read_events

            async def counting(op_id: str, after_seq: int, limit: int = 500) -> list[EventRecord]:
                reads.append(after_seq)
                return await read_events(op_id, after_seq, limit)

            monkeypatch.setattr(core._journal, "read_events", counting)
            rec = await core.start("test.ticker", params=TICKS)
            fast = asyncio.create_task(collect(core, rec.name, after_seq=-1))
            stalled = asyncio.Event()
            slow = asyncio.create_task(collect(core, rec.name, after_seq=-1, hold=stalled))
            done = await core.wait(rec.name, 10)
            stalled.set()  # 40 events went by a ring of 4 while the slow watcher stood still
            for items in (await fast, await slow):
                assert check_stream(items, items[0].last_seq + 1)[-1].seq == done.last_seq
            assert reads  # the slow watcher left the ring and caught up from the database

    asyncio.run(scenario())


def test_watch_unknown_operation(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            with pytest.raises(errors.ApiError) as info:
                await collect(core, "operations/op_" + "2" * 26)
            assert info.value.code == StatusCode.NOT_FOUND

    asyncio.run(scenario())


def test_hub_ring_and_wakeups() -> None:
    async def scenario() -> None:
        hub = fanout.Hub(0, capacity=3)

        def event(seq: int) -> EventRecord:
            return EventRecord(
                operation="operations/x",
                seq=seq,
                time=0.0,
                type=EventType.MESSAGE,
                state=OperationState.RUNNING,
                stage="",
                progress={},
                message=str(seq),
            )

        assert hub.since(0) == []
        waiter = asyncio.create_task(hub.wait())
        await asyncio.sleep(0)
        hub.publish(event(1))
        await asyncio.wait_for(waiter, 1)
        for seq in range(2, 8):
            hub.publish(event(seq))
        assert [e.seq for e in hub.since(5)] == [6, 7]
        assert hub.since(7) == []
        assert hub.since(0) is None  # trimmed: the watcher must read the database
        closing = asyncio.create_task(hub.wait())
        await asyncio.sleep(0)
        hub.close()
        await asyncio.wait_for(closing, 1)
        assert hub.closed

    asyncio.run(scenario())


class _Stepper:
    """A kind that journals one message per item put on ``steps`` and succeeds on None."""

    def __init__(self) -> None:
        self.steps: asyncio.Queue[str | None] = asyncio.Queue()
        self.ctx: Any = None
        self.started = asyncio.Event()

    async def run(self, ctx: Any) -> None:
        self.ctx = ctx
        self.started.set()
        while (text := await self.steps.get()) is not None:
            await ctx.message(text)
        return None


def test_a_full_push_consumer_gets_backpressure_not_more_pushes(db_path: Path) -> None:
    """Once push reports its consumer full, nothing more is pushed until the consumer takes a
    yielded list; every event still arrives once, in order, across pushes and yields."""

    async def scenario() -> None:
        async with opened(db_path, register=False) as core:
            stepper = _Stepper()
            core.register_kind("test.stepper", stepper)
            rec = await core.start("test.stepper", params={})
            await stepper.started.wait()
            await stepper.ctx.flush()  # the watcher starts caught up, so its first live event is pushed
            pushed: list[int] = []

            def push(events: list[EventRecord]) -> bool:
                pushed.extend(e.seq for e in events)
                return False  # always full

            stream = core.watch_batches(rec.name, -1, push)
            snapshot = await anext(stream)
            first = asyncio.ensure_future(anext(stream))
            for i in range(10):
                stepper.steps.put_nowait(f"m{i}")
            stepper.steps.put_nowait(None)
            done = await core.wait(rec.name, 10)
            assert done.done
            assert pushed == [snapshot.last_seq + 1]  # the consumer stalled: one push, then none
            yielded = [e.seq for e in await first]
            async for batch in stream:
                yielded += [e.seq for e in batch]
            assert pushed + yielded == list(range(snapshot.last_seq + 1, done.last_seq + 1))

    asyncio.run(scenario())
