"""Local hosts the daemon starts, keeps running and stops: the embedded default.

``supervisor = Supervisor([ChildSpec(...), ...])``; ``await supervisor.run()`` (a background task
until cancelled) starts each child once the children it needs have an address, and restarts a child
that exits, after an exponential back-off (:data:`RESTART_INITIAL_S` doubling to
:data:`RESTART_MAX_S`; reset when the child had run :data:`STABLE_S` seconds), logging each exit.
``supervisor.stop_restarting()`` when the daemon begins to stop; ``await supervisor.stop()`` (at
daemon shutdown, after ``run`` was cancelled) sends SIGTERM to every child, dependents first, and
SIGKILL to those still running after ``stop_timeout_s``.

A child is a host command that prints one JSON line ``{"listening": ADDRESS}`` on stdout once it
serves (``hostd ib``, ``hostd gateway-sim``, later ``hostd training``); that address is what its
dependents are started with. ``ChildSpec.argv(addresses)`` builds the command from the addresses
of the children named in ``needs`` — and of the child itself from its previous run, so a child
that chose a free TCP port keeps it when restarted (its dependents need not restart). When a
child it needs comes back on another address, a dependent is restarted on the new one.

Children die with the daemon: each is started through :mod:`ktrdrd.hosts.tether` (SIGTERM when the
daemon dies, even by ``kill -9``), in a session of its own (a terminal's signals reach only the
daemon). Before each start a stale unix socket the child will bind
(``ChildSpec.socket``) is removed. Children write their logs to the daemon's stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ktrdrd import rundirs
from ktrdrd.hosts.backoff import Backoff

log = logging.getLogger("ktrdrd.hosts")

RESTART_INITIAL_S = 0.5
RESTART_MAX_S = 30.0
#: A child that ran this long before exiting restarts after the initial delay again.
STABLE_S = 30.0
#: Seconds a child has to print its listening line.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ChildSpec:
    """One supervised host. ``argv(addresses)`` gets the address of each child in ``needs`` (and
    of this child's previous run under its own ``name``, when it had one) and returns the command.
    ``socket``: a unix socket file the child binds (a stale one is removed before each start)."""

    name: str
    argv: Callable[[Mapping[str, str]], list[str]]
    needs: tuple[str, ...] = ()
    socket: Path | None = None


class StartFailed(Exception):
    """A child exited or stayed silent before printing its listening line."""


class Supervisor:
    """Runs :class:`ChildSpec` s as child processes (see the module docstring). A spec may only need
    specs listed before it."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        restart_initial_s: float = RESTART_INITIAL_S,
        restart_max_s: float = RESTART_MAX_S,
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        for index, spec in enumerate(specs):
            unknown = set(spec.needs) - {s.name for s in specs[:index]}
            if unknown:
                raise ValueError(f"{spec.name} needs {sorted(unknown)}, which are not listed before it")
        self.specs = tuple(specs)
        self._restart = (restart_initial_s, restart_max_s)
        self._stop_timeout_s = stop_timeout_s
        #: The address of each child that is serving now.
        self.addresses: dict[str, str] = {}
        self._last_address: dict[str, str] = {}
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._changed = asyncio.Event()
        self._stopping = False

    def pid(self, name: str) -> int | None:
        """The pid of the running child ``name`` (None when it is not running)."""
        proc = self._procs.get(name)
        return proc.pid if proc is not None and proc.returncode is None else None

    async def run(self) -> None:
        """Start and keep every child until cancelled (children keep running: see :meth:`stop`)."""
        async with asyncio.TaskGroup() as group:
            for spec in self.specs:
                group.create_task(self._keep(spec), name=f"supervise-{spec.name}")

    def stop_restarting(self) -> None:
        """From now on a child that exits stays stopped (the daemon is stopping; under systemd the
        whole control group gets SIGTERM at once)."""
        self._stopping = True

    async def stop(self) -> None:
        """SIGTERM every child (dependents first); SIGKILL after the stop timeout. Call after
        :meth:`run` was cancelled."""
        self._stopping = True
        for spec in reversed(self.specs):
            proc = self._procs.pop(spec.name, None)
            if proc is not None:
                await self._terminate(spec.name, proc)
        self.addresses.clear()

    # -- one child ------------------------------------------------------------------------------

    async def _keep(self, spec: ChildSpec) -> None:
        backoff = Backoff(*self._restart)
        while True:
            needed = await self._addresses_of(spec.needs)
            started = time.monotonic()
            try:
                proc, address = await self._start(spec, needed)
            except StartFailed as exc:
                if self._stopping:
                    return
                self._last_address.pop(spec.name, None)  # its old port may be taken: pick a new one
                delay = backoff.next()
                log.warning(
                    "embedded host %s did not start (%s); retrying in %.2f s",
                    spec.name, exc, delay,
                    extra={"host": spec.name, "reason": str(exc), "retry_in_s": delay},
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            self.addresses[spec.name] = self._last_address[spec.name] = address
            self._announce()
            log.info("embedded host started", extra={"host": spec.name, "pid": proc.pid, "address": address})
            moved = await self._until_exit_or_moved(proc, needed)
            self.addresses.pop(spec.name, None)
            self._announce()
            if self._stopping:
                return
            if moved:
                log.info("restarting an embedded host: a host it needs moved", extra={"host": spec.name})
                await self._terminate(spec.name, proc)
                self._procs.pop(spec.name, None)
                backoff.reset()
                continue
            self._procs.pop(spec.name, None)
            if time.monotonic() - started >= STABLE_S:
                backoff.reset()
            delay = backoff.next()
            log.warning(
                "embedded host exited; restarting",
                extra={"host": spec.name, "pid": proc.pid, "exit_code": proc.returncode, "retry_in_s": delay},
            )
            await asyncio.sleep(delay)

    async def _start(
        self, spec: ChildSpec, needed: Mapping[str, str]
    ) -> tuple[asyncio.subprocess.Process, str]:
        """Start the child and read its listening line; StartFailed (the child stopped) otherwise."""
        try:
            if spec.socket is not None and rundirs.remove_stale_socket(spec.socket):
                log.info("removed a stale host socket", extra={"host": spec.name, "path": str(spec.socket)})
        except (rundirs.StartupError, OSError) as exc:
            raise StartFailed(str(exc)) from None
        addresses = dict(needed)
        if spec.name in self._last_address:
            addresses[spec.name] = self._last_address[spec.name]
        argv = [sys.executable, "-m", "ktrdrd.hosts.tether", str(os.getpid()), "--", *spec.argv(addresses)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,  # a terminal's Ctrl-C reaches ktrdrd only; it stops them in order
            )
        except OSError as exc:
            raise StartFailed(f"cannot start {argv[5:]}: {exc}") from None
        self._procs[spec.name] = proc
        assert proc.stdout is not None
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
            # arrives as the read completes, and a supervisor that ignores its cancel never stops.
            async with asyncio.timeout(START_TIMEOUT_S):
                line = await proc.stdout.readline()
            address = json.loads(line)["listening"] if line else None
        except (TimeoutError, ValueError, KeyError, TypeError):
            address = None
        if not isinstance(address, str):
            await self._terminate(spec.name, proc)
            self._procs.pop(spec.name, None)
            raise StartFailed(f"exit code {proc.returncode} before it printed its listening address")
        return proc, address

    async def _until_exit_or_moved(self, proc: asyncio.subprocess.Process, needed: Mapping[str, str]) -> bool:
        """Wait until the child exits (False) or a child it needs serves on another address (True)."""
        assert proc.stdout is not None
        exited = asyncio.create_task(_drain_and_wait(proc))
        try:
            while not exited.done():
                if self._moved(needed):
                    return True
                changed = asyncio.create_task(self._changed.wait())
                await asyncio.wait({exited, changed}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
            return False
        finally:
            if not exited.done():
                exited.cancel()

    def _moved(self, needed: Mapping[str, str]) -> bool:
        return any(self.addresses.get(name, address) != address for name, address in needed.items())

    async def _addresses_of(self, names: tuple[str, ...]) -> dict[str, str]:
        while not all(name in self.addresses for name in names):
            await self._changed.wait()
        return {name: self.addresses[name] for name in names}

    def _announce(self) -> None:
        """Wake everything waiting for an address change (one event per change: set, then replaced)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _terminate(self, name: str, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(self._stop_timeout_s):
                    await proc.wait()
            except TimeoutError:
                log.warning(
                    "embedded host ignored SIGTERM: killing it",
                    extra={"host": name, "pid": proc.pid, "timeout_s": self._stop_timeout_s},
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        log.info("embedded host stopped", extra={"host": name, "pid": proc.pid, "exit_code": proc.returncode})


async def _drain_and_wait(proc: asyncio.subprocess.Process) -> int:
    """Read (and drop) the rest of the child's stdout so it never blocks on a full pipe; its exit code."""
    assert proc.stdout is not None
    while await proc.stdout.read(65536):
        pass
    return await proc.wait()
