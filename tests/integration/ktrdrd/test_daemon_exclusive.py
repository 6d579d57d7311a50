"""ktrdrd as a real process keeps its directories to itself: one daemon per state dir as per runtime
dir, lock files that are links or someone else's are refused untouched, and directories that are
someone else's or writable by others are refused with the fix, their modes never changed. Tests that
give a file to another user need root (as in CI) and are skipped otherwise."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.integration.conftest import Daemon, DaemonFactory

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
ROLES = ["runtime_dir", "state_dir"]


def refusal(daemon: Daemon) -> str:
    """The daemon's exit status must be 1 with no READY; returns its one error line."""
    assert daemon.proc.wait(60) == 1, daemon.logs()
    assert not daemon.notify.seen("READY")
    errors = [r["msg"] for r in daemon.log_records() if r.get("level") == "error"]
    assert len(errors) == 1, daemon.logs()
    return errors[0]


def assert_untouched_beyond_locks(daemon: Daemon) -> None:
    """No socket bound, no journal created: nothing but lock files was made."""
    assert not daemon.grpc_socket.exists() and not daemon.ctl_socket.exists()
    assert not daemon.db_path.exists()


def dir_for(factory: DaemonFactory, role: str) -> Path:
    return factory.base / ("run" if role == "runtime_dir" else "state")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def me() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def test_second_daemon_on_the_same_state_dir_refuses_and_the_first_keeps_serving(
    daemon: Daemon, daemon_factory: DaemonFactory
) -> None:
    before = daemon.info()
    journal = daemon.db_path.stat()
    other_run = daemon_factory.base / "run2"
    second = daemon_factory.spawn(runtime_dir=other_run, state_dir=daemon.state_dir)
    message = refusal(second)
    assert message == (
        f"ktrdrd cannot start: another ktrdrd (pid {daemon.proc.pid}, runtime dir {daemon.runtime_dir}) "
        f"is already running on {daemon.state_dir} (it holds {daemon.state_dir / 'ktrdrd.lock'}); "
        "stop it first or use another --state-dir"
    )
    assert sorted(p.name for p in other_run.iterdir()) == ["ktrdrd.lock"], "no socket bound"
    assert (other_run / "ktrdrd.lock").read_text() == "", "its runtime dir lock was released"
    lock_record = f"{daemon.proc.pid}\n{daemon.runtime_dir}\n"
    assert (daemon.state_dir / "ktrdrd.lock").read_text() == lock_record
    assert daemon.db_path.stat().st_mtime_ns == journal.st_mtime_ns
    assert daemon.info()["instanceId"] == before["instanceId"]
    assert daemon.ctl("ktrdr.daemon.v1.OperationsService/ListOperations", {})["operations"] == []


@pytest.mark.parametrize("role", ROLES)
def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(
    daemon_factory: DaemonFactory, role: str
) -> None:
    directory = dir_for(daemon_factory, role)
    directory.mkdir(mode=0o750)
    target = daemon_factory.base / "precious"
    target.write_text("keep me\n")
    target.chmod(0o600)
    (directory / "ktrdrd.lock").symlink_to(target)
    daemon = daemon_factory.spawn()
    lock = directory / "ktrdrd.lock"
    expected = f"ktrdrd cannot start: lock file {lock} is a symbolic link, which ktrdrd never follows; fix: rm {lock}"
    assert refusal(daemon) == expected
    assert target.read_text() == "keep me\n" and mode_of(target) == 0o600
    assert lock.is_symlink()
    assert_untouched_beyond_locks(daemon)


@as_root
@pytest.mark.parametrize("role", ROLES)
def test_a_lock_file_owned_by_another_user_is_refused(daemon_factory: DaemonFactory, role: str) -> None:
    directory = dir_for(daemon_factory, role)
    directory.mkdir(mode=0o750)
    lock = directory / "ktrdrd.lock"
    lock.write_text("")
    os.chown(lock, NOBODY, NOBODY)
    message = refusal(daemon_factory.spawn())
    assert f"lock file {lock} is owned by nobody (uid {NOBODY})" in message
    assert message.endswith(f"fix: chown {me()}: {lock}")
    assert lock.stat().st_uid == NOBODY and lock.read_text() == ""
    assert_untouched_beyond_locks(daemon_factory.daemons[-1])


@pytest.mark.parametrize("role", ROLES)
def test_an_existing_1777_directory_is_refused_and_keeps_its_mode(
    daemon_factory: DaemonFactory, role: str
) -> None:
    directory = dir_for(daemon_factory, role)
    directory.mkdir()
    directory.chmod(0o1777)
    message = refusal(daemon_factory.spawn())
    assert message == (
        f"ktrdrd cannot start: refusing directory {directory}: it is writable by others (mode 1777); "
        f"fix: chmod o-w {directory}"
    )
    assert mode_of(directory) == 0o1777
    assert list(directory.iterdir()) == [], "nothing created in a refused directory"
    assert_untouched_beyond_locks(daemon_factory.daemons[-1])


@as_root
@pytest.mark.parametrize("role", ROLES)
def test_a_directory_owned_by_another_user_is_refused_with_the_fix(
    daemon_factory: DaemonFactory, role: str
) -> None:
    directory = dir_for(daemon_factory, role)
    directory.mkdir(mode=0o750)
    os.chown(directory, NOBODY, NOBODY)
    message = refusal(daemon_factory.spawn())
    assert f"refusing directory {directory}: it is owned by nobody (uid {NOBODY})" in message
    assert message.endswith(f"fix: chown {me()}: {directory}")
    assert directory.stat().st_uid == NOBODY and mode_of(directory) == 0o750
    assert list(directory.iterdir()) == []


def test_existing_0700_directories_we_own_are_used_and_stay_0700(daemon_factory: DaemonFactory) -> None:
    for role in ROLES:
        directory = dir_for(daemon_factory, role)
        directory.mkdir()
        directory.chmod(0o700)
    daemon = daemon_factory.start()
    assert daemon.info()["stateDir"] == str(daemon.state_dir)
    assert mode_of(daemon.runtime_dir) == mode_of(daemon.state_dir) == 0o700
    assert daemon.stop() == 0
    assert mode_of(daemon.runtime_dir) == mode_of(daemon.state_dir) == 0o700
