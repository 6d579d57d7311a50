"""Watch fan-out: W watchers each receive every event of one operation emitting ~100 events/s.

``python -m bench daemon_watch [--watchers W] [--seconds S] [--rate R] [--clients C] [--muxed-connections M]``

The real ``ktrdrd`` runs in its own process (through the test launcher ``tests.support.testd``) with
the bench-only extension ``bench.daemon_watch_emitter`` (the product ships no kind that emits on
demand). Its kind ``bench.emitter`` waits until every watcher is attached, then sets progress
on a fixed schedule (one journaled progress event each) for ``--seconds``. Watchers use ctl
(``WatchOperation`` on ``ctl.sock``, ``after_seq`` 0): the transport of ``ktrdrctl ops watch``.
Two runs, one operation each, reported in this order:

1. one connection per watcher (W connections);
2. the same W Watch calls multiplexed over M connections (W/M concurrent calls per connection, ids
   1..W/M): how a dashboard would watch many operations, as a gRPC client multiplexes its streams
   over one HTTP/2 channel.

Watchers are spread over C client processes, each a uvloop event loop with one protocol per
connection (the C loop does the polling and reading). The clients share the machine with the daemon, so they must be cheap or they
measure themselves: per read chunk (``recv`` of up to 256 KiB) and call, a client parses only the
first and last event frame and checks the rest by form and count (see :class:`_Connection`), and
gives every event of the chunk the first one's latency (an upper bound for the others).

Delivery latency = receipt time (client, ``time.time()``) − the event's ``time`` (stamped by the
daemon when the event was created, before the journal commit), for events emitted after Go.
Count check: every watcher must see seq 1..last exactly once, in order, then ``done``. Target:
p99 ≤ 50 ms. Also printed: the daemon's and the clients' CPU over the run, and the in-process
cost of an event's frame: built once per event and shared, then spliced once per watcher.

``KTRDR_BENCH_PROFILE=FILE`` (in this command's environment) makes the daemon write a cProfile of
its whole run to FILE (through the emitter plugin; for finding where the daemon's time goes).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import calendar
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from bench._util import ROOT, percentile, running_daemon
from ktrdr import wire

TARGET_P99_MS = 50.0
PLUGIN = "bench.daemon_watch_emitter"
START = "ktrdr.bench.v1/StartEmitter"
GO = "ktrdr.bench.v1/Go"
WATCH = "ktrdr.daemon.v1.OperationsService/WatchOperation"
GET = "ktrdr.daemon.v1.OperationsService/GetOperation"
RECV_BYTES = 256 * 1024
_ID_AT = len(b'{"jsonrpc":"2.0","id":')  # where a frame's call id starts
_EVENT_AFTER_ID = b',"result":{"event":'  # what follows the id in an event frame
# An event's seq and time, adjacent in canonical proto3 JSON (OperationEvent fields 2 and 3, emitted
# in field-number order): read without decoding the whole frame; a frame where this does not match is
# decoded in full.
_SEQ_TIME = re.compile(rb'"seq":"(\d+)","time":"([^"]+)"')


# ---- client process ------------------------------------------------------------------------------


class _Seconds:
    """proto3 JSON Timestamp ("2026-11-28T11:23:14.345123Z") → epoch seconds, cached per second."""

    def __init__(self) -> None:
        self._base: dict[str, int] = {}

    def __call__(self, text: str) -> float:
        whole, _, frac = text.rstrip("Z").partition(".")
        base = self._base.get(whole)
        if base is None:
            base = self._base[whole] = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return base + (float("0." + frac) if frac else 0.0)


class _Stream:
    """One Watch call: its seq cursor, whether its snapshot and ``done`` came, what went wrong."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.attached = False
        self.finished = False
        self.problems: list[str] = []


