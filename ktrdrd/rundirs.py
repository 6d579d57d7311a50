"""Runtime and state directories, the two instance locks, and socket file handling.

The runtime directory (sockets, lock) is the access gate: mode 0750, so only the daemon's user and
group reach the sockets inside (0660). The state directory holds the journal (``ktrdr.db``) and
what the daemon keeps between runs. Each holds a lock file, ``ktrdrd.lock``, on which the daemon
takes an exclusive ``flock``: one daemon per runtime dir (grpcio silently unlinks and takes over a
live socket) and one daemon per state dir (two daemons on one journal corrupt each other's
operations).

Start order, which :func:`claimed_dirs` follows and releases in reverse:

1. prepare the runtime dir (:func:`prepare_dir`), 2. lock it, 3. prepare the state dir, 4. lock it;
only then anything else — stale sockets removed, sockets bound, journal opened. Nothing is created
inside a directory before its lock is held (the lock file itself excepted), so a daemon refused at
any step leaves the directories of the daemon that holds them untouched. With both locks held, a
socket file already in the runtime dir is a leftover of a crash and is removed.

Directory rules (:func:`prepare_dir`): a missing directory is created, with its missing parents,
with exactly the given mode whatever the umask; an existing directory keeps its mode, always; a
directory owned by another user than the daemon's, or writable by others (``mode & 0o002``, sticky
bit or not), is refused with the ``chown``/``chmod`` that fixes it. A symbolic link to a directory
is followed: the checks apply to the directory it points to, and the daemon then uses that real
path, so re-pointing the link later changes nothing for a running daemon.

Lock files (:class:`InstanceLock`) are opened without following a symbolic link and must be a
regular file with one link, owned by the daemon's user; they hold ``"<pid>\\n<runtime dir>\\n"`` of
the holder so that a refused daemon can say who holds the directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shlex
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ktrdr.wire import LOCK_NAME

RUNTIME_DIR_MODE = 0o750
STATE_DIR_MODE = 0o750
SOCKET_MODE = 0o660


class StartupError(Exception):
    """A directory, lock or socket problem that stops the daemon from starting (clear message)."""


class AlreadyRunning(StartupError):
    """Another ktrdrd holds the lock on this runtime or state directory."""


def prepare_dir(path: Path, mode: int) -> Path:
    """Make sure ``path`` is a directory the daemon may use, and return its real path.

    Missing: created with its missing parents, each with exactly ``mode`` (the umask does not apply).
    Existing: its mode is never changed. A symbolic link is followed; the checks apply to the
    directory it points to. Raises StartupError, with the ``chown``/``chmod`` that fixes it, for a
    path that is not a directory, a directory owned by another user than the effective uid, or one
    writable by others (``mode & 0o002``, sticky bit or not). Blocking file-system calls: for startup.
    """
    for missing in reversed(_missing_dirs(path)):
        _make_dir(missing, mode)
    try:
        real = Path(os.path.realpath(path, strict=True))
        info = real.stat()
    except OSError as exc:
        raise StartupError(f"cannot use directory {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StartupError(f"{path} exists and is not a directory")
    euid = os.geteuid()
    problems: list[tuple[str, str]] = []  # (what is wrong, the command that fixes it)
    if info.st_uid != euid:
        owner = f"it is owned by {_user(info.st_uid)}, not by {_user(euid)} that ktrdrd runs as"
        problems.append((owner, _chown_fix(real)))
    if info.st_mode & stat.S_IWOTH:
        mode_now = stat.S_IMODE(info.st_mode)
        problems.append(
            (f"it is writable by others (mode {mode_now:04o})", f"chmod o-w {shlex.quote(str(real))}")
        )
    if problems:
        shown = str(path) if real == path else f"{path} (resolves to {real})"
        whats, fixes = zip(*problems, strict=True)
        raise StartupError(f"refusing directory {shown}: {'; '.join(whats)}; fix: {' && '.join(fixes)}")
    return real


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist (not even as a dangling link), deepest first."""
    missing = []
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _make_dir(path: Path, mode: int) -> None:
    """Create one directory with exactly ``mode``; one created meanwhile by another is left as is."""
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return  # an existing directory now: checked as such, its mode kept
    except OSError as exc:
        raise StartupError(f"cannot create directory {path}: {exc.strerror}") from None
    try:  # mkdir's mode went through the umask; set it on what we created, never through a link
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StartupError(f"cannot set the mode of new directory {path}: {exc.strerror}") from None


def _user(uid: int) -> str:
    """``name (uid N)``, or ``uid N`` for a uid without a passwd entry."""
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _chown_fix(path: Path) -> str:
    """The command that gives ``path`` to the daemon's user (and that user's group)."""
    euid = os.geteuid()
    try:
        owner = f"{pwd.getpwuid(euid).pw_name}:"
    except KeyError:
        owner = str(euid)
    return f"chown {owner} {shlex.quote(str(path))}"


