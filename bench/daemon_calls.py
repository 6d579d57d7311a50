"""Per-call cost of the daemon's two front doors: ctl in-process, ctl over ctl.sock, gRPC over grpc.sock.

``python -m bench daemon_calls [-n N] [--inflight K] [--total T]``

1. ctl in-process (no socket): ``CtlServer.dispatch`` is handed one request line and returns the
   reply bytes — JSON parse, method lookup, params → proto, the
   service method, proto → JSON, encode. The servers are built in this process on temporary
   directories, on uvloop, like the daemon builds them. Target: p50 ≤ 0.3 ms.
2. Socket figures against the real ``ktrdrd`` in its own process (client and server do not share a
   GIL): ctl over one persistent ctl.sock connection (sequential, and K requests in flight), and
   gRPC unary over one persistent ``grpc.aio`` channel on grpc.sock (sequential p50/p99, and calls/s
   with K = 64 in flight). Target: gRPC ≥ 3,000 calls/s with 64 in flight.

The journal holds 20 finished operations; GetOperation asks for one of them, ListOperations lists
them all. Yardstick in the same run: a bare JSON echo on a unix socket served by a uvloop server in
a child process (the floor of any request/reply over a socket from Python).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._util import percentile, populate_journal, running_daemon, wait_for_path
from ktrdr import wire
from tests.support.ctl_dispatch import dispatch

TARGET_INPROC_P50_MS = 0.3
TARGET_GRPC_CALLS_S = 3000.0
N_OPERATIONS = 20
INFO = "ktrdr.daemon.v1.SystemService/GetInfo"
GET = "ktrdr.daemon.v1.OperationsService/GetOperation"
LIST = "ktrdr.daemon.v1.OperationsService/ListOperations"


def _row(label: str, samples_s: list[float], extra: str = "") -> str:
    p50, p99 = percentile(samples_s, 50) * 1e3, percentile(samples_s, 99) * 1e3
    return f"  {label:<44} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   {extra}"


# ---- 1. in-process ---------------------------------------------------------------------------------


async def _inprocess(db_dir: Path, names: list[str], n: int) -> dict[str, list[float]]:
    from ktrdrd.appstate import AppState
    from ktrdrd.operations import OperationsCore
    from ktrdrd.server import build_servers

    core = await OperationsCore.open(db_dir / wire.DB_NAME)
    await core.resume_pending()
    state = AppState(
        runtime_dir=db_dir,
        state_dir=db_dir,
        grpc_socket=db_dir / wire.GRPC_SOCKET,
        ctl_socket=db_dir / wire.CTL_SOCKET,
        db_path=db_dir / wire.DB_NAME,
        pid=os.getpid(),
    )
    servers = await build_servers(
        core=core, app_state=state, grpc_socket=state.grpc_socket, ctl_socket=state.ctl_socket
    )
    ctl_server = servers.ctl_server  # the ctl dispatcher without a socket (tests.support.ctl_dispatch)
    results: dict[str, list[float]] = {}
    try:
        for label, method, params in (
            ("GetInfo", INFO, {}),
            ("GetOperation", GET, {"name": names[len(names) // 2]}),
            (f"ListOperations ({len(names)} ops)", LIST, {}),
        ):
            samples = []
            for i in range(n + n // 10):
                line = json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
                t0 = time.perf_counter()
                frames = await dispatch(ctl_server, line)
                elapsed = time.perf_counter() - t0
                if i >= n // 10:  # the first tenth is warm-up
                    samples.append(elapsed)
            reply = json.loads(frames[-1])
            if "result" not in reply:
                raise RuntimeError(f"{method}: {reply}")
            results[label] = samples
    finally:
        await servers.grpc_server.stop(None)
        await core.close()
    return results


# ---- 2. sockets --------------------------------------------------------------------------------------


class _LineClient:
    """A blocking NDJSON client on one persistent unix-socket connection."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")
        self.next_id = 0

    def send(self, method: str, params: dict[str, Any]) -> None:
        self.next_id += 1
        frame = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.sock.sendall(json.dumps(frame).encode() + b"\n")

    def recv(self) -> dict[str, Any]:
        reply = json.loads(self.reader.readline())
        if "result" not in reply:
            raise RuntimeError(f"ctl error: {reply}")
        return reply

    def sequential(self, method: str, params: dict[str, Any], n: int) -> list[float]:
        for _ in range(n // 10):
            self.send(method, params)
            self.recv()
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.send(method, params)
            self.recv()
            samples.append(time.perf_counter() - t0)
        return samples

    def pipelined(self, method: str, params: dict[str, Any], total: int, inflight: int) -> float:
        """Calls/s with ``inflight`` requests outstanding on the one connection."""
        t0 = time.perf_counter()
        for _ in range(inflight):
            self.send(method, params)
        sent = inflight
        for _ in range(total):
            self.recv()
            if sent < total:
                self.send(method, params)
                sent += 1
        return total / (time.perf_counter() - t0)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


async def _grpc(target: str, name: str, n: int, total: int, inflight: int) -> dict[str, Any]:
    import grpc

    from ktrdr.daemon.v1 import operations_pb2, operations_pb2_grpc, system_pb2, system_pb2_grpc

    out: dict[str, Any] = {}
    async with grpc.aio.insecure_channel(target) as channel:
        system = system_pb2_grpc.SystemServiceStub(channel)
        ops = operations_pb2_grpc.OperationsServiceStub(channel)
        calls = {
            "GetInfo": (system.GetInfo, system_pb2.GetInfoRequest()),
            "GetOperation": (ops.GetOperation, operations_pb2.GetOperationRequest(name=name)),
        }
        for label, (rpc, request) in calls.items():
            for _ in range(n // 10):
                await rpc(request)
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                await rpc(request)
                samples.append(time.perf_counter() - t0)
            remaining = total

            async def worker(rpc: Any = rpc, request: Any = request) -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    await rpc(request)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(inflight)))
            out[label] = (samples, total / (time.perf_counter() - t0))
    return out


