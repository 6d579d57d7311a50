"""The host's side of a warm worker (:mod:`hostd.training.worker`): start it, talk to it, see it die.

A :class:`Worker` starts its process with the ``spawn`` context and a thread that reads the pipe
and hands every message to ``on_message`` (called on the host's event loop through
``call_soon_threadsafe``). When the pipe ends, the thread waits for the process and sends
``("exit", description)``: ``None`` for a clean exit, otherwise ``killed by SIGKILL`` or
``exited with status N`` followed by the tail of the worker's stderr.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostd.training.worker import worker_main

STDERR_TAIL_BYTES = 2000
_CTX = multiprocessing.get_context("spawn")
#: Signals a worker dies of only when something outside it kills it (the kernel's OOM killer sends
#: SIGKILL; a person ``kill``): its job was lost, not failed by its own code. A crash of its own
#: (SIGSEGV, SIGABRT, an exit status) is not in this set.
OUTSIDE_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM})


def killed_from_outside(exitcode: int | None) -> bool:
    """Whether a process's exit code (``multiprocessing``'s: ``-N`` for signal N) is a death by
    one of :data:`OUTSIDE_SIGNALS`."""
    return exitcode is not None and exitcode < 0 and -exitcode in OUTSIDE_SIGNALS


def exit_description(exitcode: int | None, stderr_path: Path) -> str | None:
    """None for a clean exit; else how the process ended, with its stderr's last lines."""
    if exitcode == 0:
        return None
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        how = f"worker killed by {name}"
    else:
        how = f"worker exited with status {exitcode}"
    tail = stderr_tail(stderr_path)
    return f"{how}; its stderr ends: {tail}" if tail else how


def stderr_tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - STDERR_TAIL_BYTES))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


class Worker:
    """One worker process (see the module docstring). ``info``: its ready message, once received."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_message: Callable[[Worker, tuple[str, Any]], None],
        *,
        device: str,
        threads: int,
        stderr_path: Path,
    ) -> None:
        self.loop = loop
        self.on_message = on_message
        self.stderr_path = stderr_path
        self.info: dict[str, Any] | None = None
        self._conn, child = _CTX.Pipe()
        self.process = _CTX.Process(
            target=worker_main, args=(child, device, threads, str(stderr_path)), name="ktrdr-train-worker"
        )
        self._child = child
        self._send_lock = threading.Lock()

    def start(self) -> None:
        """Start the process and the reader thread (blocking for the spawn: call from a thread)."""
        self.process.start()
        self._child.close()
        threading.Thread(target=self._read, name=f"worker-{self.process.pid}", daemon=True).start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def send(self, message: tuple[str, Any]) -> bool:
        """Send a message; False when the worker is gone."""
        try:
            with self._send_lock:
                self._conn.send(message)
        except (OSError, ValueError):
            return False
        return True

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            if not self._post(message):
                return
        self.process.join()
        described = exit_description(self.process.exitcode, self.stderr_path)
        self._conn.close()
        self._post(("exit", described))

    def _post(self, message: tuple[str, Any]) -> bool:
        """Hand a message to the loop; False once the loop is closed (the host is exiting)."""
        try:
            self.loop.call_soon_threadsafe(self.on_message, self, message)
        except RuntimeError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the process (host shutdown after the grace)."""
        if self.process.is_alive():
            self.process.kill()
