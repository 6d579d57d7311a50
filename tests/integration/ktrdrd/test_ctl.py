"""The ctl NDJSON transport against a real ktrdrd process (the ``daemon`` fixture)."""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

from ktrdr.wire import FRAME_LIMIT

OPS = "ktrdr.daemon.v1.OperationsService/"
INFO = "ktrdr.daemon.v1.SystemService/GetInfo"
START = "ktrdr.test.v1/StartTicker"


class Conn:
    """One raw ctl connection: send frames or bytes, read frames."""

    def __init__(self, path: Any) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")

    def send(self, frame: dict | str | bytes) -> None:
        if isinstance(frame, dict):
            frame = json.dumps(frame)
        data = frame.encode() if isinstance(frame, str) else frame
        self.sock.sendall(data + b"\n")

    def call(self, call_id: Any, method: str, params: dict | None = None) -> None:
        self.send({"jsonrpc": "2.0", "id": call_id, "method": method, "params": params or {}})

    def recv(self) -> dict:
        line = self.reader.readline()
        assert line, "connection closed"
        return json.loads(line)

    def closed_by_peer(self) -> bool:
        try:
            return self.reader.readline() == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def start_ticker(daemon: Any, **params: Any) -> str:
    return daemon.ctl(START, {"params": params})["operation"]["name"]


def test_bad_frames_get_error_frames_and_the_connection_stays_usable(daemon):
    conn = Conn(daemon.ctl_socket)
    try:
        conn.send("{not json")
        frame = conn.recv()
        assert frame["id"] is None and frame["error"]["code"] == 3
        assert frame["error"]["data"]["reason"] == "BAD_FRAME"

        conn.call(7, "ktrdr.daemon.v1.NoSuchService/Nothing")
        frame = conn.recv()
        assert frame["id"] == 7 and frame["error"]["code"] == 12
        assert frame["error"]["data"]["reason"] == "UNKNOWN_METHOD"

        conn.call(8, OPS + "ListOperations", {"pageSize": "lots"})
        frame = conn.recv()
        assert frame["id"] == 8 and frame["error"]["code"] == 3
        assert frame["error"]["data"]["fieldViolations"][0]["field"] == "page_size"

        conn.call(9, OPS + "ListOperations", {"filter": {"state": ["OPERATION_STATE_NAPPING"]}})
        frame = conn.recv()
        assert frame["error"]["data"]["fieldViolations"][0]["field"] == "filter.state"

        conn.call(10, OPS + "GetOperation", {"nmae": "operations/x"})
        frame = conn.recv()
        assert frame["error"]["data"]["fieldViolations"][0]["field"] == "nmae"

        conn.call(11, INFO)
        frame = conn.recv()
        assert frame["id"] == 11 and frame["result"]["ctlSocket"] == str(daemon.ctl_socket)
    finally:
        conn.close()


def test_garbage_and_oversized_frames_close_only_that_connection(daemon):
    garbage = Conn(daemon.ctl_socket)
    garbage.send(b"\xff\xfe\x00garbage\x80")
    frame = garbage.recv()
    assert frame["id"] is None and frame["error"]["data"]["reason"] == "BAD_FRAME"
    assert "UTF-8" in frame["error"]["message"]
    assert garbage.closed_by_peer()
    garbage.close()

    big = Conn(daemon.ctl_socket)
    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": INFO, "params": {"pad": "x" * FRAME_LIMIT}})
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        big.send(payload)  # the daemon may close before all bytes are written
    with contextlib.suppress(ConnectionResetError):  # unread bytes may turn the close into a reset
        frame = big.recv()
        assert frame["id"] is None and frame["error"]["data"]["reason"] == "FRAME_TOO_LARGE"
    assert big.closed_by_peer()
    big.close()

    assert daemon.info()["pid"] == daemon.proc.pid


def test_concurrent_calls_on_one_connection_are_told_apart_by_id(daemon):
    name = start_ticker(daemon, steps=400, interval_s=0.05)
    conn = Conn(daemon.ctl_socket)
    try:
        conn.call("wait", OPS + "WaitOperation", {"name": name, "timeout": "30s"})
        conn.call("info", INFO)
        first = conn.recv()
        assert first["id"] == "info" and "result" in first
        conn.call("cancel", OPS + "CancelOperation", {"name": name})
        frames = {f["id"]: f for f in (conn.recv(), conn.recv())}
        assert frames["wait"]["result"]["operation"]["state"] == "OPERATION_STATE_CANCELLED"
        assert frames["wait"]["result"]["operation"]["done"] is True
        assert frames["cancel"]["result"]["operation"]["name"] == name
    finally:
        conn.close()


