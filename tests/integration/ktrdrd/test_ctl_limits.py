"""Hostile and careless ctl clients against a real ktrdrd (issue 10, "bounded clients").

Each test is one fault a local user can cause on ``ctl.sock``: a client that pipelines without
reading, many idle connections, more connections than the cap, a stream of empty lines, an
unfinished frame, an oversized frame, frames the JSON reader chokes on, a client stream sent in one
write. The daemon must stay bounded (memory, connections), answer the others, and stop on SIGTERM.
Bounds asserted are on memory and on outcomes, never on speed; timeouts only keep a broken daemon
from hanging the suite.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import resource
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ktrdr.wire import FRAME_LIMIT
from tests.support.rawctl import INFO, RawConn, request_line, strict_loads, vm_rss_mib, wait_until

if TYPE_CHECKING:
    from tests.integration.conftest import Daemon, DaemonFactory

FRAME_CAP = FRAME_LIMIT  # bytes per ctl frame (the wire contract)
LIST = "ktrdr.daemon.v1.OperationsService/ListOperations"
IMPORT_BARS = "ktrdr.daemon.v1.DataService/ImportBars"  # the daemon's client-streaming method
ECHO_LIMIT = 100  # characters of the offending input an error message may repeat


def _reason(frame: dict[str, Any]) -> str | None:
    return frame.get("error", {}).get("data", {}).get("reason")


class _RssPeak:
    """Samples a process's VmRSS every few ms in a thread; ``peak`` is the highest seen (MiB)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = vm_rss_mib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            with contextlib.suppress(OSError, ValueError):  # the process may be gone
                self.peak = max(self.peak, vm_rss_mib(self.pid))

    def __enter__(self) -> _RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---- a client that pipelines and never reads ---------------------------------------------------


@pytest.mark.slow
def test_a_client_pipelining_100k_requests_without_reading_is_bounded_and_cannot_block_the_stop(
    daemon_factory: DaemonFactory,
) -> None:
    grace_s = 2.0
    daemon = daemon_factory.start(args=("--shutdown-grace-s", str(grace_s)))
    daemon.info()
    flooder = RawConn(daemon.ctl_socket)
    try:
        _flood_and_stop(daemon, flooder, grace_s)
    finally:
        flooder.close()  # on failure: lets the fixture stop a daemon that waits for this client


def _flood_and_stop(daemon: Daemon, flooder: RawConn, grace_s: float) -> None:
    rss_before = vm_rss_mib(daemon.proc.pid)
    requests = [request_line(i) for i in range(100_000)]
    chunks = [b"".join(requests[i : i + 10_000]) for i in range(0, len(requests), 10_000)]
    sent = 0
    with _RssPeak(daemon.proc.pid) as rss:
        for chunk in chunks:  # ten big writes, as far as the daemon takes them
            taken = flooder.flood(chunk, stall_s=2.0)
            sent += taken
            if taken < len(chunk):
                break
        time.sleep(1.0)  # let whatever the daemon took in be processed while we sample

        other = RawConn(daemon.ctl_socket, timeout_s=30)
        assert other.info()["pid"] == daemon.proc.pid, "another client is answered during the flood"
        other.close()
    growth = rss.peak - rss_before
    took = f"it took {sent} of {sum(map(len, chunks))} bytes"
    assert growth < 128, f"daemon RSS grew {growth:.0f} MiB ({rss_before:.0f} → {rss.peak:.0f}); {took}"

    first = [flooder.recv() for _ in range(1000)]  # the flooder reads at last: well-formed replies
    ids = [frame["id"] for frame in first]
    assert all(frame["result"]["pid"] == daemon.proc.pid for frame in first)
    assert len(set(ids)) == len(ids) and all(isinstance(i, int) and 0 <= i < 100_000 for i in ids)

    assert daemon.stop(timeout_s=grace_s + 8) == 0  # the flooder is still connected, not reading
    lines, _unfinished = flooder.read_until_closed()  # a write cut by the close may end mid-frame
    for line in lines:  # results, or errors for calls the stop cancelled
        frame = strict_loads(line)
        assert frame["jsonrpc"] == "2.0" and isinstance(frame["id"], int), line[:200]
        answer = frame.get("result", {}).get("pid") == daemon.proc.pid
        assert answer or isinstance(frame.get("error", {}).get("code"), int), line[:200]


