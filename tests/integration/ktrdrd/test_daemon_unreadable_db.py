"""An unreadable journal: ktrdrd, running as an unprivileged user, refuses to start with a message
naming the file, and changes nothing. Root reads any file, so the daemon runs as ``nobody``."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ktrdrd.operations import OperationsCore
from tests.support.paths import REPO

NOBODY = 65534

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to another user"
)


def test_unreadable_journal_refuses_to_start_and_changes_nothing() -> None:
    with tempfile.TemporaryDirectory(prefix="ktrdr-unreadable-") as tmp:
        base = Path(tmp)
        base.chmod(0o777)
        state = base / "state"
        state.mkdir(mode=0o750)
        db = state / "ktrdr.db"

        async def make_journal() -> None:
            core = await OperationsCore.open(db)
            await core.close()

        asyncio.run(make_journal())
        for extra in state.iterdir():  # a clean journal: no -wal/-shm beside it
            assert extra.name == "ktrdr.db"
        db.chmod(0o000)
        os.chown(state, NOBODY, NOBODY)  # the daemon's own state dir; the journal in it stays root's
        before = hashlib.sha256(db.read_bytes()).hexdigest()

        as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        daemon = ["-m", "ktrdrd", "--runtime-dir", str(base / "run"), "--state-dir", str(state)]
        proc = subprocess.run(
            [*as_nobody, sys.executable, *daemon, "--log-format", "text"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0
        assert str(db) in proc.stderr
        assert "permission" in proc.stderr.lower() or "cannot read" in proc.stderr.lower(), proc.stderr
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before
        assert sorted(p.name for p in state.iterdir()) == ["ktrdr.db", "ktrdrd.lock"]
        assert not (base / "run" / "grpc.sock").exists() and not (base / "run" / "ctl.sock").exists()
