"""The cache's files: atomic replacement survives a real failing write; the digest is the file's."""

from __future__ import annotations

import hashlib
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ktrdrd.data import files
from tests.support.paths import REPO


def table(count: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    price = 100 + rng.random(count)
    columns = [
        np.arange(count, dtype=np.int64) * 60 * 10**9,
        price,
        price + 1,
        price - 1,
        price,
        rng.random(count),
    ]
    return pa.table(columns, schema=files.SCHEMA)


def test_write_reads_back_with_the_files_digest(tmp_path: Path) -> None:
    path = files.series_path(tmp_path, "AAPL", "1m")
    written = files.write_atomic(path, table(1000))
    data = path.read_bytes()
    assert written.digest == hashlib.sha256(data).hexdigest() and written.size == len(data)
    assert files.read(path).equals(table(1000))
    assert [p.name for p in path.parent.iterdir()] == ["1m.parquet"]


def test_a_failing_write_leaves_the_previous_file_intact(tmp_path: Path) -> None:
    """The child may write files of at most 64 KiB (RLIMIT_FSIZE): the new file cannot be written."""
    path = files.series_path(tmp_path, "AAPL", "1m")
    files.write_atomic(path, table(100))
    before = path.read_bytes()
    limit = 64 * 1024
    assert len(before) < limit
    child = textwrap.dedent(f"""
        import signal
        import numpy as np, pyarrow as pa
        from pathlib import Path
        from ktrdrd.data import files
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of a signal
        rng = np.random.default_rng(1)
        count = 200_000
        cols = [np.arange(count, dtype=np.int64)] + [rng.random(count) for _ in range(5)]
        files.write_atomic(Path({str(path)!r}), pa.table(cols, schema=files.SCHEMA))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", child],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    assert proc.returncode != 0 and "File too large" in proc.stderr, proc.stderr
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["1m.parquet"]  # no temporary file left


def test_leftover_temporaries_are_removed(tmp_path: Path) -> None:
    path = files.series_path(tmp_path, "AAPL", "1m")
    files.write_atomic(path, table(10))
    stale = path.parent / f".1m.parquet.abc{files.TEMP_SUFFIX}"
    stale.write_bytes(b"partial")
    assert files.remove_temporaries(tmp_path) == [stale]
    assert [p.name for p in path.parent.iterdir()] == ["1m.parquet"]


def test_remove_deletes_the_file_and_its_empty_directory(tmp_path: Path) -> None:
    path = files.series_path(tmp_path, "AAPL", "1m")
    files.write_atomic(path, table(10))
    files.remove(path)
    assert not path.parent.exists()


@pytest.mark.parametrize(
    ("start", "end", "tail"),
    [(None, None, 0), (None, None, 5), (None, None, 70_000), (None, None, 500_000), (1000, 131_072, 0),
     (65_535, 65_537, 0), (None, 131_073, 65_536), (10, 200_000, 131_070), (199_999, None, 3), (300_000, None, 1),
     (5, 6, 10)],
)  # fmt: skip
def test_range_and_tail_reads_across_row_groups(
    tmp_path: Path, start: int | None, end: int | None, tail: int
) -> None:
    """200,000 one-minute bars make four row groups; each read equals slicing the whole table."""
    path = files.series_path(tmp_path, "AAPL", "1m")
    whole = table(200_000)
    files.write_atomic(path, whole)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    times = whole.column("time").to_numpy() // (60 * 10**9)  # minutes
    lo = 0 if start is None else int(np.searchsorted(times, start))
    hi = len(times) if end is None else int(np.searchsorted(times, end))
    if tail:
        lo = max(lo, hi - tail)
    minute = 60 * 10**9
    got = files.read_range(
        path, None if start is None else start * minute, None if end is None else end * minute, tail
    )
    assert got.equals(whole.slice(lo, hi - lo))
