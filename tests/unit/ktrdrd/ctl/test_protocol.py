"""``decode_request``: every frame that is not a valid request is a BadFrame, never an exception
of another kind (which would drop the connection or become INTERNAL)."""

from __future__ import annotations

import json

import pytest

from ktrdrd.ctl.protocol import ECHO_CHARS, MAX_DEPTH, BadFrame, clip, decode_request


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
