"""The daemon's lifecycle, in the phases of uvicorn's server: :meth:`Daemon.startup` →
:meth:`Daemon.main_loop` → :meth:`Daemon.shutdown`.

Startup: directories and their locks (:func:`ktrdrd.rundirs.claimed_dirs`) → host links opened
(:mod:`ktrdrd.hosts`; nothing waits for a host) → journal → model registry (reconciled with its
files, :mod:`ktrdrd.models`) → extensions → the data service and its load kinds → the training
kinds (:mod:`ktrdrd.training`) → resume pending operations → stale sockets removed → servers built
and started → ``READY=1``. Every step that needs undoing pushes its
undo on one ``contextlib.AsyncExitStack``, which runs them in reverse whatever happens. A failure
before READY is logged with a clear message and :meth:`Daemon.serve` returns
:data:`EXIT_STARTUP_FAILED`; nothing already on disk is changed.

Main loop: background work (journal retention and recovery, health updates, the hosts: local ones
started and supervised, every link followed) runs in one
``asyncio.TaskGroup``; the loop waits for a stop signal. Signals: SIGTERM/SIGINT stop; a second one
stops at once; SIGHUP reloads the configuration file (``log_level`` applies at once, other changed
keys are logged as needing a restart); SIGUSR1 logs a status line; SIGUSR2 is logged and ignored.

Shutdown: ``STOPPING=1``, health NOT_SERVING, no new connections or calls, calls in flight get
``shutdown_grace_s`` (then are cancelled), connections that do not read get ``stop_close_timeout_s``
to take their last bytes (then are dropped) → journal closed (running operations stay resumable) →
host links closed, local hosts stopped (after the journal: a load running at the stop is left to
resume, not failed by its closing channel) → locks released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ktrdr import logs, wire
from ktrdr.sdnotify import Notifier
from ktrdrd import rundirs
from ktrdrd.appstate import AppState
from ktrdrd.config import Config
from ktrdrd.ctl.server import Limits
from ktrdrd.models import MODELS_DIR, ModelRegistry
from ktrdrd.operations import JournalOpenError, OperationsCore
from ktrdrd.services.lazy_data import LazyDataService

log = logging.getLogger("ktrdrd")

EXIT_OK = 0
EXIT_STARTUP_FAILED = 1
#: File descriptors kept free beyond the connection caps (journal, logs, gRPC internals, threads).
FD_RESERVE = 256

CtlMethod = Callable[[dict[str, Any]], Awaitable[Any]]
#: An embedding program's addition to the daemon, called once the journal is open and before
#: pending operations resume: ``extension(core, ctl_methods)`` may register operation kinds and add
#: ctl-only methods (``full name -> async (params) -> result``). The product adds none; the test
#: suite's launcher (tests/support/testd.py) adds its test kinds this way.
Extension = Callable[[OperationsCore, dict[str, CtlMethod]], None]


class StartupFailed(Exception):
    """Startup cannot continue; the message says why and what to do."""


def ensure_fd_limit(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE toward ``needed`` (within the hard limit); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


class Daemon:
    """One run of ktrdrd. ``await Daemon(config).serve()`` returns the process exit code.

    ``reload`` (SIGHUP) returns the configuration read again from the same sources; None: SIGHUP
    only logs that nothing can be reloaded.
    """

    def __init__(
        self,
        config: Config,
        *,
        notifier: Notifier | None = None,
        extensions: Sequence[Extension] = (),
        reload: Callable[[], Config] | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        self.extensions = tuple(extensions)
        self.reload = reload
        self.should_exit = asyncio.Event()
        self.force_exit = asyncio.Event()
        self.state = AppState(
            runtime_dir=config.runtime_dir,
            state_dir=config.state_dir,
            grpc_socket=config.runtime_dir / wire.GRPC_SOCKET,
            ctl_socket=config.runtime_dir / wire.CTL_SOCKET,
            db_path=config.state_dir / wire.DB_NAME,
            pid=os.getpid(),
        )
        self.core: OperationsCore | None = None
        self.models: ModelRegistry | None = None  # once the journal is open
        #: The host links and local hosts (ktrdrd.hosts.configured.Hosts; grpc loads at startup only).
        self.hosts: Any = None
        self.training: Any = None  # ktrdrd.training.setup.Training, once started
        self.servers: Any = None  # ktrdrd.server.Servers (grpc is imported at startup only)

    async def serve(self) -> int:
        """Run until stopped; 0 after a clean stop, :data:`EXIT_STARTUP_FAILED` if startup failed."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                await self.startup(stack)
            except (rundirs.StartupError, StartupFailed, OSError) as exc:  # OSError: a dir, lock or bind
                log.error(f"ktrdrd cannot start: {exc}")
                return EXIT_STARTUP_FAILED
            async with asyncio.TaskGroup() as background:
                jobs = self._start_background(background)
                await self.main_loop()
                await self.shutdown()
                for job in jobs:
                    job.cancel()
        log.info("ktrdrd stopped")
        return EXIT_OK

    # ---- phases ----------------------------------------------------------------------------------

    async def startup(self, stack: contextlib.AsyncExitStack) -> None:
        """Claim the directories, open the journal, start the servers; READY=1."""
        from ktrdrd.backtests import install as install_backtests
        from ktrdrd.hosts.configured import HostConfigError, link_credentials, open_hosts
        from ktrdrd.server import build_servers  # grpc is heavy; --print-config never imports it
        from ktrdrd.services.models import ModelsService  # protobuf, likewise
        from ktrdrd.training.loading import BarLoader
        from ktrdrd.training.setup import install as install_training

        config, state = self.config, self.state
        stack.callback(self.notifier.close)
        try:  # before anything is created: unusable TLS or token files change nothing
            host_credentials = link_credentials(config)
        except HostConfigError as exc:
            raise StartupFailed(str(exc)) from None
        self._install_signal_handlers(stack)
        dirs = stack.enter_context(rundirs.claimed_dirs(config.runtime_dir, config.state_dir))
        state.runtime_dir, state.state_dir = dirs.runtime_dir, dirs.state_dir  # real paths, links resolved
        state.grpc_socket = dirs.runtime_dir / wire.GRPC_SOCKET
        state.ctl_socket = dirs.runtime_dir / wire.CTL_SOCKET
        state.db_path = dirs.state_dir / wire.DB_NAME

        limits = Limits(
            max_connections=config["ctl_max_connections"],
            max_calls=config["ctl_max_calls"],
            send_buffer_bytes=config["ctl_send_buffer_bytes"],
            frame_timeout_s=config["ctl_frame_timeout_s"],
            close_timeout_s=config["stop_close_timeout_s"],
        )
        fds = ensure_fd_limit(limits.max_connections + config["grpc_max_concurrent_rpcs"] + FD_RESERVE)
        if fds < limits.max_connections + FD_RESERVE:
            limits = Limits(**{**vars(limits), "max_connections": max(1, fds - FD_RESERVE)})
            log.warning(
                "the file-descriptor limit is low: ctl connections capped accordingly",
                extra={"nofile": fds, "ctl_max_connections": limits.max_connections},
            )

        # Before the journal, so that they close after it (see the module docstring).
        self.hosts = hosts = open_hosts(config, state, state.runtime_dir, host_credentials, state.state_dir)
        stack.push_async_callback(hosts.close)
        try:
            self.core = core = await OperationsCore.open(
                state.db_path,
                retention_s=config["retention_days"] * 86400.0,
                max_active=config["max_active_operations"],
            )
        except JournalOpenError as exc:
            raise StartupFailed(str(exc)) from None
        stack.push_async_callback(core.close)
        self.models = await ModelRegistry.open(state.state_dir / MODELS_DIR, core.journal)
        ctl_methods: dict[str, CtlMethod] = {}
        for extend in self.extensions:
            extend(core, ctl_methods)
        data_service = LazyDataService(
            state.state_dir / "data",
            core.journal,
            max_import_bytes=config["data_import_max_bytes"],
            max_import_inflight_bytes=config["data_import_inflight_bytes"],
            core=core,
            ib_link=hosts.ib,
        )
        data_service.loads.register()  # before resume: interrupted loads reattach
        warming = asyncio.create_task(data_service.warm_calendars(), name="warm-calendars")
        stack.push_async_callback(_cancelled, warming)
        loader = BarLoader(core, data_service.loads) if hosts.ib is not None else None
        self.training = training = install_training(
            core,
            hosts.training,
            self.models,
            data_service.cache,
            loader,
            state.state_dir,
            config["training_auto_resumes"],
        )
        backtests = install_backtests(
            core,
            training.pool,
            bool(hosts.training),
            self.models,
            data_service.cache,
            loader,
            state.state_dir,
        )
        await core.resume_pending()

        for sock in (state.grpc_socket, state.ctl_socket):
            if rundirs.remove_stale_socket(sock):
                log.warning("removed a stale socket left by an earlier run", extra={"path": str(sock)})
            stack.callback(rundirs.remove_socket, sock)
        self.servers = servers = await build_servers(
            core=core,
            app_state=state,
            grpc_socket=state.grpc_socket,
            ctl_socket=state.ctl_socket,
            extra_ctl_methods=ctl_methods,
            ctl_limits=limits,
            grpc_max_concurrent_rpcs=config["grpc_max_concurrent_rpcs"],
            grpc_max_streams=config["grpc_max_streams"],
            data_service=data_service,
            models_service=ModelsService(self.models, core),
            training_service=training.service,
            backtests_service=backtests,
            resumers=training.resumers,
        )
        await servers.start()
        stack.push_async_callback(servers.abort)  # reached only if shutdown did not run

        state.serving = True
        state.on_change(lambda s: self.notifier.status(s.status_line()))
        log.info(
            "ktrdrd ready",
            extra={
                "version": state.version,
                "instance_id": state.instance_id,
                "grpc_socket": str(state.grpc_socket),
                "ctl_socket": str(state.ctl_socket),
                "db": str(state.db_path),
                "ctl_max_connections": limits.max_connections,
            },
        )
        self.notifier.ready(state.status_line())  # after the log line: a reader of READY finds it
        if config["watchdog"]:
            self.notifier.start_watchdog(asyncio.get_running_loop())

    def _start_background(self, group: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        assert self.core is not None and self.servers is not None and self.hosts is not None
        return [
            group.create_task(self.core.maintain(), name="journal-maintenance"),
            group.create_task(self.servers.follow_health(), name="health"),
            group.create_task(self.hosts.run(), name="hosts"),
            group.create_task(self.training.run(), name="training"),
        ]

    async def main_loop(self) -> None:
        """Serve until a stop signal."""
        await self.should_exit.wait()

    async def shutdown(self) -> None:
        """Drain within the grace period (bounded even for clients that do not read); a second stop
        signal ends the drain at once."""
        grace = self.config["shutdown_grace_s"]
        self.state.serving = False
        self.hosts.stop_restarting()
        self.notifier.stopping(f"draining in-flight calls (up to {grace:g} s)")
        log.info("stopping: draining in-flight calls", extra={"grace_s": grace})
        drain = asyncio.ensure_future(self.servers.stop(grace))
        forced = asyncio.ensure_future(self.force_exit.wait())
        await asyncio.wait({drain, forced}, return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()
        if not drain.done():
            log.warning("second stop signal: stopping now, calls in flight are cancelled")
            drain.cancel()
            await self.servers.abort()
            await asyncio.gather(drain, return_exceptions=True)

    # ---- signals ---------------------------------------------------------------------------------

    def _install_signal_handlers(self, stack: contextlib.AsyncExitStack) -> None:
        loop = asyncio.get_running_loop()
        handlers = {
            signal.SIGTERM: self._on_stop,
            signal.SIGINT: self._on_stop,
            signal.SIGHUP: self._on_reload,
            signal.SIGUSR1: self._on_status,
            signal.SIGUSR2: self._on_ignored,
        }
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler, signum)
            stack.callback(loop.remove_signal_handler, signum)

    def _on_stop(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.should_exit.is_set():
            log.info("stop requested again: stopping at once", extra={"signal": name})
            self.force_exit.set()
        else:
            log.info("stop requested", extra={"signal": name})
            self.should_exit.set()

    def _on_reload(self, signum: int) -> None:
        if self.reload is None:
            log.info("SIGHUP: nothing to reload (logs go to stderr; no configuration file)")
            return
        from ktrdrd.config import ConfigError

        try:
            fresh = self.reload()
        except ConfigError as exc:
            log.warning(f"SIGHUP: configuration not reloaded: {exc}")
            return
        changed = sorted(k for k, v in fresh.values.items() if self.config.values.get(k) != v)
        if "log_level" in changed:
            logs.set_level(fresh["log_level"])
            self.config.values["log_level"] = fresh["log_level"]
            self.config.sources["log_level"] = fresh.sources["log_level"]
        needs_restart = [k for k in changed if k != "log_level"]
        log.info(
            "SIGHUP: configuration reloaded",
            extra={
                "log_level": self.config["log_level"],
                "applied": [k for k in changed if k == "log_level"],
                "needs_restart": needs_restart,
            },
        )

    def _on_status(self, signum: int) -> None:
        servers, core = self.servers, self.core
        log.info(
            "status",
            extra={
                "serving": self.state.serving,
                "uptime_s": round(self.state.uptime_s, 1),
                "ctl_connections": servers.ctl_server.connection_count if servers else 0,
                "ctl_calls": servers.ctl_server.call_count if servers else 0,
                "active_operations": core.active_count if core else 0,
                "journal": "ok" if core is None or core.journal_error is None else core.journal_error.reason,
            },
        )

    def _on_ignored(self, signum: int) -> None:
        log.info("signal ignored", extra={"signal": signal.Signals(signum).name})


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` (a background start-up chore) and wait for it to end."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