class _Connection:
    """One ctl connection carrying one or more Watch calls (ids 1..k), fed the bytes as they arrive.

    Per chunk read, the complete frames (newline-ended; a partial last line waits for the next read)
    are split into lines and told apart by call id. Frames that are not events (the snapshot,
    ``done``, an error) are parsed in full. Of each call's run of event frames in the chunk only the
    FIRST and the LAST are parsed (seq, event time); the rest are checked by form (each must start as
    an event frame of that call does) and by count (``last.seq − first.seq + 1`` frames, ``first.seq``
    right after the call's previous seq). Every event of a run is given the FIRST one's latency
    (receipt − its time): the oldest event of a chunk waited longest, so this overstates the others'
    latency, never understates it.
    """

    def __init__(self, calls: int, sink: _Sink) -> None:
        self.sink = sink
        self.rest = b""
        self.streams = {str(i).encode(): _Stream() for i in range(1, calls + 1)}
        self.open = calls

    def feed(self, data: bytes, now: float) -> None:
        data = self.rest + data
        end = data.rfind(b"\n") + 1
        self.rest = data[end:]
        runs: dict[bytes, list[Any]] = {}  # call id → [first line, last line, count]
        for line in data[:end].split(b"\n")[:-1]:
            cut = line.find(b",", _ID_AT)
            call_id = line[_ID_AT:cut]
            if line.startswith(_EVENT_AFTER_ID, cut):
                run = runs.get(call_id)
                if run is None:
                    runs[call_id] = [line, line, 1]
                else:
                    run[1] = line
                    run[2] += 1
                continue
            run = runs.pop(call_id, None)
            if run is not None:
                self._events(call_id, run, now)
            self._frame(json.loads(line), now)
        for call_id, run in runs.items():
            self._events(call_id, run, now)

    def _events(self, call_id: bytes, run: list[Any], now: float) -> None:
        first_line, last_line, count = run
        first_seq, first_time = _seq_time(first_line)
        last_seq = first_seq if count == 1 else _seq_time(last_line)[0]
        self._record(self.streams[call_id], first_seq, last_seq, count, first_time, now)

    def _record(
        self, stream: _Stream, first_seq: int, last_seq: int, count: int, first_time: str, now: float
    ) -> None:
        if first_seq != stream.last_seq + 1:
            stream.problems.append(f"seq {first_seq} after {stream.last_seq}")
        if last_seq - first_seq + 1 != count:
            stream.problems.append(f"{count} frames carry seqs {first_seq}..{last_seq}")
        stream.last_seq = last_seq
        self.sink.add(self.sink.parse(first_time), now, count)

    def _frame(self, frame: dict[str, Any], now: float) -> None:
        """One fully parsed frame of any kind."""
        stream = self.streams.get(str(frame.get("id")).encode())
        if stream is None:
            raise RuntimeError(f"a frame for no call of this connection: {frame}")
        result = frame.get("result")
        if result is not None:
            event = result.get("event")
            if event is None:
                stream.attached = True
            else:
                seq = int(event["seq"])
                self._record(stream, seq, seq, 1, event["time"], now)
        elif frame.get("done"):
            stream.finished = True
            self.open -= 1
        else:
            stream.problems.append(f"error frame {frame.get('error')}")
            stream.finished = True
            self.open -= 1

    def lost(self) -> None:
        for stream in self.streams.values():
            if not stream.finished:
                stream.problems.append("connection closed before done")
                stream.finished = True
        self.open = 0


def _seq_time(line: bytes) -> tuple[int, str]:
    """An event frame's (seq, event time)."""
    m = _SEQ_TIME.search(line)
    if m is not None:
        return int(m[1]), m[2].decode()
    event = json.loads(line)["result"]["event"]
    return int(event["seq"]), event["time"]


class _Sink:
    """Every delivery's (event time, receipt time), as two arrays of doubles."""

    def __init__(self) -> None:
        self.sent, self.recv, self.parse = array.array("d"), array.array("d"), _Seconds()

    def add(self, sent: float, recv: float, count: int) -> None:
        self.sent.fromlist([sent] * count)
        self.recv.fromlist([recv] * count)


