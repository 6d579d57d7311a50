"""ktrdrd.hosts.supervisor with real child processes (small Python scripts that print a listening
line): start in dependency order, restart after an exit with back-off, restart a dependent when what
it needs moved, SIGTERM then SIGKILL at stop, a child that never listens is retried."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from ktrdrd.hosts.supervisor import ChildSpec, Supervisor

TIMEOUT_S = 60.0
#: Prints {"listening": "<name>-<pid>[@<needed address>]"}, then sleeps (SIGTERM ends it unless
#: the third argument asks it to ignore SIGTERM).
CHILD = """
import json, os, signal, sys, time
name, needed, stubborn = sys.argv[1], sys.argv[2], sys.argv[3] == "stubborn"
if stubborn:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
address = f"{name}-{os.getpid()}" + (f"@{needed}" if needed else "")
print(json.dumps({"listening": address}), flush=True)
time.sleep(600)
"""


def _child(name: str, need: str = "", stubborn: bool = False) -> Callable[[Mapping[str, str]], list[str]]:
    def argv(addresses: Mapping[str, str]) -> list[str]:
        return [sys.executable, "-c", CHILD, name, addresses.get(need, ""), "stubborn" if stubborn else ""]

    return argv


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        while not check():
            await asyncio.sleep(0.02)


def test_dependency_order_restart_and_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        supervisor = Supervisor(
            [ChildSpec("sim", _child("sim")), ChildSpec("ib", _child("ib", need="sim"), needs=("sim",))],
            restart_initial_s=0.05,
            stop_timeout_s=5.0,
        )
        runner = asyncio.create_task(supervisor.run())
        await _until(lambda: len(supervisor.addresses) == 2)
        sim_address, ib_address = supervisor.addresses["sim"], supervisor.addresses["ib"]
        assert ib_address.endswith("@" + sim_address)  # started with the address of what it needs
        sim_pid, ib_pid = supervisor.pid("sim"), supervisor.pid("ib")
        assert sim_pid and ib_pid

        os.kill(ib_pid, signal.SIGKILL)  # the dependent dies: only it restarts
        await _until(lambda: supervisor.pid("ib") not in (None, ib_pid) and "ib" in supervisor.addresses)
        assert supervisor.pid("sim") == sim_pid

        ib_pid = supervisor.pid("ib")
        assert ib_pid is not None
        os.kill(sim_pid, signal.SIGKILL)  # what it needs comes back elsewhere: the dependent follows
        await _until(lambda: supervisor.addresses.get("sim") not in (None, sim_address))
        await _until(
            lambda: supervisor.addresses.get("ib", "").endswith("@" + supervisor.addresses.get("sim", "?"))
        )
        assert supervisor.addresses["sim"] != sim_address and supervisor.pid("ib") != ib_pid
        assert not _alive(ib_pid)

        pids = [supervisor.pid("sim"), supervisor.pid("ib")]
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await supervisor.stop()
        assert not any(_alive(pid) for pid in pids if pid)

    asyncio.run(scenario())


def test_a_child_ignoring_sigterm_is_killed_at_stop() -> None:
    async def scenario() -> None:
        supervisor = Supervisor([ChildSpec("x", _child("x", stubborn=True))], stop_timeout_s=0.5)
        runner = asyncio.create_task(supervisor.run())
        await _until(lambda: "x" in supervisor.addresses)
        pid = supervisor.pid("x")
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await supervisor.stop()
        assert pid is not None and not _alive(pid)

    asyncio.run(scenario())


def test_a_child_that_never_listens_is_retried_with_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = tmp_path / "attempts"

    def argv(_addresses: Mapping[str, str]) -> list[str]:
        return [sys.executable, "-c", f"open({str(attempts)!r}, 'a').write('x')"]

    async def scenario() -> None:
        supervisor = Supervisor([ChildSpec("bad", argv)], restart_initial_s=0.05, restart_max_s=0.1)
        runner = asyncio.create_task(supervisor.run())
        await _until(lambda: attempts.exists() and len(attempts.read_text()) >= 3)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await supervisor.stop()
        assert supervisor.addresses == {}

    with caplog.at_level("WARNING", logger="ktrdrd.hosts"):
        asyncio.run(scenario())
    failures = [r for r in caplog.records if r.getMessage().startswith("embedded host bad did not start (")]
    assert len(failures) >= 2 and "before it printed its listening address" in failures[0].reason  # type: ignore[attr-defined]


def test_a_spec_may_only_need_one_listed_before_it() -> None:
    with pytest.raises(ValueError, match="not listed before it"):
        Supervisor([ChildSpec("ib", _child("ib"), needs=("sim",)), ChildSpec("sim", _child("sim"))])
