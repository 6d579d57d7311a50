"""Ten series loaded at once through the daemon (``ktrdrctl data load``) against the simulator's
strict pacing: the whole path a user's load takes (ktrdrctl → ktrdrd's data.load operation and its
gap analysis → ``hostd ib``'s pacer → the gateway simulator), not the IB host alone (``ib_pacing``).

``python -m bench data_load [--series N] [--days D] [--clock-scale K]``. The simulator (in process,
real TCP), ``hostd ib`` and ``ktrdrd`` (real processes) run with ``--clock-scale K``: IB's 10-minute
window lasts 600/K s. Each series is 4h bars over D days, all in one load. Figures: requests R (from
the load's result), pacing violations the simulator answered (target 0), total time of the command,
and its ratio to the pacing-optimal schedule for R requests: the last one may go after
floor((R−1)/60) windows, plus one series' unpaced share (the same load with pacing out of the way,
K = 10^6, on a fresh cache, measured in the same run). Target ≤ 1.10. ktrdrd is long-running, so
each run first makes one data call (``data coverage``: the daemon loads its data service once per
start) and times it apart; the figure a load sent to a just-started daemon would get is printed too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._util import running_daemon
from hostd.gatewaysim.server import SimConfig
from tests.support.ibhost import SERVING, IbHost, SimThread

TARGET = 1.10
TIMEFRAME = "4h"
START = dt.datetime(2023, 1, 3, tzinfo=dt.UTC)


def run(scale: float, series: int, days: int) -> tuple[float, int, int, int, float]:
    """(seconds for the load command, bars fetched, requests, pacing violations answered, seconds
    of the daemon's first data call before it)."""
    sim = SimThread(SimConfig(port=0, seed=11, clock_scale=scale))
    rejected = sim.pacing_rejections()
    end = START + dt.timedelta(days=days)
    with tempfile.TemporaryDirectory() as tmp:
        host = IbHost(Path(tmp), sim.port, "--clock-scale", f"{scale:g}")
        try:
            host.wait_health(SERVING)
            with running_daemon(extra_env={"KTRDR_HOSTS_IB": f"unix:{host.socket}"}) as daemon:
                # ktrdrd is long-running: its data service (numpy, pyarrow, the cache opened) loads
                # on the first data call after a start, once. Paid here, timed apart.
                began = time.perf_counter()
                coverage = [sys.executable, "-m", "ktrdrctl", "data", "coverage", "--json"]
                subprocess.run(coverage, env=daemon.env, capture_output=True, check=True, timeout=120)
                first_call = time.perf_counter() - began
                argv = [
                    sys.executable, "-m", "ktrdrctl", "data", "load",
                    *(f"B{i}" for i in range(series)),
                    "--timeframe", TIMEFRAME, "--start", f"{START:%Y-%m-%d}", "--end", f"{end:%Y-%m-%d}", "--json",
                ]  # fmt: skip
                began = time.perf_counter()
                proc = subprocess.run(argv, env=daemon.env, capture_output=True, text=True, timeout=1200)
                took = time.perf_counter() - began
        finally:
            host.stop()
            sim.stop()
    if proc.returncode != 0:
        raise SystemExit(f"data load failed ({proc.returncode}): {proc.stderr[-2000:]}")
    final = json.loads(proc.stdout.splitlines()[-1])["event"]  # the SUCCEEDED state event
    if final["state"] != "OPERATION_STATE_SUCCEEDED":
        raise SystemExit(f"data load ended {final['state']}")
    metrics = final["progress"]["metrics"]
    if rejected:
        print(f"  clock scale {scale:g}: the simulator refused: {sorted(set(rejected))}")
    return took, int(metrics["bars_fetched"]), int(metrics["requests_done"]), len(rejected), first_call


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench data_load", description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--clock-scale", type=float, default=60.0)
    args = ap.parse_args(argv)
    window_s = 600 / args.clock_scale
    unpaced_s, _, _, _, _ = run(1e6, args.series, args.days)
    took, bars, total_requests, violations, first_call = run(args.clock_scale, args.series, args.days)
    optimal = (total_requests - 1) // 60 * window_s + unpaced_s / args.series
    ratio = took / optimal
    print(
        f"data_load: {args.series} series in one `ktrdrctl data load`, {total_requests} requests, "
        f"clock scale {args.clock_scale:g} (10 min = {window_s:g} s), {bars} bars"
    )
    print(f"  pacing violations answered by the simulator: {violations} (target 0)")
    print(f"  total {took:.2f} s; pacing-optimal {optimal:.2f} s (unpaced load {unpaced_s:.2f} s)")
    print(f"  ratio {ratio:.3f} (target ≤ {TARGET})")
    print(
        f"  not counted above: the daemon's first data call after its start, {first_call:.2f} s"
        f" (a load sent to a just-started ktrdrd would be {(took + first_call) / optimal:.3f}x)"
    )
    return 0 if violations == 0 and ratio <= TARGET else 1
