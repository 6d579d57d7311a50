"""Run a command that dies with its parent: ``python -m ktrdrd.hosts.tether PARENT_PID -- ARGV…``.

The supervisor (:mod:`ktrdrd.hosts.supervisor`) starts every local host through this module. It asks
Linux to send it SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``, which survives
``execve``), checks that the parent is still ``PARENT_PID`` (it may have died before the request
took effect: then exit 1 at once), and replaces itself with ``ARGV`` (same pid). So even a
``kill -9`` of ktrdrd stops its hosts, which then remove their sockets as on any SIGTERM.

Standard library only, imported nothing else: it runs in front of every host start.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def tether(parent_pid: int) -> None:
    """Ask for SIGTERM when the parent dies; exit 1 if it is already gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise SystemExit(f"tether: prctl(PR_SET_PDEATHSIG) failed: {os.strerror(errno)}")
    if os.getppid() != parent_pid:
        raise SystemExit(1)


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        raise SystemExit("usage: python -m ktrdrd.hosts.tether PARENT_PID -- PROGRAM [ARGS…]")
    tether(int(argv[0]))
    os.execv(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
