"""``hostd gateway-sim`` as a real process: the bound port on stdout, READY through a real
NOTIFY_SOCKET, the real ib_async served over TCP, and SIGTERM → connections closed, exit 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ib_async import IB, Stock

from tests.integration.conftest import REPO, NotifyListener

READY_TIMEOUT_S = 60.0


def test_hostd_gateway_sim_process_serves_ib_async_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    listener = NotifyListener(tmp_path / "notify.sock")
    env = {**os.environ, "NOTIFY_SOCKET": str(listener.path), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hostd",
            "gateway-sim",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "3",
            "--log-format",
            "json",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = listener.wait_for("READY", "1", proc, READY_TIMEOUT_S)
        assert proc.stdout is not None
        address = json.loads(proc.stdout.readline())["listening"]
        host, port = address.rsplit(":", 1)
        assert ready["STATUS"] == f"listening on {address}" and ready["MAINPID"] == str(proc.pid)

        async def client() -> tuple[int, bool]:
            ib = IB()
            await ib.connectAsync(host, int(port), clientId=1, readonly=True, timeout=10)
            gone = asyncio.Event()
            ib.disconnectedEvent += gone.set
            bars = await ib.reqHistoricalDataAsync(
                Stock("AAPL", "SMART", "USD"), "20240304 23:00:00 UTC", "1 D", "1 hour", "TRADES", True, 2
            )
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(gone.wait(), 30)  # the simulator closes the connection as it stops
            return len(bars), ib.isConnected()

        bars, connected = asyncio.run(client())
        assert (bars, connected) == (7, False)
        assert proc.wait(timeout=30) == 0
        assert listener.seen("STOPPING", "1")
        assert proc.stderr is not None
        records = [json.loads(line) for line in proc.stderr.read().splitlines()]
        messages = [record["msg"] for record in records]
        assert "gateway simulator listening" in messages and "gateway simulator stopped" in messages
        assert all(record["level"] in ("info", "debug") for record in records), records
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()


def test_hostd_gateway_sim_rejects_a_bad_flag_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hostd", "gateway-sim", "--listen", "127.0.0.1:0", "--clock-scale", "0"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "clock scale must be > 0" in result.stderr


def test_hostd_help_lists_gateway_sim() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hostd", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "gateway-sim" in result.stdout
