"""Test-only ctl method that registers a model directory in the daemon's registry (load it with
``KTRDR_TEST_PLUGINS=tests.support.kinds,tests.support.models``).

Until the train operation exists, tests make model directories with the library
(``ktrdr.research.train.run``) and hand them to the daemon through
``ktrdr.test.v1/RegisterModel`` with params ``{"path": DIR, "operation": NAME}``, answering
``{"name": "models/<strategy>/versions/<n>", "version": n}``. With ``"pauseAt": FILE`` the method
places the version's files, writes FILE and then waits forever without writing the version's row,
so a test can ``kill -9`` the daemon between the two (the crash the registry must survive).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ktrdr.rpc import errors
from ktrdr.wire import StatusCode
from ktrdrd.models import MODELS_DIR, ModelRegistry, RegistrationError
from ktrdrd.operations import OperationsCore

REGISTER_METHOD = "ktrdr.test.v1/RegisterModel"


def register(core: OperationsCore, ctl_methods: dict[str, Any] | None = None) -> None:
    """Add :data:`REGISTER_METHOD` to ``ctl_methods`` (the registry shares the daemon's journal)."""
    if ctl_methods is None:
        return
    registry = ModelRegistry(core.journal.path.parent / MODELS_DIR, core.journal)

    async def register_model(params: dict[str, Any]) -> dict[str, Any]:
        try:
            placed = await registry.place(params["path"])
        except RegistrationError as exc:
            raise errors.ApiError(StatusCode.INVALID_ARGUMENT, str(exc), "MODEL_DIR_INVALID") from None
        if params.get("pauseAt"):
            await asyncio.to_thread(Path(params["pauseAt"]).write_text, str(placed.path))
            await asyncio.Event().wait()
        record = await registry.record(placed, params.get("operation", ""))
        return {"name": f"models/{record.strategy}/versions/{record.version}", "version": record.version}

    ctl_methods[REGISTER_METHOD] = register_model
