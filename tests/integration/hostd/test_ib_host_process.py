"""``hostd ib`` and ``hostd gateway-sim`` both as real processes: READY through a real NOTIFY_SOCKET
with the gateway's state in STATUS, bars fetched across the two processes, and SIGTERM → STOPPING,
exit 0, the socket file removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hostd.ib import requests
from tests.integration.conftest import REPO, NotifyListener
from tests.support.ibhost import SERVING, IbHost, fetch_request
from tests.support.importprobe import imported_modules

READY_TIMEOUT_S = 60.0
JAN_2 = 1_704_153_600


def test_ib_host_and_gateway_sim_as_processes(tmp_path: Path) -> None:
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hostd",
            "gateway-sim",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "9",
            "--log-format",
            "json",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    listener = NotifyListener(tmp_path / "notify.sock")
    host = None
    try:
        assert sim.stdout is not None
        port = int(json.loads(sim.stdout.readline())["listening"].rsplit(":", 1)[1])
        host = IbHost(tmp_path, port, "--simulated", env={"NOTIFY_SOCKET": str(listener.path)})
        ready = listener.wait_for("READY", "1", host.proc, READY_TIMEOUT_S)
        assert ready["MAINPID"] == str(host.proc.pid) and f"unix:{host.socket}" in ready["STATUS"]
        host.wait_health(SERVING)
        assert listener.seen("STATUS", f"gateway connected: connected to 127.0.0.1:{port} as client id 1")
        end = JAN_2 + 70 * 86_400
        got = host.fetch(fetch_request("AAPL", "1h", JAN_2, end))
        times = [bar[0] for bar in got.bars]
        assert len(times) > 500 and times == sorted(set(times))
        assert got.progress[-1].requests_done == len(requests.plan("1h", JAN_2, end)) == 3
        assert host.status().simulated
        assert host.stop() == 0
        assert listener.seen("STOPPING", "1")
        assert not host.socket.exists()
    finally:
        if host is not None:
            host.stop()
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(READY_TIMEOUT_S) == 0
        assert sim.stdout is not None
        sim.stdout.close()
        listener.close()


def test_hostd_help_lists_ib_and_imports_neither_grpc_nor_ib_async() -> None:
    modules = imported_modules("--help", program=("-m", "hostd"))
    assert "hostd.ib.cli" in modules
    assert not [m for m in modules if m.split(".")[0] in ("grpc", "ib_async", "google")]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--listen", "0.0.0.0:5000", "--gateway", "127.0.0.1:4002"], "loopback"),
        (["--listen", "unix:", "--gateway", "127.0.0.1:4002"], "unix:PATH"),
        (["--listen", "unix:/tmp/x.sock", "--gateway", "127.0.0.1:0"], "gateway port"),
        (["--listen", "unix:/tmp/x.sock", "--gateway", "127.0.0.1:4002", "--client-id", "-3"], "client id"),
    ],
)
def test_bad_flags_exit_2_naming_them(flags: list[str], named: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hostd", "ib", *flags],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and named in result.stderr
