"""Which request produced which model: ``<dir>/<request digest>.json`` holds the result of the
``train`` operation that produced it (:func:`ktrdrd.training.prepare.request_digest`), so an
identical request returns that model instead of training again. Small files, written atomically
in a worker thread."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any


class ReuseIndex:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def find(self, digest: str) -> dict[str, Any] | None:
        """The remembered result, or None."""
        try:
            data = json.loads(await asyncio.to_thread((self.root / f"{digest}.json").read_text))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("modelVersion"), str) else None

    async def remember(self, digest: str, result: dict[str, Any]) -> None:
        await asyncio.to_thread(self._write, digest, result)

    def _write(self, digest: str, result: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{digest}.tmp"
        tmp.write_text(json.dumps(result))
        os.replace(tmp, self.root / f"{digest}.json")
