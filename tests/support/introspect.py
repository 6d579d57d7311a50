"""Test-only look inside a running daemon (load with ``KTRDR_TEST_PLUGINS``, see ``tests.support.testd``).

``register(core, ctl_methods)`` adds the ctl method ``ktrdr.test.v1/LoadedModules``, answering
``{"modules": [...]}``: the names in the daemon's ``sys.modules``, sorted. Tests use it to check what
the daemon has imported (its memory at rest is mostly the libraries it imported).
"""

from __future__ import annotations

import sys
from typing import Any

from ktrdrd.operations import OperationsCore

MODULES_METHOD = "ktrdr.test.v1/LoadedModules"


def register(core: OperationsCore, ctl_methods: dict[str, Any] | None = None) -> None:
    """Add :data:`MODULES_METHOD` to ``ctl_methods`` (nothing to register on ``core``)."""
    if ctl_methods is None:
        return

    async def loaded_modules(params: dict[str, Any]) -> dict[str, Any]:
        return {"modules": sorted(sys.modules)}

    ctl_methods[MODULES_METHOD] = loaded_modules
