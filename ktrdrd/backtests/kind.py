"""The ``backtest`` operation kind: ``data`` → ``backtest`` (every symbol's job at once).

Params (made by :mod:`.service`): ``strategy``, ``version`` (the resolved model version),
``symbols`` (empty = the model's), ``start_ns``/``end_ns`` (decimal strings), ``fee_bps``,
``slippage_bps``, ``position_size`` (each null = the default), ``initial_cash``, ``host``.

- ``data``: the model's strategy (its ``strategy.json``) says which series the backtest needs
  (every timeframe, warm-up before the start included, per symbol); each must be complete in the
  bar cache (:func:`ktrdrd.training.kind.ensure_bars`: loaded through the IB host, or
  FAILED_PRECONDITION ``DATA_MISSING`` naming the missing ranges).
- ``backtest``: per symbol, one ``JOB_KIND_BACKTEST`` job (:mod:`ktrdr.jobs.backtest`), job id
  ``<operation id>.<SYMBOL>``, all submitted together (:meth:`BacktestKind.run_jobs`): the host pool
  (:class:`~ktrdrd.hostjobs.pool.HostPool`) places them as slots are free, so they run in parallel
  up to the hosts' capacity. The model's files and the symbol's bars are uploaded where the host
  lacks them; the progress is the mean of the jobs' step fractions, each message naming its
  symbol; each job's start and end are journaled as messages. A host that refuses (a feature spec
  the code no longer builds: FAILED_PRECONDITION ``FEATURE_SPEC_MISMATCH``) or a job that fails
  fails the operation with the host's code and cancels the other jobs; a cancel of the operation
  cancels them all. Each job's artifacts are kept with the operation under
  ``<state>/backtests/<operation id>/<SYMBOL>/`` (:meth:`BacktestKind.artifact_path`); the result a
  ``BacktestResult``.

A backtest is short and its job id deterministic, so a restarted daemon simply runs it again
(StartJob of the same id on the same host returns the job it already has).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from ktrdr.hostd.training.v1 import training_host_pb2 as hpb
from ktrdr.jobs import backtest as job_wire
from ktrdr.jobs import train as train_wire
from ktrdr.rpc.errors import ApiError
from ktrdr.wire import NAME_PREFIX, StatusCode
from ktrdrd.hostjobs import dispatch
from ktrdrd.hostjobs.pool import HostPool, Slot
from ktrdrd.operations import Interrupted, OperationContext
from ktrdrd.training import prepare as prep
from ktrdrd.training.kind import CancelledByUser, Loader, bar_blobs_of, ensure_bars, until_cancelled

KIND = "backtest"
RESULT_TYPE = "type.googleapis.com/ktrdr.daemon.v1.BacktestResult"


@dataclass
class BacktestDeps:
    """The hosts, the model registry, the bar cache (``cache_of()``), the loader of missing bars
    and where artifacts are kept."""

    pool: HostPool
    models: Any  # ktrdrd.models.ModelRegistry
    cache_of: Callable[[], Awaitable[Any]]
    load_missing: Loader | None
    artifacts: Path


def model_strategy(model_dir: Path) -> Any:
    """The strategy a model version was trained with (worker thread: reads ``strategy.json``)."""
    from ktrdr.strategy.model import strategy_from_dict

    return strategy_from_dict(json.loads((model_dir / "strategy.json").read_text(encoding="utf-8")))


def requirements_of(strategy: Any, symbol: str, start_ns: int, end_ns: int) -> list[prep.Requirement]:
    """The series a backtest of ``symbol`` needs (every timeframe, warm-up included)."""
    from ktrdr.strategy import data_requirements

    one = replace(strategy, data=replace(strategy.data, symbols=(symbol,)))
    return [prep.Requirement.of(r) for r in data_requirements(one, start_ns, end_ns)]


def flat_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The ``BacktestResult.metrics`` map of one job's result: every numeric metric, the bootstrap
    bounds and p-value (``uncertainty.*``) and the classifier's accuracy and baselines
    (``classifier.*``); unbounded (null) figures are left out."""
    metrics = result["metrics"]
    out = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    unc = metrics["uncertainty"]
    out["uncertainty.permutation_p_value"] = float(unc["permutation_p_value"])
    for key in ("sharpe_ci", "total_return_ci"):
        if unc.get(key):
            out[f"uncertainty.{key}.low"], out[f"uncertainty.{key}.high"] = map(float, unc[key])
    for key in ("accuracy", "baseline_accuracy", "persistence_accuracy"):
        out[f"classifier.{key}"] = float(result["classifier"][key])
    out["fee_bps"] = float(metrics["costs"]["fee_bps"])
    out["slippage_bps"] = float(metrics["costs"]["slippage_bps"])
    return out


