"""The daemon's host links and embedded hosts, with real processes: ktrdrd, hostd ib, hostd
gateway-sim and ktrdrctl.

- embedded (``hosts.embedded``, no ``hosts.ib``): ``ktrdrctl hosts`` shows ib READY with a version
  and a round-trip time, marked simulated; ``kill -9`` of the hostd ib → UNAVAILABLE, restarted, READY;
  a clean stop of ktrdrd stops its hosts; ``kill -9`` of ktrdrd takes them along, and a restart on
  the same directories reclaims their socket;
- external (``hosts.ib = unix:…``): the daemon starts without the host (UNAVAILABLE, the reason
  shown), the link becomes READY when the host starts, "gateway away" when its gateway goes;
- TCP: TLS + token against a real hostd ib; a wrong token is shown as refused credentials;
  a TCP address without ``hosts.ca_file``/``hosts.token_file`` is a configuration error, and
  unusable TLS files stop start-up before anything is created.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.conftest import Daemon, DaemonFactory
from tests.support.ibhost import IbHost, SimThread
from tests.support.paths import REPO
from tests.support.tlsfiles import TlsFiles

TIMEOUT_S = 90.0
EMBEDDED = {"KTRDR_HOSTS_EMBEDDED": "true"}


def ib_host(daemon: Daemon) -> dict[str, Any]:
    hosts = {h["name"]: h for h in daemon.info().get("hosts", [])}
    return hosts["ib"]


def wait_ib(daemon: Daemon, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        host = ib_host(daemon)
        if check(host):
            return host
        assert daemon.proc.poll() is None, f"ktrdrd exited:\n{daemon.logs()}"
        assert time.monotonic() < deadline, (
            f"the ib host never became {what}: {host}\n{daemon.logs()[-4000:]}"
        )
        time.sleep(0.05)


def state(host: dict[str, Any]) -> str:
    return host.get("state", "").removeprefix("HOST_STATE_")


def children(pid: int) -> dict[int, str]:
    """Live (non-zombie) child processes of ``pid``: {pid: command line}."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat[1]) == pid and stat[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if alive(p)]}"
        time.sleep(0.05)


