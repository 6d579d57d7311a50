"""ktrdrd as a real process: readiness, single instance, stale sockets, permissions, corrupt
journal, graceful stop, sd_notify messages."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.integration.conftest import REPO

if TYPE_CHECKING:
    from tests.integration.conftest import Daemon, DaemonFactory


def test_ready_serves_info_and_sigterm_exits_0_cleaning_up(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.start()
    info = daemon.info()
    assert info["grpcSocket"] == str(daemon.grpc_socket) and info["ctlSocket"] == str(daemon.ctl_socket)
    assert info["stateDir"] == str(daemon.state_dir) and info["pid"] == daemon.proc.pid
    assert info["version"] and info["instanceId"]
    ready = daemon.notify.seen("READY", "1")[0]
    assert "serving on" in ready["STATUS"] and ready["MAINPID"] == str(daemon.proc.pid)

    assert daemon.stop() == 0
    assert daemon.notify.seen("STOPPING", "1"), daemon.notify.messages
    assert not daemon.grpc_socket.exists() and not daemon.ctl_socket.exists()
    assert (daemon.runtime_dir / "ktrdrd.lock").read_text() == ""

    again = daemon_factory.start()  # the lock was released; a restart is a new instance
    assert again.info()["instanceId"] != info["instanceId"]


def test_second_daemon_on_same_runtime_dir_refuses_and_first_keeps_serving(
    daemon: Daemon, daemon_factory: DaemonFactory
) -> None:
    before = daemon.info()
    inode = daemon.grpc_socket.stat().st_ino
    second = daemon_factory.spawn(runtime_dir=daemon.runtime_dir, state_dir=daemon_factory.base / "state2")
    code = second.proc.wait(60)
    assert code != 0
    expected = f"another ktrdrd (pid {daemon.proc.pid}) is already running on {daemon.runtime_dir}"
    assert expected in second.logs()
    assert not second.notify.seen("READY")
    assert daemon.grpc_socket.stat().st_ino == inode, "the second daemon must not touch the sockets"
    assert daemon.info()["instanceId"] == before["instanceId"]


def test_stale_sockets_from_a_crash_are_replaced(daemon_factory: DaemonFactory) -> None:
    run_dir = daemon_factory.base / "run"
    run_dir.mkdir(mode=0o750)
    for name in ("grpc.sock", "ctl.sock"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # bound, closed, never unlinked
            s.bind(str(run_dir / name))
    (run_dir / "ktrdrd.lock").write_text("12345\n")  # a crashed daemon's pid; no flock is held
    daemon = daemon_factory.start()
    assert daemon.info()["ctlSocket"] == str(daemon.ctl_socket)
    stale = [r for r in daemon.log_records() if "stale socket" in r.get("msg", "")]
    assert sorted(Path(r["path"]).name for r in stale) == ["ctl.sock", "grpc.sock"]
    assert (run_dir / "ktrdrd.lock").read_text() == f"{daemon.proc.pid}\n{run_dir}\n"


def test_new_dirs_are_0750_and_sockets_0660(daemon_factory: DaemonFactory) -> None:
    run_dir = daemon_factory.base / "new" / "run"  # created with its parent
    daemon = daemon_factory.start(runtime_dir=run_dir)
    assert stat.S_IMODE(run_dir.stat().st_mode) == stat.S_IMODE(run_dir.parent.stat().st_mode) == 0o750
    for sock in (daemon.grpc_socket, daemon.ctl_socket):
        mode = sock.stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660, (sock, oct(mode))
    assert stat.S_IMODE(daemon.state_dir.stat().st_mode) == 0o750


def test_corrupt_journal_refuses_to_start_and_changes_nothing(daemon_factory: DaemonFactory) -> None:
    state = daemon_factory.base / "state"
    state.mkdir()
    db = state / "ktrdr.db"
    db.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    daemon = daemon_factory.spawn()
    assert daemon.proc.wait(60) != 0
    assert str(db) in daemon.logs()
    assert not daemon.notify.seen("READY")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in state.iterdir()) == ["ktrdr.db", "ktrdrd.lock"], (
        "no -wal/-shm or backup files"
    )
    assert (state / "ktrdrd.lock").read_text() == "", "the state dir's lock is released"
    assert not daemon.grpc_socket.exists() and not daemon.ctl_socket.exists()
    assert (daemon.runtime_dir / "ktrdrd.lock").read_text() == "", "the lock is released"


def test_sigint_also_stops_cleanly(daemon: Daemon) -> None:
    assert daemon.stop(signal.SIGINT) == 0
    assert daemon.notify.seen("STOPPING", "1")
    assert any(r.get("msg") == "ktrdrd stopped" for r in daemon.log_records())


def test_watchdog_pings_when_systemd_asks_and_not_when_disabled(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.start(env={"WATCHDOG_USEC": "200000"})
    daemon.notify.wait_for("WATCHDOG", "1", daemon.proc, 30)
    daemon.notify.messages.clear()
    daemon.notify.wait_for("WATCHDOG", "1", daemon.proc, 30)  # and again: the loop keeps pinging
    assert daemon.stop() == 0

    quiet = daemon_factory.start(env={"WATCHDOG_USEC": "200000"}, args=("--watchdog", "false"))
    quiet.info()
    assert quiet.stop() == 0
    assert not quiet.notify.seen("WATCHDOG"), "--watchdog false sends no pings"


def test_structured_json_logs_on_a_pipe(daemon: Daemon) -> None:
    ready = [r for r in daemon.log_records() if r.get("msg") == "ktrdrd ready"]
    assert len(ready) == 1
    record = ready[0]
    assert {"ts", "level", "logger"} <= record.keys() and record["level"] == "info"
    assert record["grpc_socket"] == str(daemon.grpc_socket)
    assert record["instance_id"] == daemon.info()["instanceId"]


def test_a_test_plugin_that_cannot_load_stops_the_test_launcher(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.spawn(env={"KTRDR_TEST_PLUGINS": "tests.support.no_such_module"})
    assert daemon.proc.wait(60) == 1
    assert "KTRDR_TEST_PLUGINS: cannot import 'tests.support.no_such_module'" in daemon.logs()
    assert not daemon.grpc_socket.exists() and not daemon.runtime_dir.exists()


def test_the_product_daemon_loads_no_test_plugin(daemon_factory: DaemonFactory, tmp_path: Path) -> None:
    """Test hooks live in test support: plain ``ktrdrd`` ignores KTRDR_TEST_PLUGINS."""
    runtime_dir, state_dir = tmp_path / "run", tmp_path / "state"
    env = {**daemon_factory.env(), "KTRDR_TEST_PLUGINS": "tests.support.no_such_module"}
    argv = [sys.executable, "-m", "ktrdrd", "--runtime-dir", str(runtime_dir), "--state-dir", str(state_dir)]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (runtime_dir / "ctl.sock").exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(30)
            sock.connect(str(runtime_dir / "ctl.sock"))
            request = {"jsonrpc": "2.0", "id": 1, "method": START_TICKER, "params": {"params": {}}}
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply = json.loads(sock.makefile("rb").readline())
        assert reply["error"]["code"] == 12  # UNIMPLEMENTED: no test kind, no test method
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


OPS = "ktrdr.daemon.v1.OperationsService"
START_TICKER = "ktrdr.test.v1/StartTicker"


def test_sigterm_drains_a_watch_in_flight_until_the_operation_ends(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.start(args=("--shutdown-grace-s", "60"))
    op = daemon.ctl(START_TICKER, {"params": {"steps": 15, "interval_s": 0.05}})["operation"]
    frames = daemon.frames(f"{OPS}/WatchOperation", {"name": op["name"]}, timeout_s=60)
    assert "snapshot" in next(frames)["result"]  # the call is in flight
    daemon.proc.send_signal(signal.SIGTERM)
    rest = list(frames)
    assert rest[-1].get("done") is True, rest[-3:]
    states = [f["result"]["event"].get("state") for f in rest if "result" in f and "event" in f["result"]]
    assert states[-1] == "OPERATION_STATE_SUCCEEDED", rest[-3:]
    assert daemon.stop() == 0


def test_restart_hands_a_running_operation_back_to_its_kind(daemon_factory: DaemonFactory) -> None:
    first = daemon_factory.start(args=("--shutdown-grace-s", "0.2"))
    op = first.ctl(START_TICKER, {"params": {"steps": 100000, "interval_s": 0.02}})["operation"]
    frames = first.frames(f"{OPS}/WatchOperation", {"name": op["name"]}, timeout_s=60)
    for frame in frames:  # wait until it has made progress
        if int(frame["result"].get("event", {}).get("progress", {}).get("current", 0)) >= 2:
            break
    frames.close()
    assert first.stop() == 0  # the watch above is gone; the operation stays RUNNING in the journal

    second = daemon_factory.start()
    got = second.ctl(f"{OPS}/GetOperation", {"name": op["name"]})["operation"]
    assert got["state"] == "OPERATION_STATE_RUNNING", got
    assert int(got["progress"]["current"]) >= 2
    second.ctl(f"{OPS}/CancelOperation", {"name": op["name"]})
    done = second.ctl(f"{OPS}/WaitOperation", {"name": op["name"], "timeout": "60s"}, timeout_s=90)
    assert done["operation"]["state"] == "OPERATION_STATE_CANCELLED", done


def test_an_idle_daemon_loads_the_bar_cache_libraries_only_when_data_is_asked_for(daemon: Daemon) -> None:
    def mapped(name: str) -> bool:
        return name in Path(f"/proc/{daemon.proc.pid}/maps").read_text()

    assert daemon.info()["pid"] == daemon.proc.pid
    assert not mapped("pyarrow") and not mapped("pandas")
    assert daemon.ctl("ktrdr.daemon.v1.DataService/ListSeries", {}).get("series", []) == []
    assert mapped("pyarrow")
