"""The ``backtest.walkforward`` operation kind: ``train`` → ``data`` → ``backtest``.

Params (made by :mod:`.service`): ``train`` (a ``train`` operation's params for the whole period:
strategy, overrides, symbols, seed; each window replaces the period), ``windows`` (each
``index``, ``train_start_ns``, ``train_end_ns``, ``test_start_ns``, ``test_end_ns`` as decimal
strings: :func:`ktrdr.research.backtest.windows.plan_windows`), ``train_window``/``test_window``
(the lengths as given), ``symbols``, ``start_ns``/``end_ns``, and the backtest settings of a
``backtest`` operation (``fee_bps``, ``slippage_bps``, ``position_size``, ``initial_cash``, ``host``).

- ``train``: one ``train`` child per window, trained on its train window, **all started at once**
  (request id ``<operation id>-window-<k>``, label ``walk-forward-window``): the host pool runs
  them in parallel up to the training hosts' capacity, and a run identical to an earlier one
  returns that run's model (the train kind's reuse). Progress: ``training windows k/n`` as they
  finish. A child that does not succeed fails the operation (``WINDOW_TRAINING_FAILED``, naming
  the window and the child); a cancel cancels the children (the core does).
- ``data``: the series the test windows need (:func:`.kind.requirements_of` of the first window's
  model strategy over ``[first test start, end)``), complete in the bar cache (as ``backtest``).
- ``backtest``: per symbol one ``JOB_KIND_BACKTEST`` job with every window's model
  (``model/<k>/<FILE>``) and the spec's ``windows`` (:mod:`ktrdr.jobs.backtest`): the host backtests
  each test window with its model and stitches them; the jobs of the symbols run at once
  (:meth:`.kind.BacktestKind.run_jobs`, progress ``SYMBOL: window k/n``). Artifacts are kept as a
  backtest's (``GetBacktestArtifact``).

The result is a ``WalkForwardResult``: the first symbol's stitched metrics, the windows (periods,
model version, training child, reused) and the report (``symbols``, ``per_symbol``: each job's
result, whose ``windows`` hold each test window's return, Sharpe and trades). A restarted daemon
runs the handler again: the children are found by their request ids, the jobs by their ids.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from ktrdr.jobs import backtest as job_wire
from ktrdr.jobs import train as train_wire
from ktrdr.rpc.errors import ApiError
from ktrdr.wire import NAME_PREFIX, OperationState, StatusCode
from ktrdrd.backtests.kind import (
    BacktestKind,
    flat_metrics,
    job_spec,
    model_strategy,
)
from ktrdrd.operations import OperationContext, OperationRecord, OperationsCore
from ktrdrd.training import kind as train_kind
from ktrdrd.training.kind import CancelledByUser, until_cancelled

KIND = "backtest.walkforward"
RESULT_TYPE = "type.googleapis.com/ktrdr.daemon.v1.WalkForwardResult"
WINDOW_LABEL = "walk-forward-window"


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_runs(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``train`` params of each window: the walk-forward's training params over its train window."""
    return [
        {**params["train"], "start_ns": w["train_start_ns"], "end_ns": w["train_end_ns"]}
        for w in params["windows"]
    ]


def window_message(window: dict[str, Any], child: OperationRecord) -> dict[str, Any]:
    """The ``WalkForwardWindow`` (proto3 JSON) of a window whose ``train`` child succeeded."""
    result = child.result or {}
    return {
        "index": int(window["index"]),
        "trainStartTime": _rfc3339(int(window["train_start_ns"])),
        "trainEndTime": _rfc3339(int(window["train_end_ns"])),
        "testStartTime": _rfc3339(int(window["test_start_ns"])),
        "testEndTime": _rfc3339(int(window["test_end_ns"])),
        "modelVersion": result.get("modelVersion", ""),
        "trainingOperation": child.name,
        "reused": bool((result.get("report") or {}).get("reused")),
    }


