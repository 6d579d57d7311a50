"""Another client's ``ktrdrctl status`` while one client floods ctl.sock and 1,000 idle connections are open.

``python -m bench daemon_hostile [-n N] [--idle C] [--requests R]``

The real ``ktrdrd`` (default limits; shutdown grace 2 s) runs in its own process with the soft
RLIMIT_NOFILE this command inherited: on a machine with the usual 1024 the daemon has to raise its
own limit to hold C connections. This process raises its own soft limit only after the daemon started.

1. quiet: n runs of the real ``ktrdrctl status`` (a whole process, spawn → reap, this tree's
   ``ktrdrctl``) after 3 warm-ups.
2. hostile: C idle connections are opened (then the last one is asked for GetInfo, so every one
   before it was accepted), then one client pipelines R GetInfo requests in big writes and reads
   none: it writes until the daemon stops taking bytes (nothing taken for 2 s) or all are sent.
   Then n runs of ``ktrdrctl status`` again, the flooder and the idle connections still open.

Printed: p50/p99 of both phases and the p99 ratio (target ≤ 3×); the daemon's RSS growth, the peak
during phase 2 (sampled every 10 ms) minus the RSS after phase 1 (target ≤ 64 MiB); the flood's
bytes sent (of the bytes it had); failed status runs; SIGTERM → exit with the flooder still
connected. Bounded: each phase stops after n runs or 60 s, the flood after 10 writes; unix sockets only.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench._util import ROOT, percentile, rss_mib, running_daemon
from ktrdr import wire

TARGET_P99_RATIO = 3.0
TARGET_RSS_GROWTH_MIB = 64.0
GRACE_S = 2.0
PHASE_BUDGET_S = 60.0
STALL_S = 2.0
WARMUP = 3
INFO = "ktrdr.daemon.v1.SystemService/GetInfo"


def _status_runs(env: dict[str, str], n: int) -> tuple[list[float], int]:
    """Wall seconds of up to ``n`` successful ``ktrdrctl status`` runs (within the phase budget),
    and the number of runs that failed (non-zero exit)."""
    argv = [sys.executable, "-m", "ktrdrctl", "status"]
    samples: list[float] = []
    failed = 0
    deadline = time.monotonic() + PHASE_BUDGET_S
    while len(samples) < n and time.monotonic() < deadline:
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - t0
        if proc.returncode == 0:
            samples.append(elapsed)
        else:
            failed += 1
    return samples, failed


def _connect(path: Path, timeout_s: float = 20.0) -> socket.socket:
    """A connection to ``path``, waiting while the listen backlog is full (EAGAIN)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sock.connect(str(path))
            return sock
        except BlockingIOError:
            if time.monotonic() > deadline:
                sock.close()
                raise TimeoutError(f"{path}: listen backlog full for {timeout_s} s") from None
            time.sleep(0.01)