# ---- connections -------------------------------------------------------------------------------


@contextlib.contextmanager
def _soft_nofile(limit: int) -> Iterator[None]:
    """This process's soft RLIMIT_NOFILE set to ``limit`` inside the block (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow
def test_a_thousand_idle_connections_leave_the_daemon_serving(daemon_factory: DaemonFactory) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2200:
        pytest.skip(f"the hard RLIMIT_NOFILE ({hard}) leaves no room for 1,000 connections per side")
    with _soft_nofile(1024):  # the usual default soft limit: the daemon must raise its own
        daemon = daemon_factory.start()
    conns: list[RawConn] = []
    with _soft_nofile(max(soft, 2200)):
        try:
            conns += [RawConn(daemon.ctl_socket) for _ in range(1000)]
            other = RawConn(daemon.ctl_socket)
            conns.append(other)
            for i in range(3):
                assert other.info(i)["pid"] == daemon.proc.pid
            for conn in (conns[0], conns[500], conns[999]):  # the idle ones were accepted too
                assert conn.info()["pid"] == daemon.proc.pid
        finally:
            for conn in conns:
                conn.close()
    assert daemon.info()["pid"] == daemon.proc.pid


def test_a_connection_over_the_cap_gets_one_error_frame_and_closing_others_frees_slots(
    daemon_factory: DaemonFactory,
) -> None:
    daemon = daemon_factory.start(args=("--ctl-max-connections", "50"))
    conns = []
    try:
        for _ in range(50):
            conn = RawConn(daemon.ctl_socket)
            conn.info()  # accepted and counted before the next one
            conns.append(conn)

        refused = RawConn(daemon.ctl_socket)
        frame = refused.recv()
        assert frame["id"] is None and frame["error"]["code"] == 8, frame  # RESOURCE_EXHAUSTED
        assert _reason(frame) == "TOO_MANY_CONNECTIONS" and frame["error"]["message"], frame
        assert refused.closed_by_peer(), "the refused connection is closed after its one frame"
        refused.close()

        for conn in conns[::7]:
            assert conn.info()["pid"] == daemon.proc.pid, "the admitted connections keep working"

        for conn in conns[:5]:
            conn.close()
        del conns[:5]

        def admitted() -> RawConn | None:
            conn = RawConn(daemon.ctl_socket)
            conn.call("hello")
            if "result" in conn.recv():
                return conn
            conn.close()
            return None

        for i in range(5):  # the daemon notices closed connections in its own time
            conns.append(wait_until(admitted, 20, f"slot {i + 1} of 5 freed by closing connections"))
        again = RawConn(daemon.ctl_socket)
        assert _reason(again.recv()) == "TOO_MANY_CONNECTIONS", "50 open again: the next one is refused"
        again.close()
    finally:
        for conn in conns:
            conn.close()


# ---- frames ------------------------------------------------------------------------------------


def test_a_stream_of_empty_lines_is_skipped_and_other_clients_are_answered_meanwhile(
    daemon: Daemon,
) -> None:
    streamer = RawConn(daemon.ctl_socket, timeout_s=60)
    blank_then_request = b"\n" * (1 << 20) + request_line("after-blank-lines")
    sender = threading.Thread(target=streamer.send, args=(blank_then_request,))
    sender.start()
    try:
        other = RawConn(daemon.ctl_socket, timeout_s=30)
        for i in range(5):
            assert other.info(i)["pid"] == daemon.proc.pid
        other.close()
    finally:
        sender.join(60)
    frame = streamer.recv()  # empty lines get no reply at all: the first frame is the answer
    assert frame["id"] == "after-blank-lines" and frame["result"]["pid"] == daemon.proc.pid, frame
    assert streamer.info()["pid"] == daemon.proc.pid
    streamer.close()


def test_an_unfinished_frame_times_out_while_idle_connections_stay_open(
    daemon_factory: DaemonFactory,
) -> None:
    daemon = daemon_factory.start(args=("--ctl-frame-timeout-s", "1"))
    idle = RawConn(daemon.ctl_socket)  # never sends a byte
    between = RawConn(daemon.ctl_socket)  # whole frames, then nothing
    assert between.info()["pid"] == daemon.proc.pid
    partial = RawConn(daemon.ctl_socket)
    partial.send(b'{"jsonrpc":"2.0","id":1,"method":"' + INFO.encode())  # no end, no newline

    frame = partial.recv()
    assert frame["id"] is None and frame["error"]["code"] == 3, frame
    assert _reason(frame) == "FRAME_TIMEOUT", frame
    assert partial.closed_by_peer()
    partial.close()

    time.sleep(1.5)  # idle well past the frame timeout
    assert idle.info()["pid"] == daemon.proc.pid
    assert between.info()["pid"] == daemon.proc.pid
    idle.close()
    between.close()


def test_a_frame_dripped_a_byte_at_a_time_still_times_out(daemon_factory: DaemonFactory) -> None:
    """The timeout runs from a frame's first byte: bytes that never complete it do not extend it."""
    daemon = daemon_factory.start(args=("--ctl-frame-timeout-s", "1"))
    drip = RawConn(daemon.ctl_socket)
    closed = False
    for byte in b'{"jsonrpc":"2.0","id":1,"method":"' + INFO.encode():  # 6+ s of bytes, never a newline
        try:
            drip.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        time.sleep(0.1)
    frame = drip.recv()
    assert _reason(frame) == "FRAME_TIMEOUT", frame
    assert closed or drip.closed_by_peer()
    drip.close()
    assert daemon.info()["pid"] == daemon.proc.pid


