"""Directories and instance locks on real files (:mod:`ktrdrd.rundirs`): what is created, what is
refused with which fix, and that a refusal changes nothing. Tests that give a file to another user
need root (as in CI) and are skipped otherwise."""

from __future__ import annotations

import os
import pwd
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdrd import rundirs

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def me() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that would strip or widen bits: created modes must not depend on it."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


# --- prepare_dir ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("loose_umask")
def test_missing_dir_and_parents_are_created_with_exactly_the_mode(tmp_path: Path) -> None:
    new = tmp_path / "a" / "b" / "run"
    assert rundirs.prepare_dir(new, 0o750) == new
    for created in (tmp_path / "a", tmp_path / "a" / "b", new):
        assert mode_of(created) == 0o750, created
    assert mode_of(tmp_path) == 0o700, "an existing parent keeps its mode"


@pytest.mark.parametrize("mode", [0o700, 0o750, 0o770, 0o2750])
def test_existing_dir_we_own_is_accepted_and_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    existing = tmp_path / "run"
    existing.mkdir()
    existing.chmod(mode)
    assert rundirs.prepare_dir(existing, 0o750) == existing
    assert mode_of(existing) == mode


@pytest.mark.parametrize("mode", [0o1777, 0o777, 0o757])
def test_dir_writable_by_others_is_refused_and_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    shared = tmp_path / "run"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(rundirs.StartupError) as refused:
        rundirs.prepare_dir(shared, 0o750)
    message = str(refused.value)
    assert f"refusing directory {shared}: it is writable by others (mode {mode:04o})" in message
    assert message.endswith(f"fix: chmod o-w {shared}")
    assert mode_of(shared) == mode, "the sticky bit and every other bit stay as they were"


@as_root
def test_dir_owned_by_another_user_is_refused_with_the_chown(tmp_path: Path) -> None:
    theirs = tmp_path / "state"
    theirs.mkdir(mode=0o750)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(rundirs.StartupError) as refused:
        rundirs.prepare_dir(theirs, 0o750)
    message = str(refused.value)
    assert f"it is owned by nobody (uid {NOBODY}), not by {me()} (uid {os.geteuid()})" in message
    assert message.endswith(f"fix: chown {me()}: {theirs}")
    assert theirs.stat().st_uid == NOBODY and mode_of(theirs) == 0o750


@as_root
def test_both_problems_are_named_with_both_fixes(tmp_path: Path) -> None:
    theirs = tmp_path / "state"
    theirs.mkdir()
    theirs.chmod(0o1777)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(rundirs.StartupError, match=r"owned by nobody.*writable by others") as refused:
        rundirs.prepare_dir(theirs, 0o750)
    assert str(refused.value).endswith(f"fix: chown {me()}: {theirs} && chmod o-w {theirs}")
    assert mode_of(theirs) == 0o1777


def test_a_path_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    for path in (tmp_path / "file", tmp_path / "link"):
        with pytest.raises(rundirs.StartupError, match=re.escape(f"{path} exists and is not a directory")):
            rundirs.prepare_dir(path, 0o750)
    assert (tmp_path / "file").read_text() == "x"


def test_a_link_to_a_good_directory_is_followed_and_its_real_path_returned(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    assert rundirs.prepare_dir(tmp_path / "link", 0o750) == real
    assert mode_of(real) == 0o700


def test_a_link_to_a_bad_or_missing_directory_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (tmp_path / "link").symlink_to(shared)
    with pytest.raises(rundirs.StartupError, match=re.escape(f"{tmp_path / 'link'} (resolves to {shared})")):
        rundirs.prepare_dir(tmp_path / "link", 0o750)
    assert mode_of(shared) == 0o1777

    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(rundirs.StartupError, match=r"cannot use directory .*dangling"):
        rundirs.prepare_dir(tmp_path / "dangling", 0o750)
    assert not (tmp_path / "nowhere").exists()


# --- InstanceLock --------------------------------------------------------------------------------


def test_lock_refuses_a_second_holder_and_names_the_pid(tmp_path: Path) -> None:
    path = tmp_path / "ktrdrd.lock"
    with rundirs.InstanceLock(path):
        assert path.read_text() == f"{os.getpid()}\n{tmp_path}\n"
        second = rundirs.InstanceLock(path)  # a new open file description conflicts
        with pytest.raises(rundirs.AlreadyRunning) as refused:
            second.acquire()
        assert str(refused.value) == (
            f"another ktrdrd (pid {os.getpid()}) is already running on {tmp_path} (it holds {path}); "
            "stop it first or use another --runtime-dir"
        )
    assert path.read_text() == "", "released: the holder record is cleared"
    with rundirs.InstanceLock(path):
        assert mode_of(path) == 0o640


def test_state_lock_names_the_holders_runtime_dir(tmp_path: Path) -> None:
    path = tmp_path / "ktrdrd.lock"
    holder_run = tmp_path / "run-a"
    with rundirs.InstanceLock(path, runtime_dir=holder_run, option="--state-dir"):
        second = rundirs.InstanceLock(path, runtime_dir=tmp_path / "run-b", option="--state-dir")
        expected = (
            f"another ktrdrd (pid {os.getpid()}, runtime dir {holder_run}) is already running on {tmp_path}"
        )
        with pytest.raises(rundirs.AlreadyRunning, match=r".*--state-dir$") as refused:
            second.acquire()
        assert str(refused.value).startswith(expected)
        assert path.read_text() == f"{os.getpid()}\n{holder_run}\n", "the refused one wrote nothing"


def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    target.chmod(0o600)
    link = tmp_path / "ktrdrd.lock"
    link.symlink_to(target)
    with pytest.raises(
        rundirs.StartupError,
        match=re.escape(f"lock file {link} is a symbolic link, which ktrdrd never follows; fix: rm {link}"),
    ):
        rundirs.InstanceLock(link).acquire()
    assert target.read_text() == "keep me\n" and mode_of(target) == 0o600

    link.unlink()
    link.symlink_to(tmp_path / "missing")  # O_CREAT must not create the link's target either
    with pytest.raises(rundirs.StartupError, match="is a symbolic link"):
        rundirs.InstanceLock(link).acquire()
    assert not (tmp_path / "missing").exists()


def test_a_lock_path_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "ktrdrd.lock").mkdir()
    os.mkfifo(tmp_path / "ktrdrd.lock")
    for path in (tmp_path / "dir" / "ktrdrd.lock", tmp_path / "ktrdrd.lock"):
        with pytest.raises(rundirs.StartupError, match=re.escape(f"lock file {path} is not a regular file")):
            rundirs.InstanceLock(path).acquire()


