"""The simulator: a TCP listener, the state its sessions share, and the Python API tests drive.

Usage (in an event loop)::

    sim = GatewaySim(SimConfig(port=0, seed=7))
    await sim.start()                  # binds; ib.connectAsync("127.0.0.1", sim.port, clientId=1)
    sim.faults.latency_s = 0.2         # fault knobs are read live
    sim.connectivity_lost()            # error 1100 to every client; answers wait
    sim.connectivity_restored()        # error 1102; waiting answers go out
    await sim.stop()                   # closes every connection

Shared across connections: the client ids in use (a second connection with one gets 326), the
pacer (IB paces per gateway), the bar source and the contract directory.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from hostd.gatewaysim.contracts import Directory
from hostd.gatewaysim.faults import Faults
from hostd.gatewaysim.pacing import Pacer
from hostd.gatewaysim.session import Session
from hostd.gatewaysim.sources import BarSource, FileBars, GeneratedBars
from hostd.gatewaysim.wire import SERVER_VERSIONS
from ktrdr.calendars import AssetClass, calendar_for

log = logging.getLogger("hostd.gatewaysim")


@dataclass(frozen=True)
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    #: Directory of ``{SERIES}_{TF}.csv|parquet`` files; None = the seeded generator.
    data_dir: Path | None = None
    seed: int = 0
    #: Asset class of symbols whose requests may leave ``secType`` empty (others default to stock).
    declared: dict[str, AssetClass] = field(default_factory=dict)
    server_version: int = 176
    account: str = "DU0000001"
    #: Divides the pacing windows (see :mod:`hostd.gatewaysim.pacing`).
    clock_scale: float = 1.0

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        if self.server_version not in SERVER_VERSIONS:
            raise ValueError(
                f"server version {self.server_version} is not supported; "
                f"expected {SERVER_VERSIONS.start}..{SERVER_VERSIONS.stop - 1}"
            )
        if self.clock_scale <= 0:
            raise ValueError(f"clock scale must be > 0, got {self.clock_scale}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.data_dir is not None and not self.data_dir.is_dir():
            raise ValueError(f"data directory {self.data_dir}: not a directory")
        if "," in self.account or not self.account:
            raise ValueError(f"account must be one non-empty name without commas, got {self.account!r}")


class GatewaySim:
    def __init__(self, config: SimConfig, faults: Faults | None = None) -> None:
        config.check()
        self.faults = faults or Faults()
        self.faults.check()
        self.config = config
        self.source: BarSource = FileBars(config.data_dir) if config.data_dir else GeneratedBars(config.seed)
        self.directory = Directory(self._series_exists, config.declared)
        self.pacer = Pacer(clock_scale=config.clock_scale)
        #: Set while the gateway has connectivity to "IB"; answers wait on it.
        self.connected = asyncio.Event()
        self.connected.set()
        self._client_ids: dict[int, Session] = {}
        self._sessions: set[Session] = set()
        self._session_tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    def _series_exists(self, series: str) -> bool:
        return series not in self.faults.unknown_symbols and self.source.is_known(series)

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Load the trading calendars, then bind and accept connections."""
        await asyncio.to_thread(calendar_for(AssetClass.STOCK).load)
        self._server = await asyncio.start_server(self._serve, self.config.host, self.config.port)
        log.info(
            "gateway simulator listening",
            extra={
                "host": self.config.host,
                "port": self.port,
                "source": str(self.config.data_dir)
                if self.config.data_dir
                else f"generator(seed={self.config.seed})",
                "server_version": self.config.server_version,
                "clock_scale": self.config.clock_scale,
            },
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self._sessions.add(session)
        task = asyncio.current_task()
        assert task is not None
        self._session_tasks.add(task)
        log.info("connection accepted", extra={"peer": str(session.peer)})
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            self._session_tasks.discard(task)
            if session.client_id is not None and self._client_ids.get(session.client_id) is session:
                del self._client_ids[session.client_id]

    def claim_client_id(self, client_id: int, session: Session) -> bool:
        """Give ``client_id`` to ``session``; False when another connection holds it or it is reserved."""
        holder = self._client_ids.get(client_id)
        if client_id in self.faults.reserved_client_ids or (holder is not None and holder is not session):
            return False
        self._client_ids[client_id] = session
        return True

    def connectivity_lost(self) -> None:
        """Error 1100 (id -1) to every started client; answers are held until restored."""
        self.connected.clear()
        self._broadcast(1100, "Connectivity between IB and Trader Workstation has been lost.")

    def connectivity_restored(self) -> None:
        """Error 1102 (id -1) to every started client; held answers go out."""
        self.connected.set()
        self._broadcast(
            1102, "Connectivity between IB and Trader Workstation has been restored - data maintained."
        )

    def _broadcast(self, code: int, text: str) -> None:
        log.info("connectivity notice", extra={"code": code, "clients": sorted(self._client_ids)})
        for session in list(self._sessions):
            if session.client_id is not None:
                session.send_error(-1, code, text)

    def drop_connections(self, reason: str = "dropped on request") -> None:
        """Close every connection now, as a gateway restart would."""
        for session in list(self._sessions):
            session.close(reason)

    async def stop(self) -> None:
        """Stop accepting, close every connection, and wait for the sessions to finish."""
        if self._server is None:
            return
        self._server.close()
        self.drop_connections("simulator stopping")
        if self._session_tasks:
            await asyncio.gather(*self._session_tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        log.info("gateway simulator stopped")