def test_a_frame_over_the_cap_gets_frame_too_large_then_close_and_the_daemon_serves_on(
    daemon: Daemon,
) -> None:
    big = RawConn(daemon.ctl_socket)
    big.send_quietly(request_line(1, INFO, {"pad": "x" * FRAME_CAP}))  # closed before the end, maybe
    frame = big.recv()
    assert frame["error"]["code"] == 3 and _reason(frame) == "FRAME_TOO_LARGE", frame
    assert len(json.dumps(frame)) < 4096, "the error does not carry the frame back"
    assert big.closed_by_peer()
    big.close()
    assert daemon.info()["pid"] == daemon.proc.pid


def _frame(call_id: str, params: str = "{}", method: str = INFO) -> str:
    """A request frame with ``call_id`` and ``params`` spliced in as raw JSON text."""
    return f'{{"jsonrpc":"2.0","id":{call_id},"method":"{method}","params":{params}}}'


_DIGITS = "1" * 5000
_DEEP = "[" * 5000 + "]" * 5000
#: (case, frame text, the id the error frame may carry besides null)
BAD_FRAMES = [
    ("5,000-digit id", _frame(_DIGITS), None),
    ("NaN id", _frame("NaN"), None),
    ("Infinity id", _frame("Infinity"), None),
    ("-Infinity id", _frame("-Infinity"), None),
    ("1e999 id", _frame("1e999"), None),
    ("id beyond 2^53", _frame(str(2**53 + 2)), None),
    ("200-character id", _frame(json.dumps("z" * 200)), None),
    ("5,000-digit value", _frame("7", f'{{"pageSize":{_DIGITS}}}', LIST), 7),
    ("NaN value", _frame("7", '{"pageSize":NaN}', LIST), 7),
    ("Infinity value", _frame("7", '{"pageSize":Infinity}', LIST), 7),
    ("5,000-deep nesting in params", _frame("7", f'{{"filter":{_DEEP}}}', LIST), 7),
    ("5,000-deep nesting as the frame", _DEEP, None),
]


def _longest_echo(message: str, text: str) -> int:
    """Length of the longest run of ``message`` that also appears in ``text`` (counted up to 101)."""
    longest = 0
    for start in range(len(message)):
        size = longest + 1
        while start + size <= len(message) and message[start : start + size] in text and size <= 101:
            longest = size
            size += 1
    return longest


