"""Signals a running ktrdrd gets from people and systemd (issue 10, "a stop nothing can block").

SIGHUP reloads what can be reloaded (``log_level``) and keeps serving; SIGUSR1 logs a status line;
SIGUSR2 is logged as ignored; a second SIGTERM/SIGINT during a drain stops at once; a clean stop
logs no error; "operation succeeded" is logged only once the state is committed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.rawctl import RawConn, wait_until

if TYPE_CHECKING:
    from tests.integration.conftest import Daemon, DaemonFactory

OPS = "ktrdr.daemon.v1.OperationsService"
START_TICKER = "ktrdr.test.v1/StartTicker"


def _start_ticker(daemon: Daemon, **params: Any) -> str:
    return daemon.ctl(START_TICKER, {"params": params})["operation"]["name"]


def _state(daemon: Daemon, name: str) -> str:
    return daemon.ctl(f"{OPS}/GetOperation", {"name": name})["operation"]["state"]


def _logged_since(daemon: Daemon, mark: int, *words: str) -> list[dict[str, Any]]:
    """JSON log records after the first ``mark`` ones whose text holds any one of ``words``
    (case-insensitive)."""
    found = []
    for record in daemon.log_records()[mark:]:
        text = json.dumps(record).lower()
        if any(word.lower() in text for word in words):
            found.append(record)
    return found


def _wait_logged(daemon: Daemon, mark: int, *words: str) -> list[dict[str, Any]]:
    """The records :func:`_logged_since` finds, once there are some; fails if the daemon exits."""

    def found() -> list[dict[str, Any]]:
        records = _logged_since(daemon, mark, *words)
        if not records and daemon.proc.poll() is not None:
            raise AssertionError(f"ktrdrd exited with {daemon.proc.returncode}:\n{daemon.logs()[-3000:]}")
        return records

    return wait_until(found, 20, f"a log line with {words}:\n{daemon.logs()[-3000:]}")


def _succeeded_logged(daemon: Daemon, name: str) -> bool:
    op_id = name.rsplit("/", 1)[-1]
    return any(r.get("msg") == "operation succeeded" and op_id in json.dumps(r) for r in daemon.log_records())


# ---- SIGHUP, SIGUSR1, SIGUSR2 --------------------------------------------------------------------


def test_sighup_reloads_the_log_level_reports_restart_only_keys_and_keeps_serving(
    daemon_factory: DaemonFactory,
) -> None:
    config = daemon_factory.base / "ktrdrd.toml"
    config.write_text('log_level = "info"\nshutdown_grace_s = 5\n')
    daemon = daemon_factory.start(args=("--config", str(config)))
    instance = daemon.info()["instanceId"]

    config.write_text('log_level = "debug"\nshutdown_grace_s = 3\n')
    mark = len(daemon.log_records())
    daemon.proc.send_signal(signal.SIGHUP)
    _wait_logged(daemon, mark, "SIGHUP", "reload", "re-read")
    assert _logged_since(daemon, mark, "debug"), "the reload says the log level is now debug"
    assert _logged_since(daemon, mark, "shutdown_grace_s"), "a key that needs a restart is named"
    assert daemon.info()["instanceId"] == instance, "the same daemon serves on"

    # The level is applied, not just read: at "warning", operations' info lines are no longer logged.
    config.write_text('log_level = "warning"\nshutdown_grace_s = 3\n')
    daemon.proc.send_signal(signal.SIGHUP)

    def quiet_success() -> bool:
        name = _start_ticker(daemon, steps=1, interval_s=0)
        daemon.ctl(f"{OPS}/WaitOperation", {"name": name, "timeout": "20s"})
        time.sleep(0.05)  # the line, if any, follows the commit the wait saw
        return not _succeeded_logged(daemon, name)

    wait_until(quiet_success, 20, "an operation succeeding without an info line after log_level=warning")
    assert quiet_success(), "the warning level stays in force"
    assert daemon.info()["instanceId"] == instance


def test_sighup_with_a_broken_config_file_keeps_the_daemon_serving(daemon_factory: DaemonFactory) -> None:
    config = daemon_factory.base / "ktrdrd.toml"
    config.write_text('log_level = "info"\n')
    daemon = daemon_factory.start(args=("--config", str(config)))
    instance = daemon.info()["instanceId"]
    config.write_text("log_level = \n")  # not TOML
    mark = len(daemon.log_records())
    daemon.proc.send_signal(signal.SIGHUP)
    _wait_logged(daemon, mark, str(config))  # the log names the file it could not use
    assert daemon.info()["instanceId"] == instance
    assert daemon.proc.poll() is None


def test_sigusr1_logs_a_status_line_and_sigusr2_is_ignored(daemon: Daemon) -> None:
    name = _start_ticker(daemon, steps=100_000, interval_s=0.05)
    watcher = RawConn(daemon.ctl_socket)
    watcher.call("watch", f"{OPS}/WatchOperation", {"name": name})
    watcher.recv()  # the snapshot: the watch is in flight
    instance = daemon.info()["instanceId"]

    mark = len(daemon.log_records())
    daemon.proc.send_signal(signal.SIGUSR1)
    status = _wait_logged(daemon, mark, "connections")
    assert any("operations" in json.dumps(r).lower() for r in status), status
    assert any("calls" in json.dumps(r).lower() for r in status), status
    assert daemon.info()["instanceId"] == instance

    mark = len(daemon.log_records())
    daemon.proc.send_signal(signal.SIGUSR2)
    _wait_logged(daemon, mark, "SIGUSR2")
    assert daemon.info()["instanceId"] == instance
    daemon.ctl(f"{OPS}/CancelOperation", {"name": name})
    watcher.close()


# ---- stopping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_second_stop_signal_during_a_long_drain_stops_at_once(
    daemon_factory: DaemonFactory, second: signal.Signals
) -> None:
    daemon = daemon_factory.start(args=("--shutdown-grace-s", "60"))
    name = _start_ticker(daemon, steps=100_000, interval_s=0.05)
    waiter = RawConn(daemon.ctl_socket, timeout_s=90)
    waiter.call("wait", f"{OPS}/WaitOperation", {"name": name, "timeout": "600s"})  # holds the drain
    waiter.info()  # answered after the wait was read: the wait is in flight

    daemon.proc.send_signal(signal.SIGTERM)
    daemon.notify.wait_for("STOPPING", "1", daemon.proc, 20)
    time.sleep(1.0)
    assert daemon.proc.poll() is None, "the first SIGTERM drains: the wait call holds it"

    assert daemon.stop(second, timeout_s=20) == 0, "the second signal does not wait out the 60 s grace"
    waiter.close()

    again = daemon_factory.start()  # the journal was closed properly: it opens, the operation is there
    assert _state(again, name) in ("OPERATION_STATE_RUNNING", "OPERATION_STATE_INTERRUPTED")
    again.ctl(f"{OPS}/CancelOperation", {"name": name})


def test_a_clean_stop_logs_no_error(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.start(args=("--shutdown-grace-s", "1"))
    name = _start_ticker(daemon, steps=3, interval_s=0.01, messages=True)
    daemon.ctl_stream(f"{OPS}/WatchOperation", {"name": name})
    long_one = _start_ticker(daemon, steps=100_000, interval_s=0.05)
    gone = RawConn(daemon.ctl_socket)  # a watcher that goes away mid-stream
    gone.call(1, f"{OPS}/WatchOperation", {"name": long_one})
    gone.recv()
    gone.close()
    bad = RawConn(daemon.ctl_socket)  # a client with bad frames and a failing call
    bad.send(b"{not json\n")
    bad.recv()
    bad.call(2, f"{OPS}/GetOperation", {"name": "operations/op_" + "a" * 26})
    assert bad.recv()["error"]["code"] == 5
    lingering = RawConn(daemon.ctl_socket)  # still connected, a watch in flight, at the stop
    lingering.call(3, f"{OPS}/WatchOperation", {"name": long_one})
    lingering.recv()

    assert daemon.stop() == 0
    errors = [r for r in daemon.log_records() if r.get("level") in ("error", "critical")]
    assert not errors, errors
    assert "Traceback" not in daemon.logs()
    bad.close()
    lingering.close()


def test_operation_succeeded_is_logged_only_after_the_state_is_committed(
    daemon_factory: DaemonFactory,
) -> None:
    """Killed (SIGKILL) the moment the line appears, a restarted daemon must find the operation
    SUCCEEDED: a line written before the commit could name a state the journal does not hold."""
    daemon = daemon_factory.start()
    for _ in range(3):
        name = _start_ticker(daemon, steps=3, interval_s=0.01)
        deadline = time.monotonic() + 20
        while not _succeeded_logged(daemon, name):
            assert time.monotonic() < deadline, f"no 'operation succeeded' line:\n{daemon.logs()[-3000:]}"
            time.sleep(0.001)
        os.kill(daemon.proc.pid, signal.SIGKILL)
        daemon.proc.wait(20)
        daemon = daemon_factory.start()
        assert _state(daemon, name) == "OPERATION_STATE_SUCCEEDED"
