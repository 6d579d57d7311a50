"""The ``train.batch`` operation kind: one ``train`` child per run, ``max_parallel`` at a time (0 = as
many as the hosts take: every child is started and waits in the host queue), then a summary.

Params: ``runs`` (each a ``train`` operation's params), ``max_parallel``. Children are started with
request ids derived from the parent's name and the run's index, so a re-attached parent finds the
children it had started (each child re-attaches by itself). The parent's progress counts finished
runs; it ends SUCCEEDED with ``TrainingBatchResult`` (succeeded, failed, cancelled) and a report
``ranking``: the runs that produced a model, best validation accuracy first. Cancelling the parent
cancels its children (the core does).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ktrdr.wire import NAME_PREFIX, OperationState
from ktrdrd.operations import OperationContext, OperationsCore
from ktrdrd.training import kind

KIND = "train.batch"
#: Seconds between two looks at the running children.
POLL_S = 0.25


def _validation_accuracy(result: dict[str, Any] | None) -> float:
    metrics = (result or {}).get("metrics", {})
    value = metrics.get("validation_accuracy", metrics.get("validation.accuracy"))
    return float(value) if isinstance(value, int | float) else float("nan")


def overrides_text(run: dict[str, Any]) -> str:
    return " ".join(f"{o['path']}={o['value']}" for o in run.get("overrides", [])) or "-"


class BatchKind:
    def __init__(self, core: OperationsCore) -> None:
        self.core = core

    async def run(self, ctx: OperationContext) -> dict[str, Any] | None:
        return await self._run(ctx)

    async def reattach(self, ctx: OperationContext) -> dict[str, Any] | None:
        return await self._run(ctx)

    async def _run(self, ctx: OperationContext) -> dict[str, Any] | None:
        runs: list[dict[str, Any]] = ctx.params["runs"]
        limit = ctx.params.get("max_parallel", 0) or len(runs)
        await ctx.set_stage("train")
        started: list[str] = []
        finished: dict[str, Any] = {}
        while len(finished) < len(runs):
            if ctx.cancelled.is_set():
                return None
            running = [n for n in started if n not in finished]
            while len(running) < limit and len(started) < len(runs):
                index = len(started)
                child = await self.core.start(
                    kind.KIND,
                    params=runs[index],
                    parent=ctx.name,
                    request_id=f"{ctx.name.removeprefix(NAME_PREFIX)}-{index}",
                    labels={"batch-index": str(index)},
                )
                started.append(child.name)
                running.append(child.name)
            for name in running:
                record = await self.core.wait(name, 0)
                if record.done:
                    finished[name] = record
            await ctx.progress(
                current=len(finished), total=len(runs), message=f"{len(finished)}/{len(runs)} runs done"
            )
            if len(finished) < len(runs):
                await asyncio.sleep(POLL_S)
        records = [finished[n] for n in started]
        counts = {state: sum(r.state == state for r in records) for state in OperationState}
        ranking = sorted(
            (
                {
                    "operation": r.name,
                    "strategy": runs[i]["strategy"]["source_name"],
                    "overrides": overrides_text(runs[i]),
                    "model_version": (r.result or {}).get("modelVersion", ""),
                    "validation_accuracy": _validation_accuracy(r.result),
                }
                for i, r in enumerate(records)
                if r.state == OperationState.SUCCEEDED
            ),
            key=lambda row: (
                -row["validation_accuracy"]
                if row["validation_accuracy"] == row["validation_accuracy"]
                else 0.0
            ),
        )
        return {
            "@type": "type.googleapis.com/ktrdr.daemon.v1.TrainingBatchResult",
            "succeeded": counts[OperationState.SUCCEEDED],
            "failed": counts[OperationState.FAILED] + counts[OperationState.INTERRUPTED],
            "cancelled": counts[OperationState.CANCELLED],
            "report": {"ranking": ranking},
        }
