"""Where the daemon's sockets are: the same runtime-dir rules as ktrdrd.

Order: ``--runtime-dir`` / ``KTRDR_RUNTIME_DIR`` (click resolves both into one option value), then
the defaults — the daemon's own (:func:`ktrdr.wire.default_runtime_dir`: ``$XDG_RUNTIME_DIR/ktrdr``
for a normal user, ``/run/ktrdr``, the systemd service's RuntimeDirectory, for root). A normal user
whose own default has no ``ctl.sock`` but ``/run/ktrdr/ctl.sock`` exists talks to the system
service. Only ``os.path`` is used (cheap imports).
"""

from __future__ import annotations

import os

from ktrdr import wire


def default_runtime_dirs() -> list[str]:
    """Candidate runtime dirs, most specific first (the daemon's default for this user first)."""
    own = wire.default_runtime_dir(os.environ, os.geteuid())
    if own is None:  # no XDG_RUNTIME_DIR: no user default (as for ktrdrd), only the system service
        return [wire.SYSTEM_RUNTIME_DIR]
    return [own] if own == wire.SYSTEM_RUNTIME_DIR else [own, wire.SYSTEM_RUNTIME_DIR]


def resolve_runtime_dir(option: str | None) -> str:
    """The runtime dir to use: ``option`` when given, else the first default holding a ctl.sock.

    With no socket anywhere it returns the first default, so the error names the daemon's default.
    """
    if option:
        return os.path.abspath(os.path.expanduser(option))
    candidates = default_runtime_dirs()
    for candidate in candidates:
        if os.path.exists(os.path.join(candidate, wire.CTL_SOCKET)):
            return candidate
    return candidates[0]


def ctl_socket(runtime_dir: str) -> str:
    """Path of the ctl socket inside ``runtime_dir``."""
    return os.path.join(runtime_dir, wire.CTL_SOCKET)


def start_command(runtime_dir: str) -> str:
    """The shell command that starts a daemon serving ``runtime_dir``."""
    if runtime_dir == wire.SYSTEM_RUNTIME_DIR:
        return "systemctl start ktrdrd" if os.geteuid() == 0 else "sudo systemctl start ktrdrd"
    import shlex  # only this message needs it

    return f"ktrdrd --runtime-dir {shlex.quote(runtime_dir)}"
