"""The daemon's lifecycle, start to stop, in one readable function (:func:`serve`).

Start: directories claimed (runtime dir prepared, locked; state dir prepared, locked) → journal →
test plugins → resume pending operations → stale sockets removed → servers built and started →
``READY=1``. Stop (SIGTERM/SIGINT): ``STOPPING=1``, health NOT_SERVING, no new calls, in-flight
calls get ``shutdown_grace_s`` (then are cancelled) → servers closed and sockets removed → journal
closed (running operations stay resumable) → locks released. A failure before READY is logged with
a clear message and :func:`serve` returns :data:`EXIT_STARTUP_FAILED`; nothing already on disk is
changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ktrdrd import runtime
from ktrdrd.appstate import AppState
from ktrdrd.config import Config
from ktrdrd.operations import JournalOpenError, OperationsCore
from ktrdrd.sdnotify import Notifier

log = logging.getLogger("ktrdrd")

EXIT_OK = 0
EXIT_STARTUP_FAILED = 1
TEST_PLUGINS_ENV = "KTRDR_TEST_PLUGINS"

CtlMethod = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class StartupFailed(Exception):
    """Startup cannot continue; the message says why and what to do."""


def load_test_plugins(spec: str, core: OperationsCore) -> tuple[list[str], dict[str, CtlMethod]]:
    """Import each comma-separated module in ``spec`` and call its ``register(core, ctl_methods)``.

    ``ctl_methods`` is a dict the module may add ctl-only methods to (``full name -> async
    (params) -> result``), e.g. ``ktrdr.test.v1/StartTicker`` to start operations of its test kind.
    Test-only: the product ships no plugin; tests name theirs in ``KTRDR_TEST_PLUGINS``.
    Returns the loaded module names and the ctl methods they added.
    """
    loaded: list[str] = []
    methods: dict[str, CtlMethod] = {}
    for name in filter(None, (part.strip() for part in spec.split(","))):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise StartupFailed(f"{TEST_PLUGINS_ENV}: cannot import {name!r}: {exc}") from None
        register = getattr(module, "register", None)
        if not callable(register):
            raise StartupFailed(f"{TEST_PLUGINS_ENV}: {name!r} has no register(core, ctl_methods) function")
        register(core, methods)
        loaded.append(name)
    return loaded, methods


def _install_stop_handlers(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.info("already stopping", extra={"signal": name})
        else:
            log.info("stop requested", extra={"signal": name})
            stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


async def _open_journal(db_path: Path, retention_s: float) -> OperationsCore:
    try:
        return await OperationsCore.open(db_path, retention_s=retention_s)
    except JournalOpenError as exc:
        raise StartupFailed(str(exc)) from None


async def serve(config: Config, *, notifier: Notifier | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; return the process exit code."""
    from ktrdrd.server import build_servers  # grpc is heavy; --print-config never imports it

    loop = asyncio.get_running_loop()
    notifier = notifier or Notifier()
    stop = asyncio.Event()
    _install_stop_handlers(loop, stop)

    held_dirs = contextlib.ExitStack()
    cleanup: list[Callable[[], Any]] = [notifier.close, held_dirs.close]
    try:
        dirs = held_dirs.enter_context(runtime.claimed_dirs(config.runtime_dir, config.state_dir))
        state = AppState(
            runtime_dir=dirs.runtime_dir,
            state_dir=dirs.state_dir,
            grpc_socket=dirs.runtime_dir / runtime.GRPC_SOCKET,
            ctl_socket=dirs.runtime_dir / runtime.CTL_SOCKET,
            db_path=dirs.state_dir / runtime.DB_NAME,
            pid=os.getpid(),
        )

        core = await _open_journal(state.db_path, config["retention_days"] * 86400.0)
        cleanup.append(core.close)
        plugins, ctl_methods = load_test_plugins(os.environ.get(TEST_PLUGINS_ENV, ""), core)
        await core.resume_pending()

        for sock in (state.grpc_socket, state.ctl_socket):
            if runtime.remove_stale_socket(sock):
                log.warning("removed a stale socket left by an earlier run", extra={"path": str(sock)})
            cleanup.append(lambda sock=sock: runtime.remove_socket(sock))
        servers = await build_servers(
            core=core,
            app_state=state,
            grpc_socket=state.grpc_socket,
            ctl_socket=state.ctl_socket,
            extra_ctl_methods=ctl_methods,
        )
        await servers.start()
    except (runtime.StartupError, StartupFailed, OSError) as exc:  # OSError: a directory, lock or bind
        log.error(f"ktrdrd cannot start: {exc}")
        await _run_cleanup(cleanup)
        return EXIT_STARTUP_FAILED
    except BaseException:
        await _run_cleanup(cleanup)
        raise

    try:
        state.serving = True
        state.on_change(lambda s: notifier.status(s.status_line()))
        notifier.ready(state.status_line())
        if config["watchdog"]:
            notifier.start_watchdog(loop)
        log.info(
            "ktrdrd ready",
            extra={
                "version": state.version,
                "instance_id": state.instance_id,
                "grpc_socket": str(state.grpc_socket),
                "ctl_socket": str(state.ctl_socket),
                "db": str(state.db_path),
                "plugins": plugins,
            },
        )
        await stop.wait()

        grace = config["shutdown_grace_s"]
        state.serving = False
        notifier.stopping(f"draining in-flight calls (up to {grace:g} s)")
        log.info("stopping: draining in-flight calls", extra={"grace_s": grace})
        await servers.stop(grace)
    finally:
        await _run_cleanup(cleanup)
    log.info("ktrdrd stopped")
    return EXIT_OK


async def _run_cleanup(cleanup: list[Callable[[], Any]]) -> None:
    """Undo startup steps in reverse order; one failing step does not skip the others."""
    while cleanup:
        step = cleanup.pop()
        try:
            result = step()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("cleanup step failed")
