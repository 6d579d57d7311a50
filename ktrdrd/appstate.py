"""What the running daemon knows about itself, for ``SystemService/GetInfo`` and systemd's STATUS line.

One :class:`AppState` is made per start by :mod:`ktrdrd.app` and handed to the servers. Services
read it; only the daemon's lifecycle and host supervisors (later issues) write it, on the loop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ktrdr import __version__


@dataclass(frozen=True)
class HostStatus:
    """A host as the daemon sees it (mirrors ``ktrdr.daemon.v1.HostInfo``).

    ``kind`` is ``training`` or ``marketdata``; ``state`` is ``CONNECTING``, ``READY`` or
    ``UNAVAILABLE``; ``message`` says why it is not READY; ``since`` is epoch seconds (when it entered
    ``state``); ``version`` is what the host reports ("" until asked); ``round_trip_s`` is the
    duration of the last health check in seconds (None until one answered); ``simulated``: the host
    serves simulated data (the embedded IB host on the gateway simulator).
    """

    name: str
    kind: str
    address: str
    state: str
    message: str = ""
    since: float = field(default_factory=time.time)
    version: str = ""
    round_trip_s: float | None = None
    simulated: bool = False


@dataclass
class AppState:
    """Identity, paths and dependency states of this daemon instance.

    ``instance_id`` is a new UUID per start (clients detect restarts by it); ``start_time`` is epoch
    seconds; ``hosts`` maps a host name to its :class:`HostStatus` (empty until the host supervisors
    of later issues fill it); ``serving`` turns False when shutdown begins.
    """

    runtime_dir: Path
    state_dir: Path
    grpc_socket: Path
    ctl_socket: Path
    db_path: Path
    version: str = __version__
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    start_time: float = field(default_factory=time.time)
    pid: int = 0
    hosts: dict[str, HostStatus] = field(default_factory=dict)
    serving: bool = False
    _started_monotonic: float = field(default_factory=time.monotonic, repr=False)
    _listeners: list[Callable[[AppState], None]] = field(default_factory=list, repr=False)

    @property
    def uptime_s(self) -> float:
        """Seconds since this instance started (monotonic clock)."""
        return time.monotonic() - self._started_monotonic

    def set_host(self, status: HostStatus) -> None:
        """Record a host's status; tell listeners (the systemd STATUS line) when its state changed."""
        previous = self.hosts.get(status.name)
        self.hosts[status.name] = status
        if previous is None or previous.state != status.state:
            for listener in self._listeners:
                listener(self)

    def on_change(self, listener: Callable[[AppState], None]) -> None:
        self._listeners.append(listener)

    def status_line(self) -> str:
        """One line for ``systemctl status``: serving state, socket, host states."""
        hosts = ", ".join(f"{n} {h.state.lower()}" for n, h in sorted(self.hosts.items())) or "none"
        return f"{'serving' if self.serving else 'stopping'} on {self.grpc_socket}; hosts: {hosts}"
