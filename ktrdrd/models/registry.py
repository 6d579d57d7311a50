"""The model registry: trained model directories stored as immutable, numbered versions.

``registry = await ModelRegistry.open(state_dir / "models", journal)`` (reconciles files and
catalog, see :meth:`ModelRegistry.reconcile`), then::

    record = await registry.register(model_dir, operation="operations/op_…")

copies a finished model directory (the format of :mod:`ktrdr.research.artifacts`) in as the next
version of its strategy (the ``name`` in its ``strategy.json``): ``<root>/<strategy>/<n>/``,
``n`` = 1, 2, … never reused. The caller keeps (and may delete) its source directory.

Atomicity: the copy is built under ``<root>/.staging`` and fsynced (:mod:`.files`), a version
number is reserved in the catalog, the copy is renamed to its place, then the version's row is
written in one transaction. A version exists once its row exists. A crash at any point leaves no
half version: on open, directories with no row (and staging leftovers) are removed, and rows
whose directory is gone are dropped (logged).

All file work runs in threads; catalog reads and writes go through the journal's reader and
single writer. Several registries may share one journal (version numbers are reserved by the
writer), but only the daemon's reconciles.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ktrdr.rpc import errors
from ktrdrd.journal import Journal
from ktrdrd.models import catalog, files
from ktrdrd.models.catalog import ModelRecord, VersionRecord

log = logging.getLogger("ktrdrd.models")

#: The registry's directory under the daemon's state dir.
MODELS_DIR = "models"


class RegistrationError(ValueError):
    """A directory that cannot be registered (not a complete model directory, a bad strategy name)."""


@dataclass(frozen=True)
class Placed:
    """A version whose directory is in place and whose row is not written yet (see :meth:`ModelRegistry.place`)."""

    source: files.Source
    version: int
    path: Path


class ModelRegistry:
    """Model versions under ``root``, catalogued in ``journal``."""

    def __init__(self, root: Path, journal: Journal) -> None:
        self.root = Path(root)
        self.journal = journal

    @classmethod
    async def open(cls, root: Path, journal: Journal) -> ModelRegistry:
        """The registry over ``root`` (created if absent), reconciled with the catalog."""
        registry = cls(root, journal)
        await asyncio.to_thread(registry.root.mkdir, parents=True, exist_ok=True)
        await registry.reconcile()
        return registry

    def version_dir(self, strategy: str, version: int) -> Path:
        return self.root / strategy / str(version)

    # ---- registration ----------------------------------------------------------------------------

    async def register(self, source: Path | str, operation: str = "") -> VersionRecord:
        """Copy the model directory ``source`` in as the next version of its strategy; returns its
        record. ``operation``: the name of the operation that trained it (``operations/op_…``).

        Raises :class:`RegistrationError` (nothing registered) for a directory that is not a
        complete model directory or whose strategy name cannot name a model (check it before
        training with :func:`ktrdrd.models.files.name_problem`); journal errors propagate.
        """
        placed = await self.place(source)
        return await self.record(placed, operation)

    async def place(self, source: Path | str) -> Placed:
        """First half of :meth:`register`: read and check ``source``, copy it in, reserve a version
        number and rename the copy into place. Until :meth:`record` the version is not listed, and
        a restart removes it."""
        path = Path(source)
        try:
            info = await asyncio.to_thread(files.read_source, path)
        except files.SourceError as exc:
            raise RegistrationError(str(exc)) from None
        staged = await asyncio.to_thread(files.stage, self.root, path)
        try:
            version = await self.journal.submit(
                lambda conn: catalog.reserve_version(conn, info.strategy, time.time())
            )
            destination = self.version_dir(info.strategy, version)
            await asyncio.to_thread(files.place, staged, destination)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(files.remove_paths, [staged]))
            raise
        return Placed(info, version, destination)

    async def record(self, placed: Placed, operation: str = "") -> VersionRecord:
        """Second half of :meth:`register`: write the version's row (one transaction)."""
        info = placed.source
        record = VersionRecord(
            strategy=info.strategy,
            version=placed.version,
            create_time=time.time(),
            operation=operation,
            size_bytes=info.size_bytes,
            metrics=info.metrics,
            manifest=info.manifest,
            strategy_normalized=info.strategy_normalized,
            feature_names=info.feature_names,
        )
        try:
            await self.journal.submit(lambda conn: catalog.insert_version(conn, record))
        except BaseException:
            await asyncio.shield(asyncio.to_thread(files.remove, self.root, placed.path))
            raise
        log.info(
            "model version registered",
            extra={"strategy": record.strategy, "version": record.version, "operation": operation},
        )
        return record

    async def reconcile(self) -> None:
        """Make files and catalog agree: remove version directories without a row and staging
        leftovers (a crash mid-register or mid-delete); drop rows whose directory is gone."""
        on_disk, stray = await asyncio.to_thread(files.scan, self.root)
        in_catalog = await self.journal.read(catalog.all_versions)
        orphans = [self.version_dir(s, v) for s, v in on_disk if (s, v) not in in_catalog]
        missing = sorted(in_catalog - set(on_disk))
        if orphans or stray:
            await asyncio.to_thread(files.remove_paths, orphans + stray)
            log.warning(
                "removed incomplete model versions left by an interrupted registration or deletion",
                extra={"paths": [str(p) for p in orphans + stray]},
            )
        if missing:
            await self.journal.submit(lambda conn: catalog.forget_versions(conn, missing))
            log.warning(
                "model versions whose directory is gone were removed from the catalog",
                extra={"versions": [f"{s}/{v}" for s, v in missing]},
            )

    # ---- reads ---------------------------------------------------------------------------------

    async def list_models(self, after: str = "", limit: int = 100) -> list[ModelRecord]:
        return await self.journal.read(lambda conn: catalog.list_models(conn, after, limit))

    async def get_model(self, strategy: str) -> ModelRecord:
        """The model; NOT_FOUND naming it when it has no version."""
        found = await self.journal.read(lambda conn: catalog.get_model(conn, strategy))
        if found is None:
            raise errors.not_found(f"model {strategy!r}", "MODEL_NOT_FOUND")
        return found

    async def list_versions(self, strategy: str, before: int, limit: int) -> list[VersionRecord]:
        """Versions newest first, numbers < ``before``; NOT_FOUND for a model with no version."""
        await self.get_model(strategy)
        return await self.journal.read(lambda conn: catalog.list_versions(conn, strategy, before, limit))

    async def resolve(self, strategy: str, version: int | None = None, alias: str = "") -> int:
        """The version number named by ``version`` or ``alias``; NOT_FOUND naming what is missing."""
        if version is None:
            target = await self.journal.read(lambda conn: catalog.alias_target(conn, strategy, alias))
            if target is None:
                await self.get_model(strategy)
                raise errors.not_found(f"alias {alias!r} of model {strategy!r}", "MODEL_ALIAS_NOT_FOUND")
            return target
        return version

    async def get_version(self, strategy: str, version: int) -> VersionRecord:
        """The version; NOT_FOUND naming the model or the version."""
        found = await self.journal.read(lambda conn: catalog.get_version(conn, strategy, version))
        if found is None:
            await self.get_model(strategy)
            raise errors.not_found(f"version {version} of model {strategy!r}", "MODEL_VERSION_NOT_FOUND")
        return found

    # ---- changes -------------------------------------------------------------------------------

    async def delete_version(self, strategy: str, version: int) -> None:
        """Delete a version (row, then files); FAILED_PRECONDITION while an alias points at it."""
        outcome = await self.journal.submit(lambda conn: catalog.delete_version(conn, strategy, version))
        if outcome is None:
            await self.get_model(strategy)
            raise errors.not_found(f"version {version} of model {strategy!r}", "MODEL_VERSION_NOT_FOUND")
        if outcome:
            names = ", ".join(outcome)
            raise errors.failed_precondition(
                f"version {version} of model {strategy!r} has alias(es) {names}: move or delete them first",
                "MODEL_VERSION_ALIASED",
            )
        await asyncio.to_thread(files.remove, self.root, self.version_dir(strategy, version))

    async def set_alias(self, strategy: str, alias: str, version: int) -> ModelRecord:
        """Point ``alias`` at ``version`` (created or moved); NOT_FOUND when the version does not exist."""
        done = await self.journal.submit(
            lambda conn: catalog.set_alias(conn, strategy, alias, version, time.time())
        )
        if not done:
            await self.get_version(strategy, version)
        return await self.get_model(strategy)

    async def delete_alias(self, strategy: str, alias: str) -> ModelRecord:
        """Remove ``alias``; NOT_FOUND naming it when it does not exist."""
        done = await self.journal.submit(lambda conn: catalog.delete_alias(conn, strategy, alias))
        if not done:
            await self.resolve(strategy, alias=alias)
        return await self.get_model(strategy)
