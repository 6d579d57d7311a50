"""Training through the daemon, against real processes: ktrdrd, a ``hostd training`` started by the
test (or unreachable, or killed), bars imported into the daemon's cache through ``ktrdrctl``, and
``ktrdrctl train``. The strategy is the tiny one of tests/support/traininghost.py (a few epochs)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ktrdr.research.synthetic import gbm_bars, to_ns, write_csv
from tests.integration.conftest import CtlError
from tests.support.ctlserver import ktrdrctl_env
from tests.support.paths import REPO
from tests.support.traininghost import END, START, TrainHost, strategy_text

SEED = "7"


@pytest.fixture
def workdir(daemon_factory) -> Path:
    path = daemon_factory.base / "w"
    path.mkdir()
    return path


def ctl(daemon: Any, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ktrdrctl", "--runtime-dir", str(daemon.runtime_dir), *argv],
        cwd=REPO,
        env=ktrdrctl_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_strategy(workdir: Path, *, epochs: int = 3, name: str = "tiny.yaml") -> Path:
    path = workdir / name
    path.write_text(strategy_text(epochs=epochs))
    return path


def import_bars(daemon: Any, workdir: Path) -> None:
    csv = write_csv(gbm_bars("AAPL", "1h", "2023-01-01", END, seed=4, sigma=0.4), workdir)
    out = ctl(daemon, "data", "import", str(csv), "--symbol", "AAPL", "--timeframe", "1h")
    assert out.returncode == 0, out.stderr


def start_daemon(daemon_factory: Any, host_socket: Path, **env: str) -> Any:
    return daemon_factory.start(env={"KTRDR_HOSTS_TRAINING": f"unix:{host_socket}", **env})


def train(daemon: Any, strategy: Path, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return ctl(
        daemon, "train", str(strategy), "--start-date", START, "--end-date", END, "--seed", SEED, *extra,
        timeout=timeout,
    )  # fmt: skip


def get_op(daemon: Any, name: str) -> dict[str, Any]:
    return daemon.ctl("ktrdr.daemon.v1.OperationsService/GetOperation", {"name": name})["operation"]


def wait_op(daemon: Any, name: str, timeout_s: float = 240) -> dict[str, Any]:
    return daemon.ctl(
        "ktrdr.daemon.v1.OperationsService/WaitOperation",
        {"name": name, "timeout": f"{timeout_s}s"},
        timeout_s=timeout_s + 10,
    )["operation"]


def wait_until(check: Any, timeout_s: float = 120, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def detach(daemon: Any, strategy: Path, *extra: str) -> str:
    out = train(daemon, strategy, "--detach", *extra)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[1]


def events(daemon: Any, name: str) -> list[dict[str, Any]]:
    """Every event of a finished operation (WatchOperation from the start)."""
    frames = daemon.ctl_stream(
        "ktrdr.daemon.v1.OperationsService/WatchOperation", {"name": name}, timeout_s=60
    )
    found = [f["result"]["event"] for f in frames if "event" in f.get("result", {})]
    assert found, frames
    return found


@pytest.fixture
def host(daemon_factory) -> Iterator[TrainHost]:
    (daemon_factory.base / "host").mkdir()
    started = TrainHost(daemon_factory.base / "host", daemon_factory.base)
    yield started
    if started.proc.poll() is None:
        started.stop()


def flatten(report: dict[str, Any]) -> dict[str, float]:
    """Each split's accuracy and loss from a model directory's metrics.json."""
    out = {}
    for split, r in report["evaluation"].items():
        for key in ("accuracy", "loss", "baseline_accuracy"):
            if isinstance(r, dict) and r.get(key) is not None:
                out[f"{split}.{key}"] = r[key]
    return out


def test_train_end_to_end_equals_the_library_and_is_reused(daemon_factory, host, workdir) -> None:
    daemon = start_daemon(daemon_factory, host.socket)
    import_bars(daemon, workdir)
    strategy = write_strategy(workdir)
    out = train(daemon, strategy)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "epoch 3/3" in out.stdout and "val acc" in out.stdout and "samples/s" in out.stdout
    assert "model: models/t/versions/1" in out.stdout
    assert "majority baseline" in out.stdout and "verdict (" in out.stdout
    assert "early stopping is off" in out.stdout
    registered = json.loads((daemon.state_dir / "models" / "t" / "1" / "metrics.json").read_text())

    # The library entry point on the same bars and seed gives the same metrics.
    from ktrdr.research.bars import read_file
    from ktrdr.research.train import select_bars, train_on_bars
    from ktrdr.strategy import load_strategy_text

    loaded = load_strategy_text(strategy.read_text(), source="tiny.yaml")
    series = read_file(workdir / "AAPL_1h.csv", "AAPL", "1h")
    data = select_bars(loaded.strategy, to_ns(START), to_ns(END), lambda s, tf: (series, "csv"))
    train_on_bars(loaded, data, to_ns(START), to_ns(END), workdir / "lib", seed=int(SEED))
    library = json.loads((workdir / "lib" / "metrics.json").read_text())
    assert flatten(registered) == flatten(library)
    assert flatten(registered)

    again = train(daemon, strategy)
    assert again.returncode == 0, again.stderr
    assert "model: models/t/versions/1  (reused" in again.stdout
    forced = train(daemon, strategy, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "model: models/t/versions/2" in forced.stdout


def test_bad_requests_are_refused_before_anything_runs(daemon_factory, host, workdir) -> None:
    daemon = start_daemon(daemon_factory, host.socket)
    strategy = write_strategy(workdir)
    broken = workdir / "broken.yaml"
    broken.write_text(strategy.read_text().replace("period: 14", "period: fourteen"))
    out = train(daemon, broken)
    assert out.returncode == 1 and "INVALID_ARGUMENT" in out.stderr
    assert f"{broken}:7:" in out.stderr, out.stderr
    out = ctl(daemon, "train", str(strategy), "--start-date", END, "--end-date", START)
    assert out.returncode == 1 and "end_time" in out.stderr and "after start_time" in out.stderr
    out = train(daemon, strategy, "--set", "model.training.epoch=3")
    assert out.returncode == 1 and "epoch" in out.stderr and f"{strategy}:" in out.stderr, out.stderr
    out = train(daemon, strategy, "--set", "model.training.epochs=many")
    assert (
        out.returncode == 1
        and "expected an integer" in out.stderr
        and "--set model.training.epochs=many" in out.stderr
    )
    listed = daemon.ctl("ktrdr.daemon.v1.OperationsService/ListOperations", {"filter": {"kind": "train"}})
    assert not listed.get("operations")


def test_missing_bars_fail_naming_the_ranges_and_the_command(daemon_factory, host, workdir) -> None:
    daemon = start_daemon(daemon_factory, host.socket)
    out = train(daemon, write_strategy(workdir))
    assert out.returncode == 1
    assert "FAILED_PRECONDITION" in out.stderr and "AAPL 1h" in out.stderr
    assert "ktrdrctl data load AAPL --timeframe 1h --start" in out.stderr, out.stderr


def test_host_unreachable_at_submit_waits_then_runs(daemon_factory, workdir) -> None:
    socket = daemon_factory.base / "train.sock"
    daemon = start_daemon(daemon_factory, socket)
    import_bars(daemon, workdir)
    name = detach(daemon, write_strategy(workdir))
    waiting = wait_until(
        lambda: (
            "waiting for the training host" in get_op(daemon, name).get("progress", {}).get("message", "")
        ),
        what="the wait reason",
    )
    assert waiting
    assert "no socket" in get_op(daemon, name)["progress"]["message"]
    (daemon_factory.base / "host").mkdir()
    host = TrainHost(daemon_factory.base / "host", daemon_factory.base)
    try:
        assert wait_op(daemon, name)["state"] == "OPERATION_STATE_SUCCEEDED"
    finally:
        host.stop()


def test_cancel_then_resume_from_the_checkpoint(daemon_factory, host, workdir) -> None:
    daemon = start_daemon(daemon_factory, host.socket)
    import_bars(daemon, workdir)
    name = detach(daemon, write_strategy(workdir, epochs=100))
    wait_until(lambda: int(get_op(daemon, name).get("progress", {}).get("current", 0)) >= 2, what="epoch 2")
    daemon.ctl("ktrdr.daemon.v1.OperationsService/CancelOperation", {"name": name})
    op = wait_op(daemon, name)
    assert op["state"] == "OPERATION_STATE_CANCELLED"
    messages = [e.get("message", "") for e in events(daemon, name)]
    assert any("ktrdrctl ops resume" in m for m in messages), messages
    out = ctl(daemon, "ops", "resume", name.removeprefix("operations/"))
    assert out.returncode == 0, out.stderr
    resumed = out.stdout.split()[-1]
    assert wait_op(daemon, resumed)["state"] == "OPERATION_STATE_SUCCEEDED"
    seen = events(daemon, resumed)
    assert any("resuming from the checkpoint" in e.get("message", "") for e in seen)
    epochs = [
        int(e["progress"]["current"]) for e in seen if int(e.get("progress", {}).get("current", 0) or 0)
    ]
    assert epochs[0] >= 2 and epochs[-1] == 100  # continued past the checkpoint, not from epoch 1


def test_kill_9_of_the_daemon_reattaches_with_no_event_missing(daemon_factory, host, workdir) -> None:
    daemon = start_daemon(daemon_factory, host.socket)
    import_bars(daemon, workdir)
    strategy = write_strategy(workdir, epochs=60)
    name = detach(daemon, strategy)
    wait_until(lambda: int(get_op(daemon, name).get("progress", {}).get("current", 0)) >= 2, what="epoch 2")
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait(10)
    restarted = daemon_factory.start(
        runtime_dir=daemon.runtime_dir,
        state_dir=daemon.state_dir,
        env={"KTRDR_HOSTS_TRAINING": f"unix:{host.socket}"},
    )
    op = wait_op(restarted, name)
    assert op["state"] == "OPERATION_STATE_SUCCEEDED", op
    seen = events(restarted, name)
    seqs = [int(e["seq"]) for e in seen]
    assert seqs == list(range(1, len(seqs) + 1))
    assert any("re-attached" in e.get("message", "") for e in seen), [e.get("message") for e in seen]
    epochs = {int(e["progress"].get("current", 0)) for e in seen if e.get("progress")}
    assert 60 in epochs
    # The re-attached run was remembered: the identical request returns its model.
    again = train(restarted, strategy)
    assert again.returncode == 0, again.stderr
    assert "model: models/t/versions/1  (reused" in again.stdout, again.stdout


#: Epochs of the run the resume test interrupts twice: enough to outlast two interruptions.
EPOCHS = 60


def resumed_from(daemon: Any, name: str) -> list[dict[str, Any]]:
    """The operations labelled as resuming ``name``."""
    label = "resumed-from=" + name.removeprefix("operations/")
    found = daemon.ctl("ktrdr.daemon.v1.OperationsService/ListOperations", {"filter": {"label": [label]}})
    return found.get("operations", [])


def test_kill_9_of_the_host_or_its_worker_interrupts_then_resumes_by_itself(daemon_factory, workdir) -> None:
    """The host killed: INTERRUPTED (HOST_LOST), resumed by ktrdrd once the host is back; then the
    resumed run's worker killed (SIGKILL, as the OOM killer does) after a checkpoint: INTERRUPTED
    (WORKER_LOST) naming the signal, resumed again at once on the same host; it succeeds."""
    host_dir = daemon_factory.base / "host"
    host_dir.mkdir()
    host = TrainHost(host_dir, daemon_factory.base)
    daemon = start_daemon(daemon_factory, host.socket)
    import_bars(daemon, workdir)
    strategy = write_strategy(workdir, epochs=EPOCHS)
    name = detach(daemon, strategy)
    wait_until(lambda: int(get_op(daemon, name).get("progress", {}).get("current", 0)) >= 3, what="epoch 3")
    host.proc.send_signal(signal.SIGKILL)
    host.proc.wait(10)
    op = wait_op(daemon, name, 60)
    assert op["state"] == "OPERATION_STATE_INTERRUPTED", op
    assert "resumes it from its last checkpoint by itself" in op["error"]["message"], op
    assert "ktrdrctl ops resume" in op["error"]["message"]
    assert resumed_from(daemon, name) == []  # no host: nothing resumes yet
    host = TrainHost(host_dir, daemon_factory.base)
    try:
        (resumed,) = wait_until(lambda: resumed_from(daemon, name), what="the automatic resume")
        assert resumed["labels"]["resumed-by"] == "ktrdrd"
        os.kill(host.wait_progress(resumed["name"].removeprefix("operations/"), epochs=1), signal.SIGKILL)
        lost = wait_op(daemon, resumed["name"])
        assert lost["state"] == "OPERATION_STATE_INTERRUPTED", lost
        assert "worker killed by SIGKILL" in lost["error"]["message"], lost
        (again,) = wait_until(lambda: resumed_from(daemon, resumed["name"]), what="the second resume")
        final = wait_op(daemon, again["name"])
        assert final["state"] == "OPERATION_STATE_SUCCEEDED", final
        held = []
        for run, attempt in ((resumed, 1), (again, 2)):
            seen = events(daemon, run["name"])
            messages = [e.get("message", "") for e in seen]
            assert any(
                "is back; resuming " in m and f"automatic resume {attempt} of 3" in m for m in messages
            ), messages
            told = next(
                re.search(r"checkpoint of epoch (\d+) of (\d+)", m)
                for m in messages
                if "checkpoint of epoch" in m
            )
            assert told and int(told[2]) == EPOCHS, messages
            epochs = [int(e["progress"].get("current", 0)) for e in seen if e.get("progress")]
            assert int(told[1]) > 0 and min(epoch for epoch in epochs if epoch) > 1  # not from epoch 1
            held.append(int(told[1]))
        assert held[1] > held[0] and epochs[-1] == EPOCHS
        assert any("resuming from the checkpoint of " + resumed["name"] in m for m in messages), messages
        reused = train(daemon, strategy)  # the resumed run was remembered for reuse
        assert reused.returncode == 0 and "(reused" in reused.stdout, reused.stdout + reused.stderr
    finally:
        host.stop()
        shutil.rmtree(host_dir, ignore_errors=True)


def test_batch_of_three_ranked_and_ten_detached_accepted(daemon_factory, host, workdir) -> None:
    daemon = start_daemon(daemon_factory, host.socket)
    import_bars(daemon, workdir)
    strategy = write_strategy(workdir, epochs=2)
    out = train(
        daemon, strategy, "--set", "model.training.learning_rate=0.001,0.003,0.01", "--max-parallel", "2"
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "runs: 3 succeeded, 0 failed, 0 cancelled" in out.stdout
    rows = [line for line in out.stdout.splitlines() if "models/t/versions/" in line]
    assert len(rows) == 3
    accuracies = [float(line.split()[1]) for line in rows]
    assert accuracies == sorted(accuracies, reverse=True)

    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ktrdrctl",
                "--runtime-dir",
                str(daemon.runtime_dir),
                "train",
                str(strategy),
                "--start-date",
                START,
                "--end-date",
                END,
                "--seed",
                str(i),
                "--detach",
            ],
            cwd=REPO,
            env=ktrdrctl_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(10)
    ]
    names = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        names.append(stdout.split()[1])
    assert len(set(names)) == 10
    # One slot: the others wait in the daemon's queue and say where they stand.
    wait_until(
        lambda: any(
            get_op(daemon, n).get("progress", {}).get("message", "").startswith("queued: position ")
            for n in names
        ),
        what="a queue position",
    )
    for name in names:
        with contextlib.suppress(CtlError):  # one may have finished already
            daemon.ctl("ktrdr.daemon.v1.OperationsService/CancelOperation", {"name": name})
    assert all(wait_op(daemon, name)["done"] for name in names)


def test_ctrl_c_cancels_after_a_checkpoint_and_says_how_to_resume(daemon_factory, host, workdir) -> None:
    daemon = start_daemon(daemon_factory, host.socket)
    import_bars(daemon, workdir)
    strategy = write_strategy(workdir, epochs=400)
    argv = [sys.executable, "-m", "ktrdrctl", "--runtime-dir", str(daemon.runtime_dir), "train", str(strategy),
            "--start-date", START, "--end-date", END, "--seed", SEED]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=REPO, env=ktrdrctl_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "epoch 2/400" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "CANCELLED" in stderr and "ktrdrctl" in stderr and "ops resume op_" in stderr, stderr


def test_missing_bars_are_loaded_through_the_embedded_hosts(daemon_factory, workdir) -> None:
    """Embedded hosts (gateway simulator, hostd ib, hostd training): nothing imported, the run's
    data stage loads what the cache lacks through the IB host, then trains."""
    daemon = daemon_factory.start(env={"KTRDR_HOSTS_EMBEDDED": "true", "KTRDR_IB_SIM_CLOCK_SCALE": "100"})
    strategy = write_strategy(workdir, epochs=2)
    argv = ["train", str(strategy), "--start-date", "2022-01-01", "--end-date", END, "--symbol", "MSFT"]
    out = ctl(daemon, *argv, timeout=300)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "loading the missing bars of MSFT 1h" in out.stdout
    assert "model: models/t/versions/1" in out.stdout
    loads = daemon.ctl("ktrdr.daemon.v1.OperationsService/ListOperations", {"filter": {"kind": "data.load"}})
    (load,) = loads["operations"]
    assert load["state"] == "OPERATION_STATE_SUCCEEDED" and load["parent"]
