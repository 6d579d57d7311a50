"""``ktrdr.daemon.v1.DataService``, loaded on its first call.

The bar cache needs numpy and pyarrow: importing them when the daemon starts cost ~0.5 s of
start-up and took an idle ktrdrd from ~47 MiB to ~132 MiB RSS (measured with `bench cli_startup`'s
idle-RSS probe). So the daemon registers this stand-in, which imports :mod:`ktrdrd.services.data`
in a worker thread on the first DataService call, opens the cache (removing temporary files an
interrupted write left, then reconciling the catalog with the files: :mod:`ktrdrd.data.reconcile`)
and hands every call to it. Calls that arrive while it loads wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktrdr.daemon.v1 import data_pb2 as pb
from ktrdr.rpc.registry import Call
from ktrdrd.services.data_load import Loads

if TYPE_CHECKING:  # grpc loads with the daemon's servers, not with this module
    from ktrdrd.hosts.link import ReadyChannel

log = logging.getLogger(__name__)


class LazyDataService:
    """Serves DataService from ``root`` (the cache's directory) over ``journal`` once first called."""

    descriptor = pb.DESCRIPTOR.services_by_name["DataService"]

    def __init__(
        self,
        root: Path,
        journal: Any,
        *,
        max_import_bytes: int,
        max_import_inflight_bytes: int,
        core: Any,
        ib_link: ReadyChannel | None,
    ) -> None:
        self._root = root
        self._journal = journal
        self._max_import_bytes = max_import_bytes
        self._max_import_inflight_bytes = max_import_inflight_bytes
        self._loading: asyncio.Task[Any] | None = None
        #: LoadData and the load operation kinds (``loads.register()`` before operations resume).
        self.loads = Loads(core, ib_link, self.cache)

    @property
    def calendars_dir(self) -> Path:
        """Where the exchange session tables are cached (:mod:`ktrdrd.data.sessiontables`)."""
        return self._root.parent / "calendars"

    async def warm_calendars(self) -> None:
        """Build the missing current session tables in a subprocess (``python -m ktrdr.calendars
        warm``; about 2 s once per ``exchange-calendars`` version and year, ~0.2 s when all are
        there), so the first gap analysis after start-up reads a file instead of waiting for a
        build. Imports nothing into the daemon; a failure is logged and the first use builds the
        table itself; cancelling kills the subprocess."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ktrdr.calendars", "warm", str(self.calendars_dir),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, stderr = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            detail = (stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1][:500]
            log.warning(
                "warming the exchange session tables failed; the first use builds them",
                extra={"exit_code": proc.returncode, "detail": detail},
            )

    async def cache(self) -> Any:
        """The bar cache (``ktrdrd.data.cache.BarCache``), loaded with the service."""
        return (await self.service()).cache

    async def service(self) -> Any:
        """The real ``DataService`` (loaded, with its cache opened, on the first call)."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())
        return await asyncio.shield(self._loading)

    async def _load(self) -> Any:
        cache_module = await asyncio.to_thread(importlib.import_module, "ktrdrd.data.cache")
        service_module = await asyncio.to_thread(importlib.import_module, "ktrdrd.services.data")
        # Exchange session tables come from files (built by a subprocess), not pandas in the daemon.
        sessiontables = await asyncio.to_thread(importlib.import_module, "ktrdrd.data.sessiontables")
        sessiontables.install(self.calendars_dir)
        cache = cache_module.BarCache(self._root, self._journal)
        for leftover in await cache.open():
            log.warning("removed a temporary file an interrupted write left", extra={"path": str(leftover)})
        for finding in await cache.reconcile():
            log.warning(
                "bar cache: catalog reconciled with its files",
                extra={"series": f"{finding.symbol} {finding.timeframe}", "action": finding.action,
                       "detail": finding.detail},
            )  # fmt: skip
        return service_module.DataService(
            cache,
            max_import_bytes=self._max_import_bytes,
            max_import_inflight_bytes=self._max_import_inflight_bytes,
        )

    async def ImportBars(self, requests: AsyncIterator[pb.ImportBarsRequest], call: Call) -> Any:
        return await (await self.service()).ImportBars(requests, call)

    async def GetBars(self, request: pb.GetBarsRequest, call: Call) -> AsyncIterator[Any]:
        async for item in (await self.service()).GetBars(request, call):
            yield item

    async def GetCoverage(self, request: pb.GetCoverageRequest, call: Call) -> Any:
        return await (await self.service()).GetCoverage(request, call)

    async def ListSeries(self, request: pb.ListSeriesRequest, call: Call) -> Any:
        return await (await self.service()).ListSeries(request, call)

    async def LoadData(self, request: pb.LoadDataRequest, call: Call) -> Any:
        return await self.loads.LoadData(request)

    async def GetGaps(self, request: pb.GetGapsRequest, call: Call) -> Any:
        return await (await self.service()).GetGaps(request, call)

    async def DeleteSeries(self, request: pb.DeleteSeriesRequest, call: Call) -> Any:
        return await (await self.service()).DeleteSeries(request, call)

    async def ExportBars(self, request: pb.ExportBarsRequest, call: Call) -> AsyncIterator[Any]:
        async for item in (await self.service()).ExportBars(request, call):
            yield item