def test_frames_the_json_reader_chokes_on_get_bad_frame_and_the_connection_stays_usable(
    daemon: Daemon,
) -> None:
    problems = []
    for case, text, valid_id in BAD_FRAMES:
        conn = RawConn(daemon.ctl_socket)
        try:
            conn.send(text.encode() + b"\n")
            frame = conn.recv()  # strict JSON: a bare NaN in the reply fails here
            if frame.get("id") not in (None, valid_id) or _reason(frame) != "BAD_FRAME":
                problems.append(f"{case}: {json.dumps(frame)[:300]}")
            elif frame["error"]["code"] != 3:
                problems.append(f"{case}: code {frame['error']['code']}, expected 3")
            elif (echo := _longest_echo(json.dumps(frame["error"]), text)) > ECHO_LIMIT:
                problems.append(f"{case}: the error echoes {echo}+ characters of the input")
            elif conn.info()["pid"] != daemon.proc.pid:
                problems.append(f"{case}: the connection is not usable afterwards")
        except (AssertionError, ValueError, OSError) as exc:
            problems.append(f"{case}: {type(exc).__name__}: {str(exc)[:200]}")
        finally:
            conn.close()
    assert not problems, "\n".join(problems)


def test_a_huge_float_value_is_refused_with_invalid_argument(daemon: Daemon) -> None:
    conn = RawConn(daemon.ctl_socket)
    conn.send(_frame("7", '{"pageSize":1e999}', LIST).encode() + b"\n")
    frame = conn.recv()
    assert frame["error"]["code"] == 3 and frame["id"] in (None, 7), frame
    assert conn.info()["pid"] == daemon.proc.pid
    conn.close()


def test_a_client_stream_sent_in_one_write_is_taken_whole_by_its_call(daemon: Daemon) -> None:
    """Request, continuation frames and ``done`` in one write all belong to the call: none of them is
    answered on its own (no BAD_FRAME), so the call's one answer is the first frame with its id and
    the id is free again afterwards. The three continuation frames carry the file's three parts: the
    import takes every bar of them."""
    header = {"header": {"series": {"symbol": "EURUSD", "timeframe": "1h"}, "sourceName": "bars.csv"}}
    parts = [
        b"time,open,high,low,close\n",
        b"2024-03-04T00:00Z,1,2,0.5,1\n",
        b"2024-03-04T01:00Z,1,2,0.5,1\n",
    ]
    one_write = request_line(1, IMPORT_BARS, header)
    one_write += b"".join(
        json.dumps({"id": 1, "params": {"data": base64.b64encode(part).decode()}}).encode() + b"\n"
        for part in parts
    )
    one_write += json.dumps({"id": 1, "done": True}).encode() + b"\n"
    conn = RawConn(daemon.ctl_socket)
    conn.send(one_write)
    answer = conn.recv_for(1)
    assert answer.get("result", {}).get("barsImported") == "2", answer

    conn.call(1)  # the id is free again: the next frame with id 1 answers this call
    frames = [conn.recv()]
    while frames[-1]["id"] != 1:
        frames.append(conn.recv())
    in_use = [f for f in frames if "already in use" in f.get("error", {}).get("message", "")]
    assert not in_use, in_use
    assert frames[-1].get("result", {}).get("pid") == daemon.proc.pid, frames
    conn.close()


def _import_frames(call_id: int, symbol: str, hours: int, *, done: bool) -> bytes:
    """An ImportBars call: the request (header), one data frame of ``hours`` hourly bars from
    2024-03-04 (about 30 bytes each), and its ``done`` frame if asked."""
    header = {"header": {"series": {"symbol": symbol, "timeframe": "1h"}, "sourceName": f"{symbol}.csv"}}
    start = datetime.datetime(2024, 3, 4, tzinfo=datetime.UTC)
    rows = "".join(f"{(start + datetime.timedelta(hours=h)).isoformat()},1,2,0.5,1\n" for h in range(hours))
    data = base64.b64encode(f"time,open,high,low,close\n{rows}".encode()).decode()
    frames = request_line(call_id, IMPORT_BARS, header)
    frames += json.dumps({"id": call_id, "params": {"data": data}}).encode() + b"\n"
    if done:
        frames += json.dumps({"id": call_id, "done": True}).encode() + b"\n"
    return frames


