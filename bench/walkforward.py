"""Walk-forward through the daemon (issue 8 target): the training jobs of 12 windows run in parallel
up to the hosts' capacity.

Real processes (the rig of :mod:`bench.train_daemon`): a ``hostd training`` with ``--slots 2`` and
``ktrdrd`` linked to it, AAPL 1h bars imported, the tiny strategy. One
``ktrdrctl backtest STRATEGY.yaml --walk-forward --train-window 14D --test-window 7D`` over 12
windows. Afterwards the host's ``ListJobs`` gives each training job's start and end: the most that
ran at the same time (the overlap of their intervals) against the capacity, and the training
stage's wall time (first start to last end) against the sequential estimate (the sum of the jobs'
run times). Target: the most running at once equals the capacity.

``python -m bench walkforward [--epochs 3] [--windows 12]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.train_daemon import Rig, _ctl, _run
from ktrdr.hostd.training.v1 import training_host_pb2 as hpb

SLOTS = 2
START = datetime(2023, 1, 15, tzinfo=UTC)
TRAIN_DAYS, TEST_DAYS = 14, 7


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of ``[start, end)`` intervals that overlap at one moment."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])  # ends before starts
    running = best = 0
    for _moment, step in edges:
        running += step
        best = max(best, running)
    return best


def train_jobs(rig: Rig) -> list[tuple[float, float]]:
    """(start, end) in seconds of every finished training job on the host."""
    list_jobs = rig.host_channel.unary_unary(
        "/ktrdr.hostd.training.v1.TrainingHostService/ListJobs",
        request_serializer=hpb.ListJobsRequest.SerializeToString,
        response_deserializer=hpb.ListJobsResponse.FromString,
    )
    jobs = list_jobs(hpb.ListJobsRequest(page_size=1000), timeout=30).jobs
    return [
        (j.start_time.ToNanoseconds() / 1e9, j.end_time.ToNanoseconds() / 1e9)
        for j in jobs
        if j.kind == hpb.JOB_KIND_TRAIN and j.state == hpb.JOB_STATE_SUCCEEDED
    ]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench walkforward", description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--windows", type=int, default=12)
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-wf-"))
    rig = Rig(base)
    try:
        end = START + timedelta(days=TRAIN_DAYS + args.windows * TEST_DAYS)
        argv_wf = _ctl(
            rig.runtime, "backtest", str(rig.strategy(args.epochs)), "--walk-forward",
            "--train-window", f"{TRAIN_DAYS}D", "--test-window", f"{TEST_DAYS}D",
            "--start", START.strftime("%Y-%m-%d"), "--end", end.strftime("%Y-%m-%d"), "--json",
        )  # fmt: skip
        t0 = time.perf_counter()
        out = _run(argv_wf)
        wall = time.perf_counter() - t0
        name = json.loads(out.stdout.splitlines()[0])["operation"]["name"]
        op = json.loads(_run(_ctl(rig.runtime, "ops", "show", name, "--json")).stdout)["operation"]
        windows = len(op["result"]["windows"])
        intervals = train_jobs(rig)
    finally:
        rig.close()
        shutil.rmtree(base, ignore_errors=True)
    peak = most_at_once(intervals)
    sequential = sum(e - s for s, e in intervals)
    stage = max(e for _, e in intervals) - min(s for s, _ in intervals)
    print(f"walk-forward of {windows} windows ({args.epochs} epochs each), host capacity {SLOTS} slots:")
    print(f"  training jobs run: {len(intervals)}; most running at once: {peak} (capacity {SLOTS})")
    print(f"  training stage {stage:.1f} s vs sequential estimate {sequential:.1f} s (sum of job run times): "
          f"{stage / sequential:.2f}x")  # fmt: skip
    print(f"  whole walk-forward (ktrdrctl, training + stitched backtest): {wall:.1f} s")
    ok = peak == SLOTS and len(intervals) == windows
    print(f"  target: training jobs in parallel up to capacity: {'OK' if ok else 'NOT MET'}")
    return 0 if ok else 1