_ECHO_SERVER = """
import asyncio, sys, uvloop
async def handle(reader, writer):
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
async def main():
    await asyncio.start_unix_server(handle, path=sys.argv[1])
    await asyncio.Event().wait()
uvloop.run(main())
"""


_BARE_GRPC_SERVER = """
import asyncio, sys, grpc, uvloop
from pathlib import Path
from ktrdr.daemon.v1 import operations_pb2, system_pb2
OPERATION = operations_pb2.GetOperationResponse.FromString(Path(sys.argv[2]).read_bytes())
async def info(request, context):
    return system_pb2.GetInfoResponse(version="bare", pid=1)
async def operation(request, context):
    return OPERATION
def handler(fn, module, name):
    return grpc.unary_unary_rpc_method_handler(
        fn,
        request_deserializer=getattr(module, name + "Request").FromString,
        response_serializer=getattr(module, name + "Response").SerializeToString,
    )
async def main():
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler(
            "ktrdr.daemon.v1.SystemService", {"GetInfo": handler(info, system_pb2, "GetInfo")}),
        grpc.method_handlers_generic_handler(
            "ktrdr.daemon.v1.OperationsService",
            {"GetOperation": handler(operation, operations_pb2, "GetOperation")}),
    ])
    server.add_insecure_port("unix:" + sys.argv[1])
    await server.start()
    await server.wait_for_termination()
uvloop.run(main())
"""


def _grpc_sync(target: str, name: str, total: int, inflight: int) -> dict[str, float]:
    """Calls/s with ``inflight`` calls outstanding from a sync ``grpc`` channel (``.future()``), a
    second client type: its completion queue runs in C threads, not on an asyncio loop."""
    import grpc

    from ktrdr.daemon.v1 import operations_pb2, operations_pb2_grpc, system_pb2, system_pb2_grpc

    out: dict[str, float] = {}
    with grpc.insecure_channel(target) as channel:
        calls = {
            "GetInfo": (system_pb2_grpc.SystemServiceStub(channel).GetInfo, system_pb2.GetInfoRequest()),
            "GetOperation": (
                operations_pb2_grpc.OperationsServiceStub(channel).GetOperation,
                operations_pb2.GetOperationRequest(name=name),
            ),
        }
        for label, (rpc, request) in calls.items():
            for _ in range(200):
                rpc(request)
            t0 = time.perf_counter()
            pending = collections.deque(rpc.future(request) for _ in range(inflight))
            sent = inflight
            while pending:
                pending.popleft().result()
                if sent < total:
                    pending.append(rpc.future(request))
                    sent += 1
            out[label] = total / (time.perf_counter() - t0)
    return out


def _operation_bytes(target: str, name: str) -> bytes:
    """The daemon's serialized GetOperationResponse for ``name``."""
    import grpc

    from ktrdr.daemon.v1 import operations_pb2, operations_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = operations_pb2_grpc.OperationsServiceStub(channel)
        return stub.GetOperation(operations_pb2.GetOperationRequest(name=name)).SerializeToString()


def _bare_grpc(
    tmp: Path, daemon_target: str, name: str, n: int, total: int, inflight: int
) -> tuple[dict[str, Any], dict[str, float]]:
    """A bare ``grpc.aio`` server (uvloop; GetInfo returns a small fixed GetInfoResponse, GetOperation
    a fixed, pre-built copy of the daemon's own answer for ``name``, so of the same size) in a child
    process, driven exactly like the daemon: the floor our per-call overhead is measured against.
    The aio client's figures and the sync client's calls/s."""
    import uvloop

    path, answer = tmp / "bare-grpc.sock", tmp / "operation.bin"
    answer.write_bytes(_operation_bytes(daemon_target, name))
    proc = subprocess.Popen([sys.executable, "-c", _BARE_GRPC_SERVER, str(path), str(answer)])
    try:
        wait_for_path(path)
        target = f"unix:{path}"
        return uvloop.run(_grpc(target, name, n, total, inflight)), _grpc_sync(target, name, total, inflight)
    finally:
        proc.terminate()
        proc.wait(10)


