"""The bar cache: read 1,000,000 bars, and merge a one-day tail into a 1,000,000-bar series.

``python -m bench data_cache [--bars N] [--repeat R]``. A 1m series of N bars (seeded random walk)
is stored through :class:`ktrdrd.data.cache.BarCache` (real journal, real files in a temporary
directory). Figures (medians of R runs):

- read: ``BarCache.read`` of the whole series (catalog lookup, Parquet read, NumPy columns), target
  ≤ 0.3 s; baseline: ``pyarrow.parquet.read_table`` of the same file alone;
- merge: ``BarCache.import_bars`` (merge mode) of one day (1,440 bars, the first 60 overlapping the
  series' end): read, splice, write a new file (fsync, rename, fsync dir), catalog commit; target
  ≤ 0.5 s; baseline: writing and fsyncing the file's bytes alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ktrdr.research.bars import Bars
from ktrdrd.data import files
from ktrdrd.data.cache import BarCache
from ktrdrd.journal import Journal

READ_TARGET_S = 0.3
MERGE_TARGET_S = 0.5
MINUTE_NS = 60 * 10**9
DAY_BARS = 1440


def walk(first_minute: int, count: int, seed: int) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 0.01, count))
    spread = np.abs(rng.normal(0, 0.02, count))
    t = (first_minute + np.arange(count, dtype=np.int64)) * MINUTE_NS
    return Bars.from_arrays(
        "BENCH", "1m", t, close, close + spread, close - spread, close, rng.integers(1, 1000, count)
    )


def median_s(samples: list[float]) -> float:
    return statistics.median(samples)


async def run(
    root: Path, count: int, repeat: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    journal = await Journal.open(root / "ktrdr.db")
    try:
        cache = BarCache(root / "data", journal)
        await cache.open()
        await cache.import_bars(walk(0, count, 1), source="IMPORT", mode="replace", calendar="crypto")
        path = files.series_path(cache.root, "BENCH", "1m")
        reads, raw_reads, merges, raw_writes = [], [], [], []
        for i in range(repeat):
            t0 = time.perf_counter()
            got = await cache.read("BENCH", "1m", None, None, 0)
            reads.append(time.perf_counter() - t0)
            assert len(got) >= count
            t0 = time.perf_counter()
            pq.read_table(path)
            raw_reads.append(time.perf_counter() - t0)

            last_minute = int(got.time[-1] // MINUTE_NS)
            tail = walk(last_minute - 59, DAY_BARS, 100 + i)
            t0 = time.perf_counter()
            await cache.import_bars(tail, source="IMPORT", mode="merge", calendar="crypto")
            merges.append(time.perf_counter() - t0)
            data = path.read_bytes()
            t0 = time.perf_counter()
            with open(root / "raw.bin", "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            raw_writes.append(time.perf_counter() - t0)
        return reads, raw_reads, merges, raw_writes
    finally:
        await journal.close()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench data_cache", description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ktrdr-bench-data-") as tmp:
        reads, raw_reads, merges, raw_writes = asyncio.run(run(Path(tmp), args.bars, args.repeat))
    read_s, merge_s = median_s(reads), median_s(merges)
    print(f"read {args.bars:,} bars: {read_s:.3f} s (target <= {READ_TARGET_S} s; "
          f"{read_s / median_s(raw_reads):.1f}x a bare pyarrow read of the file)")  # fmt: skip
    print(f"merge a one-day tail ({DAY_BARS} bars) into {args.bars:,}: {merge_s:.3f} s "
          f"(target <= {MERGE_TARGET_S} s; {merge_s / median_s(raw_writes):.1f}x writing+fsyncing the file alone)")  # fmt: skip
    ok = read_s <= READ_TARGET_S and merge_s <= MERGE_TARGET_S
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1
