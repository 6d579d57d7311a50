"""How a dead worker is described to its job's client: the signal or exit status, and its stderr's tail."""

from __future__ import annotations

import signal
from pathlib import Path

from hostd.training.pool import STDERR_TAIL_BYTES, exit_description


def test_a_clean_exit_is_no_failure(tmp_path: Path) -> None:
    assert exit_description(0, tmp_path / "none.log") is None


def test_a_signal_is_named_and_the_stderr_tail_follows(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text("x" * 5000 + "\nMemoryError: out of memory\n")
    text = exit_description(-signal.SIGKILL, log)
    assert text is not None and text.startswith("worker killed by SIGKILL; its stderr ends: ")
    assert text.endswith("MemoryError: out of memory") and len(text) < STDERR_TAIL_BYTES + 100


def test_an_exit_status_without_stderr(tmp_path: Path) -> None:
    assert exit_description(3, tmp_path / "missing.log") == "worker exited with status 3"
