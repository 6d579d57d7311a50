"""Helpers for tests of the operations journal."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ktrdrd.operations import OperationsCore
from tests.support import kinds


@contextlib.asynccontextmanager
async def opened(path: Path, *, register: bool = True, **options: Any) -> AsyncIterator[OperationsCore]:
    """An OperationsCore on ``path`` with the test ticker (unless register=False), resumed; closed after."""
    core = await OperationsCore.open(path, **options)
    try:
        if register:
            kinds.register(core)
        await core.resume_pending()
        yield core
    finally:
        await core.close()
