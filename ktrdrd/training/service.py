"""``ktrdr.daemon.v1.TrainingService``: StartTraining, StartTrainingBatch; and the ``train``
resumer of ``OperationsService.ResumeOperation``.

Every request is checked before anything runs, in a worker thread: the strategy text (an invalid
document is INVALID_ARGUMENT ``STRATEGY_INVALID`` with ``file:line:col`` per issue, overrides
included), the period (``end_time`` not after ``start_time`` is INVALID_ARGUMENT; an unset period is
the 365 days before today 00:00 UTC), the overrides' form, and that the strategy's name can name a
model. Then a ``train`` operation (or a ``train.batch`` parent) starts; both are idempotent on
``request_id``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ktrdr.daemon.v1 import training_pb2 as pb
from ktrdr.rpc.errors import failed_precondition, invalid_argument
from ktrdr.rpc.registry import Call
from ktrdr.symbols import normalize as normalize_symbol
from ktrdr.wire import NAME_PREFIX, OperationState
from ktrdrd.operations import OperationRecord, OperationsCore
from ktrdrd.services.convert import operation_to_proto
from ktrdrd.services.strategies import DEFAULT_SOURCE_NAME, checked_overrides, period_of
from ktrdrd.training import batch, kind
from ktrdrd.training.prepare import prepare

RESUMABLE = (OperationState.CANCELLED, OperationState.FAILED, OperationState.INTERRUPTED)


def check_run(
    source: Any, settings: pb.TrainingSettings, overrides: list[dict[str, str]], field: str
) -> dict[str, Any]:
    """Worker thread: one run's ``train`` params, checked (see the module docstring)."""
    from ktrdrd.models.files import name_problem

    if not source.content:
        raise invalid_argument(
            f"{field}.content", "required: the strategy YAML text (the daemon reads no files)"
        )
    name = source.source_name or DEFAULT_SOURCE_NAME
    start_ns, end_ns = period_of(settings, time.time_ns())  # type: ignore[arg-type]
    prepared = prepare(source.content, name, overrides, list(settings.symbols), start_ns, end_ns)
    problem = name_problem(prepared.name)
    if problem:
        raise invalid_argument(f"{field}.content", f"{name}: strategy name {prepared.name!r}: {problem}")
    return {
        "strategy": {"content": source.content, "source_name": name},
        "overrides": overrides,
        "symbols": [normalize_symbol(s) for s in settings.symbols],
        "start_ns": str(start_ns),
        "end_ns": str(end_ns),
        "seed": settings.seed if settings.HasField("seed") else None,
        "force": settings.force,
        "host": settings.host,
    }


def _overrides(settings: pb.TrainingSettings, extra: list[Any] | None = None) -> list[dict[str, str]]:
    checked = checked_overrides(settings.overrides, "settings.overrides")
    return [{"path": o.path, "value": o.value} for o in [*checked, *(extra or [])]]


class TrainingService:
    """The RPCs over ``core`` (which has the ``train`` and ``train.batch`` kinds registered)."""

    descriptor = pb.DESCRIPTOR.services_by_name["TrainingService"]

    def __init__(self, core: OperationsCore, has_hosts: bool) -> None:
        self._core = core
        self._has_hosts = has_hosts

    def _need_hosts(self) -> None:
        if not self._has_hosts:
            raise failed_precondition(
                "ktrdrd has no training host: set hosts.training (addresses of running `hostd training`) "
                "or hosts.embedded = true in the daemon's configuration",
                "NO_TRAINING_HOST",
            )

    async def StartTraining(self, request: pb.StartTrainingRequest, call: Call) -> pb.StartTrainingResponse:
        self._need_hosts()

        def check() -> dict[str, Any]:
            return check_run(request.strategy, request.settings, _overrides(request.settings), "strategy")

        params = await asyncio.to_thread(check)
        record = await self._core.start(
            kind.KIND, params=params, labels=dict(request.labels), request_id=request.request_id
        )
        return pb.StartTrainingResponse(operation=operation_to_proto(record))

    async def StartTrainingBatch(
        self, request: pb.StartTrainingBatchRequest, call: Call
    ) -> pb.StartTrainingBatchResponse:
        self._need_hosts()
        if not request.strategies:
            raise invalid_argument("strategies", "at least one strategy is required")
        if request.max_parallel < 0:
            raise invalid_argument("max_parallel", f"must be >= 0, got {request.max_parallel}")

        def check() -> list[dict[str, Any]]:
            from ktrdr.strategy.overrides import OverrideError, expand_sweeps

            try:
                points = expand_sweeps([(s.path, list(s.values)) for s in request.sweeps]) or [[]]
            except OverrideError as exc:
                raise invalid_argument("sweeps", str(exc), "OVERRIDE_INVALID") from None
            runs = []
            for i, source in enumerate(request.strategies):
                for point in points:
                    overrides = _overrides(request.settings, point)
                    runs.append(check_run(source, request.settings, overrides, f"strategies[{i}]"))
            return runs

        runs = await asyncio.to_thread(check)
        record = await self._core.start(
            batch.KIND,
            params={"runs": runs, "max_parallel": request.max_parallel},
            labels=dict(request.labels),
            request_id=request.request_id,
        )
        return pb.StartTrainingBatchResponse(operation=operation_to_proto(record))


async def resume_train(core: OperationsCore, record: OperationRecord, request_id: str) -> OperationRecord:
    """``ResumeOperation`` of a ``train`` operation: a new one with the same params that continues
    from the old job's checkpoint (labelled ``resumed-from``)."""
    if record.state not in RESUMABLE:
        raise failed_precondition(
            f"{record.name} is {record.state}; only CANCELLED, FAILED or INTERRUPTED operations resume",
            "OPERATION_NOT_RESUMABLE",
        )
    params, labels = resumed_request(record)
    return await core.start(kind.KIND, params=params, labels=labels, request_id=request_id)


def resumed_request(
    record: OperationRecord, *, auto_resumes: int = 0, note: str = ""
) -> tuple[dict[str, Any], dict[str, str]]:
    """The params and labels of the operation that resumes ``record``: the same request, from its
    checkpoint, trained even if an identical run made a model. ``auto_resumes``: how many automatic
    resumes led to it (a person's resume starts the count again at 0); ``note``: its first message."""
    params = {**record.params, "resume_from": record.name, "force": True, "auto_resumes": auto_resumes}
    params.pop("resume_note", None)
    if note:
        params["resume_note"] = note
    labels = {**record.labels, kind.RESUMED_FROM: record.name.removeprefix(NAME_PREFIX)}
    labels.pop(kind.RESUMED_BY, None)
    if auto_resumes:
        labels[kind.RESUMED_BY] = "ktrdrd"
    return params, labels
