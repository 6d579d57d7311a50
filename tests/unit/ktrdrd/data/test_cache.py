"""BarCache over a real journal: merges never duplicate a bar, modes, one source per series, delete."""

from __future__ import annotations

import asyncio
import hashlib
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ktrdr.research.bars import Bars
from ktrdr.rpc.errors import ApiError
from ktrdr.wire import StatusCode
from ktrdrd.data import files
from ktrdrd.data.cache import BarCache
from ktrdrd.journal import Journal
from tests.support.paths import REPO

MINUTE = 60 * 10**9


def bars(first_minute: int, count: int, price: float) -> Bars:
    t = (first_minute + np.arange(count, dtype=np.int64)) * MINUTE
    p = np.full(count, price)
    return Bars.from_arrays("EURUSD", "1m", t, p, p + 1, p - 1, p, np.ones(count))


def run(tmp_path: Path, scenario) -> None:
    async def main() -> None:
        journal = await Journal.open(tmp_path / "ktrdr.db")
        try:
            cache = BarCache(tmp_path / "data", journal)
            await cache.open()
            await scenario(cache)
        finally:
            await journal.close()

    asyncio.run(main())


def test_merge_replaces_the_overlap_and_keeps_the_rest(tmp_path: Path) -> None:
    async def scenario(cache: BarCache) -> None:
        await cache.import_bars(bars(0, 100, 1.0), source="IMPORT", mode="merge", calendar="forex")
        entry = await cache.import_bars(bars(90, 20, 2.0), source="IMPORT", mode="merge", calendar="forex")
        stored = await cache.read("EURUSD", "1m", None, None, 0)
        assert stored.time.tolist() == [m * MINUTE for m in range(110)]
        assert stored.close.tolist() == [1.0] * 90 + [2.0] * 20
        assert entry.bar_count == 110 and entry.first_ns == 0 and entry.last_ns == 109 * MINUTE
        assert entry.covered == [(0, 110 * MINUTE)]
        path = files.series_path(cache.root, "EURUSD", "1m")
        assert entry.digest == hashlib.sha256(path.read_bytes()).hexdigest()
        # An import inside the series replaces only its own range.
        await cache.import_bars(bars(10, 5, 3.0), source="IMPORT", mode="merge", calendar="forex")
        stored = await cache.read("EURUSD", "1m", None, None, 0)
        assert len(stored) == 110 and stored.close[8:17].tolist() == [1.0, 1.0] + [3.0] * 5 + [1.0, 1.0]
        # A disjoint import adds a covered interval.
        entry = await cache.import_bars(bars(200, 10, 4.0), source="IMPORT", mode="merge", calendar="forex")
        assert entry.covered == [(0, 110 * MINUTE), (200 * MINUTE, 210 * MINUTE)]
        assert (await cache.entry("EURUSD", "1m")) == entry

    run(tmp_path, scenario)


def test_concurrent_merges_of_one_series_both_land(tmp_path: Path) -> None:
    async def scenario(cache: BarCache) -> None:
        await asyncio.gather(
            cache.import_bars(bars(0, 50, 1.0), source="IMPORT", mode="merge", calendar="crypto"),
            cache.import_bars(bars(40, 50, 2.0), source="IMPORT", mode="merge", calendar="crypto"),
        )
        stored = await cache.read("EURUSD", "1m", None, None, 0)
        assert stored.time.tolist() == [m * MINUTE for m in range(90)]

    run(tmp_path, scenario)


def test_modes_sources_and_delete(tmp_path: Path) -> None:
    async def scenario(cache: BarCache) -> None:
        await cache.import_bars(bars(0, 100, 1.0), source="IB", mode="merge", calendar="forex")
        with pytest.raises(ApiError) as mixed:
            await cache.import_bars(bars(0, 10, 2.0), source="IMPORT", mode="replace", calendar="forex")
        assert (
            mixed.value.code == StatusCode.FAILED_PRECONDITION
            and "never mixes sources" in mixed.value.message
        )
        with pytest.raises(ApiError) as exists:
            await cache.import_bars(bars(0, 10, 2.0), source="IB", mode="create", calendar="forex")
        assert exists.value.code == StatusCode.ALREADY_EXISTS
        entry = await cache.import_bars(bars(500, 10, 2.0), source="IB", mode="replace", calendar="forex")
        assert entry.bar_count == 10 and entry.covered == [(500 * MINUTE, 510 * MINUTE)]
        tail = await cache.read("EURUSD", "1m", None, 508 * MINUTE, 3)
        assert tail.time.tolist() == [505 * MINUTE, 506 * MINUTE, 507 * MINUTE]
        await cache.delete("EURUSD", "1m")
        assert await cache.entry("EURUSD", "1m") is None
        assert not files.series_path(cache.root, "EURUSD", "1m").exists()
        for missing in (cache.delete("EURUSD", "1m"), cache.read("EURUSD", "1m", None, None, 0)):
            with pytest.raises(ApiError) as gone:
                await missing
            assert gone.value.code == StatusCode.NOT_FOUND

    run(tmp_path, scenario)


def test_a_failing_write_is_a_clear_error_and_keeps_the_series(tmp_path: Path) -> None:
    """In a child limited to 2 MiB files (RLIMIT_FSIZE): a small import lands, a large merge fails
    with RESOURCE_EXHAUSTED naming the file, and the series and its catalog entry are unchanged."""
    child = textwrap.dedent(f"""
        import asyncio, signal
        from pathlib import Path
        from ktrdrd.data.cache import BarCache
        from ktrdr.rpc.errors import ApiError
        from ktrdrd.journal import Journal
        from tests.unit.ktrdrd.data.test_cache import bars
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

        async def main():
            root = Path({str(tmp_path)!r})
            journal = await Journal.open(root / "ktrdr.db")
            cache = BarCache(root / "data", journal)
            before = await cache.import_bars(bars(0, 100, 1.0), source="IMPORT", mode="merge", calendar="crypto")
            try:
                await cache.import_bars(bars(50, 300_000, 2.0), source="IMPORT", mode="merge", calendar="crypto")
            except ApiError as exc:
                print(exc.code, exc.reason, exc.message)
            assert await cache.entry("EURUSD", "1m") == before
            print("entry unchanged", before.digest)
            await journal.close()

        asyncio.run(main())
    """)
    limit = 2 * 1024 * 1024
    proc = subprocess.run(
        [sys.executable, "-c", child],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    assert proc.returncode == 0, proc.stderr
    refusal, unchanged = proc.stdout.splitlines()
    path = files.series_path(tmp_path / "data", "EURUSD", "1m")
    assert refusal == (
        f"{StatusCode.RESOURCE_EXHAUSTED} DATA_DISK_FULL cannot write {path}: File too large; "
        "the previous file is intact"
    )
    assert unchanged == f"entry unchanged {hashlib.sha256(path.read_bytes()).hexdigest()}"