def test_frames_that_misuse_a_call_in_flight_are_answered_without_its_id(daemon):
    """A second request with the id of a call in flight, or a further frame for a call that takes
    none, gets an error with id null: the call's own answer stays the only frame with its id."""
    name = start_ticker(daemon, steps=400, interval_s=0.05)
    conn = Conn(daemon.ctl_socket)
    try:
        conn.call("wait", OPS + "WaitOperation", {"name": name, "timeout": "30s"})
        conn.call("wait", INFO)  # the id is taken
        conn.send({"id": "wait", "params": {}})  # WaitOperation takes no further frames
        conn.send({"id": "wait", "done": True})
        refusals = [conn.recv() for _ in range(3)]
        assert all(f["id"] is None and f["error"]["data"]["reason"] == "BAD_FRAME" for f in refusals), (
            refusals
        )
        assert "'wait' is already in use" in refusals[0]["error"]["message"]
        assert "takes no further frames" in refusals[1]["error"]["message"]
        conn.call("cancel", OPS + "CancelOperation", {"name": name})
        frames = {f["id"]: f for f in (conn.recv(), conn.recv())}
        assert frames["wait"]["result"]["operation"]["state"] == "OPERATION_STATE_CANCELLED"
    finally:
        conn.close()


def test_operation_errors_carry_codes_reasons_and_fields(daemon):
    unknown = "operations/op_" + "a" * 26
    frames = daemon.ctl_stream(OPS + "GetOperation", {"name": unknown})
    assert frames[0]["error"]["code"] == 5

    name = start_ticker(daemon, steps=1, interval_s=0)
    done = daemon.ctl(OPS + "WaitOperation", {"name": name, "timeout": "20s"})["operation"]
    assert done["state"] == "OPERATION_STATE_SUCCEEDED"
    assert done["result"] == {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"steps": 1}}
    error = daemon.ctl_stream(OPS + "CancelOperation", {"name": name})[0]["error"]
    assert error["code"] == 9 and error["data"]["reason"] == "OPERATION_DONE"

    error = daemon.ctl_stream(OPS + "ListOperations", {"filter": {"label": ["novalue"]}})[0]["error"]
    assert error["code"] == 3 and error["data"]["fieldViolations"][0]["field"] == "filter.label"
    error = daemon.ctl_stream(OPS + "ListOperations", {"pageToken": "forged"})[0]["error"]
    assert error["code"] == 3 and error["data"]["fieldViolations"][0]["field"] == "page_token"
    # A daemon with no training host refuses training and backtests plainly (test daemons start no hosts).
    error = daemon.ctl_stream("ktrdr.daemon.v1.BacktestsService/StartBacktest")[0]["error"]
    assert error["code"] == 9 and error["data"]["reason"] == "NO_TRAINING_HOST"
    error = daemon.ctl_stream("ktrdr.daemon.v1.TrainingService/StartTrainingBatch")[0]["error"]
    assert error["code"] == 9 and error["data"]["reason"] == "NO_TRAINING_HOST"


def test_watch_streams_snapshot_then_every_event_then_done_and_resumes(daemon):
    name = start_ticker(daemon, steps=5, interval_s=0.02, messages=True)
    frames = daemon.ctl_stream(OPS + "WatchOperation", {"name": name})
    assert frames[-1] == {"jsonrpc": "2.0", "id": 1, "done": True}
    results = [f["result"] for f in frames[:-1]]
    assert "snapshot" in results[0]
    events = [r["event"] for r in results[1:]]
    seqs = [int(e["seq"]) for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert events[-1]["state"] == "OPERATION_STATE_SUCCEEDED"
    assert [e["message"] for e in events if e["type"] == "OPERATION_EVENT_TYPE_MESSAGE"] == [
        f"tick {i}" for i in range(1, 6)
    ]

    resumed = daemon.ctl_stream(OPS + "WatchOperation", {"name": name, "afterSeq": str(seqs[-3])})
    assert [int(f["result"]["event"]["seq"]) for f in resumed[1:-1]] == seqs[-2:]


def test_half_closed_client_still_gets_its_replies(daemon):
    """What `socat` does: send requests, shut the write half, read until the daemon closes."""
    name = start_ticker(daemon, steps=3, interval_s=0.05)
    conn = Conn(daemon.ctl_socket)
    try:
        conn.call(1, INFO)
        conn.call(2, OPS + "WatchOperation", {"name": name})
        conn.sock.shutdown(socket.SHUT_WR)
        frames = []
        while line := conn.reader.readline():
            frames.append(json.loads(line))
        info = [f for f in frames if f["id"] == 1]
        watch = [f for f in frames if f["id"] == 2]
        assert len(info) == 1 and info[0]["result"]["pid"] == daemon.proc.pid
        assert watch[-1] == {"jsonrpc": "2.0", "id": 2, "done": True}
        assert watch[-2]["result"]["event"]["state"] == "OPERATION_STATE_SUCCEEDED"
    finally:
        conn.close()
