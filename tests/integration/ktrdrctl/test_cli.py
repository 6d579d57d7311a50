"""ktrdrctl as users run it: ``python -m ktrdrctl`` subprocesses against a real ktrdrd.

The daemon comes from the ``daemon`` fixture (tests/integration/conftest.py) with the test-only
``test.ticker`` kind (tests/support/kinds.py), started through its ctl method. Each test checks
what is printed and the documented exit code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

# The ktrdrctl test helpers (subprocess runner, pty runner) live beside the unit tests.
from tests.support.ctlserver import REPO, PtyProcess, ktrdrctl_env, run_ktrdrctl

OPS = "ktrdr.daemon.v1.OperationsService/"
START = "ktrdr.test.v1/StartTicker"


def ctl(daemon, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_ktrdrctl("--runtime-dir", str(daemon.runtime_dir), *argv, timeout=timeout)


def start(daemon, labels: dict[str, str] | None = None, parent: str = "", **params) -> str:
    """Start a ticker; returns the operation name."""
    request = {"params": params, "labels": labels or {}, "parent": parent}
    return daemon.ctl(START, request)["operation"]["name"]


def finish(daemon, name: str) -> dict:
    return daemon.ctl(OPS + "WaitOperation", {"name": name, "timeout": "30s"})["operation"]


def short(name: str) -> str:
    return name.removeprefix("operations/")


def test_status_shows_the_running_daemon(daemon) -> None:
    info = daemon.info()
    people = ctl(daemon, "status")
    assert people.returncode == 0, people.stderr
    assert f"instance:    {info['instanceId']}" in people.stdout
    assert f"ctl socket:  {daemon.ctl_socket}" in people.stdout
    assert f"state dir:   {daemon.state_dir}" in people.stdout
    scripts = ctl(daemon, "status", "--json")
    document = json.loads(scripts.stdout)
    assert document["instanceId"] == info["instanceId"] and document["pid"] == daemon.proc.pid
    via_env = run_ktrdrctl("status", "--json", KTRDR_RUNTIME_DIR=str(daemon.runtime_dir))
    assert via_env.returncode == 0 and json.loads(via_env.stdout)["instanceId"] == info["instanceId"]


def test_version_shows_client_and_daemon_and_ktrdrd_has_version(daemon) -> None:
    from importlib import metadata

    info = daemon.info()
    proc = ctl(daemon, "version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"client: ktrdrctl {metadata.version('ktrdr')}",
        f"daemon: ktrdrd {info['version']} (pid {daemon.proc.pid}, {daemon.runtime_dir})",
    ]
    own = subprocess.run(
        [sys.executable, "-m", "ktrdrd", "--version"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert (own.returncode, own.stdout) == (0, f"ktrdrd {info['version']}\n")


def names_of_children(daemon, parent: str) -> list[str]:
    proc = ctl(daemon, "ops", "list", "--json", "--parent", short(parent))
    assert proc.returncode == 0, proc.stderr
    return [op["name"] for op in json.loads(proc.stdout).get("operations", [])]


def test_list_filters_paging_show_delete(daemon) -> None:
    ok_a = start(daemon, {"symbol": "EURUSD"}, steps=2)
    ok_b = start(daemon, {"symbol": "AAPL"}, steps=2)
    bad = start(daemon, {"symbol": "EURUSD"}, steps=3, fail_at=2)
    child = start(daemon, parent=ok_a, steps=1)
    assert names_of_children(daemon, ok_a) == [child]
    finish(daemon, child)
    assert ctl(daemon, "ops", "delete", child).returncode == 0
    for name in (ok_a, ok_b, bad):
        finish(daemon, name)

    table = ctl(daemon, "ops", "list")
    assert table.returncode == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == [short(bad), short(ok_b), short(ok_a)]  # newest first
    assert [row[2] for row in rows] == ["FAILED", "SUCCEEDED", "SUCCEEDED"]

    def names(*argv: str) -> list[str]:
        proc = ctl(daemon, "ops", "list", "--json", *argv)
        assert proc.returncode == 0, proc.stderr
        return [op["name"] for op in json.loads(proc.stdout).get("operations", [])]

    assert names("--state", "failed") == [bad]
    assert names("--state", "failed", "--state", "succeeded") == [bad, ok_b, ok_a]
    assert names("--label", "symbol=EURUSD") == [bad, ok_a]
    assert names("--kind", "test.ticker", "--label", "symbol=AAPL") == [ok_b]
    assert names("--kind", "train") == []
    assert names("--page-size", "1", "--all") == [bad, ok_b, ok_a]
    assert names("--limit", "2") == [bad, ok_b]

    first = json.loads(ctl(daemon, "ops", "list", "--json", "--page-size", "2").stdout)
    assert len(first["operations"]) == 2 and first["nextPageToken"]
    rest = ctl(daemon, "ops", "list", "--page-token", first["nextPageToken"])
    assert [line.split()[0] for line in rest.stdout.splitlines()[1:]] == [short(ok_a)]
    hint = ctl(daemon, "ops", "list", "--page-size", "2")
    assert "--page-token" in hint.stderr

    shown = ctl(daemon, "ops", "show", short(bad))
    assert shown.returncode == 0
    assert "state:      FAILED (done)" in shown.stdout
    assert "ABORTED: ticker failed at step 2 as asked (reason: TICKER_FAILED)" in shown.stdout
    as_json = json.loads(ctl(daemon, "ops", "show", bad, "--json").stdout)
    assert as_json["operation"]["name"] == bad and as_json["operation"]["state"] == "OPERATION_STATE_FAILED"

    deleted = ctl(daemon, "ops", "delete", short(ok_a))
    assert deleted.returncode == 0 and deleted.stdout == f"deleted {ok_a}\n"
    gone = ctl(daemon, "ops", "show", ok_a)
    assert (
        gone.returncode == 4 and f"NOT_FOUND: operation {ok_a} not found" in gone.stderr and gone.stdout == ""
    )


def test_daemon_errors_map_to_exit_codes(daemon) -> None:
    token = ctl(daemon, "ops", "list", "--page-token", "not-a-token")
    assert token.returncode == 1
    assert "INVALID_ARGUMENT" in token.stderr and "page_token" in token.stderr
    running = start(daemon, steps=2000, interval_s=0.05)
    undeletable = ctl(daemon, "ops", "delete", running)
    assert undeletable.returncode == 1 and "FAILED_PRECONDITION" in undeletable.stderr
    cancelled = ctl(daemon, "ops", "cancel", short(running))
    assert cancelled.returncode == 0 and cancelled.stdout.startswith(f"cancel requested: {running}")
    assert finish(daemon, running)["state"] == "OPERATION_STATE_CANCELLED"
    again = ctl(daemon, "ops", "cancel", running)
    assert again.returncode == 1 and "FAILED_PRECONDITION" in again.stderr
    for command in ("cancel", "show", "watch", "wait", "delete"):
        missing = ctl(daemon, "ops", command, "op_00000000000000000000000000")
        assert missing.returncode == 4, (command, missing.stderr)
        assert "NOT_FOUND" in missing.stderr
    usage = ctl(daemon, "ops", "list", "--state", "bogus")
    assert usage.returncode == 2 and "not a state" in usage.stderr


def test_wait_exit_codes(daemon) -> None:
    ok = start(daemon, steps=3)
    waited = ctl(daemon, "ops", "wait", short(ok))
    assert waited.returncode == 0, waited.stderr
    assert "state:      SUCCEEDED (done)" in waited.stdout

    failing = start(daemon, steps=5, fail_at=3)
    failed = ctl(daemon, "ops", "wait", failing, "--json")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["operation"]["state"] == "OPERATION_STATE_FAILED"
    assert f"{failing} FAILED: ABORTED: ticker failed at step 3" in failed.stderr

    slow = start(daemon, steps=2000, interval_s=0.05)
    timed_out = ctl(daemon, "ops", "wait", slow, "--timeout", "0.5s")
    assert timed_out.returncode == 124
    assert "still RUNNING" in timed_out.stderr
    ctl(daemon, "ops", "cancel", slow)
    cancelled = ctl(daemon, "ops", "wait", slow)
    assert cancelled.returncode == 1 and f"{slow} CANCELLED" in cancelled.stderr


def test_watch_plain_and_json(daemon) -> None:
    name = start(daemon, steps=4, interval_s=0.05, messages=True)
    plain = ctl(daemon, "ops", "watch", short(name))
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0].startswith(f"{name}  kind test.ticker")
    assert any("| tick 4" in line for line in lines)
    assert any("100%  4/4  step 4/4" in line for line in lines)
    assert lines[-1].startswith(f"{name} SUCCEEDED")

    items = [json.loads(line) for line in ctl(daemon, "ops", "watch", name, "--json").stdout.splitlines()]
    assert "snapshot" in items[0]
    seqs = [int(item["event"]["seq"]) for item in items[1:]]
    assert seqs == list(range(1, int(items[0]["snapshot"]["lastSeq"]) + 1))
    resumed = [
        json.loads(line)
        for line in ctl(daemon, "ops", "watch", name, "--json", "--after-seq", "5").stdout.splitlines()
    ]
    assert [int(item["event"]["seq"]) for item in resumed[1:]] == seqs[5:]

    failing = start(daemon, steps=3, fail_at=2)
    failed = ctl(daemon, "ops", "watch", failing)
    assert failed.returncode == 1 and f"{failing} FAILED: ABORTED" in failed.stderr


def test_wait_and_watch_exit_1_for_an_interrupted_operation(daemon_factory) -> None:
    first = daemon_factory.start()
    name = start(first, steps=100_000, interval_s=0.05)
    assert first.stop() == 0  # the ticker stays RUNNING in the journal
    # Restarted without the test kinds, nothing can reattach the ticker: it ends INTERRUPTED.
    second = daemon_factory.start(env={"KTRDR_TEST_PLUGINS": ""})
    waited = ctl(second, "ops", "wait", short(name))
    assert waited.returncode == 1, waited.stderr
    assert "state:      INTERRUPTED (done)" in waited.stdout
    assert f"{name} INTERRUPTED: ABORTED: ktrdrd restarted while the operation was RUNNING" in waited.stderr
    assert "(reason: DAEMON_RESTARTED)" in waited.stderr
    as_json = ctl(second, "ops", "wait", name, "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["operation"]["state"] == "OPERATION_STATE_INTERRUPTED"
    for argv in (("ops", "watch", name), ("ops", "watch", name, "--json")):
        watched = ctl(second, *argv)
        assert watched.returncode == 1, (argv, watched.stderr)
        assert f"{name} INTERRUPTED: ABORTED" in watched.stderr
    assert json.loads(watched.stdout.splitlines()[0])["snapshot"]["done"] is True


def test_watch_on_a_terminal_detaches_on_ctrl_c_and_reattaches(daemon) -> None:
    name = start(daemon, steps=4000, interval_s=0.05)
    child = PtyProcess("--runtime-dir", str(daemon.runtime_dir), "ops", "watch", short(name))
    try:
        output = child.read_until(b"step 3/4000")
        assert b"\rRUNNING  ticking  [" in output and b"\x1b[K" in output
        os.kill(child.proc.pid, signal.SIGINT)
        code = child.finish()
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
    text = child.output.decode()
    assert code == 130, text
    prefix = (
        f"re-attach with: ktrdrctl --runtime-dir {daemon.runtime_dir} ops watch {short(name)} --after-seq "
    )
    assert prefix in text
    after_seq = int(text.split(prefix, 1)[1].split()[0])
    assert after_seq >= 5

    # Still running after the detach; re-attaching resumes right after the last event seen.
    reattached = subprocess.Popen(
        [
            *(sys.executable, "-m", "ktrdrctl", "--runtime-dir", str(daemon.runtime_dir)),
            *("ops", "watch", name, "--json", "--after-seq", str(after_seq)),
        ],
        cwd=REPO,
        env=ktrdrctl_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        snapshot = json.loads(reattached.stdout.readline())
        assert snapshot["snapshot"]["state"] == "OPERATION_STATE_RUNNING"
        first_event = json.loads(reattached.stdout.readline())
        assert int(first_event["event"]["seq"]) == after_seq + 1
        assert ctl(daemon, "ops", "cancel", name).returncode == 0
        assert reattached.wait(60) == 1  # the watched operation ended CANCELLED
    finally:
        if reattached.poll() is None:
            reattached.kill()


def test_unreachable_after_the_daemon_stops(daemon) -> None:
    assert daemon.stop() == 0
    gone = ctl(daemon, "ops", "list")
    assert gone.returncode == 3
    assert f"cannot reach ktrdrd at {daemon.ctl_socket}" in gone.stderr
    assert f"start it with: ktrdrd --runtime-dir {daemon.runtime_dir}" in gone.stderr


@pytest.mark.parametrize("argv", [("--help",), ("ops", "watch", "--help")])
def test_help_needs_no_daemon(argv: tuple[str, ...]) -> None:
    proc = run_ktrdrctl(*argv, KTRDR_RUNTIME_DIR="/nonexistent")
    assert proc.returncode == 0 and "Usage: ktrdrctl" in proc.stdout
