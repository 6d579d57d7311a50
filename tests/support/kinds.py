"""Test-only operation kind ``test.ticker`` (the test launcher ``tests.support.testd`` loads it).

A ticker runs ``steps`` steps (default 10), sleeping ``interval_s`` seconds (default 0.01) before
each; after each step it reports progress ``current=step, total=steps`` and, when ``messages`` is
true, journals the message ``tick <step>``. Params:

- ``steps`` (int ≥ 0), ``interval_s`` (float ≥ 0, seconds)
- ``fail_at`` (int, optional): raise at that step → FAILED with reason ``TICKER_FAILED``
- ``messages`` (bool, default false): journal one message event per step
- ``ignore_cancel`` (bool, default false): keep ticking after a cancel (tests the cancel grace)

It stops at the next step after ``ctx.cancelled`` is set (→ CANCELLED) and returns
``{"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"steps": N}}`` on success.
``reattach`` continues from the last journaled ``progress.current``.

``register(core, ctl_methods)`` registers it and, when given the daemon's ctl-only method table, the
method ``ktrdr.test.v1/StartTicker`` with params ``{"params": {...ticker params}, "labels": {...},
"parent": "", "requestId": ""}`` answering ``{"operation": <Operation JSON>}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ktrdr.rpc import errors
from ktrdr.wire import StatusCode
from ktrdrd.operations import OperationContext, OperationsCore

KIND = "test.ticker"
START_METHOD = "ktrdr.test.v1/StartTicker"


class Ticker:
    """The ``test.ticker`` kind handler."""

    async def run(self, ctx: OperationContext) -> dict[str, Any] | None:
        return await self._tick(ctx, first=1)

    async def reattach(self, ctx: OperationContext) -> dict[str, Any] | None:
        return await self._tick(ctx, first=ctx.snapshot().progress["current"] + 1)

    async def _tick(self, ctx: OperationContext, first: int) -> dict[str, Any] | None:
        steps = int(ctx.params.get("steps", 10))
        interval_s = float(ctx.params.get("interval_s", 0.01))
        fail_at = ctx.params.get("fail_at")
        await ctx.set_stage("ticking")
        for step in range(first, steps + 1):
            await asyncio.sleep(interval_s)
            if ctx.cancelled.is_set() and not ctx.params.get("ignore_cancel", False):
                return None
            if fail_at is not None and step == int(fail_at):
                raise errors.ApiError(
                    StatusCode.ABORTED, f"ticker failed at step {step} as asked", "TICKER_FAILED"
                )
            await ctx.progress(current=step, total=steps, message=f"step {step}/{steps}")
            if ctx.params.get("messages", False):
                await ctx.message(f"tick {step}")
        return {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"steps": steps}}


def register(core: OperationsCore, ctl_methods: dict[str, Any] | None = None) -> None:
    """Register the ``test.ticker`` kind on ``core`` (and its ctl start method in ``ctl_methods``)."""
    core.register_kind(KIND, Ticker())
    if ctl_methods is not None:

        async def start_ticker(params: dict[str, Any]) -> dict[str, Any]:
            from ktrdrd.ctl.protocol import to_json
            from ktrdrd.services.convert import operation_to_proto

            record = await core.start(
                KIND,
                params=params.get("params", {}),
                labels=params.get("labels"),
                parent=params.get("parent", ""),
                request_id=params.get("requestId", ""),
            )
            return {"operation": to_json(operation_to_proto(record))}

        ctl_methods[START_METHOD] = start_ticker