def ktrdrctl(daemon: Daemon, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
    return subprocess.run(
        [sys.executable, "-m", "ktrdrctl", "--runtime-dir", str(daemon.runtime_dir), *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def daemon_health(daemon: Daemon, service: str) -> int:
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=20).status)


def hostd_pids(daemon: Daemon) -> dict[str, int]:
    """{"ib": pid, "gateway-sim": pid} of the daemon's embedded hosts."""
    found = {}
    for pid, cmdline in children(daemon.proc.pid).items():
        for name in ("ib", "gateway-sim"):
            if f" -m hostd {name} " in cmdline:
                found[name] = pid
    return found


def test_embedded_hosts_ready_restarted_and_stopped(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.start(env=EMBEDDED)
    ready = wait_ib(daemon, lambda h: state(h) == "READY" and "roundTrip" in h, "READY with a round trip")
    assert ready["version"] and ready["simulated"] and ready["address"].endswith("/hostd-ib.sock")
    table = ktrdrctl(daemon, "hosts")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    row = next(r for r in rows if r.split()[0] == "ib")
    assert header.split() == ["NAME", "KIND", "ADDRESS", "STATE", "VERSION", "RTT", "MESSAGE"]
    assert row.split()[:5] == ["ib", "marketdata", ready["address"], "READY", ready["version"]]
    assert row.split()[6:] == ["ms", "simulated", "data"]
    listed = json.loads(ktrdrctl(daemon, "hosts", "--json").stdout)["hosts"]
    assert sorted(h["name"] for h in listed) == ["ib", "training"]  # the embedded hostd training too
    status = ktrdrctl(daemon, "status")
    assert "hosts:" in status.stdout and "READY" in status.stdout
    assert daemon_health(daemon, "ktrdr.host.ib") == health_pb2.HealthCheckResponse.SERVING

    pids = hostd_pids(daemon)
    assert set(pids) == {"ib", "gateway-sim"}, children(daemon.proc.pid)
    os.kill(pids["ib"], signal.SIGKILL)
    down = wait_ib(daemon, lambda h: state(h) == "UNAVAILABLE", "UNAVAILABLE")
    assert down["message"]
    deadline = time.monotonic() + TIMEOUT_S  # health follows the state (a moment later)
    while daemon_health(daemon, "ktrdr.host.ib") != health_pb2.HealthCheckResponse.NOT_SERVING:
        assert time.monotonic() < deadline and state(ib_host(daemon)) == "UNAVAILABLE"
        time.sleep(0.01)
    wait_ib(daemon, lambda h: state(h) == "READY", "READY again")
    restarted = hostd_pids(daemon)
    assert restarted["ib"] != pids["ib"] and restarted["gateway-sim"] == pids["gateway-sim"]
    exits = [r for r in daemon.log_records() if r.get("msg") == "embedded host exited; restarting"]
    assert exits and exits[0]["host"] == "ib" and exits[0]["exit_code"] == -signal.SIGKILL

    assert daemon.stop() == 0
    wait_gone(list(restarted.values()))
    assert not (daemon.runtime_dir / "hostd-ib.sock").exists()


def test_kill_9_of_ktrdrd_takes_its_hosts_along(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.start(env=EMBEDDED)
    wait_ib(daemon, lambda h: state(h) == "READY", "READY")
    pids = hostd_pids(daemon)
    assert set(pids) == {"ib", "gateway-sim"}
    daemon.proc.kill()
    daemon.proc.wait(TIMEOUT_S)
    wait_gone(list(pids.values()))

    again = daemon_factory.start(env=EMBEDDED, runtime_dir=daemon.runtime_dir, state_dir=daemon.state_dir)
    wait_ib(again, lambda h: state(h) == "READY", "READY after a restart")


def test_a_stale_host_socket_is_reclaimed(daemon_factory: DaemonFactory) -> None:
    import socket

    runtime = daemon_factory.base / "run"
    runtime.mkdir(mode=0o750)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(runtime / "hostd-ib.sock"))
    stale.close()  # the file stays, nobody listens
    daemon = daemon_factory.start(env=EMBEDDED, runtime_dir=runtime)
    wait_ib(daemon, lambda h: state(h) == "READY", "READY")
    assert any(r.get("msg") == "removed a stale host socket" for r in daemon.log_records())


def test_an_external_host_started_after_the_daemon(daemon_factory: DaemonFactory, tmp_path: Path) -> None:
    address = f"unix:{tmp_path / 'ib.sock'}"
    daemon = daemon_factory.start(env={"KTRDR_HOSTS_IB": address})
    waiting = wait_ib(daemon, lambda h: state(h) == "UNAVAILABLE", "UNAVAILABLE")
    assert waiting["address"] == address and waiting["message"] == f"no socket at {tmp_path / 'ib.sock'}"
    assert not hostd_pids(daemon)  # an address is configured: nothing embedded
    assert "no socket at" in ktrdrctl(daemon, "hosts").stdout

    sim = SimThread()
    host = IbHost(tmp_path, sim.port)
    try:
        ready = wait_ib(daemon, lambda h: state(h) == "READY", "READY")
        assert ready["version"] and not ready.get("simulated")
        sim.stop()
        away = wait_ib(daemon, lambda h: state(h) == "UNAVAILABLE", "UNAVAILABLE")
        assert away["message"].startswith("gateway away:")
    finally:
        assert host.stop() == 0
    gone = wait_ib(
        daemon,
        lambda h: h.get("message") in ("the host shut down", "no socket at " + str(host.socket)),
        "gone",
    )
    assert state(gone) == "UNAVAILABLE"


def test_tcp_host_with_tls_and_token(daemon_factory: DaemonFactory, tmp_path: Path) -> None:
    tls = TlsFiles.make(tmp_path, "host")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hostd", "ib", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:9",
         "--tls-cert", str(tls.cert), "--tls-key", str(tls.key), "--token-file", str(tls.token_file)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        address = json.loads(proc.stdout.readline())["listening"]
        env = {"KTRDR_HOSTS_IB": address, "KTRDR_HOSTS_CA_FILE": str(tls.ca)}
        good = daemon_factory.start(env={**env, "KTRDR_HOSTS_TOKEN_FILE": str(tls.token_file)})
        # no gateway behind it: it answers (version known) and says why it is not serving
        host = wait_ib(good, lambda h: bool(h.get("version")) and state(h) == "UNAVAILABLE", "answering")
        assert host["message"].startswith("gateway away:")
        assert good.stop() == 0

        wrong = tmp_path / "wrong-token"
        wrong.write_text("not-the-token\n")
        wrong.chmod(0o600)
        bad = daemon_factory.start(env={**env, "KTRDR_HOSTS_TOKEN_FILE": str(wrong)})
        refused = wait_ib(bad, lambda h: "credentials" in h.get("message", ""), "refused")
        assert state(refused) == "UNAVAILABLE" and "token" in refused["message"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT_S) == 0


def test_a_tcp_host_without_tls_settings_is_a_configuration_error(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.spawn(env={"KTRDR_HOSTS_IB": "127.0.0.1:7443"})
    assert daemon.proc.wait(TIMEOUT_S) == 2
    assert "set hosts.ca_file and hosts.token_file" in daemon.logs()
    assert not daemon.state_dir.exists() and not daemon.runtime_dir.exists()


@pytest.mark.parametrize("unusable", ["ca", "token"])
def test_unusable_tls_files_stop_startup_before_anything_is_created(
    daemon_factory: DaemonFactory, tmp_path: Path, unusable: str
) -> None:
    tls = TlsFiles.make(tmp_path, "host")
    if unusable == "ca":
        tls.ca.write_text("not a certificate\n")
        named = f"CA file {tls.ca}: expected a PEM certificate"
    else:
        tls.token_file.chmod(0o644)
        named = f"token file {tls.token_file}: mode 0644 lets others read it"
    env = {
        "KTRDR_HOSTS_IB": "127.0.0.1:7443",
        "KTRDR_HOSTS_CA_FILE": str(tls.ca),
        "KTRDR_HOSTS_TOKEN_FILE": str(tls.token_file),
    }
    daemon = daemon_factory.spawn(env=env)
    assert daemon.proc.wait(TIMEOUT_S) == 1
    assert named in daemon.logs() and not daemon.notify.seen("READY", "1")
    assert not daemon.state_dir.exists() and not daemon.runtime_dir.exists()
