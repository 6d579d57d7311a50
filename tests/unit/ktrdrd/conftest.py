"""Fixtures for journal tests (each test runs its own event loop with ``asyncio.run``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ktrdr.db"
