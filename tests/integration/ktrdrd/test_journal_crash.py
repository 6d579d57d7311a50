"""kill -9 while operations are journaling: afterwards the database is intact and holds every
event the killed process saw acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from ktrdrd.operations import OperationsCore
from tests.support.paths import REPO

ACKS_BEFORE_KILL = 600


def test_kill_9_keeps_every_acknowledged_event(tmp_path: Path) -> None:
    db_path = tmp_path / "ktrdr.db"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.journal_crash_child", str(db_path), "4"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[tuple[str, int]] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("operations/"):
                name, seq = line.split()
                acked.append((name, int(seq)))
            if len(acked) >= ACKS_BEFORE_KILL:
                break
        child.send_signal(signal.SIGKILL)
        # Lines already written to the pipe were acknowledged too.
        rest, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    for line in rest.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("operations/") and parts[1].isdigit():
            acked.append((parts[0], int(parts[1])))
    assert child.returncode == -signal.SIGKILL, stderr
    assert len(acked) >= ACKS_BEFORE_KILL, stderr
    assert len({name for name, _ in acked}) == 4

    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    stored = {
        ("operations/" + op_id, seq) for op_id, seq in conn.execute("SELECT op_id, seq FROM operation_events")
    }
    missing = [pair for pair in acked if pair not in stored]
    assert missing == []
    for op_id, last_seq, count in conn.execute(
        "SELECT o.id, o.last_seq, COUNT(e.seq) FROM operations o JOIN operation_events e ON e.op_id = o.id"
        " GROUP BY o.id"
    ):
        assert count == last_seq, op_id  # row and events are written in one transaction
    conn.close()

    async def reopen() -> list[str]:
        core = await OperationsCore.open(db_path)
        try:
            await core.resume_pending()  # no handler registered for test.crash here
            ops, _ = await core.list()
            return [op.state for op in ops]
        finally:
            await core.close()

    assert asyncio.run(reopen()) == ["INTERRUPTED"] * 4
