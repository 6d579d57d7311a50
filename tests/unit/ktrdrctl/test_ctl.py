"""The ctl client's framing against a real socket and a scripted NDJSON server."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from ktrdr.wire import FRAME_LIMIT
from ktrdrctl.ctl import CtlClient, CtlError, DaemonUnreachable, RequestTooLarge
from tests.support.ctlserver import CLOSE, ScriptedServer, error, result, stream


def test_unary_call_sends_jsonrpc_request_and_returns_result(server: ScriptedServer) -> None:
    server.on("a.v1.S/Get", lambda params: result({"echo": params}))
    with CtlClient(str(server.path)) as client:
        assert client.call("a.v1.S/Get", {"name": "x"}) == {"echo": {"name": "x"}}
        assert client.call("a.v1.S/Get", {"name": "y"}) == {"echo": {"name": "y"}}
    assert server.requests == [
        {"jsonrpc": "2.0", "id": 1, "method": "a.v1.S/Get", "params": {"name": "x"}},
        {"jsonrpc": "2.0", "id": 2, "method": "a.v1.S/Get", "params": {"name": "y"}},
    ]


def test_error_frame_raises_with_code_reason_and_violations(server: ScriptedServer) -> None:
    violations = [{"field": "page_token", "description": "not a token"}]
    server.on("a.v1.S/List", lambda _: error(3, "bad token", reason="BAD_TOKEN", fieldViolations=violations))
    with CtlClient(str(server.path)) as client:
        with pytest.raises(CtlError) as info:
            client.call("a.v1.S/List", {})
        # The connection stays usable after an error frame.
        server.on("a.v1.S/List", lambda _: result({}))
        assert client.call("a.v1.S/List", {}) == {}
    assert info.value.code == 3
    assert info.value.code_name == "INVALID_ARGUMENT"
    assert info.value.data["reason"] == "BAD_TOKEN"
    assert info.value.field_violations == [("page_token", "not a token")]


def test_stream_yields_results_until_done_then_connection_is_reusable(server: ScriptedServer) -> None:
    server.on("a.v1.S/Watch", lambda _: stream([{"n": 1}, {"n": 2}, {"n": 3}]))
    server.on("a.v1.S/Get", lambda _: result({"ok": True}))
    with CtlClient(str(server.path)) as client:
        assert list(client.stream("a.v1.S/Watch", {})) == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert client.call("a.v1.S/Get", {}) == {"ok": True}


def test_stream_error_frame_ends_the_stream(server: ScriptedServer) -> None:
    server.on("a.v1.S/Watch", lambda _: [{"result": {"n": 1}}, *error(5, "gone")])
    with CtlClient(str(server.path)) as client:
        items = client.stream("a.v1.S/Watch", {})
        assert next(items) == {"n": 1}
        with pytest.raises(CtlError, match="gone"):
            next(items)


def test_stream_delivers_frames_as_they_come(server: ScriptedServer) -> None:
    def slow(_: dict) -> object:
        yield {"result": {"n": 1}}
        server.release.wait(10)
        yield {"result": {"n": 2}}
        yield {"done": True}

    server.on("a.v1.S/Watch", slow)
    with CtlClient(str(server.path)) as client:
        items = client.stream("a.v1.S/Watch", {})
        assert next(items) == {"n": 1}  # arrives while the server still holds the second frame
        server.release.set()
        assert list(items) == [{"n": 2}]


def test_missing_socket_is_unreachable_and_marked_missing(short_dir: Path) -> None:
    with pytest.raises(DaemonUnreachable) as info:
        CtlClient(str(short_dir / "ctl.sock")).call("a.v1.S/Get", {})
    assert info.value.missing
    assert "No such file" in str(info.value)


def test_refused_connection_is_unreachable(short_dir: Path) -> None:
    path = short_dir / "ctl.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # bound but never listening: what a crashed daemon leaves behind
    try:
        with pytest.raises(DaemonUnreachable) as info:
            CtlClient(str(path)).call("a.v1.S/Get", {})
        assert info.value.missing
    finally:
        stale.close()


def test_no_answer_within_timeout(server: ScriptedServer) -> None:
    server.on("a.v1.S/Get", lambda _: (server.release.wait(10), [])[1])
    started = time.monotonic()
    with pytest.raises(DaemonUnreachable, match=r"no answer within 0\.2s"):
        CtlClient(str(server.path), timeout=0.2).call("a.v1.S/Get", {})
    assert time.monotonic() - started < 10  # it gave up rather than waiting for the server


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([CLOSE], "closed the connection"),
        ([b"this is not json\n"], "not JSON"),
        ([b'{"jsonrpc":"2.0","id":99,"result":{}}\n'], "unexpected frame"),
        ([b'{"jsonrpc":"2.0","id":1}\n'], "without result"),
        ([b'{"jsonrpc":"2.0","id":1,"result":{}', CLOSE], "truncated"),
    ],
)
def test_bad_frames_are_reported(server: ScriptedServer, frames: list[bytes], message: str) -> None:
    server.on("a.v1.S/Get", lambda _: frames)
    with pytest.raises(DaemonUnreachable, match=message):
        CtlClient(str(server.path), timeout=5).call("a.v1.S/Get", {})


def test_oversized_frame_is_refused(server: ScriptedServer) -> None:
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"x": "a" * FRAME_LIMIT}}).encode() + b"\n"
    server.on("a.v1.S/Get", lambda _: [big])
    with pytest.raises(DaemonUnreachable, match="oversized"):
        CtlClient(str(server.path), timeout=10).call("a.v1.S/Get", {})


def test_request_over_the_cap_is_not_sent(server: ScriptedServer) -> None:
    with pytest.raises(RequestTooLarge, match="frame cap"):
        CtlClient(str(server.path)).call("a.v1.S/Get", {"x": "a" * FRAME_LIMIT})
    assert server.requests == []


def test_client_stream_sends_continuations_then_done(server: ScriptedServer) -> None:
    server.on("a.v1.S/Import", lambda params: result({"first": params}), client_stream=True)
    with CtlClient(str(server.path)) as client:
        answer = client.client_stream("a.v1.S/Import", {"header": 1}, ({"data": n} for n in range(3)))
        assert answer == {"first": {"header": 1}}
    frames = [r for r in server.requests if "method" not in r]
    assert frames == [{"jsonrpc": "2.0", "id": 1, "params": {"data": n}} for n in range(3)] + [
        {"jsonrpc": "2.0", "id": 1, "done": True}
    ]


def test_client_stream_stops_sending_once_the_daemon_answered(server: ScriptedServer) -> None:
    """The server refuses at the first frame (as the daemon does over a size cap): the rest of a
    large input is never sent."""
    server.on("a.v1.S/Import", lambda _: error(8, "too large"))
    sent: list[int] = []

    def pieces():
        for n in range(200):
            sent.append(n)
            yield {"data": "x" * 1_000_000}

    with CtlClient(str(server.path)) as client, pytest.raises(CtlError) as refused:
        client.client_stream("a.v1.S/Import", {"header": 1}, pieces())
    assert refused.value.code == 8
    assert len(sent) < 200
