"""Backtests through the daemon, against real processes: ktrdrd, a ``hostd training`` started by the
test, bars imported through ``ktrdrctl``, a model trained with ``ktrdrctl train``, then
``ktrdrctl backtest``; and the bad requests (unknown model or alias, a range without data,
negative fees)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.ktrdrd.test_training import (  # noqa: F401  (host and workdir are fixtures)
    ctl,
    host,
    import_bars,
    start_daemon,
    train,
    workdir,
    write_strategy,
)
from tests.support.ctlserver import ktrdrctl_env
from tests.support.paths import REPO

PERIOD = ("--start", "2023-04-01", "--end", "2023-05-01")


def backtest(daemon: Any, *argv: str) -> Any:
    return ctl(daemon, "backtest", *argv, timeout=240)


def compare_importing(daemon: Any, *versions: str) -> subprocess.CompletedProcess[str]:
    """``ktrdrctl models compare`` under ``-X importtime`` (every module it imports, on stderr)."""
    argv = [sys.executable, "-X", "importtime", "-m", "ktrdrctl", "--runtime-dir", str(daemon.runtime_dir)]
    return subprocess.run(
        [*argv, "models", "compare", *versions],
        cwd=REPO,
        env=ktrdrctl_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_backtest_a_trained_version_with_plot_and_trades(daemon_factory, host, workdir: Path) -> None:  # noqa: F811
    daemon = start_daemon(daemon_factory, host.socket)
    import_bars(daemon, workdir)
    assert train(daemon, write_strategy(workdir)).returncode == 0
    plot, trades = workdir / "bt.png", workdir / "trades.csv"
    out = backtest(daemon, "t@1", *PERIOD, "--plot", str(plot), "--trades", str(trades))
    assert out.returncode == 0, out.stderr + out.stdout
    assert "model: models/t/versions/1" in out.stdout and "AAPL 1h: 2023-04-01" in out.stdout
    assert "buy and hold" in out.stdout and "permutation p-value" in out.stdout
    assert "classifier: accuracy" in out.stdout and "persistence baseline" in out.stdout
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    header = next(csv.reader(trades.open()))
    assert header[:3] == ["side", "units", "entry_time"]

    as_json = backtest(daemon, "t", *PERIOD, "--fees", "0", "--slippage", "0", "--json")
    assert as_json.returncode == 0, as_json.stderr
    frames = [json.loads(line) for line in as_json.stdout.splitlines() if line.startswith("{")]
    name = frames[0]["operation"]["name"]
    op = daemon.ctl("ktrdr.daemon.v1.OperationsService/GetOperation", {"name": name})["operation"]
    assert op["kind"] == "backtest" and op["state"] == "OPERATION_STATE_SUCCEEDED"
    result = op["result"]
    assert result["metrics"]["fee_bps"] == 0 and result["metrics"]["slippage_bps"] == 0
    assert result["report"]["per_symbol"]["AAPL"]["range"]["first"].startswith("2023-04-01")

    # models compare: backtest rows for backtested versions, the deflated Sharpe ratio of the best
    assert train(daemon, write_strategy(workdir), "--force").returncode == 0
    alone = ctl(daemon, "models", "compare", "t/1", "t/2")
    assert "backtest sharpe" in alone.stdout and "deflated Sharpe" not in alone.stdout, alone.stdout
    assert backtest(daemon, "t/2", *PERIOD).returncode == 0
    both = compare_importing(daemon, "t/1", "t/2")
    assert both.returncode == 0, both.stderr
    imported = {line.split("|")[-1].strip() for line in both.stderr.splitlines() if "import time:" in line}
    heavy = {m for m in imported if m.split(".")[0] in ("numpy", "scipy") or m.startswith("ktrdr.research")}
    assert "click" in imported and not heavy, heavy  # the daemon computes the deflated Sharpe ratio
    row = next(line for line in both.stdout.splitlines() if line.startswith("backtest trades"))
    assert len(row.split()) == 4 and "-" not in row.split()[2:], both.stdout
    assert "deflated Sharpe ratio of the best" in both.stdout, both.stdout


def test_bad_backtest_requests(daemon_factory, host, workdir: Path) -> None:  # noqa: F811
    daemon = start_daemon(daemon_factory, host.socket)
    import_bars(daemon, workdir)
    assert train(daemon, write_strategy(workdir)).returncode == 0
    out = backtest(daemon, "nosuch@1", *PERIOD)
    assert out.returncode != 0 and "NOT_FOUND" in out.stderr, out.stderr
    out = backtest(daemon, "t/9", *PERIOD)
    assert out.returncode != 0 and "NOT_FOUND" in out.stderr and "version 9" in out.stderr
    out = backtest(daemon, "t@best", *PERIOD)
    assert out.returncode != 0 and "NOT_FOUND" in out.stderr and "'best'" in out.stderr
    out = backtest(daemon, "t@1", *PERIOD, "--fees", "-1")
    assert out.returncode != 0 and "INVALID_ARGUMENT" in out.stderr and "settings.fee_bps" in out.stderr
    out = backtest(daemon, "t@1", "--start", "2023-08-01", "--end", "2023-09-01")
    assert out.returncode != 0 and "FAILED_PRECONDITION" in out.stderr, out.stderr
    assert "AAPL 1h" in out.stderr and "2023-08-31" in out.stderr  # the last session before the end
