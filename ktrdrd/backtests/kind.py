"""The ``backtest`` operation kind: ``data`` → per symbol ``dispatch`` + ``backtest`` → ``collect``.

Params (made by :mod:`.service`): ``strategy``, ``version`` (the resolved model version),
``symbols`` (empty = the model's), ``start_ns``/``end_ns`` (decimal strings), ``fee_bps``,
``slippage_bps``, ``position_size`` (each null = the default), ``initial_cash``, ``host``.

- ``data``: the model's strategy (its ``strategy.json``) says which series the backtest needs
  (every timeframe, warm-up before the start included, per symbol); each must be complete in the
  bar cache (:func:`ktrdrd.training.kind.ensure_bars`: loaded through the IB host, or
  FAILED_PRECONDITION ``DATA_MISSING`` naming the missing ranges).
- per symbol, one ``JOB_KIND_BACKTEST`` job (:mod:`ktrdr.jobs.backtest`) on a training host
  (:class:`~ktrdrd.hostjobs.pool.HostPool`), job id ``<operation id>.<SYMBOL>``: the model's files
  and that symbol's bars uploaded where the host lacks them, the job's steps as the operation's
  progress. A host that refuses (a feature spec the code no longer builds: FAILED_PRECONDITION
  ``FEATURE_SPEC_MISMATCH``) or a job that fails fails the operation with the host's code.
- ``collect``: each job's artifacts kept with the operation under
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
from ktrdrd.hostjobs.pool import HostPool
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
    return [
        prep.Requirement(r.symbol, r.timeframe, r.start, r.end)
        for r in data_requirements(one, start_ns, end_ns)
    ]


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
        start, end = int(p["start_ns"]), int(p["end_ns"])
        reqs = {s: await asyncio.to_thread(requirements_of, strategy, s, start, end) for s in symbols}
        every = [r for rs in reqs.values() for r in rs]
        await ensure_bars(ctx, self.deps.cache_of, self.deps.load_missing, every)
        files = await asyncio.to_thread(
            lambda: {job_wire.MODEL_PREFIX + n: (model_dir / n).read_bytes() for n in train_wire.MODEL_FILES}
        )
        results = {}
        for k, symbol in enumerate(symbols):
            blobs = {**files, **await bar_blobs_of(self.deps.cache_of, reqs[symbol])}
            job = await self._job(ctx, f"{op_id}.{symbol}", job_spec(p, symbol), blobs, k, len(symbols))
            if job is None:
                return None
            results[symbol] = json_format.MessageToDict(job.result)
        return {
            "@type": RESULT_TYPE,
            "modelVersion": f"models/{p['strategy']}/versions/{p['version']}",
            "metrics": flat_metrics(results[symbols[0]]),
            "report": {"symbols": symbols, "per_symbol": results},
        }

    async def _job(
        self,
        ctx: OperationContext,
        job_id: str,
        spec: dict[str, Any],
        blobs: dict[str, bytes],
        k: int,
        n: int,
    ) -> Any:
        """One symbol's job: placed, started, followed (progress k/n..(k+1)/n), its artifacts kept.
        The host's final job when it succeeded; None when the operation was cancelled."""
        await ctx.set_stage("dispatch")

        def waiting(note: str) -> None:
            asyncio.get_running_loop().create_task(ctx.progress(message=note))

        slot = await until_cancelled(ctx, self.deps.pool.acquire(waiting, ctx.params.get("host", "")))
        try:
            await ctx.message(f"{spec['symbol']}: backtest job {job_id} on training host {slot.host!r}")
            try:
                refs = await until_cancelled(ctx, dispatch.upload_missing(slot.channel, blobs))
                await dispatch.start_job(
                    slot.channel,
                    dispatch.JobSpec(job_id, hpb.JOB_KIND_BACKTEST, spec, refs, {"operation": ctx.name}),
                )
                await ctx.set_stage("backtest")
                job = await self._follow(ctx, slot.channel, job_id, k, n)
            except dispatch.HostLost as exc:
                raise Interrupted(f"training host {slot.host!r} lost during the backtest: {exc}") from None
            if job.state == hpb.JOB_STATE_CANCELLED or ctx.cancelled.is_set():
                return None
            if job.state != hpb.JOB_STATE_SUCCEEDED:
                raise ApiError(
                    StatusCode(job.error.code or StatusCode.INTERNAL),
                    f"the backtest of {spec['symbol']} failed on host {slot.host!r}: {job.error.message}",
                    "BACKTEST_FAILED",
                )
            await ctx.set_stage("collect")
            out = self.deps.artifacts / ctx.name.removeprefix(NAME_PREFIX) / spec["symbol"]
            await asyncio.to_thread(shutil.rmtree, out, True)
            await asyncio.to_thread(out.mkdir, parents=True)
            for name in job_wire.ARTIFACTS:
                await dispatch.download_artifact(slot.channel, job_id, name, out / name)
            return job
        finally:
            self.deps.pool.release(slot)

    async def _follow(self, ctx: OperationContext, channel: Any, job_id: str, k: int, n: int) -> Any:
        """The job's steps as the operation's progress until it is done; a cancel of the operation
        cancels the job."""

        def on_event(event: hpb.JobEvent) -> None:
            pr = event.progress
            if pr.total:
                asyncio.get_running_loop().create_task(
                    ctx.progress(
                        fraction=(k + pr.fraction) / n, message=f"{job_id.rsplit('.', 1)[-1]}: {pr.message}"
                    )
                )

        follow = asyncio.ensure_future(dispatch.follow_job(channel, job_id, 0, on_event))
        cancel = asyncio.ensure_future(ctx.cancelled.wait())
        try:
            await asyncio.wait({follow, cancel}, return_when=asyncio.FIRST_COMPLETED)
            if not follow.done():
                with contextlib.suppress(dispatch.HostLost, ApiError):
                    await dispatch.cancel_job(channel, job_id)
            return await follow
        finally:
            cancel.cancel()
            if not follow.done():
                follow.cancel()


def job_spec(params: dict[str, Any], symbol: str) -> dict[str, Any]:
    """The ``backtest`` job spec of one symbol from the operation's params."""
    return job_wire.BacktestSpec(
        symbol=symbol,
        start_ns=int(params["start_ns"]),
        end_ns=int(params["end_ns"]),
        strategy_source=f"models/{params['strategy']}/versions/{params['version']}",
        fee_bps=params.get("fee_bps"),
        slippage_bps=params.get("slippage_bps"),
        initial_cash=float(params.get("initial_cash") or 100_000.0),
        position_size=params.get("position_size"),
    ).to_struct_dict()
