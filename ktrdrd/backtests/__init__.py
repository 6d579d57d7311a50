"""Backtests through the daemon: the ``backtest`` operation kind (:mod:`.kind`), which runs one
``JOB_KIND_BACKTEST`` job per symbol on the training hosts, the ``backtest.walkforward`` kind
(:mod:`.walkforward`: ``train`` children per window, then stitched backtest jobs), and
``BacktestsService`` (:mod:`.service`). :func:`install` wires them (after the training kinds: it
shares their host pool)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ktrdrd.backtests import kind, walkforward
from ktrdrd.backtests.service import BacktestsService
from ktrdrd.hostjobs.pool import HostPool
from ktrdrd.operations import OperationsCore
from ktrdrd.training.kind import Loader


def install(
    core: OperationsCore,
    pool: HostPool,
    has_hosts: bool,
    models: Any,
    cache_of: Any,
    load_missing: Loader | None,
    state_dir: Path,
) -> BacktestsService:
    """Register the ``backtest`` kind over the training hosts' ``pool`` (the training kinds'), the
    bar cache (``cache_of()``) and the loader of missing bars (None: no IB host); artifacts are
    kept under ``<state dir>/backtests/``. Returns the service."""
    handler = kind.BacktestKind(
        kind.BacktestDeps(
            pool=pool,
            models=models,
            cache_of=cache_of,
            load_missing=load_missing,
            artifacts=state_dir / "backtests",
        )
    )
    core.register_kind(kind.KIND, handler)
    core.register_kind(walkforward.KIND, walkforward.WalkForwardKind(core, handler))
    return BacktestsService(core, models, handler, has_hosts=has_hosts)
