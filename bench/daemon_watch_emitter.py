"""Bench-only daemon plugin: the paced event source of ``bench/daemon_watch.py``.

Loaded by the test launcher ``tests.support.testd`` (``KTRDR_TEST_PLUGINS=bench.daemon_watch_emitter``);
nothing here ships or registers itself otherwise. Kind ``bench.emitter`` with params
``{"rate": events/s, "seconds": s}``: it waits (stage ``armed``) until the ctl method
``ktrdr.bench.v1/Go`` ``{"name": ...}`` releases it, so that every watcher is attached first; then it
sets progress at absolute times ``go + i / rate`` for ``seconds`` (a late step is not made up by
waiting longer, so the rate does not drift with the daemon's load) and succeeds. Each progress call is
one journaled progress event unless two fall within the core's progress interval (they coalesce).
Each event's ``time`` is stamped by the core when the event is created (at publish, not at the
scheduled instant); how late each step ran against its schedule is returned in the result
(``lateMs``: p50, p99, max), so a starved loop shows there as well as in the delivery latency.
``ktrdr.bench.v1/StartEmitter`` ``{"params": {...}}`` starts one and answers ``{"name": ...}``.

With ``KTRDR_BENCH_PROFILE=FILE`` in the daemon's environment, the daemon is profiled (cProfile)
from Go until the last step is committed, and the stats are written to FILE.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
from typing import Any

from ktrdr.rpc import errors

KIND = "bench.emitter"


class Emitter:
    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    async def run(self, ctx: Any) -> dict[str, Any]:
        rate, seconds = float(ctx.params.get("rate", 100.0)), float(ctx.params.get("seconds", 5.0))
        await ctx.set_stage("armed")
        await self.gate(ctx.name).wait()
        profile_path = os.environ.get("KTRDR_BENCH_PROFILE")
        profiler = cProfile.Profile() if profile_path else None
        if profiler is not None:
            profiler.enable()
        await ctx.set_stage("emitting")
        loop = asyncio.get_running_loop()
        total = max(1, round(rate * seconds))
        go = loop.time()
        late: list[float] = []
        for i in range(1, total + 1):
            due = go + i / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            late.append(loop.time() - due)
            if ctx.cancelled.is_set():
                break
            await ctx.progress(current=i, total=total)
        await ctx.flush()
        self.gates.pop(ctx.name, None)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)
        late.sort()
        late_ms = {
            "p50": late[len(late) // 2] * 1e3,
            "p99": late[min(len(late) - 1, len(late) * 99 // 100)] * 1e3,
            "max": late[-1] * 1e3,
        }
        value = {"steps": total, "lateMs": late_ms}
        return {"@type": "type.googleapis.com/google.protobuf.Struct", "value": value}

    async def reattach(self, ctx: Any) -> None:
        return None


def register(core: Any, ctl_methods: dict[str, Any] | None = None) -> None:
    """Register ``bench.emitter`` and its two ctl methods (see the module docstring)."""
    emitter = Emitter()
    core.register_kind(KIND, emitter)
    if ctl_methods is None:
        return

    async def start(params: dict[str, Any]) -> dict[str, Any]:
        record = await core.start(KIND, params=params.get("params", {}))
        return {"name": record.name}

    async def go(params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name", "")
        if name not in emitter.gates:
            raise errors.not_found(f"armed emitter {name!r}")
        emitter.gates[name].set()
        return {}

    ctl_methods["ktrdr.bench.v1/StartEmitter"] = start
    ctl_methods["ktrdr.bench.v1/Go"] = go