def test_imports_left_unfinished_share_one_byte_budget_and_free_it_when_they_end(
    daemon_factory: DaemonFactory,
) -> None:
    """Each import's file is held until it is written, and every import in progress shares
    ``data_import_inflight_bytes``: a client opening imports without finishing them used to take
    512 MiB each. Here one unfinished import holds most of a small budget: another import is refused
    (IMPORTS_BUSY, a retry delay, nothing written) until the first ends; the first is unharmed."""
    daemon = daemon_factory.start(env={"KTRDR_DATA_IMPORT_INFLIGHT_BYTES": "6000"})
    holder = RawConn(daemon.ctl_socket)
    holder.send(_import_frames(1, "HOLD", 100, done=False))  # about 4,000 bytes, then it waits

    refusals: list[dict[str, Any]] = []

    def refused() -> bool:  # until the holder's bytes are counted, another import may get through
        conn = RawConn(daemon.ctl_socket)
        conn.send(_import_frames(1, f"OTHER{len(refusals)}", 80, done=True))
        frame = conn.recv_for(1)
        conn.close()
        if "error" in frame:
            refusals.append(frame)
        return _reason(frame) == "IMPORTS_BUSY"

    wait_until(refused, 30, "an import refused while another holds the budget")
    error = refusals[-1]["error"]
    assert error["code"] == 8 and error["data"]["retryDelay"], error
    listed = daemon.ctl("ktrdr.daemon.v1.DataService/ListSeries", {"symbol": f"OTHER{len(refusals) - 1}"})
    assert listed["series"] == [], "a refused import wrote its series"

    holder.send(json.dumps({"id": 1, "done": True}).encode() + b"\n")
    assert holder.recv_for(1).get("result", {}).get("barsImported") == "100"
    holder.close()
    again = RawConn(daemon.ctl_socket)
    again.send(_import_frames(1, "AFTER", 80, done=True))
    assert again.recv_for(1).get("result", {}).get("barsImported") == "80"
    again.close()


def test_operations_pending_or_running_are_capped_and_a_retry_still_answers(
    daemon_factory: DaemonFactory,
) -> None:
    """A client starting operations in a loop grew the daemon without bound. With a cap of 2: a third
    start is RESOURCE_EXHAUSTED (TOO_MANY_OPERATIONS, a retry delay), a retried start (same request
    id) still returns its operation, and once one ends the next start goes through."""
    daemon = daemon_factory.start(args=("--max-active-operations", "2"))
    start, cancel = "ktrdr.test.v1/StartTicker", "ktrdr.daemon.v1.OperationsService/CancelOperation"
    long_run = {"steps": 100_000, "interval_s": 0.05}
    names = [
        daemon.ctl(start, {"params": long_run, "requestId": f"run-{n}"})["operation"]["name"]
        for n in range(2)
    ]
    conn = RawConn(daemon.ctl_socket)
    conn.call(1, start, {"params": long_run, "requestId": "run-2"})
    error = conn.recv_for(1)["error"]
    assert error["code"] == 8 and _reason({"error": error}) == "TOO_MANY_OPERATIONS", error
    assert error["data"]["retryDelay"], error
    conn.call(2, start, {"params": long_run, "requestId": "run-0"})
    assert conn.recv_for(2)["result"]["operation"]["name"] == names[0]
    conn.close()

    daemon.ctl(cancel, {"name": names[0]})
    wait = {"name": names[0], "timeout": "30s"}
    assert daemon.ctl("ktrdr.daemon.v1.OperationsService/WaitOperation", wait)["operation"]["done"]
    third = daemon.ctl(start, {"params": long_run, "requestId": "run-2"})["operation"]["name"]
    for name in (names[1], third):
        daemon.ctl(cancel, {"name": name})