class InstanceLock:
    """An exclusive, non-blocking ``flock`` on a ``ktrdrd.lock`` file that records its holder.

    The holder writes ``"<pid>\\n<runtime dir>\\n"`` into the file, so a daemon refused by it can
    name both. ``runtime_dir`` is the runtime dir to record (default: the lock file's directory, as
    for the runtime-dir lock); ``option`` is the ktrdrd option a refused daemon is told to change.
    The file is opened without following a symbolic link and must be a regular file with one link,
    owned by the effective uid: a lock path planted by someone else is refused, never written.
    It is never unlinked (unlinking a lock file lets two processes lock different inodes); the
    kernel drops the lock when the process dies, so a crash never leaves it held. A context manager:
    acquire on enter, release on exit.
    """

    def __init__(self, path: Path, *, runtime_dir: Path | None = None, option: str = "--runtime-dir") -> None:
        self.path = path
        self.runtime_dir = runtime_dir if runtime_dir is not None else path.parent
        self.option = option
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise AlreadyRunning naming the holder, or StartupError for a bad file."""
        fd = self._open()
        try:
            problem = _lock_file_problem(self.path, os.fstat(fd))
            if problem:
                raise StartupError(problem)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0)
            os.close(fd)
            raise AlreadyRunning(self._held_by(holder)) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, os.fsencode(f"{os.getpid()}\n{self.runtime_dir}\n"), 0)
        self._fd = fd

    def release(self) -> None:
        """Clear the holder record and drop the lock; idempotent."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
        try:
            return os.open(self.path, flags, 0o640)
        except OSError as exc:
            try:
                problem = _lock_file_problem(self.path, self.path.lstat())
            except OSError:
                problem = None
            raise StartupError(problem or f"cannot open lock file {self.path}: {exc.strerror}") from None

    def _held_by(self, record: bytes) -> str:
        lines = record.decode("utf-8", "replace").splitlines()
        pid = lines[0].strip() if lines and lines[0].strip().isdigit() else "unknown"
        holder_dir = lines[1].strip()[:256] if len(lines) > 1 else ""
        who = f"pid {pid}"
        if holder_dir and holder_dir != str(self.path.parent):
            who += f", runtime dir {holder_dir}"
        return (
            f"another ktrdrd ({who}) is already running on {self.path.parent} (it holds {self.path}); "
            f"stop it first or use another {self.option}"
        )


def _lock_file_problem(path: Path, info: os.stat_result) -> str | None:
    """Why the file at ``path`` (its ``lstat``/``fstat``) cannot be our lock file, with the fix."""
    quoted = shlex.quote(str(path))
    if stat.S_ISLNK(info.st_mode):
        return f"lock file {path} is a symbolic link, which ktrdrd never follows; fix: rm {quoted}"
    if not stat.S_ISREG(info.st_mode):
        return f"lock file {path} is not a regular file; fix: move it away (mv {quoted} {quoted}.old)"
    if info.st_uid != os.geteuid():
        owner, me = _user(info.st_uid), _user(os.geteuid())
        return (
            f"lock file {path} is owned by {owner}, not by {me} that ktrdrd runs as; fix: {_chown_fix(path)}"
        )
    if info.st_nlink != 1:
        return f"lock file {path} has {info.st_nlink} hard links; fix: rm {quoted} (ktrdrd creates a new one)"
    return None


@dataclass(frozen=True)
class ClaimedDirs:
    """The runtime and state directories, prepared and locked, as real paths (links resolved)."""

    runtime_dir: Path
    state_dir: Path


@contextlib.contextmanager
def claimed_dirs(runtime_dir: Path, state_dir: Path) -> Iterator[ClaimedDirs]:
    """Prepare and lock both directories in the module's start order; release them in reverse.

    Runtime dir prepared → locked → state dir prepared → locked. Raises StartupError (AlreadyRunning
    when another daemon holds either lock) before yielding, having released what it took. When both
    paths are one directory, its one lock covers both. The daemon should use the yielded paths.
    """
    with contextlib.ExitStack() as held:
        run = prepare_dir(runtime_dir, RUNTIME_DIR_MODE)
        held.enter_context(InstanceLock(run / LOCK_NAME, runtime_dir=run, option="--runtime-dir"))
        state = prepare_dir(state_dir, STATE_DIR_MODE)
        if not os.path.samefile(run, state):
            held.enter_context(InstanceLock(state / LOCK_NAME, runtime_dir=run, option="--state-dir"))
        yield ClaimedDirs(runtime_dir=run, state_dir=state)


def remove_stale_socket(path: Path) -> bool:
    """Remove a socket file left at ``path`` (call only while holding the locks). True if removed.

    Anything that is not a socket is left alone and raises StartupError: we never delete a file we
    did not create.
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(info.st_mode):
        raise StartupError(f"{path} exists and is not a socket; refusing to replace it")
    path.unlink()
    return True


def remove_socket(path: Path) -> None:
    """Remove our own socket file at shutdown, if it is still there."""
    try:
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
    except FileNotFoundError:
        pass
