"""Training through the daemon (issue 7 targets): submission, queue memory, overhead, progress latency.

Real processes: a ``hostd training`` on a unix socket (``--slots 2``), ``ktrdrd`` linked to it
(``KTRDR_HOSTS_TRAINING``, no embedded hosts), bars imported into the daemon's cache with
``ktrdrctl data import``, the tiny strategy of tests/support/traininghost.py.

(a) 10 concurrent ``ktrdrctl train --detach`` (distinct seeds): wall time until all 10 exited 0
    (target ≤ 1 s).
(b) 100 runs queued behind 2 busy slots: the daemon's RSS (``/proc/PID/status`` VmRSS) once all 100
    are in its queue (each operation's progress says ``queued: position N``) (target ≤ 150 MiB);
    beside it the RSS of the same daemon at rest (started, idle) and after the bars were imported.
(c) one foreground ``ktrdrctl train`` vs the library entry point (``python -m ktrdr.research.train``
    on the same bars and seed), each a fresh command: wall ratio (target ≤ 1.10×) and whether the
    evaluation metrics are identical.
(d) progress latency from the host to a watching client: for each progress update, the time a
    ``WatchOperation`` client receives it minus the time the host stamped the same update (its
    ``WatchJob`` event, matched by epoch and batch); p50/p99 (target p99 ≤ 100 ms).

``python -m bench train_daemon [--epochs 40] [--parts abcd]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc

from bench._util import percentile
from ktrdr.hostd.training.v1 import training_host_pb2 as hpb
from ktrdr.research.synthetic import gbm_bars, write_csv
from tests.support.traininghost import END, START, strategy_text

REPO = Path(__file__).resolve().parent.parent
OPS = "ktrdr.daemon.v1.OperationsService/"


def _ctl(runtime: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "ktrdrctl", "--runtime-dir", str(runtime), *argv]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr[-2000:]}")
    return out


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Rig:
    """A host (2 slots) and a daemon linked to it, bars imported."""

    def __init__(self, base: Path) -> None:
        self.base = base
        sock = base / "train.sock"
        (base / "host").mkdir()
        self.host = subprocess.Popen(
            [sys.executable, "-m", "hostd", "training", "--listen", f"unix:{sock}", "--state-dir",
             str(base / "host"), "--slots", "2", "--log-level", "warning"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.host.stdout is not None and self.host.stdout.readline()
        self.host_channel = grpc.insecure_channel(f"unix:{sock}")
        self.rss_mib: dict[str, float] = {}
        self.runtime = base / "run"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
        env.update(
            KTRDR_HOSTS_EMBEDDED="false", KTRDR_HOSTS_TRAINING=f"unix:{sock}", KTRDR_LOG_LEVEL="warning"
        )
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "ktrdrd", "--runtime-dir", str(self.runtime), "--state-dir", str(base / "state")],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while subprocess.run(_ctl(self.runtime, "status"), cwd=REPO, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "ktrdrd did not start"
            time.sleep(0.1)
        self.rss_mib["at rest"] = _rss_mib(self.daemon.pid)
        self.csv = write_csv(gbm_bars("AAPL", "1h", "2023-01-01", END, seed=4, sigma=0.4), base)
        _run(_ctl(self.runtime, "data", "import", str(self.csv), "--symbol", "AAPL", "--timeframe", "1h"))
        self.rss_mib["bars imported"] = _rss_mib(self.daemon.pid)

    def strategy(self, epochs: int) -> Path:
        path = self.base / f"tiny{epochs}.yaml"
        path.write_text(strategy_text(epochs=epochs))
        return path

    def train_argv(self, strategy: Path, seed: int, *extra: str) -> list[str]:
        return _ctl(self.runtime, "train", str(strategy), "--start-date", START, "--end-date", END,
                    "--seed", str(seed), *extra)  # fmt: skip

    def cancel_all(self) -> None:
        pages = _run(_ctl(self.runtime, "ops", "list", "--json", "--all")).stdout.splitlines()
        for page in pages:
            for op in json.loads(page).get("operations", []):
                if not op.get("done"):
                    subprocess.run(
                        _ctl(self.runtime, "ops", "cancel", op["name"]), cwd=REPO, capture_output=True
                    )

    def close(self) -> None:
        for proc in (self.daemon, self.host):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def submit_ten(rig: Rig, strategy: Path) -> float:
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            rig.train_argv(strategy, 1000 + i, "--detach"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(10)
    ]
    codes = [p.wait(60) for p in procs]
    took = time.perf_counter() - started
    assert codes == [0] * 10, [p.stderr.read() for p in procs if p.stderr]
    return took


def _queued(stub: Any, names: set[str]) -> int:
    """How many of the operations ``names`` wait in the daemon's queue (their progress says so)."""
    from ktrdr.daemon.v1 import operations_pb2

    found, token = 0, ""
    while True:
        page = stub.ListOperations(
            operations_pb2.ListOperationsRequest(page_size=1000, page_token=token), timeout=60
        )
        found += sum(
            op.name in names and op.progress.message.startswith("queued: position ") for op in page.operations
        )
        token = page.next_page_token
        if not token:
            return found


