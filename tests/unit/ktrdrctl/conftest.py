"""Fixtures for ktrdrctl's unit tests: a short temporary dir and a scripted ctl server in it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ctlserver import ScriptedServer


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A temporary directory with a short path (unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="kc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(short_dir: Path) -> Iterator[ScriptedServer]:
    srv = ScriptedServer(short_dir)
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI runs see no KTRDR_* settings of the outer environment, and render times in UTC."""
    for var in ("KTRDR_RUNTIME_DIR", "KTRDR_CALL_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TZ", "UTC")
