"""The ``train.batch`` operation kind: one ``train`` child per run, ``max_parallel`` at a time (0 = as
many as the hosts take: every child is started and waits in the host queue), then a summary.

Params: ``runs`` (each a ``train`` operation's params), ``max_parallel``. Children are started with
request ids derived from the parent's name and the run's index, so a re-attached parent finds the
children it had started (each child re-attaches by itself). The parent's progress counts finished
runs; it ends SUCCEEDED with ``TrainingBatchResult`` (succeeded, failed, cancelled) and a report
``ranking``: the runs that produced a model, best validation accuracy first. Cancelling the parent
cancels its children (the core does).

A child that ends INTERRUPTED because its host or worker was lost, and that ktrdrd will resume by
itself (:mod:`.autoresume`: the resumed run is a child of the same parent), is not finished: the
parent follows the run that resumes it (or waits for it to start) and counts that one instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ktrdr.wire import NAME_PREFIX, OperationState
from ktrdrd.operations import OperationContext, OperationRecord, OperationsCore
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
    """``auto_resume_limit``: the automatic resumes a run may have (0: none; see :mod:`.autoresume`)."""

    def __init__(self, core: OperationsCore, auto_resume_limit: int = 0) -> None:
        self.core = core
        self.auto_resume_limit = auto_resume_limit

    async def _settled(self, record: OperationRecord) -> str | None:
        """For a done child: None when it is finished for the batch; else the name of the run that
        resumes it, or "" while that run is still to be started by ktrdrd."""
        page, _ = await self.core.list(kind=kind.KIND, labels={kind.RESUMED_FROM: record.id}, page_size=1)
        if page:
            return page[0].name
        reason = (record.error or {}).get("reason", "")
        resumes = record.state == OperationState.INTERRUPTED and reason in kind.LOST_REASONS
        return "" if resumes and int(record.params.get("auto_resumes", 0)) < self.auto_resume_limit else None

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
                if not record.done:
                    continue
                successor = await self._settled(record)
                if successor is None:
                    finished[name] = record
                elif successor:
                    started[started.index(name)] = successor
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