def queue_rss(rig: Rig, strategy: Path, runs: int = 100) -> tuple[float, int]:
    """Submit ``runs`` runs behind the busy slots; the daemon's RSS once every one of them is queued
    (or after 120 s), and how many were."""
    from ktrdr.daemon.v1 import operations_pb2_grpc, training_pb2, training_pb2_grpc

    with grpc.insecure_channel(f"unix:{rig.runtime / 'grpc.sock'}") as channel:
        stub = training_pb2_grpc.TrainingServiceStub(channel)
        text = strategy.read_text()
        names = set()
        for i in range(runs):
            request = training_pb2.StartTrainingRequest(
                strategy={"content": text, "source_name": strategy.name},
                settings=training_pb2.TrainingSettings(seed=2000 + i),
            )
            request.settings.start_time.FromJsonString(START + "T00:00:00Z")
            request.settings.end_time.FromJsonString(END + "T00:00:00Z")
            names.add(stub.StartTraining(request, timeout=60).operation.name)
        operations = operations_pb2_grpc.OperationsServiceStub(channel)
        deadline = time.monotonic() + 120
        while (queued := _queued(operations, names)) < runs and time.monotonic() < deadline:
            time.sleep(0.5)  # each run goes through its data stage, then into the queue
    return _rss_mib(rig.daemon.pid), queued


def overhead(rig: Rig, strategy: Path) -> tuple[float, float, bool]:
    t0 = time.perf_counter()
    _run(rig.train_argv(strategy, 7, "--force"))
    daemon_s = time.perf_counter() - t0
    out_dir = rig.base / "lib"
    t0 = time.perf_counter()
    _run([sys.executable, "-m", "ktrdr.research.train", str(strategy), "--data", str(rig.base), "--start", START,
          "--end", END, "--seed", "7", "--out", str(out_dir), "--json"])  # fmt: skip
    library_s = time.perf_counter() - t0
    (library_dir,) = out_dir.iterdir()
    versions = sorted((rig.base / "state" / "models" / "t").iterdir(), key=lambda p: int(p.name))
    mine = json.loads((versions[-1] / "metrics.json").read_text())["evaluation"]
    theirs = json.loads((library_dir / "metrics.json").read_text())["evaluation"]
    return daemon_s, library_s, mine == theirs


def latency(rig: Rig, strategy: Path) -> list[float]:
    out = _run(rig.train_argv(strategy, 11, "--force", "--detach"))
    name = out.stdout.split()[1]
    job_id = name.removeprefix("operations/")
    host_times: dict[tuple[int, int], float] = {}

    def watch_host() -> None:
        deadline = time.monotonic() + 60
        watch = rig.host_channel.unary_stream(
            "/ktrdr.hostd.training.v1.TrainingHostService/WatchJob",
            request_serializer=hpb.WatchJobRequest.SerializeToString,
            response_deserializer=hpb.WatchJobResponse.FromString,
        )
        while time.monotonic() < deadline:
            try:
                for item in watch(hpb.WatchJobRequest(job_id=job_id), timeout=300):
                    if item.HasField("event") and "epoch" in item.event.progress.metrics:
                        m = item.event.progress.metrics
                        host_times[(int(m["epoch"]), int(m["batch"]))] = item.event.time.ToNanoseconds() / 1e9
                return
            except grpc.RpcError:
                time.sleep(0.05)  # not started on the host yet

    thread = threading.Thread(target=watch_host)
    thread.start()
    client_times: dict[tuple[int, int], float] = {}
    proc = subprocess.Popen(
        _ctl(rig.runtime, "ops", "watch", name, "--json"), cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.time()
        item = json.loads(line)
        metrics = ((item.get("event") or {}).get("progress") or {}).get("metrics") or {}
        if "epoch" in metrics:
            client_times.setdefault((int(metrics["epoch"]), int(metrics["batch"])), now)
    proc.wait()
    thread.join()
    return [(client_times[k] - host_times[k]) * 1000 for k in client_times if k in host_times]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench train_daemon")
    p.add_argument("--epochs", type=int, default=40, help="epochs of the overhead and latency runs")
    p.add_argument("--parts", default="abcd", help="which parts to run (a subset of abcd)")
    args = p.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="ktrdr-bench-", dir="/tmp"))
    rig = Rig(base)
    try:
        short, long = rig.strategy(2), rig.strategy(args.epochs)
        if "a" in args.parts:
            took = submit_ten(rig, short)
            print(
                f"(a) 10 concurrent `ktrdrctl train --detach`: all accepted in {took:.2f} s (target <= 1 s)"
            )
            rig.cancel_all()
        if "b" in args.parts:
            blocker = rig.strategy(100000)
            for seed in (1, 2):
                _run(rig.train_argv(blocker, seed, "--detach"))
            rss, n = queue_rss(rig, short)
            before = ", ".join(f"{when} {mib:.0f} MiB" for when, mib in rig.rss_mib.items())
            print(
                f"(b) {n} runs queued behind 2 busy slots: ktrdrd RSS {rss:.0f} MiB (target <= 150 MiB; {before})"
            )
            rig.cancel_all()
            time.sleep(2.0)
        if "c" in args.parts:
            daemon_s, library_s, same = overhead(rig, long)
            print(
                f"(c) {args.epochs} epochs: through ktrdrctl+ktrdrd+host {daemon_s:.2f} s, library entry point "
                f"{library_s:.2f} s: ratio {daemon_s / library_s:.2f}x (target <= 1.10x); metrics identical: {same}"
            )
        if "d" in args.parts:
            lat = latency(rig, long)
            if lat:
                print(
                    f"(d) progress host -> watching CLI over {len(lat)} updates: p50 {percentile(lat, 50):.1f} ms, "
                    f"p99 {percentile(lat, 99):.1f} ms, max {max(lat):.1f} ms (target p99 <= 100 ms)"
                )
            else:
                print("(d) no progress update matched between host and client")
    finally:
        rig.close()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
