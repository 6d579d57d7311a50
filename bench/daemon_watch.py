"""Watch fan-out: W watchers each receive every event of one operation emitting ~100 events/s.

``python -m bench daemon_watch [--watchers W] [--seconds S] [--rate R] [--clients C]``

The real ``ktrdrd`` runs in its own process with the bench-only plugin ``bench.daemon_watch_emitter``
loaded through ``KTRDR_TEST_PLUGINS`` (the hook for test-only kinds; the product ships no kind that
emits on demand). Its kind ``bench.emitter`` waits until every watcher is attached, then sets progress
on a fixed schedule (one journaled progress event each) for ``--seconds``. Watchers use ctl
(``WatchOperation`` on ``ctl.sock``, one connection each, ``after_seq`` 0): that is the transport of
``ktrdrctl ops watch``. They are spread over C client processes (uvloop, raw protocol callbacks).

The clients share the machine with the daemon, so they must be cheap or they measure themselves:
per read chunk a watcher parses only the first and last event frame and checks the rest by count
(see :class:`_Watcher`), and gives every event of the chunk the first one's latency (an upper
bound for the others).

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
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._util import ROOT, percentile, running_daemon

TARGET_P99_MS = 50.0
PLUGIN = "bench.daemon_watch_emitter"
START = "ktrdr.bench.v1/StartEmitter"
GO = "ktrdr.bench.v1/Go"
WATCH = "ktrdr.daemon.v1.OperationsService/WatchOperation"
GET = "ktrdr.daemon.v1.OperationsService/GetOperation"
CONNECT_BATCH = 25


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


class _Watcher(asyncio.Protocol):
    """One watch stream, checked and timed per read chunk so that the client stays cheap.

    Per chunk of complete frames read at once: frames that are not events (the snapshot, ``done``,
    an error) are parsed in full; of the run of event frames between them only the FIRST and the
    LAST are parsed (seq, event time). The run is checked by counting: every frame in it must start
    as an event frame does, ``last.seq − first.seq + 1`` must equal the number of frames, and
    ``first.seq`` must follow the previous chunk's last seq. Every event of the run is given the
    FIRST event's latency (receipt − its time): the oldest event of a chunk waited longest, so this
    overstates the others' latency, never understates it.
    """

    def __init__(self, request: bytes, sent: array.array, recv: array.array, parse: _Seconds) -> None:
        self.request, self.sent, self.recv, self.parse = request, sent, recv, parse
        self.event_prefix = b'{"jsonrpc":"2.0","id":1,"result":{"event":'
        self.buffer = b""
        self.snapshot_at = 0.0
        self.last_seq = 0
        self.problems: list[str] = []
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        data = self.buffer + data
        end = data.rfind(b"\n") + 1
        self.buffer, chunk = data[end:], data[:end]
        prefix = self.event_prefix
        while chunk and not chunk.startswith(prefix):  # leading frames that are not events
            cut = chunk.index(b"\n") + 1
            self._frame(json.loads(chunk[:cut]), now)
            chunk = chunk[cut:]
        tail: list[bytes] = []
        while chunk:  # trailing frames that are not events
            start = chunk.rfind(b"\n", 0, len(chunk) - 1) + 1
            if chunk.startswith(prefix, start):
                break
            tail.append(chunk[start:])
            chunk = chunk[:start]
        if chunk:
            self._events(chunk, now)
        for frame in reversed(tail):
            self._frame(json.loads(frame), now)

    def _events(self, chunk: bytes, now: float) -> None:
        """A run of event frames (each ending with a newline): parse first and last, check by count."""
        count = chunk.count(b"\n")
        if chunk.count(self.event_prefix) != count:  # a frame of another kind inside the run
            for line in chunk.splitlines():
                self._frame(json.loads(line), now)
            return
        first = json.loads(chunk[: chunk.index(b"\n")])["result"]["event"]
        last = first if count == 1 else json.loads(chunk[chunk.rfind(b"\n", 0, -1) + 1 :])["result"]["event"]
        self._record(int(first["seq"]), int(last["seq"]), count, self.parse(first["time"]), now)

    def _record(self, first_seq: int, last_seq: int, count: int, first_time: float, now: float) -> None:
        if first_seq != self.last_seq + 1:
            self.problems.append(f"seq {first_seq} after {self.last_seq}")
        if last_seq - first_seq + 1 != count:
            self.problems.append(f"{count} frames carry seqs {first_seq}..{last_seq}")
        self.last_seq = last_seq
        self.sent.fromlist([first_time] * count)
        self.recv.fromlist([now] * count)

    def _frame(self, frame: dict[str, Any], now: float) -> None:
        """One fully parsed frame of any kind."""
        result = frame.get("result")
        if result is not None:
            event = result.get("event")
            if event is None:
                self.snapshot_at = now
            else:
                seq = int(event["seq"])
                self._record(seq, seq, 1, self.parse(event["time"]), now)
        elif frame.get("done"):
            self.transport.close()
            if not self.finished.done():
                self.finished.set_result(None)
        else:
            self.problems.append(f"error frame {frame.get('error')}")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.problems.append(f"connection lost before done ({exc})")
            self.finished.set_result(None)


async def _connect(loop: asyncio.AbstractEventLoop, watcher: _Watcher, sock: str) -> None:
    """Connect, retrying while the daemon's listen backlog is full (EAGAIN on a unix socket)."""
    for _ in range(500):
        try:
            await loop.create_unix_connection(lambda: watcher, sock)
            return
        except BlockingIOError:
            await asyncio.sleep(0.01)
    raise TimeoutError(f"cannot connect to {sock}: listen backlog stays full")