def _request(call_id: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": call_id, "method": INFO, "params": {}}).encode() + b"\n"


def _probe(sock: socket.socket) -> None:
    """One GetInfo on ``sock``, its reply read."""
    sock.sendall(_request(0))
    with sock.makefile("rb") as reader:
        if "result" not in json.loads(reader.readline()):
            raise RuntimeError("GetInfo on an idle connection failed")


def _flood(sock: socket.socket, requests: int) -> tuple[int, int]:
    """Write ``requests`` GetInfo requests in 10 big writes, never reading, until the daemon stops
    taking bytes for :data:`STALL_S`; (bytes sent, bytes there were)."""
    per_write = max(1, requests // 10)
    chunks = [
        b"".join(_request(i) for i in range(s, min(s + per_write, requests)))
        for s in range(0, requests, per_write)
    ]
    sock.setblocking(False)
    sent = 0
    for chunk in chunks:
        view, offset = memoryview(chunk), 0
        while offset < len(view):
            if not select.select([], [sock], [], STALL_S)[1]:
                return sent + offset, sum(map(len, chunks))
            with contextlib.suppress(BlockingIOError):
                offset += sock.send(view[offset : offset + (1 << 20)])
        sent += offset
    return sent, sum(map(len, chunks))


class _RssPeak(threading.Thread):
    """Samples a process's RSS every 10 ms until stopped; ``peak`` in MiB."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_mib(pid)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.01):
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_mib(self.pid))


def _row(label: str, samples: list[float], failed: int) -> str:
    p50, p99 = percentile(samples, 50) * 1e3, percentile(samples, 99) * 1e3
    return f"  {label:<40} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   n={len(samples)} failed={failed}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench daemon_hostile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("-n", type=int, default=40, help="ktrdrctl status runs per phase (default 40)")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections (default 1000)")
    parser.add_argument("--requests", type=int, default=100_000, help="requests the flooder pipelines")
    args = parser.parse_args(argv)

    compileall.compile_dir(ROOT / "ktrdrctl", quiet=1)  # as installed: no per-run compile
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with running_daemon(extra_env={"KTRDR_SHUTDOWN_GRACE_S": str(GRACE_S)}) as daemon:
        ctl_socket = daemon.runtime_dir / wire.CTL_SOCKET
        env = daemon.env
        print(f"ktrdrd pid {daemon.proc.pid}, soft RLIMIT_NOFILE inherited {soft} (hard {hard})")
        _status_runs(env, WARMUP)
        quiet, quiet_failed = _status_runs(env, args.n)
        rss_before = rss_mib(daemon.proc.pid)

        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 256)), hard))
        idle: list[socket.socket] = []
        sampler = _RssPeak(daemon.proc.pid)
        sampler.start()
        try:
            with contextlib.suppress(OSError):
                while len(idle) < args.idle:
                    idle.append(_connect(ctl_socket))
                _probe(idle[-1])
            flooder = _connect(ctl_socket)
            sent, total = _flood(flooder, args.requests)
            hostile, hostile_failed = _status_runs(env, args.n)
            sampler.halt.set()
            sampler.join()

            t0 = time.perf_counter()
            daemon.proc.send_signal(signal.SIGTERM)
            try:
                code: int | str = daemon.proc.wait(timeout=GRACE_S + 15)
            except subprocess.TimeoutExpired:
                code = "still running"
            stop_s = time.perf_counter() - t0
            flooder.close()
        finally:
            sampler.halt.set()
            for sock in idle:
                sock.close()

    print(f"1. quiet: `ktrdrctl status`, n={args.n} (after {WARMUP} warm-ups)")
    print(_row("quiet", quiet, quiet_failed))
    print(
        f"2. one client flooding ({args.requests} GetInfo pipelined, never read) + {len(idle)} idle connections"
    )
    print(_row("hostile", hostile, hostile_failed))
    ratio = percentile(hostile, 99) / percentile(quiet, 99)
    growth = sampler.peak - rss_before
    stopped = (
        "then it stopped reading the flooder" if sent < total else "all of them: it never stopped reading"
    )
    print(f"  flood: the daemon took {sent:,} of {total:,} bytes, {stopped}")
    print(
        f"  p99 hostile / quiet: {ratio:.2f}× (target ≤ {TARGET_P99_RATIO:g}×):"
        f" {'met' if ratio <= TARGET_P99_RATIO and not hostile_failed else 'MISSED'}"
    )
    print(
        f"  daemon RSS growth: {growth:.1f} MiB ({rss_before:.1f} → peak {sampler.peak:.1f})"
        f" (target ≤ {TARGET_RSS_GROWTH_MIB:g} MiB): {'met' if growth <= TARGET_RSS_GROWTH_MIB else 'MISSED'}"
    )
    print(f"  SIGTERM → exit with the flooder connected: {stop_s:.2f} s, exit {code} (grace {GRACE_S:g} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
