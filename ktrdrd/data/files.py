"""The cache's Parquet files: ``<data dir>/<SYMBOL>/<TF>.parquet``, replaced atomically.

A file holds one table of :data:`SCHEMA`: ``time`` (int64, UTC bar-open ns since the epoch), then
``open high low close volume`` (float64), sorted by time with unique times. A write builds the whole
file in memory, hashes it (SHA-256, the digest the catalog records), writes it to a temporary file
in the same directory, fsyncs it, renames it over the old file and fsyncs the directory: a reader
or a crash sees the old file or the new one, never a mix. A failed write (disk full, file-size
limit) removes the temporary file and leaves the old file as it was. Blocking: call from a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = ("time", "open", "high", "low", "close", "volume")
SCHEMA = pa.schema([("time", pa.int64())] + [(name, pa.float64()) for name in COLUMNS[1:]])
TEMP_SUFFIX = ".tmp"
#: Bars per Parquet row group: a range or tail read decodes only the groups it needs.
ROW_GROUP_BARS = 65_536


@dataclass(frozen=True)
class Written:
    """A file just written: its SHA-256 (hex) and size in bytes."""

    digest: str
    size: int


def series_path(root: Path, symbol: str, timeframe: str) -> Path:
    """Where the series lives; ``symbol`` must already be one (:func:`ktrdr.symbols.is_symbol`)."""
    return root / symbol / f"{timeframe}.parquet"


def read(path: Path) -> pa.Table:
    """The whole table at ``path`` (FileNotFoundError when there is none)."""
    return pq.read_table(path, memory_map=True).cast(SCHEMA)


def read_range(path: Path, start_ns: int | None, end_ns: int | None, tail: int) -> pa.Table:
    """The rows with ``time`` in ``[start_ns, end_ns)`` (None: open side), only the last ``tail`` if
    > 0; decodes only the row groups whose time statistics overlap."""
    parquet = pq.ParquetFile(path, memory_map=True)
    groups = _overlapping_groups(parquet, start_ns, end_ns)
    if tail > 0:
        kept: list[int] = []
        inside = 0
        for position, index in enumerate(reversed(groups)):
            kept.insert(0, index)
            if position > 0:  # the last group may run past the range; the ones before it lie inside
                inside += parquet.metadata.row_group(index).num_rows
            if inside >= tail:
                break
        groups = kept
    # One row group (a tail, a short range) decodes in half the time without Arrow's thread pool,
    # whose hand-offs cost more than six small columns (bench cli_startup's `data show --tail 5`);
    # several groups decode in parallel (bench data_cache's 1M-bar read).
    table = (
        parquet.read_row_groups(groups, use_threads=len(groups) > 1).cast(SCHEMA)
        if groups
        else SCHEMA.empty_table()
    )
    first, stop = _inside(table, start_ns, end_ns)
    if tail > 0:
        first = max(first, stop - tail)
    return table.slice(first, stop - first)


def iter_range(path: Path, start_ns: int | None, end_ns: int | None) -> Iterator[pa.Table]:
    """The rows of ``read_range(path, start_ns, end_ns, 0)``, one row group (at most
    :data:`ROW_GROUP_BARS` rows) at a time, each decoded when the next one is asked for: a reader
    of a long series holds one group, not the series. Empty pieces are skipped. The file is opened
    at the first ``next``; a file replaced meanwhile is read as it was then."""
    parquet = pq.ParquetFile(path, memory_map=True)
    for index in _overlapping_groups(parquet, start_ns, end_ns):
        table = parquet.read_row_group(index, use_threads=False).cast(SCHEMA)
        first, stop = _inside(table, start_ns, end_ns)
        if stop > first:
            yield table.slice(first, stop - first)


def _overlapping_groups(parquet: pq.ParquetFile, start_ns: int | None, end_ns: int | None) -> list[int]:
    """Indexes of the row groups whose time statistics overlap ``[start_ns, end_ns)``, in order."""
    low, high = -(2**63) if start_ns is None else start_ns, 2**63 - 1 if end_ns is None else end_ns
    groups: list[int] = []
    for index in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(index).column(0).statistics
        if stats is None or not stats.has_min_max or (stats.max >= low and stats.min < high):
            groups.append(index)
    return groups


def _inside(table: pa.Table, start_ns: int | None, end_ns: int | None) -> tuple[int, int]:
    """``[first, stop)``: the positions of ``table``'s rows with time in ``[start_ns, end_ns)``."""
    times = table.column("time").to_numpy()
    first = 0 if start_ns is None else int(np.searchsorted(times, start_ns, "left"))
    stop = len(times) if end_ns is None else int(np.searchsorted(times, end_ns, "left"))
    return first, stop


def write_atomic(path: Path, table: pa.Table) -> Written:
    """Replace ``path`` with ``table`` atomically (see the module docstring); returns its digest."""
    sink = pa.BufferOutputStream()
    # No dictionary encoding (prices rarely repeat) and LZ4: the fastest write of a 1M-bar series.
    pq.write_table(
        table.cast(SCHEMA), sink, compression="lz4", use_dictionary=False, row_group_size=ROW_GROUP_BARS
    )
    data = sink.getvalue()
    view = memoryview(data)
    digest = hashlib.sha256(view).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(view)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)
    return Written(digest, len(view))


def remove(path: Path) -> None:
    """Delete the series file (if any) and its directory once empty; durable when this returns."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    _fsync_dir(path.parent)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def remove_temporaries(root: Path) -> list[Path]:
    """Delete temporary files a crashed write left under ``root``; returns them."""
    left = sorted(root.glob(f"*/.*{TEMP_SUFFIX}")) if root.is_dir() else []
    for temp in left:
        with contextlib.suppress(OSError):
            temp.unlink()
    return left


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
