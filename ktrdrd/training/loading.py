"""Loading the bars a training run lacks through the IB host: one ``data.load`` operation (a child
of the ``train`` operation, so cancelling the run cancels the load) over every missing series'
symbols × timeframes and the span of their missing ranges; the load itself fetches only the holes
(:mod:`ktrdrd.data.gaps`). Its request id is derived from the run's name, so a re-attached run finds
the load it had started."""

from __future__ import annotations

from typing import Any

from ktrdr.rpc.errors import failed_precondition
from ktrdr.wire import OperationState
from ktrdrd.operations import OperationContext, OperationsCore
from ktrdrd.services.data_load import PARENT_KIND
from ktrdrd.training.prepare import Requirement


class BarLoader:
    """``await loader(ctx, missing)``: the missing ranges loaded into the cache, or
    FAILED_PRECONDITION (``DATA_LOAD_FAILED``) with the load's error."""

    def __init__(self, core: OperationsCore, loads: Any) -> None:
        self.core = core
        self.loads = loads

    async def __call__(
        self, ctx: OperationContext, missing: list[tuple[Requirement, list[tuple[int, int]]]]
    ) -> None:
        symbols = list(dict.fromkeys(req.symbol for req, _ in missing))
        frames = list(dict.fromkeys(req.timeframe for req, _ in missing))
        start = min(r[0] for _, ranges in missing for r in ranges)
        end = max(r[1] for _, ranges in missing for r in ranges)
        params = {"symbols": symbols, "timeframes": frames, "startNs": start, "endNs": end, "mode": "full"}
        record = await self.core.start(
            PARENT_KIND, params=params, parent=ctx.name, request_id=f"{ctx.name}/data"
        )
        await ctx.message(
            f"loading the missing bars of {' '.join(symbols)} {' '.join(frames)} as {record.name}"
        )
        done = await self.core.wait(record.name, None)
        if done.state != OperationState.SUCCEEDED:
            why = (done.error or {}).get("message", done.state)
            raise failed_precondition(
                f"loading the missing bars failed ({record.name}): {why}", "DATA_LOAD_FAILED"
            )
