"""Runtime and state directories, the single-instance lock, and socket file handling.

The runtime directory (sockets, lock) is the access gate: mode 0750, so only the daemon's user and
group reach the sockets inside (0660). The lock (``ktrdrd.lock``, an ``flock``) is taken *before*
any socket is bound, because grpcio silently unlinks and takes over a live socket: with the lock
held, any socket file already in the directory is a leftover of a crash and is removed.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

# The file names are wire facts (shared with ktrdrctl); re-exported for the daemon's start-up code.
from ktrdr.wire import CTL_SOCKET as CTL_SOCKET
from ktrdr.wire import DB_NAME as DB_NAME
from ktrdr.wire import GRPC_SOCKET as GRPC_SOCKET
from ktrdr.wire import LOCK_NAME as LOCK_NAME

RUNTIME_DIR_MODE = 0o750
STATE_DIR_MODE = 0o750
SOCKET_MODE = 0o660


class StartupError(Exception):
    """A directory, lock or socket problem that stops the daemon from starting (clear message)."""


class AlreadyRunning(StartupError):
    """Another ktrdrd holds the lock on this runtime directory."""


def prepare_dir(path: Path, mode: int) -> None:
    """Create ``path`` (and parents) with ``mode``; fix the mode of an existing directory we own.

    A directory owned by someone else keeps its mode (under systemd, ``RuntimeDirectoryMode`` rules).
    Raises StartupError when the path is not a directory or cannot be created.
    """
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        info = path.stat()
    except FileExistsError:
        raise StartupError(f"{path} exists and is not a directory") from None
    except OSError as exc:
        raise StartupError(f"cannot create directory {path}: {exc.strerror}") from None
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)  # mkdir's mode is filtered by the umask; existing dirs keep theirs


class InstanceLock:
    """An exclusive, non-blocking ``flock`` on ``<runtime dir>/ktrdrd.lock`` holding our pid.

    The file is never unlinked (unlinking a lock file lets two processes lock different inodes);
    the kernel drops the lock when the process dies, so a crash never leaves it held.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder's pid."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another ktrdrd (pid {holder}) is already running on {self.path.parent} "
                f"(it holds {self.path}); stop it first or use another --runtime-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Clear the pid and drop the lock; idempotent."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def remove_stale_socket(path: Path) -> bool:
    """Remove a socket file left at ``path`` (call only while holding the lock). True if removed.

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
