"""Ten series fetched at once through ``hostd ib`` against the simulator's strict pacing.

``python -m bench ib_pacing [--series N] [--days D] [--clock-scale K]``. The simulator (in process,
real TCP) and ``hostd ib`` (a real process) both run with ``--clock-scale K``: IB's 10-minute window
lasts 600/K s, the counts stay. Each series is 4h bars over D days (one request per month, plus its
head timestamp), all series at once. Figures: requests R, pacing violations the simulator answered
(target 0), total time, and its ratio to the pacing-optimal schedule for R requests: the last one
may go at floor((R−1)/60) windows, plus one request's latency (from the same fetch with pacing out
of the way, K = 10^6, measured in the same run). K defaults to 60 (10 minutes last 10 s), so the
windows, not the simulator's bar generation, dominate. Target ≤ 1.10.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hostd.gatewaysim.server import SimConfig
from hostd.ib import requests
from tests.support.ibhost import SERVING, IbHost, SimThread, fetch_request

TARGET = 1.10
TIMEFRAME = "4h"
START = int(dt.datetime(2023, 1, 3, tzinfo=dt.UTC).timestamp())


def run(scale: float, series: int, days: int) -> tuple[float, int, int]:
    """(seconds for all series, bars, pacing violations the simulator answered)."""
    sim = SimThread(SimConfig(port=0, seed=11, clock_scale=scale))
    rejected = sim.pacing_rejections()
    with tempfile.TemporaryDirectory() as tmp:
        host = IbHost(Path(tmp), sim.port, "--clock-scale", f"{scale:g}")
        try:
            host.wait_health(SERVING)
            end = START + days * 86_400

            def one(i: int) -> int:
                return len(host.fetch(fetch_request(f"B{i}", TIMEFRAME, START, end), timeout=600).bars)

            began = time.perf_counter()
            with ThreadPoolExecutor(series) as pool:
                bars = sum(pool.map(one, range(series)))
            took = time.perf_counter() - began
        finally:
            host.stop()
            sim.stop()
    if rejected:
        print(f"  clock scale {scale:g}: the simulator refused: {sorted(set(rejected))}")
    return took, bars, len(rejected)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench ib_pacing", description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--clock-scale", type=float, default=60.0)
    args = ap.parse_args(argv)
    per_series = len(requests.plan(TIMEFRAME, START, START + args.days * 86_400)) + 1  # + head timestamp
    total_requests = per_series * args.series
    window_s = 600 / args.clock_scale
    unpaced_s, _, _ = run(1e6, args.series, args.days)
    took, bars, violations = run(args.clock_scale, args.series, args.days)
    # The last request may go after floor((R-1)/60) windows; then it takes one request's latency
    # (the unpaced run sends each series' requests one after another: its time / requests per series).
    optimal = (total_requests - 1) // 60 * window_s + unpaced_s / per_series
    ratio = took / optimal
    print(
        f"ib_pacing: {args.series} series × {per_series} requests = {total_requests}, clock scale "
        f"{args.clock_scale:g} (10 min = {window_s:g} s), {bars} bars"
    )
    print(f"  pacing violations answered by the simulator: {violations} (target 0)")
    print(f"  total {took:.2f} s; pacing-optimal {optimal:.2f} s (unpaced {unpaced_s:.2f} s)")
    print(f"  ratio {ratio:.3f} (target ≤ {TARGET})")
    return 0 if violations == 0 and ratio <= TARGET else 1
