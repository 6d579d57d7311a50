"""The ctl fast paths give the same bytes and events as the plain ones: spliced result frames, the
shared body cache, and live events pushed by the fan-out (with the fall back to pulling)."""

from __future__ import annotations

import asyncio

from ktrdr.daemon.v1 import operations_pb2 as pb
from ktrdr.wire import EventType, OperationState
from ktrdrd.ctl.protocol import BodyCache, dumps, encode, result_frame, result_prefix, splice_result, to_json
from ktrdrd.journal.records import EventRecord
from ktrdrd.operations.fanout import Hub
from ktrdrd.services.convert import event_to_proto


def _event(seq: int, state: OperationState = OperationState.RUNNING) -> EventRecord:
    progress = {
        "fraction": 0.25,
        "message": "m",
        "current": seq,
        "total": 9,
        "eta_s": 1.5,
        "metrics": {"loss": 0.5},
    }
    return EventRecord(
        operation="operations/op_" + "a" * 26,
        seq=seq,
        time=1_700_000_000.123456,
        type=EventType.PROGRESS,
        state=state,
        stage="fit",
        progress=progress,
        message="é",
    )


def test_spliced_frame_is_byte_identical_to_the_encoded_frame() -> None:
    response = pb.WatchOperationResponse(event=event_to_proto(_event(3)))
    for call_id in (7, "ïd-1", 0):
        spliced = splice_result(result_prefix(call_id), dumps(to_json(response)))
        assert spliced == encode(result_frame(call_id, to_json(response)))


def test_body_cache_shares_by_identity_and_stays_bounded() -> None:
    cache = BodyCache(capacity=2, max_bytes=10_000)
    first = pb.WatchOperationResponse(event=event_to_proto(_event(1)))
    body = cache.body(first)
    assert cache.body(first) is body
    for seq in (2, 3):
        cache.body(pb.WatchOperationResponse(event=event_to_proto(_event(seq))))
    assert cache.body(first) is not body and cache.body(first) == body  # evicted, re-encoded equal


def test_follow_pushes_in_order_and_hands_back_when_full() -> None:
    async def scenario() -> None:
        hub = Hub(last_seq=0)
        pushed: list[int] = []

        def push(events: list[EventRecord]) -> bool:
            pushed.extend(e.seq for e in events)
            return len(pushed) < 2  # full after the second event

        follower = asyncio.ensure_future(hub.follow(0, push))
        await asyncio.sleep(0)
        for seq in (1, 2, 3):
            hub.publish(_event(seq))
        assert await follower == 2
        assert pushed == [1, 2]
        assert [e.seq for e in hub.since(2) or []] == [3]  # the rest is pulled from where push stopped

        follower = asyncio.ensure_future(hub.follow(3, lambda events: True))
        await asyncio.sleep(0)
        hub.publish(_event(4, state="SUCCEEDED"))
        assert await follower is None  # terminal event pushed: the watch is over

    asyncio.run(scenario())