def _echo_floor(tmp: Path, n: int) -> list[float]:
    """Sequential round trips of a GetInfo-sized request to a bare uvloop echo server (child process)."""
    path = tmp / "echo.sock"
    proc = subprocess.Popen([sys.executable, "-c", _ECHO_SERVER, str(path)])
    try:
        wait_for_path(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(path))
        reader = sock.makefile("rb")
        line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": INFO, "params": {}}).encode() + b"\n"
        samples = []
        for i in range(n + n // 10):
            t0 = time.perf_counter()
            sock.sendall(line)
            json.loads(reader.readline())
            if i >= n // 10:
                samples.append(time.perf_counter() - t0)
        reader.close()
        sock.close()
        return samples
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench daemon_calls", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("-n", type=int, default=3000, help="sequential calls per figure (default 3000)")
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--total", type=int, default=10000, help="calls per in-flight figure (default 10000)")
    args = parser.parse_args(argv)

    import uvloop

    with tempfile.TemporaryDirectory(prefix="ktrdr-bench-", dir="/tmp") as tmp_name:
        tmp = Path(tmp_name)
        state_dir = tmp / "state"
        state_dir.mkdir(mode=0o750)
        names = asyncio.run(populate_journal(state_dir / wire.DB_NAME, N_OPERATIONS))

        inproc_dir = tmp / "inproc"
        inproc_dir.mkdir()
        (inproc_dir / wire.DB_NAME).write_bytes((state_dir / wire.DB_NAME).read_bytes())
        inproc = uvloop.run(_inprocess(inproc_dir, names, args.n))
        print(f"1. ctl dispatcher in-process (no socket; request line → reply bytes), uvloop, n={args.n}")
        for label, samples in inproc.items():
            print(_row(label, samples))
        p50_ms = percentile(inproc["GetInfo"], 50) * 1e3
        print(
            f"  target p50 ≤ {TARGET_INPROC_P50_MS} ms (GetInfo): {'met' if p50_ms <= TARGET_INPROC_P50_MS else 'MISSED'}"
        )

        floor = _echo_floor(tmp, args.n)
        with running_daemon(state_dir=state_dir) as daemon:
            client = _LineClient(daemon.runtime_dir / wire.CTL_SOCKET)
            print(f"\n2. ctl over one persistent ctl.sock connection, ktrdrd in its own process, n={args.n}")
            print(_row("yardstick: bare uvloop JSON echo (child proc)", floor))
            get_params = {"name": names[len(names) // 2]}
            for label, method, params in (("GetInfo", INFO, {}), ("GetOperation", GET, get_params)):
                samples = client.sequential(method, params, args.n)
                rate = client.pipelined(method, params, args.total, args.inflight)
                ratio = percentile(samples, 50) / percentile(floor, 50)
                print(
                    _row(
                        label,
                        samples,
                        f"{rate:7.0f} calls/s with {args.inflight} in flight; p50 {ratio:.1f}× echo",
                    )
                )
            client.close()

            target = f"unix:{daemon.runtime_dir / wire.GRPC_SOCKET}"
            name = get_params["name"]
            ours = uvloop.run(_grpc(target, name, args.n, args.total, args.inflight))
            ours_sync = _grpc_sync(target, name, args.total, args.inflight)
            bare, bare_sync = _bare_grpc(tmp, target, name, args.n, args.total, args.inflight)
            print(
                f"\n3. gRPC unary over grpc.sock, one persistent channel, n={args.n}; calls/s with"
                f" {args.inflight} in flight from a grpc.aio client (uvloop) and from a sync grpc client"
                " (.future()); yardstick: a bare grpc.aio server (child proc) answering the same method with"
                " a fixed response of the same size"
            )
            worst = float("inf")
            for label in ours:
                (b_samples, b_rate), (samples, rate) = bare[label], ours[label]
                print(
                    _row(f"bare {label}", b_samples, f"aio {b_rate:6.0f}/s   sync {bare_sync[label]:6.0f}/s")
                )
                print(
                    _row(
                        f"ktrdrd {label}",
                        samples,
                        f"aio {rate:6.0f}/s ({rate / b_rate:.2f}× bare)   sync {ours_sync[label]:6.0f}/s"
                        f" ({ours_sync[label] / bare_sync[label]:.2f}× bare)",
                    )
                )
                worst = min(worst, max(rate, ours_sync[label]))
            hit = worst >= TARGET_GRPC_CALLS_S
            print(
                f"  target ≥ {TARGET_GRPC_CALLS_S:g} calls/s with 64 in flight (better client per method):"
                f" {'met' if hit else 'MISSED'} (lowest {worst:.0f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
