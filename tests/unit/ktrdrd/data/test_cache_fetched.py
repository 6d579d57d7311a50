"""BarCache.merge_fetched (what a load stores): the fetched span replaces the stored bars in it and
becomes covered; the source's confirmed-empty intervals become known-empty; one source per series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ktrdr.research.bars import Bars
from ktrdr.rpc.errors import ApiError
from ktrdr.wire import StatusCode
from ktrdrd.data.cache import BarCache
from tests.unit.ktrdrd.data.test_cache import MINUTE, bars, run


def no_bars() -> Bars:
    return bars(0, 0, 1.0)


def test_a_fetched_span_replaces_the_stored_bars_in_it_and_is_covered(tmp_path: Path) -> None:
    async def scenario(cache: BarCache) -> None:
        first = await cache.merge_fetched(
            bars(0, 50, 1.0), (0, 60 * MINUTE), [], source="IB", calendar="crypto"
        )
        assert first.covered == [(0, 60 * MINUTE)] and first.bar_count == 50
        # A refresh of [40, 100): the stored bars 40..49 are replaced, none is duplicated.
        entry = await cache.merge_fetched(
            bars(40, 30, 2.0), (40 * MINUTE, 100 * MINUTE), [(70 * MINUTE, 100 * MINUTE)], source="IB",
            calendar="crypto",
        )  # fmt: skip
        stored = await cache.read("EURUSD", "1m", None, None, 0)
        assert stored.time.tolist() == [m * MINUTE for m in range(70)]
        assert stored.close.tolist() == [1.0] * 40 + [2.0] * 30
        assert entry.covered == [(0, 100 * MINUTE)]
        assert entry.known_empty == [(70 * MINUTE, 100 * MINUTE)]  # the source said so; crypto never closes

    run(tmp_path, scenario)


def test_empty_answers_keep_the_file_and_a_new_series_needs_a_bar(tmp_path: Path) -> None:
    async def scenario(cache: BarCache) -> None:
        nothing = await cache.merge_fetched(no_bars(), (0, 10 * MINUTE), [(0, 10 * MINUTE)], source="IB",
                                            calendar="crypto")  # fmt: skip
        assert nothing.bar_count == 0 and await cache.entry("EURUSD", "1m") is None  # no file without a bar
        await cache.merge_fetched(bars(0, 10, 1.0), (0, 10 * MINUTE), [], source="IB", calendar="crypto")
        entry = await cache.merge_fetched(no_bars(), (10 * MINUTE, 20 * MINUTE), [(10 * MINUTE, 20 * MINUTE)],
                                          source="IB", calendar="crypto")  # fmt: skip
        assert entry.bar_count == 10 and entry.covered == [(0, 20 * MINUTE)]
        assert entry.known_empty == [(10 * MINUTE, 20 * MINUTE)]
        assert np.array_equal((await cache.read("EURUSD", "1m", None, None, 0)).time, np.arange(10) * MINUTE)

    run(tmp_path, scenario)


def test_a_series_never_mixes_sources(tmp_path: Path) -> None:
    async def scenario(cache: BarCache) -> None:
        await cache.import_bars(bars(0, 10, 1.0), source="IMPORT", mode="merge", calendar="crypto")
        with pytest.raises(ApiError) as caught:
            await cache.merge_fetched(bars(10, 5, 1.0), (10 * MINUTE, 15 * MINUTE), [], source="IB",
                                      calendar="crypto")  # fmt: skip
        assert caught.value.code == StatusCode.FAILED_PRECONDITION and "IMPORT" in caught.value.message

    run(tmp_path, scenario)
