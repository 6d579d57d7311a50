"""The daemon's small parts on real files and sockets: stale sockets, sd_notify, log lines.
(Directories and locks: test_rundirs.py.)"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import uuid
from pathlib import Path

import pytest

from ktrdr import logs
from ktrdr.sdnotify import Notifier
from ktrdrd import rundirs
from ktrdrd.appstate import AppState, HostStatus


def test_stale_socket_removed_but_never_a_regular_file(tmp_path: Path) -> None:
    sock_path = tmp_path / "grpc.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(sock_path))
    assert rundirs.remove_stale_socket(sock_path) is True and not sock_path.exists()
    assert rundirs.remove_stale_socket(sock_path) is False
    sock_path.write_text("not a socket")
    with pytest.raises(rundirs.StartupError, match="is not a socket"):
        rundirs.remove_stale_socket(sock_path)
    assert sock_path.read_text() == "not a socket"


def _receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_notify_path_socket_sends_ready_status_stopping_and_clears_env(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with _receiver(path) as rx:
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "OTHER": "x"}
        notifier = Notifier(env)
        assert env == {"OTHER": "x"}, "children must not inherit systemd's variables"
        assert notifier.watchdog_interval_s == 1.0
        notifier.ready("serving on x")
        notifier.stopping("draining")
        notifier.close()
        ready = rx.recv(4096).decode().split("\n")
        assert ready[:2] == ["READY=1", "STATUS=serving on x"] and ready[2] == f"MAINPID={os.getpid()}"
        assert rx.recv(4096) == b"STOPPING=1\nSTATUS=draining"


def test_notify_abstract_socket() -> None:
    name = f"ktrdr-test-{uuid.uuid4().hex}"
    with _receiver("\0" + name) as rx:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.notify("STATUS=abstract ok")
        assert rx.recv(4096) == b"STATUS=abstract ok"
        notifier.close()


def test_notify_without_socket_is_a_no_op_and_watchdog_for_another_pid_is_ignored() -> None:
    assert Notifier({}).notify("READY=1") is False
    other = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "100", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval_s is None


def test_watchdog_pings_come_only_from_a_running_loop(tmp_path: Path) -> None:
    path = str(tmp_path / "wd.sock")
    with _receiver(path) as rx:
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"})  # ping every 10 ms
        loop = asyncio.new_event_loop()
        try:
            assert notifier.start_watchdog(loop)
            assert rx.recv(64) == b"WATCHDOG=1"  # the first ping is immediate
            rx.settimeout(0.2)
            with pytest.raises(TimeoutError):  # loop not running (as if blocked): no pings
                rx.recv(64)
            loop.run_until_complete(asyncio.sleep(0.1))
            rx.settimeout(5)
            assert rx.recv(64) == b"WATCHDOG=1"
        finally:
            notifier.close()
            loop.close()


def _record(msg: str, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("ktrdrd.test")
    return logger.makeRecord("ktrdrd.test", logging.WARNING, __file__, 1, msg, (), None, extra=extra)


def test_json_log_line_has_ts_level_logger_msg_op_and_extras() -> None:
    with logs.bind_op("operations/op_abc"):
        line = logs.JsonFormatter().format(_record("epoch done", epoch=3, path=Path("/x")))
    fields = json.loads(line)
    assert (fields["level"], fields["logger"], fields["msg"]) == ("warning", "ktrdrd.test", "epoch done")
    assert fields["op"] == "operations/op_abc" and fields["epoch"] == 3 and fields["path"] == "/x"
    assert fields["ts"].endswith("+00:00") and "T" in fields["ts"]
    assert "op" not in json.loads(logs.JsonFormatter().format(_record("outside")))


def test_op_id_follows_tasks_created_inside_bind_op() -> None:
    async def child() -> str:
        return logs.current_op.get()

    async def main() -> str:
        with logs.bind_op("operations/op_task"):
            task = asyncio.create_task(child())
        return await task

    assert asyncio.run(main()) == "operations/op_task"


def test_setup_auto_picks_json_off_a_tty_and_text_for_text() -> None:
    stream = io.StringIO()
    logs.setup("auto", "info", stream)
    logging.getLogger("ktrdrd.t").info("hello", extra={"k": 1})
    logging.getLogger("ktrdrd.t").debug("hidden")
    assert [json.loads(line)["msg"] for line in stream.getvalue().splitlines()] == ["hello"]
    stream = io.StringIO()
    logs.setup("text", "debug", stream)
    with logs.bind_op("operations/op_t"):
        logging.getLogger("ktrdrd.t").debug("shown", extra={"k": 2})
    text = stream.getvalue()
    assert "DEBUG" in text and "ktrdrd.t: shown [operations/op_t] k=2" in text
    logging.getLogger().handlers.clear()
    logging.getLogger().setLevel(logging.WARNING)


def test_app_state_reports_host_state_changes_once_each(tmp_path: Path) -> None:
    state = AppState(tmp_path, tmp_path, tmp_path / "grpc.sock", tmp_path / "ctl.sock", tmp_path / "k.db")
    lines: list[str] = []
    state.on_change(lambda s: lines.append(s.status_line()))
    state.serving = True
    state.set_host(HostStatus("ib", "marketdata", "unix:/x", "CONNECTING"))
    state.set_host(HostStatus("ib", "marketdata", "unix:/x", "CONNECTING", "retrying"))  # same state
    state.set_host(HostStatus("ib", "marketdata", "unix:/x", "READY"))
    assert lines == [
        f"serving on {tmp_path / 'grpc.sock'}; hosts: ib connecting",
        f"serving on {tmp_path / 'grpc.sock'}; hosts: ib ready",
    ]
    assert state.hosts["ib"].state == "READY" and len(state.instance_id) == 36