def test_a_hard_linked_lock_file_is_refused_and_left_as_is(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_text("someone's data\n")
    os.link(other, tmp_path / "ktrdrd.lock")
    with pytest.raises(rundirs.StartupError, match="has 2 hard links"):
        rundirs.InstanceLock(tmp_path / "ktrdrd.lock").acquire()
    assert other.read_text() == "someone's data\n"


@as_root
def test_a_lock_file_owned_by_another_user_is_refused_and_left_as_is(tmp_path: Path) -> None:
    path = tmp_path / "ktrdrd.lock"
    path.write_text("123\n")
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(rundirs.StartupError) as refused:
        rundirs.InstanceLock(path).acquire()
    assert str(refused.value) == (
        f"lock file {path} is owned by nobody (uid {NOBODY}), not by {me()} (uid {os.geteuid()}) "
        f"that ktrdrd runs as; fix: chown {me()}: {path}"
    )
    assert path.read_text() == "123\n" and path.stat().st_uid == NOBODY


# --- claimed_dirs: the start order ---------------------------------------------------------------


def test_claimed_dirs_creates_locks_both_and_releases_both(tmp_path: Path) -> None:
    run, state = tmp_path / "run", tmp_path / "state"
    with rundirs.claimed_dirs(run, state) as dirs:
        assert (dirs.runtime_dir, dirs.state_dir) == (run, state)
        assert mode_of(run) == mode_of(state) == 0o750
        assert (
            sorted(p.name for p in run.iterdir())
            == sorted(p.name for p in state.iterdir())
            == ["ktrdrd.lock"]
        )
        record = f"{os.getpid()}\n{run}\n"
        assert (run / "ktrdrd.lock").read_text() == (state / "ktrdrd.lock").read_text() == record
        refused = pytest.raises(rundirs.AlreadyRunning, match=re.escape(f"is already running on {state} "))
        with refused, rundirs.claimed_dirs(tmp_path / "run2", state):
            pass
        assert (tmp_path / "run2" / "ktrdrd.lock").read_text() == "", (
            "the refused claim let go of its runtime dir"
        )
    assert (run / "ktrdrd.lock").read_text() == (state / "ktrdrd.lock").read_text() == ""


def test_nothing_is_prepared_past_a_held_runtime_dir(tmp_path: Path) -> None:
    run = tmp_path / "run"
    refused = pytest.raises(rundirs.AlreadyRunning, match=r"use another --runtime-dir$")
    with (
        rundirs.claimed_dirs(run, tmp_path / "state"),
        refused,
        rundirs.claimed_dirs(run, tmp_path / "state2"),
    ):
        pass
    assert not (tmp_path / "state2").exists(), "the state dir is prepared only once the runtime dir is locked"


def test_a_refused_state_dir_releases_the_runtime_dir(tmp_path: Path) -> None:
    shared = tmp_path / "state"
    shared.mkdir()
    shared.chmod(0o1777)
    with (
        pytest.raises(rundirs.StartupError, match="writable by others"),
        rundirs.claimed_dirs(tmp_path / "run", shared),
    ):
        pass
    assert (tmp_path / "run" / "ktrdrd.lock").read_text() == ""
    assert list(shared.iterdir()) == [] and mode_of(shared) == 0o1777


def test_one_directory_for_both_roles_is_locked_once(tmp_path: Path) -> None:
    with rundirs.claimed_dirs(tmp_path / "both", tmp_path / "both") as dirs:
        assert dirs.runtime_dir == dirs.state_dir == tmp_path / "both"
        assert (tmp_path / "both" / "ktrdrd.lock").read_text().startswith(f"{os.getpid()}\n")
