"""The simulator as a process: logs, sd_notify, signals and scheduled outages around :class:`GatewaySim`.

Phases: startup (bind, print the address, READY) → main loop (wait for SIGTERM/SIGINT while the
scheduled outages run) → shutdown (STOPPING, close every connection). Exit status 0 on a signal,
1 when startup fails (the reason is logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

from hostd.gatewaysim.faults import Faults
from hostd.gatewaysim.server import GatewaySim, SimConfig
from ktrdr import logs
from ktrdr.sdnotify import Notifier

log = logging.getLogger("hostd.gatewaysim")


async def _outage(sim: GatewaySim, at_s: float, for_s: float) -> None:
    await asyncio.sleep(at_s)
    sim.connectivity_lost()
    await asyncio.sleep(for_s)
    sim.connectivity_restored()


async def _main(
    config: SimConfig, faults: Faults, outages: list[tuple[float, float]], notifier: Notifier
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sim = GatewaySim(config, faults)
    try:
        await sim.start()
    except OSError as exc:
        log.error("cannot listen", extra={"host": config.host, "port": config.port, "error": str(exc)})
        return 1
    address = f"{config.host}:{sim.port}"
    print(json.dumps({"listening": address}), flush=True)
    notifier.ready(f"listening on {address}")
    try:
        async with asyncio.TaskGroup() as group:
            for at_s, for_s in outages:
                group.create_task(_outage(sim, at_s, for_s))
            await stop.wait()
            raise _Stop
    except* _Stop:
        pass
    notifier.stopping("closing connections")
    log.info("stopping on signal")
    await sim.stop()
    return 0


class _Stop(Exception):
    """Leaves the main TaskGroup (cancelling scheduled outages) when a stop signal arrives."""


def serve(
    config: SimConfig, faults: Faults, *, outages: list[tuple[float, float]], log_format: str, log_level: str
) -> int:
    logs.setup(log_format, log_level)
    notifier = Notifier()
    try:
        return asyncio.run(_main(config, faults, outages, notifier))
    finally:
        notifier.close()
        sys.stdout.flush()
