"""Where each operation's host job runs, on disk: ``<dir>/<op id>.json`` = ``{"host", "job_id",
"request_digest"}`` (the digest is optional: "" when the kind has none, or in files older than it).

Written before the job is started and removed when the operation ends, so a daemon restarted
(even after ``kill -9``) finds the job its operation had on a host and follows it again. Files are
tiny; each write is atomic (temporary file, then rename) and runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Placement:
    """``request_digest``: what the kind needs to remember the job's result by (the train kind's
    reuse key) after a re-attach; "" for none."""

    host: str
    job_id: str
    request_digest: str = ""


class Placements:
    """The placement files under ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, op_id: str) -> Path:
        return self.root / f"{op_id}.json"

    async def save(self, op_id: str, placement: Placement) -> None:
        await asyncio.to_thread(self._save, op_id, placement)

    def _save(self, op_id: str, placement: Placement) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._path(op_id).with_suffix(".tmp")
        fields = {
            "host": placement.host,
            "job_id": placement.job_id,
            "request_digest": placement.request_digest,
        }
        tmp.write_text(json.dumps(fields))
        os.replace(tmp, self._path(op_id))

    async def load(self, op_id: str) -> Placement | None:
        """The saved placement, or None (never placed, or the file is unreadable)."""
        try:
            data = json.loads(await asyncio.to_thread(self._path(op_id).read_text))
            return Placement(str(data["host"]), str(data["job_id"]), str(data.get("request_digest", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def forget(self, op_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._path(op_id).unlink)
