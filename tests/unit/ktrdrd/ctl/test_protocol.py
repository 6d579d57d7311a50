"""``decode_request``: every frame that is not a valid request is a BadFrame, never an exception
of another kind (which would drop the connection or become INTERNAL). ``to_json``: the same canonical
JSON as json_format, finished operations remembered."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from ktrdr.daemon.v1 import operations_pb2 as ops_pb
from ktrdrd.ctl.protocol import (
    ECHO_CHARS,
    MAX_DEPTH,
    BadFrame,
    OperationJsonMemo,
    clip,
    decode_request,
    to_json,
)


@pytest.mark.parametrize(
    "frame, problem",
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b'{"id": NaN, "method": "m"}', "NaN"),
        (b'{"id": 1, "method": "m", "params": {"x": Infinity}}', "Infinity"),
        (b'{"id": 1, "method": "m", "params": {"x": 1e999}}', "out of range"),
        (b'{"id": ' + b"9" * 5000 + b', "method": "m"}', "cannot be read"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper"),
        (
            json.dumps(
                {
                    "id": 1,
                    "method": "m",
                    "params": {
                        "a": [
                            [
                                [
                                    [
                                        [
                                            [
                                                [
                                                    [
                                                        [
                                                            [
                                                                [
                                                                    [
                                                                        [
                                                                            [
                                                                                [
                                                                                    [
                                                                                        [
                                                                                            [
                                                                                                [
                                                                                                    [
                                                                                                        [
                                                                                                            [
                                                                                                                [
                                                                                                                    [
                                                                                                                        [
                                                                                                                            [
                                                                                                                                [
                                                                                                                                    [
                                                                                                                                        [
                                                                                                                                            [
                                                                                                                                                [
                                                                                                                                                    [
                                                                                                                                                        [
                                                                                                                                                            [
                                                                                                                                                                [
                                                                                                                                                                    [
                                                                                                                                                                        [
                                                                                                                                                                            [
                                                                                                                                                                                [
                                                                                                                                                                                    [
                                                                                                                                                                                        [
                                                                                                                                                                                            [
                                                                                                                                                                                                [
                                                                                                                                                                                                    [
                                                                                                                                                                                                        [
                                                                                                                                                                                                            [
                                                                                                                                                                                                                [
                                                                                                                                                                                                                    [
                                                                                                                                                                                                                        [
                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                                                1
                                                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                ]
                                                                                                                                                                                                            ]
                                                                                                                                                                                                        ]
                                                                                                                                                                                                    ]
                                                                                                                                                                                                ]
                                                                                                                                                                                            ]
                                                                                                                                                                                        ]
                                                                                                                                                                                    ]
                                                                                                                                                                                ]
                                                                                                                                                                            ]
                                                                                                                                                                        ]
                                                                                                                                                                    ]
                                                                                                                                                                ]
                                                                                                                                                            ]
                                                                                                                                                        ]
                                                                                                                                                    ]
                                                                                                                                                ]
                                                                                                                                            ]
                                                                                                                                        ]
                                                                                                                                    ]
                                                                                                                                ]
                                                                                                                            ]
                                                                                                                        ]
                                                                                                                    ]
                                                                                                                ]
                                                                                                            ]
                                                                                                        ]
                                                                                                    ]
                                                                                                ]
                                                                                            ]
                                                                                        ]
                                                                                    ]
                                                                                ]
                                                                            ]
                                                                        ]
                                                                    ]
                                                                ]
                                                            ]
                                                        ]
                                                    ]
                                                ]
                                            ]
                                        ]
                                    ]
                                ]
                            ]
                        ]
                    },
                }
            ).encode(),
            "nested deeper",
        ),
        (b'{"id": 2e20, "method": "m"}', "'id'"),
        (b'{"id": 9007199254740993, "method": "m"}', "'id'"),
        (b'{"id": true, "method": "m"}', "'id'"),
        (b'{"id": "' + b"x" * 129 + b'", "method": "m"}', "'id'"),
        (b'{"method": "m"}', "'id'"),
        (b'{"id": 1, "method": 5}', "'method'"),
    ],
)
def test_bad_frames_are_bad_frame_errors(frame: bytes, problem: str) -> None:
    with pytest.raises(BadFrame) as info:
        decode_request(frame)
    assert problem in info.value.error.message
    assert info.value.error.reason == "BAD_FRAME"
    assert len(info.value.error.message) < 200  # never the whole input
    assert info.value.fatal == (frame == b"\xff\xfe")


def test_valid_requests_and_stream_frames() -> None:
    call = decode_request(b'{"jsonrpc":"2.0","id":"a","method":"pkg.S/M","params":{"x":1.5}}')
    assert (call.id, call.method, call.params, call.done) == ("a", "pkg.S/M", {"x": 1.5}, False)
    more = decode_request(b'{"id": 9007199254740992, "params": {"y": 2}}')
    assert (more.method, more.params) == (None, {"y": 2})
    assert decode_request(b'{"id": -3, "done": true}').done
    nested = {"id": 1, "method": "m", "params": {}}
    inner: dict = nested["params"]
    for _ in range(MAX_DEPTH - 2):
        inner["a"] = {}
        inner = inner["a"]
    assert decode_request(json.dumps(nested)).id == 1  # exactly at the limit


def test_clip_keeps_short_text_and_says_how_long_a_long_one_was() -> None:
    assert clip("short") == "short"
    long = "k" * 10_000
    assert clip(long).startswith("k" * ECHO_CHARS) and "10000 chars" in clip(long)
    assert len(clip(long)) < ECHO_CHARS + 30


def _operation(n: int, *, done: bool, message: str = "m") -> ops_pb.Operation:
    op = ops_pb.Operation(
        name=f"operations/op_{n:026d}",
        kind="train",
        state=ops_pb.OPERATION_STATE_SUCCEEDED if done else ops_pb.OPERATION_STATE_RUNNING,
        done=done,
        labels={"symbol": "EURUSD", "b": str(n)},
    )
    op.progress.message = message
    op.create_time.FromSeconds(1_700_000_000 + n)
    return op


def _plain(message: Message) -> dict:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def test_operations_in_responses_convert_to_the_same_document_as_json_format() -> None:
    page = ops_pb.ListOperationsResponse(
        operations=[_operation(1, done=True), _operation(2, done=False), _operation(3, done=True)],
        next_page_token="tok",
    )
    for message in (
        page,
        ops_pb.ListOperationsResponse(),
        ops_pb.GetOperationResponse(operation=_operation(4, done=True)),
        ops_pb.GetOperationResponse(),
        ops_pb.WaitOperationResponse(operation=_operation(5, done=False)),
    ):
        assert to_json(message) == _plain(message)
        assert to_json(message) == _plain(message)  # second time from the memo: still equal


def test_finished_operations_are_remembered_by_content_and_bounded() -> None:
    memo = OperationJsonMemo(capacity=2)
    first = memo.json(_operation(1, done=True))
    assert memo.json(_operation(1, done=True)) is first  # same content: the remembered document
    changed = memo.json(_operation(1, done=True, message="resumed as op_x"))
    assert changed is not first and changed["progress"]["message"] == "resumed as op_x"
    running = _operation(2, done=False)
    assert memo.json(running) is not memo.json(running)  # running operations are never kept
    memo.json(_operation(3, done=True))
    assert len(memo) == 2  # bounded: the least recently used entry went
    assert memo.json(_operation(1, done=True)) is not first
