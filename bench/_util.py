"""Helpers shared by the benchmarks: timing of whole commands, percentiles, a temporary daemon."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktrdr import wire

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank on sorted values."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def time_command(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds from spawn to reap; output discarded; raises if the command fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return elapsed


def median(values: list[float]) -> float:
    return statistics.median(values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_path(path: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout_s} s")
        time.sleep(0.02)


def rss_mib(pid: int) -> float:
    """Resident set size of a process in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Daemon:
    proc: subprocess.Popen
    runtime_dir: Path
    state_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KTRDR_RUNTIME_DIR": str(self.runtime_dir)}


@contextlib.contextmanager
def running_daemon(
    state_dir: Path | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[Daemon]:
    """Start ``ktrdrd`` on temporary directories; SIGTERM it on exit.

    With ``KTRDR_TEST_PLUGINS`` in ``extra_env`` the daemon is started through the test launcher
    (tests/support/testd.py), which loads those extensions; otherwise it is the product's ktrdrd.
    It starts no embedded hosts (their start-up would load the machine during the measurements)
    unless ``extra_env`` sets ``KTRDR_HOSTS_EMBEDDED``.
    """
    with tempfile.TemporaryDirectory(prefix="ktrdr-bench-") as tmp:
        runtime = Path(tmp) / "run"
        state = state_dir or Path(tmp) / "state"
        env = {**os.environ, "KTRDR_HOSTS_EMBEDDED": "false", **(extra_env or {})}
        module = "tests.support.testd" if "KTRDR_TEST_PLUGINS" in (extra_env or {}) else "ktrdrd"
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--runtime-dir", str(runtime), "--state-dir", str(state)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_path(runtime / wire.CTL_SOCKET)
            wait_for_path(runtime / wire.GRPC_SOCKET)
            yield Daemon(proc, runtime, state)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


class _Finisher:
    """Bench-local kind ``bench.finish``: a stage, a few progress steps, a small result."""

    async def run(self, ctx: Any) -> dict:
        await ctx.set_stage("working")
        steps = int(ctx.params.get("steps", 3))
        for step in range(1, steps + 1):
            await ctx.progress(current=step, total=steps, message=f"step {step}/{steps}")
        await ctx.flush()
        return {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"steps": steps}}

    async def reattach(self, ctx: Any) -> dict:
        return await self.run(ctx)


async def populate_journal(db_path: Path, count: int) -> list[str]:
    """Journal ``count`` finished operations with labels, as a daemon would have after some use.

    Uses the bench-local kind ``bench.finish`` (not a test plugin); returns the operation names."""
    from ktrdrd.operations import OperationsCore

    names = []
    core = await OperationsCore.open(db_path)
    try:
        core.register_kind("bench.finish", _Finisher())
        await core.resume_pending()
        for i in range(count):
            rec = await core.start(
                "bench.finish",
                params={"steps": 3 + i % 4},
                labels={"strategy": f"strategy_{i % 3}", "symbol": ("EURUSD", "GBPUSD")[i % 2]},
            )
            await core.wait(rec.name, 10.0)
            names.append(rec.name)
    finally:
        await core.close()
    return names
