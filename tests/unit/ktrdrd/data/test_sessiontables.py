"""The daemon's exchange session tables: files built by a ``python -m ktrdr.calendars export``
subprocess (so the daemon never imports pandas or exchange-calendars), read back as plain arrays."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ktrdr import calendars
from ktrdrd.data.sessiontables import TableBuildError, TableFiles

SPAN = calendars.table_span()


def ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def test_a_missing_or_broken_table_is_built_by_a_subprocess_then_read(tmp_path: Path) -> None:
    files = TableFiles(tmp_path / "calendars")
    path = tmp_path / "calendars" / f"{calendars.table_key('XNYS')}.npz"
    path.parent.mkdir()
    path.write_bytes(b"half a table")  # an interrupted copy, say: rebuilt, not trusted
    built = files("XNYS")
    assert built.label[0] == 19900102 and built.label[-1] // 10000 == int(SPAN[1][:4])
    # Independence Day closed; 3 July 2024 opens 09:30 and closes early, 13:00 New York (EDT).
    assert 20240704 not in built.label
    [early] = np.flatnonzero(built.label == 20240703)
    assert (built.open_ns[early], built.close_ns[early]) == (ns("2024-07-03T13:30"), ns("2024-07-03T17:00"))
    left = sorted(p.name for p in path.parent.iterdir())
    assert left == [".build.lock", path.name]  # no temporary file left
    written = path.stat().st_mtime_ns
    files("XNYS")
    assert path.stat().st_mtime_ns == written  # read, not rebuilt


def test_a_failed_build_says_which_table_and_why(tmp_path: Path) -> None:
    with pytest.raises(
        TableBuildError, match=r"building the XNYSE session table .*XNYSE-xcals.* invalid choice: 'XNYSE'"
    ):
        TableFiles(tmp_path)("XNYSE")


def test_read_table_names_a_file_that_is_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "t.npz"
    np.savez(path, label=np.arange(3), open_ns=np.array([3, 2, 1]), close_ns=np.arange(3))
    with pytest.raises(ValueError, match=r"t\.npz: not a session table: expected three equal-length arrays"):
        calendars.read_table(path)
    with pytest.raises(FileNotFoundError):
        calendars.read_table(tmp_path / "none.npz")


def test_the_table_key_follows_the_span() -> None:
    assert calendars.table_key("XNYS", ("1990-01-02", "2027-12-31")).endswith("-1990-01-02-2027-12-31")
    assert calendars.table_span(dt.date(2030, 5, 1)) == ("1990-01-02", "2031-12-31")


def test_warm_builds_the_missing_current_tables_once(tmp_path: Path) -> None:
    """What ktrdrd runs at start-up: the current XNYS table appears under its key; a second warm
    (or an export of a table that is whole) reads it and leaves the file alone."""
    directory = tmp_path / "calendars"
    warm = [sys.executable, "-m", "ktrdr.calendars", "warm", str(directory)]
    subprocess.run(warm, check=True, capture_output=True, timeout=120)
    path = calendars.table_file(directory, "XNYS")
    assert calendars.read_table(path).label[0] == 19900102
    written = path.stat().st_mtime_ns
    subprocess.run(warm, check=True, capture_output=True, timeout=120)
    calendars.export_table("XNYS", path)
    assert path.stat().st_mtime_ns == written