class BacktestKind:
    """The handler (see the module docstring)."""

    def __init__(self, deps: BacktestDeps) -> None:
        self.deps = deps

    async def run(self, ctx: OperationContext) -> dict[str, Any] | None:
        try:
            return await self._run(ctx)
        except CancelledByUser:
            return None

    reattach = run

    def artifact_path(self, op_id: str, symbol: str, name: str) -> Path:
        return self.deps.artifacts / op_id / symbol / name

    async def _run(self, ctx: OperationContext) -> dict[str, Any] | None:
        p = ctx.params
        op_id = ctx.name.removeprefix(NAME_PREFIX)
        await ctx.set_stage("data")
        model_dir = self.deps.models.version_dir(p["strategy"], int(p["version"]))
        strategy = await asyncio.to_thread(model_strategy, model_dir)
        symbols = list(p["symbols"]) or list(strategy.data.symbols)
        model_files = {job_wire.MODEL_PREFIX + n: model_dir / n for n in train_wire.MODEL_FILES}
        results = await self.backtest_symbols(
            ctx, op_id, strategy, symbols, (int(p["start_ns"]), int(p["end_ns"])), model_files,
            lambda s: job_spec(p, s),
        )  # fmt: skip
        if results is None:
            return None
        return {
            "@type": RESULT_TYPE,
            "modelVersion": f"models/{p['strategy']}/versions/{p['version']}",
            "metrics": flat_metrics(results[symbols[0]]),
            "report": {"symbols": symbols, "per_symbol": results},
        }

    async def backtest_symbols(
        self,
        ctx: OperationContext,
        op_id: str,
        strategy: Any,
        symbols: list[str],
        period: tuple[int, int],
        model_files: dict[str, Path],
        spec_of: Callable[[str], dict[str, Any]],
    ) -> dict[str, dict[str, Any]] | None:
        """The bars every symbol needs over ``period`` (ns) made present (loaded where missing),
        then one backtest job per symbol (:meth:`run_jobs`) with the model files (input role →
        file) and its bars; symbol → its job's result, or None when the operation was cancelled."""
        start, end = period
        reqs = {s: await asyncio.to_thread(requirements_of, strategy, s, start, end) for s in symbols}
        every = [r for rs in reqs.values() for r in rs]
        await ensure_bars(ctx, self.deps.cache_of, self.deps.load_missing, every)
        files = await asyncio.to_thread(
            lambda: {role: path.read_bytes() for role, path in model_files.items()}
        )
        blobs = {s: {**files, **await bar_blobs_of(self.deps.cache_of, reqs[s])} for s in symbols}
        jobs = await self.run_jobs(ctx, {s: (f"{op_id}.{s}", spec_of(s), blobs[s]) for s in symbols})
        if jobs is None:
            return None
        return {s: json_format.MessageToDict(jobs[s].result) for s in symbols}

    async def run_jobs(
        self, ctx: OperationContext, jobs: dict[str, tuple[str, dict[str, Any], dict[str, bytes]]]
    ) -> dict[str, Any] | None:
        """Run every job at once (label → (job id, spec, input blobs)), each placed by the host pool
        as slots free up, and keep their artifacts. The operation's progress is the mean of the
        jobs' fractions, its messages name the label. Returns label → the host's final job, or None
        when the operation was cancelled; a job that fails fails the operation (ApiError) and the
        others are cancelled on their hosts."""
        await ctx.set_stage("backtest")
        fractions = dict.fromkeys(jobs, 0.0)

        def advance(label: str, fraction: float, note: str) -> None:
            fractions[label] = fraction
            total = sum(fractions.values()) / len(fractions)
            asyncio.get_running_loop().create_task(ctx.progress(fraction=total, message=f"{label}: {note}"))

        try:
            async with asyncio.TaskGroup() as group:
                tasks = {
                    label: group.create_task(self._job(ctx, label, job_id, spec, blobs, advance))
                    for label, (job_id, spec, blobs) in jobs.items()
                }
        except BaseExceptionGroup as failed:
            first = next(e for e in failed.exceptions if not isinstance(e, asyncio.CancelledError))
            if isinstance(first, CancelledByUser):
                return None
            raise first from None
        done = {label: task.result() for label, task in tasks.items()}
        return None if any(job is None for job in done.values()) else done

    async def _job(
        self,
        ctx: OperationContext,
        label: str,
        job_id: str,
        spec: dict[str, Any],
        blobs: dict[str, bytes],
        advance: Callable[[str, float, str], None],
    ) -> Any:
        """One job: placed, started, followed, its artifacts kept under ``<operation>/<label>/``.
        The host's final job when it succeeded; None when the operation was cancelled."""

        def waiting(note: str) -> None:
            advance(label, 0.0, note)

        slot = await self._acquire(ctx, waiting)
        try:
            await ctx.message(f"{label}: backtest job {job_id} started on training host {slot.host!r}")
            try:
                refs = await until_cancelled(ctx, dispatch.upload_missing(slot.channel, blobs))
                await dispatch.start_job(
                    slot.channel,
                    dispatch.JobSpec(job_id, hpb.JOB_KIND_BACKTEST, spec, refs, {"operation": ctx.name}),
                )
                job = await self._follow(ctx, slot.channel, job_id, lambda f, note: advance(label, f, note))
            except dispatch.HostLost as exc:
                raise Interrupted(f"training host {slot.host!r} lost during the backtest: {exc}") from None
            if job.state == hpb.JOB_STATE_CANCELLED or ctx.cancelled.is_set():
                return None
            if job.state != hpb.JOB_STATE_SUCCEEDED:
                raise ApiError(
                    StatusCode(job.error.code or StatusCode.INTERNAL),
                    f"the backtest of {label} failed on host {slot.host!r}: {job.error.message}",
                    "BACKTEST_FAILED",
                )
            out = self.deps.artifacts / ctx.name.removeprefix(NAME_PREFIX) / label
            await asyncio.to_thread(shutil.rmtree, out, True)
            await asyncio.to_thread(out.mkdir, parents=True)
            for name in job_wire.ARTIFACTS:
                await dispatch.download_artifact(slot.channel, job_id, name, out / name)
            await ctx.message(f"{label}: backtest job {job_id} done")
            return job
        finally:
            self.deps.pool.release(slot)

    async def _follow(
        self, ctx: OperationContext, channel: Any, job_id: str, advance: Callable[[float, str], None]
    ) -> Any:
        """The job's steps through ``advance(fraction, message)`` until it is done; a cancel of the
        operation, or of this task (another job failed), cancels the job on its host."""

        def on_event(event: hpb.JobEvent) -> None:
            if event.progress.total:
                advance(event.progress.fraction, event.progress.message)

        follow = asyncio.ensure_future(dispatch.follow_job(channel, job_id, 0, on_event))
        cancel = asyncio.ensure_future(ctx.cancelled.wait())
        try:
            await asyncio.wait({follow, cancel}, return_when=asyncio.FIRST_COMPLETED)
            if not follow.done():
                await self._cancel_job(channel, job_id)
            return await follow
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel_job(channel, job_id))
            raise
        finally:
            cancel.cancel()
            if not follow.done():
                follow.cancel()

    async def _acquire(self, ctx: OperationContext, waiting: Callable[[str], None]) -> Slot:
        """A slot for one job (CancelledByUser once the operation is cancelled); when this task is
        cancelled (another job failed) the request leaves the queue, or a slot granted meanwhile
        is released."""
        acquiring = asyncio.ensure_future(self.deps.pool.acquire(waiting, ctx.params.get("host", "")))
        try:
            return await until_cancelled(ctx, acquiring)
        except asyncio.CancelledError:
            if acquiring.done() and not acquiring.cancelled() and acquiring.exception() is None:
                self.deps.pool.release(acquiring.result())
            acquiring.cancel()
            raise

    @staticmethod
    async def _cancel_job(channel: Any, job_id: str) -> None:
        with contextlib.suppress(dispatch.HostLost, ApiError):
            await dispatch.cancel_job(channel, job_id)


def job_spec(
    params: dict[str, Any],
    symbol: str,
    *,
    source: str = "",
    start_ns: int | None = None,
    windows: tuple[tuple[int, int], ...] = (),
) -> dict[str, Any]:
    """The ``backtest`` job spec of one symbol from an operation's params (a walk-forward's: its
    ``source``, the first test window's ``start_ns`` and the test ``windows``)."""
    return job_wire.BacktestSpec(
        symbol=symbol,
        start_ns=int(params["start_ns"]) if start_ns is None else start_ns,
        end_ns=int(params["end_ns"]),
        strategy_source=source or f"models/{params['strategy']}/versions/{params['version']}",
        fee_bps=params.get("fee_bps"),
        slippage_bps=params.get("slippage_bps"),
        initial_cash=float(params.get("initial_cash") or 100_000.0),
        position_size=params.get("position_size"),
        windows=windows,
    ).to_struct_dict()