class _Reader(asyncio.Protocol):
    """Feeds one connection's bytes to its :class:`_Connection`; ``idle`` is set once every
    connection of the process is done."""

    def __init__(self, conn: _Connection, live: set[_Connection], idle: asyncio.Event) -> None:
        self.conn, self.live, self.idle = conn, live, idle

    def data_received(self, data: bytes) -> None:
        self.conn.feed(data, time.time())
        self._check()

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.lost()
        self._check()

    def _check(self) -> None:
        if self.conn.open == 0 and self.conn in self.live:
            self.live.discard(self.conn)
            if not self.live:
                self.idle.set()


async def _watch_all(path: str, name: str, watchers: int, connections: int, sink: _Sink) -> list[_Stream]:
    loop = asyncio.get_running_loop()
    per_conn = [watchers // connections + (i < watchers % connections) for i in range(connections)]
    idle = asyncio.Event()
    live: set[_Connection] = set()
    for calls in per_conn:
        conn = _Connection(calls, sink)
        live.add(conn)
        for attempt in range(500):  # the daemon's listen backlog may be full for a moment
            try:
                transport, _ = await loop.create_unix_connection(lambda c=conn: _Reader(c, live, idle), path)
                break
            except (BlockingIOError, ConnectionRefusedError):
                if attempt == 499:
                    raise
                await asyncio.sleep(0.01)
        transport.write(
            b"".join(
                json.dumps({"jsonrpc": "2.0", "id": i, "method": WATCH, "params": {"name": name}}).encode()
                + b"\n"
                for i in range(1, calls + 1)
            )
        )
    streams = [s for c in live for s in c.streams.values()]
    while not all(s.attached or s.finished for s in streams):
        await asyncio.sleep(0.005)
    print("attached", flush=True)
    await idle.wait()
    return streams


def _client(path: str, name: str, watchers: int, connections: int, out: Path) -> dict[str, Any]:
    """Run ``watchers`` Watch calls spread over ``connections`` connections until every one is done."""
    sink = _Sink()
    streams = uvloop.run(_watch_all(path, name, watchers, connections, sink))
    with open(out, "wb") as f:
        sink.sent.tofile(f)
        sink.recv.tofile(f)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "last_seqs": [s.last_seq for s in streams],
        "problems": [p for s in streams for p in s.problems][:20],
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def _client_main(argv: list[str]) -> int:
    path, name, watchers, connections, out = argv[0], argv[1], int(argv[2]), int(argv[3]), Path(argv[4])
    print(json.dumps(_client(path, name, watchers, connections, out)), flush=True)
    return 0


# ---- the run ----------------------------------------------------------------------------------------


def _ctl(sock: Path, method: str, params: dict[str, Any]) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sock))
        s.sendall(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode() + b"\n"
        )
        with s.makefile("rb") as reader:
            frame = json.loads(reader.readline())
    if "result" not in frame:
        raise RuntimeError(f"{method}: {frame}")
    return frame["result"]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _frame_cost_us(n: int = 3000) -> tuple[dict[str, float], float]:
    """In-process µs to build one event's ctl frame body, step by step (paid once per event: the
    body is shared by every watcher), and to splice it into one watcher's frame (paid per watcher)."""
    from ktrdr.daemon.v1 import operations_pb2 as pb
    from ktrdr.wire import EventType, OperationState
    from ktrdrd.ctl.protocol import dumps, result_prefix, splice_result, to_json
    from ktrdrd.journal.records import EventRecord
    from ktrdrd.services.convert import event_to_proto

    progress = {
        "fraction": 0.5,
        "message": "step 50/100",
        "current": 50,
        "total": 100,
        "eta_s": None,
        "metrics": {},
    }
    event = EventRecord(
        operation="operations/op_" + "a" * 26,
        seq=50,
        time=time.time(),
        type=EventType.MESSAGE,
        state=OperationState.RUNNING,
        stage="ticking",
        progress=progress,
        message="tick 50",
    )
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    for _ in range(n):
        response = pb.WatchOperationResponse(event=event_to_proto(event))
    steps["EventRecord → proto"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        body = to_json(response)
    steps["proto → dict (MessageToDict)"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        data = dumps(body)
    steps["dict → bytes (json.dumps)"] = (time.perf_counter() - t0) / n * 1e6
    prefix = result_prefix(7)
    t0 = time.perf_counter()
    for _ in range(n):
        splice_result(prefix, data)
    return steps, (time.perf_counter() - t0) / n * 1e6


def _run(daemon: Any, tmp: Path, args: argparse.Namespace, connections: int) -> dict[str, Any]:
    """One operation watched by ``args.watchers`` Watch calls over ``connections`` connections in
    total, spread over ``args.clients`` client processes; what was measured."""
    ctl_sock = daemon.runtime_dir / wire.CTL_SOCKET
    name = _ctl(ctl_sock, START, {"params": {"rate": args.rate, "seconds": args.seconds}})["name"]
    t_start = time.time()
    split = [(i, args.clients) for i in range(args.clients)]
    per_client = [(args.watchers * (i + 1) // n - args.watchers * i // n) for i, n in split]
    conns = [(connections * (i + 1) // n - connections * i // n) for i, n in split]
    outs = [tmp / f"client{connections}-{i}.bin" for i in range(args.clients)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.daemon_watch",
                "--client",
                str(ctl_sock),
                name,
                str(k),
                str(c),
                str(out),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k, c, out in zip(per_client, conns, outs, strict=True)
    ]
    for proc in procs:  # each client prints one line once all its watchers have their snapshot
        if proc.stdout is None or not proc.stdout.readline():
            raise RuntimeError("a watch client died before attaching; see its stderr above")
    attached = time.time() - t_start
    cpu0 = _cpu_s(daemon.proc.pid)
    t_go = time.time()
    _ctl(ctl_sock, GO, {"name": name})
    summaries, timed_out = [], False
    for proc in procs:
        try:
            stdout, _ = proc.communicate(timeout=max(1.0, t_go + args.seconds + args.timeout - time.time()))
            summaries.append(json.loads(stdout))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            timed_out = True
    t_end = time.time()
    daemon_cpu = _cpu_s(daemon.proc.pid) - cpu0
    final = _ctl(ctl_sock, GET, {"name": name})["operation"]
    sent, recv = array.array("d"), array.array("d")
    for out in outs:
        if out.exists():
            data = array.array("d")
            data.frombytes(out.read_bytes())
            half = len(data) // 2
            sent.extend(data[:half])
            recv.extend(data[half:])
    return {
        "connections": connections,
        "final": final,
        "t_go": t_go,
        "wall": t_end - t_go,
        "attached": attached,
        "timed_out": timed_out or len(summaries) != args.clients,
        "summaries": summaries,
        "daemon_cpu": daemon_cpu,
        "live": [r - s for s, r in zip(sent, recv, strict=True) if s >= t_go],
        "deliveries": len(sent),
    }


def _report(run: dict[str, Any], args: argparse.Namespace) -> None:
    final, t_go, connections = run["final"], run["t_go"], run["connections"]
    last_seq = int(final["lastSeq"])
    emitted = last_seq - 2  # minus the two stage events (armed, emitting) sent before Go
    achieved = emitted / args.seconds
    layout = (
        "one ctl connection per watcher"
        if connections == args.watchers
        else f"{connections} ctl connections, {args.watchers // connections} concurrent Watch calls each"
    )
    print(f"\n== {args.watchers} watchers, {layout}, over {args.clients} client processes")
    print(
        f"operation: {emitted} events after Go in {args.seconds:g} s = {achieved:.0f} events/s (aimed at "
        f"{args.rate:g}: {'reached' if achieved >= 0.9 * args.rate else 'NOT reached'}); last seq {last_seq}, "
        f"{final['state']}, operation ended {final_end(final) - t_go:.1f} s after Go"
    )
    late = final.get("result", {}).get("value", {}).get("lateMs")
    if late:
        print(
            f"emitter steps late against their schedule (the loop's responsiveness): p50 {late['p50']:.1f} ms"
            f"  p99 {late['p99']:.1f} ms  max {late['max']:.1f} ms"
        )
    if run["timed_out"]:
        print(
            f"  MISSED: clients still receiving {args.timeout:g} s after the operation should have ended; "
            "the daemon cannot deliver at this rate"
        )
    summaries = run["summaries"]
    seqs = [seq for s in summaries for seq in s["last_seqs"]]
    complete = sum(1 for seq in seqs if seq == last_seq)
    problems = [p for s in summaries for p in s["problems"]]
    print(f"watchers: all attached {run['attached']:.1f} s after start")
    print(
        f"count check: {complete}/{args.watchers} watchers got every event 1..{last_seq} in order; "
        f"{run['deliveries']} of {args.watchers * last_seq} deliveries; problems: {problems[:3] or 'none'}"
    )
    live = run["live"]
    if live:
        p50, p99, worst = (percentile(live, q) * 1e3 for q in (50, 99, 100))
        met = p99 <= TARGET_P99_MS and complete == args.watchers and achieved >= 0.9 * args.rate
        print(
            f"delivery latency of {len(live)} live deliveries (emitter stamp → client receipt): "
            f"p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {worst:.1f} ms   target p99 ≤ {TARGET_P99_MS:g} ms: "
            f"{'met' if met else 'MISSED'}"
        )
    wall, daemon_cpu = run["wall"], run["daemon_cpu"]
    client_cpu = sum(s["cpu_s"] for s in summaries)
    per_delivery = daemon_cpu / run["deliveries"] * 1e6 if run["deliveries"] else float("nan")
    print(
        f"CPU over {wall:.1f} s wall: ktrdrd {daemon_cpu:.1f} s ({daemon_cpu / wall:.0%} of a core, "
        f"{per_delivery:.1f} µs per delivery), clients {client_cpu:.1f} s; "
        f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--client":
        return _client_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m bench daemon_watch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=6.0, help="emission time after watchers attach")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s the emitter aims at")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument(
        "--muxed-connections",
        type=int,
        default=20,
        help="connections of the second run, carrying all watchers between them (0: skip it)",
    )
    parser.add_argument("--timeout", type=float, default=75.0, help="give up waiting for delivery after this")
    args = parser.parse_args(argv)
    layouts = [args.watchers] + ([args.muxed_connections] if args.muxed_connections > 0 else [])
    if any(c < args.clients or c > args.watchers for c in layouts):
        parser.error("connections must be between --clients and --watchers")

    costs, splice_us = _frame_cost_us()
    env = {"KTRDR_TEST_PLUGINS": PLUGIN, "PYTHONPATH": str(ROOT)}
    with (
        tempfile.TemporaryDirectory(prefix="ktrdr-bench-", dir="/tmp") as tmp_name,
        running_daemon(extra_env=env) as daemon,
    ):
        runs = [_run(daemon, Path(tmp_name), args, connections) for connections in layouts]
    print(
        f"ktrdrd with the bench-only plugin {PLUGIN} (kind bench.emitter, through the test launcher); "
        f"watchers on ctl.sock; one operation per run"
    )
    for run in runs:
        _report(run, args)
    per_event = sum(costs.values())
    print(
        f"\nframe cost, in-process: {per_event:.1f} µs once per event to build its frame body ("
        + ", ".join(f"{k} {v:.1f}" for k, v in costs.items())
        + f"), shared by all watchers; then {splice_us:.2f} µs per watcher per event to splice it into the"
        f" watcher's frame (× {args.watchers} × {args.rate:g} ev/s = "
        f"{splice_us * args.watchers * args.rate / 1e6:.3f} CPU-s per s) before the socket writes"
    )
    print(
        "client method: uvloop protocols; per read chunk and call, first and last event frame parsed,"
        " the frames between checked by form, count and seq continuity; every event of a chunk given the"
        " first one's (largest) latency"
    )
    return 0


def final_end(op: dict[str, Any]) -> float:
    """An Operation JSON's endTime in epoch seconds (nan while not done)."""
    return _Seconds()(op["endTime"]) if op.get("endTime") else float("nan")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
