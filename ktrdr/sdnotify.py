"""Pure-Python ``sd_notify``: readiness, status, watchdog and stopping messages to systemd.

Protocol (sd_notify(3)): one datagram of newline-separated ``KEY=VALUE`` lines sent to the
``AF_UNIX``/``SOCK_DGRAM`` socket named by ``$NOTIFY_SOCKET``; a leading ``@`` means the abstract
namespace. Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op.

The watchdog pings come from a ``loop.call_later`` chain on the daemon's event loop, at half of
``$WATCHDOG_USEC``: a blocked loop stops the pings and systemd restarts the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import MutableMapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends notifications to the socket named in the environment at construction.

    The ``NOTIFY_SOCKET``/``WATCHDOG_*`` variables are removed from ``env`` so that child processes
    (hosts started by the daemon) do not inherit them.
    """

    def __init__(self, env: MutableMapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.pop("NOTIFY_SOCKET", "")
        usec = env.pop("WATCHDOG_USEC", "")
        pid = env.pop("WATCHDOG_PID", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.watchdog_interval_s: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval_s = int(usec) / 2e6

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *lines: str) -> bool:
        """Send one datagram with ``lines``; False when disabled or the send failed (logged, never raised)."""
        if not self._address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify failed", extra={"error": str(exc), "lines": list(lines)})
            return False
        return True

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def stopping(self, status: str) -> None:
        self.notify("STOPPING=1", f"STATUS={status}")

    def start_watchdog(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Ping ``WATCHDOG=1`` every half watchdog period from ``loop``; False when not requested."""
        interval_s = self.watchdog_interval_s
        if interval_s is None or not self.enabled:
            return False

        def ping() -> None:
            self.notify("WATCHDOG=1")
            self._watchdog = loop.call_later(interval_s, ping)

        ping()
        return True

    def close(self) -> None:
        """Stop the watchdog chain and close the socket."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