class WalkForwardKind:
    """The handler (see the module docstring); backtest jobs run through ``backtests``."""

    def __init__(self, core: OperationsCore, backtests: BacktestKind) -> None:
        self.core = core
        self.backtests = backtests

    async def run(self, ctx: OperationContext) -> dict[str, Any] | None:
        try:
            return await self._run(ctx)
        except CancelledByUser:
            return None

    reattach = run

    async def _run(self, ctx: OperationContext) -> dict[str, Any] | None:
        p = ctx.params
        op_id = ctx.name.removeprefix(NAME_PREFIX)
        children = await self._train(ctx, op_id)
        if children is None:
            return None
        windows = [window_message(w, c) for w, c in zip(p["windows"], children, strict=True)]
        versions = [w["modelVersion"] for w in windows]
        strategy_name, version_of = _parse_versions(versions)

        await ctx.set_stage("data")
        dirs = [self.backtests.deps.models.version_dir(strategy_name, v) for v in version_of]
        strategy = await asyncio.to_thread(model_strategy, dirs[0])
        symbols = list(p["symbols"]) or list(strategy.data.symbols)
        start = int(p["windows"][0]["test_start_ns"])
        model_files = {
            f"{job_wire.MODEL_PREFIX}{k}/{name}": directory / name
            for k, directory in enumerate(dirs)
            for name in train_wire.MODEL_FILES
        }
        bounds = tuple((int(w["test_start_ns"]), int(w["test_end_ns"])) for w in p["windows"])
        results = await self.backtests.backtest_symbols(
            ctx, op_id, strategy, symbols, (start, int(p["end_ns"])), model_files,
            lambda s: job_spec(p, s, source=f"models/{strategy_name}", start_ns=start, windows=bounds),
        )  # fmt: skip
        if results is None:
            return None
        return {
            "@type": RESULT_TYPE,
            "model": f"models/{strategy_name}",
            "metrics": flat_metrics(results[symbols[0]]),
            "windows": windows,
            "report": {"symbols": symbols, "per_symbol": results},
        }

    async def _train(self, ctx: OperationContext, op_id: str) -> list[OperationRecord] | None:
        """Start every window's ``train`` child at once, wait for all; their final records in
        window order, or None when the operation was cancelled."""
        await ctx.set_stage("train")
        runs = window_runs(ctx.params)
        n = len(runs)
        started = []
        for k, run in enumerate(runs):
            child = await self.core.start(
                train_kind.KIND,
                params=run,
                parent=ctx.name,
                request_id=f"{op_id}-window-{k}",
                labels={WINDOW_LABEL: str(k)},
            )
            started.append(child.name)
        await ctx.message(f"training {n} windows: {', '.join(started)}")
        finished = 0

        async def wait(name: str) -> OperationRecord:
            nonlocal finished
            record = await self.core.wait(name, None)
            finished += 1
            await ctx.progress(current=finished, total=n, message=f"training windows {finished}/{n}")
            return record

        await ctx.progress(current=0, total=n, message=f"training windows 0/{n}")
        records = await until_cancelled(ctx, asyncio.gather(*(wait(name) for name in started)))
        for k, record in enumerate(records):
            if record.state != OperationState.SUCCEEDED:
                error = record.error or {}
                raise ApiError(
                    StatusCode(int(error.get("code") or StatusCode.ABORTED)),
                    f"window {k}: its training {record.name} ended {record.state}: {error.get('message', '')}",
                    "WINDOW_TRAINING_FAILED",
                )
        return records


def _parse_versions(versions: list[str]) -> tuple[str, list[int]]:
    """``(strategy, [version number…])`` of ``models/<strategy>/versions/<n>`` names (one strategy)."""
    pairs = [v.removeprefix("models/").partition("/versions/") for v in versions]
    return pairs[0][0], [int(number) for _strategy, _sep, number in pairs]
