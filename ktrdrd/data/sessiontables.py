"""The daemon's exchange session tables (:class:`ktrdr.calendars.SessionTable`) without pandas or
``exchange-calendars`` in its own process: each table is a file under a directory (the state
directory's ``calendars/``), named by :func:`ktrdr.calendars.table_key` (calendar,
``exchange-calendars`` version, span), so a new version or a new year makes a new file. A missing or
unreadable file is rebuilt by a short-lived ``python -m ktrdr.calendars export`` subprocess (about
a second), which writes it atomically, under the directory's build lock (so it waits for, and then
reads, a table the daemon's start-up warm-up is building: :meth:`ktrdrd.services.lazy_data.LazyDataService.warm_calendars`).

Blocking (reads a file, may wait for the subprocess): the calendars are only asked from threads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ktrdr import calendars

#: How long building one table may take before the daemon gives up on it.
BUILD_TIMEOUT_S = 120.0


class TableBuildError(RuntimeError):
    """Building a session table failed; the message says which table and why."""


class TableFiles:
    """A :data:`ktrdr.calendars.TableSource` reading tables from ``directory``, building missing ones."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self, calendar: str) -> calendars.SessionTable:
        path = calendars.table_file(self.directory, calendar)
        try:
            return calendars.read_table(path)
        except (FileNotFoundError, ValueError):
            pass  # none yet, or not whole: build it
        self._build(calendar, path)
        return calendars.read_table(path)

    def _build(self, calendar: str, path: Path) -> None:
        command = [sys.executable, "-m", "ktrdr.calendars", "export", calendar, str(path)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TableBuildError(f"building the {calendar} session table {path} failed: {exc}") from None
        if done.returncode != 0:
            detail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise TableBuildError(
                f"building the {calendar} session table {path} failed ({' '.join(command[1:4])}): {detail}"
            )


def install(directory: Path) -> None:
    """Make this process's exchange calendars read their tables from ``directory`` (:class:`TableFiles`)."""
    calendars.use_table_source(TableFiles(directory))
