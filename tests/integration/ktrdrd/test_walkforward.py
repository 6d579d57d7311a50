"""Walk-forward and multi-symbol backtests through ``ktrdrctl`` against real processes: ktrdrd and a
``hostd training`` with two slots. One walk-forward of three short windows (tiny strategy, 2
epochs): the stitched curve covers exactly the test windows, each window's model saw only bars
before its test window, and a second run reuses every model. Bad windows are refused naming the
flag. Then a backtest of two symbols with the newest model has both jobs in flight at once (one
daemon and host for both, to keep the suite fast)."""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ktrdr.research.synthetic import gbm_bars, to_ns, write_csv
from tests.integration.ktrdrd.test_training import (  # noqa: F401  (workdir is a fixture)
    ctl,
    events,
    get_op,
    import_bars,
    start_daemon,
    workdir,
    write_strategy,
)
from tests.support.traininghost import END, TrainHost

WINDOWS = ("--train-window", "30D", "--test-window", "14D")
PERIOD = ("--start", "2023-02-01", "--end", "2023-04-14")  # three 14-day test windows after 30 days


@pytest.fixture
def host2(daemon_factory) -> Iterator[TrainHost]:
    (daemon_factory.base / "host").mkdir()
    started = TrainHost(daemon_factory.base / "host", daemon_factory.base, "--slots", "2")
    yield started
    if started.proc.poll() is None:
        started.stop()


def walk_forward(daemon: Any, strategy: Path, *extra: str) -> dict[str, Any]:
    out = ctl(daemon, "backtest", str(strategy), "--walk-forward", *WINDOWS, *PERIOD, *extra, timeout=400)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "WINDOW" in out.stdout and "sharpe" in out.stdout, out.stdout
    op = get_op(daemon, out.stdout.splitlines()[0].split()[1])
    assert op["kind"] == "backtest.walkforward" and op["state"] == "OPERATION_STATE_SUCCEEDED"
    return op


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) * 10**9


def test_walk_forward_stitches_out_of_sample_windows_and_reuses_its_models_then_two_symbols_at_once(
    daemon_factory,
    host2,
    workdir: Path,  # noqa: F811
) -> None:
    daemon = start_daemon(daemon_factory, host2.socket)
    import_bars(daemon, workdir)
    strategy = write_strategy(workdir, epochs=2)

    for argv, flag in (
        (("--train-window", "0M", "--test-window", "14D"), "--train-window"),
        (("--train-window", "30D", "--test-window", "3M"), "--test-window"),  # past the end
        (("--train-window", "1Y", "--test-window", "14D"), "--train-window"),  # no whole window
    ):
        refused = ctl(daemon, "backtest", str(strategy), "--walk-forward", *argv, *PERIOD)
        assert refused.returncode == 1 and "INVALID_ARGUMENT" in refused.stderr, refused.stderr
        assert f"flag: {flag}" in refused.stderr, refused.stderr

    op = walk_forward(daemon, strategy)
    result = op["result"]
    windows = result["windows"]
    assert len(windows) == 3 and [w.get("reused", False) for w in windows] == [False] * 3
    children = daemon.ctl(
        "ktrdr.daemon.v1.OperationsService/ListOperations", {"filter": {"parent": op["name"]}}
    )["operations"]
    assert sorted(c["name"] for c in children) == sorted(w["trainingOperation"] for w in windows)
    for before, after in itertools.pairwise(windows):
        assert before["testEndTime"] == after["testStartTime"]  # contiguous, no overlap
    for w in windows:  # each model saw only bars before its test window
        strategy_name, number = w["modelVersion"].removeprefix("models/").split("/versions/")
        manifest = json.loads(
            (daemon.state_dir / "models" / strategy_name / number / "manifest.json").read_text()
        )
        assert max(to_ns(d["last"]) for d in manifest["data"]) < ns(w["testStartTime"])
        assert w["trainEndTime"] == w["testStartTime"]

    # the stitched curve: every bar of every test window, once, in order, and nothing else
    op_id = op["name"].removeprefix("operations/")
    with (daemon.state_dir / "backtests" / op_id / "AAPL" / "equity.csv").open() as fh:
        times = [ns(row["time"]) for row in csv.DictReader(fh)]
    assert times == sorted(set(times))
    per_window = result["report"]["per_symbol"]["AAPL"]["windows"]
    for w, figures in zip(windows, per_window, strict=True):
        inside = [t for t in times if ns(w["testStartTime"]) <= t < ns(w["testEndTime"])]
        assert len(inside) == figures["range"]["bars"] > 0
    assert sum(f["range"]["bars"] for f in per_window) == len(times)
    assert ns(windows[0]["testStartTime"]) <= times[0] and times[-1] < ns(windows[-1]["testEndTime"])
    metrics = result["metrics"]
    assert metrics["trades"] == sum(f["trades"] for f in per_window)

    again = walk_forward(daemon, strategy)["result"]["windows"]
    assert [w["reused"] for w in again] == [True] * 3
    assert [w["modelVersion"] for w in again] == [w["modelVersion"] for w in windows]

    # a backtest of two symbols (the newest window's model) runs both jobs at once on the 2 slots
    msft = write_csv(gbm_bars("MSFT", "1h", "2023-01-01", END, seed=5, sigma=0.3), workdir)
    assert ctl(daemon, "data", "import", str(msft), "--symbol", "MSFT", "--timeframe", "1h").returncode == 0
    out = ctl(daemon, "backtest", "t", "--start", "2023-04-14", "--end", "2023-05-01",
              "--symbol", "AAPL", "--symbol", "MSFT", timeout=240)  # fmt: skip
    assert out.returncode == 0, out.stderr + out.stdout
    assert "AAPL 1h:" in out.stdout and "MSFT 1h:" in out.stdout
    name = out.stdout.splitlines()[0].split()[1]
    messages = [e.get("message", "") for e in events(daemon, name)]
    started = [i for i, m in enumerate(messages) if "backtest job" in m and " started " in m]
    done = [i for i, m in enumerate(messages) if "backtest job" in m and m.endswith(" done")]
    assert len(started) == len(done) == 2, messages
    assert max(started) < min(done), messages  # both jobs were in flight together