async def _client(sock: str, name: str, watchers: int, out: Path) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = (
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": WATCH, "params": {"name": name}}).encode() + b"\n"
    )
    sent, recv, parse = array.array("d"), array.array("d"), _Seconds()
    streams: list[_Watcher] = []
    for start in range(0, watchers, CONNECT_BATCH):
        batch = [
            _Watcher(request, sent, recv, parse) for _ in range(start, min(watchers, start + CONNECT_BATCH))
        ]
        await asyncio.gather(*(_connect(loop, w, sock) for w in batch))
        streams.extend(batch)
    while any(w.snapshot_at == 0.0 and not w.finished.done() for w in streams):
        await asyncio.sleep(0.005)
    print("attached", flush=True)
    await asyncio.gather(*(w.finished for w in streams))
    with open(out, "wb") as f:
        sent.tofile(f)
        recv.tofile(f)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "last_seqs": [w.last_seq for w in streams],
        "problems": [p for w in streams for p in w.problems][:20],
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def _client_main(argv: list[str]) -> int:
    import uvloop

    sock, name, watchers, out = argv[0], argv[1], int(argv[2]), Path(argv[3])
    print(json.dumps(uvloop.run(_client(sock, name, watchers, out))), flush=True)
    return 0


# ---- the run ----------------------------------------------------------------------------------------


def _ctl(sock: Path, method: str, params: dict[str, Any]) -> dict[str, Any]:
    import socket

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
        "operations/op_" + "a" * 26, 50, time.time(), "message", "RUNNING", "ticking", progress, "tick 50"
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
    parser.add_argument("--timeout", type=float, default=75.0, help="give up waiting for delivery after this")
    args = parser.parse_args(argv)

    costs, splice_us = _frame_cost_us()
    env = {"KTRDR_TEST_PLUGINS": PLUGIN, "PYTHONPATH": str(ROOT)}
    with (
        tempfile.TemporaryDirectory(prefix="ktrdr-bench-", dir="/tmp") as tmp_name,
        running_daemon(extra_env=env) as daemon,
    ):
        tmp = Path(tmp_name)
        ctl_sock = daemon.runtime_dir / "ctl.sock"
        name = _ctl(ctl_sock, START, {"params": {"rate": args.rate, "seconds": args.seconds}})["name"]
        t_start = time.time()
        per_client = [
            args.watchers // args.clients + (i < args.watchers % args.clients) for i in range(args.clients)
        ]
        outs = [tmp / f"client{i}.bin" for i in range(args.clients)]
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
                    str(out),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for k, out in zip(per_client, outs, strict=True)
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
                stdout, _ = proc.communicate(
                    timeout=max(1.0, t_go + args.seconds + args.timeout - time.time())
                )
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

    last_seq = int(final["lastSeq"])
    wall = t_end - t_go
    emitted = last_seq - 2  # minus the two stage events (armed, emitting) sent before Go
    achieved = emitted / args.seconds
    print(
        f"ktrdrd with the bench-only plugin {PLUGIN} (kind bench.emitter, loaded through KTRDR_TEST_PLUGINS); "
        f"watchers on ctl.sock"
    )
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
    if timed_out or len(summaries) != args.clients:
        print(
            f"  MISSED: clients still receiving {args.timeout:g} s after the operation should have ended; "
            "the daemon cannot deliver at this rate"
        )
    ready_at = t_go
    live = [r - s for s, r in zip(sent, recv, strict=True) if s >= ready_at]
    seqs = [seq for s in summaries for seq in s["last_seqs"]]
    complete = sum(1 for seq in seqs if seq == last_seq)
    problems = [p for s in summaries for p in s["problems"]]
    print(
        f"watchers: {args.watchers} over {args.clients} client processes; all attached {attached:.1f} s after start"
    )
    print(
        f"count check: {complete}/{args.watchers} watchers got every event 1..{last_seq} in order; "
        f"{len(sent)} of {args.watchers * last_seq} deliveries; problems: {problems[:3] or 'none'}"
    )
    if live:
        p50, p99, worst = (percentile(live, q) * 1e3 for q in (50, 99, 100))
        print(
            f"delivery latency of {len(live)} live deliveries (emitter stamp → client receipt): "
            f"p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {worst:.1f} ms   target p99 ≤ {TARGET_P99_MS:g} ms: "
            f"{'met' if p99 <= TARGET_P99_MS and complete == args.watchers and achieved >= 0.9 * args.rate else 'MISSED'}"
        )
    client_cpu = sum(s["cpu_s"] for s in summaries)
    print(
        f"CPU over {wall:.1f} s wall: ktrdrd {daemon_cpu:.1f} s ({daemon_cpu / wall:.0%} of a core), "
        f"clients {client_cpu:.1f} s; load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    per_event = sum(costs.values())
    print(
        f"frame cost, in-process: {per_event:.1f} µs once per event to build its frame body ("
        + ", ".join(f"{k} {v:.1f}" for k, v in costs.items())
        + f"), shared by all watchers; then {splice_us:.2f} µs per watcher per event to splice it into the"
        f" watcher's frame (× {args.watchers} × {args.rate:g} ev/s = "
        f"{splice_us * args.watchers * args.rate / 1e6:.3f} CPU-s per s) before the socket writes"
    )
    print(
        "client method: per read chunk, first and last event frame parsed, the frames between checked by"
        " count and seq continuity; every event of a chunk given the first one's (largest) latency"
    )
    return 0


def final_end(op: dict[str, Any]) -> float:
    """An Operation JSON's endTime in epoch seconds (nan while not done)."""
    return _Seconds()(op["endTime"]) if op.get("endTime") else float("nan")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
