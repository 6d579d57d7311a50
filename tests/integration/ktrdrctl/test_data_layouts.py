"""Real-world files through ``ktrdrctl data`` and a real ktrdrd: layouts users bring
(tests/fixtures/bars; every layout is checked against the reader in
tests/unit/ktrdrd/data/test_parse_layouts.py), two years of NYSE daily bars with their holidays
(no gaps; exported and imported back unchanged), refused files that change nothing, and
training on the imported daily bars with a real ``hostd training``."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ktrdr import calendars
from tests.integration.conftest import DaemonFactory
from tests.support.ctlserver import run_ktrdrctl
from tests.support.tinystrategy import SMALLEST_YAML
from tests.support.traininghost import TrainHost

FIXTURES = Path(__file__).parents[2] / "fixtures" / "bars"
DAY_NS = calendars.DAY_NS


def ctl(daemon, *argv: str):
    return run_ktrdrctl("--runtime-dir", str(daemon.runtime_dir), *argv)


def shown(daemon, symbol: str, tf: str) -> pd.DataFrame:
    out = ctl(daemon, "data", "show", symbol, tf, "--format", "csv")
    assert out.returncode == 0, out.stderr
    return pd.read_csv(io.StringIO(out.stdout), index_col=0)


def nyse_daily_csv(path: Path, start: str, end: str, seed: int) -> list[str]:
    """Yahoo Finance's daily layout for every XNYS session in ``[start, end)`` (a random walk);
    returns the dates written."""
    opens, _ = calendars.sessions("XNYS", pd.Timestamp(start).value, pd.Timestamp(end).value, extended=True)
    dates = np.datetime_as_string((opens // DAY_NS).astype("datetime64[D]")).tolist()
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, len(dates))))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, len(dates)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, len(dates)))
    volume = rng.integers(50_000_000, 120_000_000, len(dates))
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"] + [
        f"{d},{o:.6f},{h:.6f},{lo:.6f},{c:.6f},{c * 0.99:.6f},{v}"
        for d, o, h, lo, c, v in zip(dates, open_, high, low, close, volume, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return dates


#: file, symbol, timeframe, extra import flags, the first bar's stored open time (UTC)
LAYOUTS = [
    ("yfinance_aapl_1d_offset.csv", "AAPL", "1d", (), "2023-01-03T09:00:00Z"),  # 04:00 New York
    ("metatrader5_eurusd_1h.csv", "EURUSD", "1h", (), "2023-01-03T00:00:00Z"),
    ("tws_aapl_1h_zone.csv", "AAPL", "1h", (), "2023-01-03T14:30:00Z"),
    ("local_aapl_1h_naive.csv", "MSFT", "1h", ("--timezone", "America/New_York"), "2023-01-03T14:30:00Z"),
    ("binance_btcusdt_1h.csv", "BTCUSDT", "1h", (), "2023-01-01T00:00:00Z"),
]


def test_real_layouts_import_through_ktrdrctl_and_a_refused_file_changes_nothing(
    daemon, tmp_path: Path
) -> None:
    for name, symbol, timeframe, extra, first_bar in LAYOUTS:
        lines = [line for line in (FIXTURES / name).read_text().splitlines() if line.strip()]
        path = str(FIXTURES / name)
        out = ctl(daemon, "data", "import", path, "--symbol", symbol, "--timeframe", timeframe, *extra)
        assert out.returncode == 0, f"{name}: {out.stderr}"
        stored = shown(daemon, symbol, timeframe)
        assert stored.index[0] == first_bar, name
        assert stored.index.is_monotonic_increasing and stored.index.is_unique
        assert len(stored) == len(lines) - (0 if name.startswith("binance") else 1), name  # less the header
        # MetaTrader writes its server's wall time without a zone: read as UTC, and said so.
        note = f"note: {len(stored):,} times had no UTC offset and were read as UTC"
        assert (note in out.stderr) == (name == "metatrader5_eurusd_1h.csv"), f"{name}: {out.stderr}"

    # Yahoo's plain dates and yfinance's local midnights are the same sessions: a merge changes nothing.
    before = shown(daemon, "AAPL", "1d")
    yahoo = ctl(
        daemon, "data", "import", str(FIXTURES / "yahoo_aapl_1d.csv"), "--symbol", "AAPL", "--timeframe", "1d"
    )
    assert yahoo.returncode == 0, yahoo.stderr
    pd.testing.assert_frame_equal(shown(daemon, "AAPL", "1d"), before)

    bad = tmp_path / "us_dates.csv"
    bad.write_text("Date,Open,High,Low,Close,Volume\n01/23/2023,1,2,0.5,1,9\n")
    refused = ctl(daemon, "data", "import", str(bad), "--symbol", "AAPL", "--timeframe", "1d")
    assert refused.returncode != 0
    assert "us_dates.csv: line 2: timestamp '01/23/2023' is not an ISO-8601 time" in refused.stderr
    assert "Traceback" not in refused.stderr
    zone = ctl(daemon, "data", "import", str(FIXTURES / "local_aapl_1h_naive.csv"), "--symbol", "AAPL",
               "--timeframe", "1d", "--timezone", "New_York")  # fmt: skip
    assert zone.returncode != 0 and "unknown time zone 'New_York'" in zone.stderr
    pd.testing.assert_frame_equal(shown(daemon, "AAPL", "1d"), before)


@pytest.fixture
def train_host(daemon_factory: DaemonFactory) -> Iterator[TrainHost]:
    (daemon_factory.base / "host").mkdir()
    host = TrainHost(daemon_factory.base / "host", daemon_factory.base)
    yield host
    if host.proc.poll() is None:
        host.stop()


def test_two_years_of_nyse_daily_bars_have_no_gaps_round_trip_and_train(
    daemon_factory: DaemonFactory, train_host: TrainHost, tmp_path: Path
) -> None:
    daemon = daemon_factory.start(env={"KTRDR_HOSTS_TRAINING": f"unix:{train_host.socket}"})
    dates = nyse_daily_csv(tmp_path / "AAPL.csv", "2022-01-01", "2024-01-01", seed=3)
    assert "2023-01-16" not in dates and "2022-12-26" not in dates  # MLK day, Christmas observed
    out = ctl(daemon, "data", "import", str(tmp_path / "AAPL.csv"), "--symbol", "AAPL", "--timeframe", "1d")
    assert out.returncode == 0, out.stderr
    assert f"imported {len(dates)} bars" in out.stdout

    stored = shown(daemon, "AAPL", "1d")
    assert [t[:10] for t in stored.index] == dates
    gaps = ctl(daemon, "data", "gaps", "AAPL", "1d", "--start", "2022-01-03", "--end", "2023-12-30")
    assert gaps.returncode == 0 and gaps.stdout.startswith("no gaps"), gaps.stdout + gaps.stderr
    coverage = json.loads(ctl(daemon, "data", "coverage", "AAPL", "--json").stdout)["series"][0]
    assert int(coverage["barCount"]) == len(dates) and len(coverage["covered"]) == 1

    exported = tmp_path / "export.csv"
    assert ctl(daemon, "data", "export", "AAPL", "1d", "-o", str(exported)).returncode == 0
    back = ctl(
        daemon,
        "data",
        "import",
        str(exported),
        "--symbol",
        "AAPLX",
        "--timeframe",
        "1d",
        "--calendar",
        "XNYS",
    )
    assert back.returncode == 0, back.stderr
    pd.testing.assert_frame_equal(shown(daemon, "AAPLX", "1d"), stored)

    strategy = tmp_path / "daily.yaml"
    strategy.write_text(
        SMALLEST_YAML.replace("[1h]", "[1d]")
        + "model:\n  architecture:\n    hidden_layers: [8]\n  training:\n    epochs: 2\n    batch_size: 32\n"
        + "training:\n  labels:\n    zigzag_threshold: 0.03\n"
    )
    trained = run_ktrdrctl("--runtime-dir", str(daemon.runtime_dir), "train", str(strategy),
                           "--start-date", "2022-10-01", "--end-date", "2024-01-01", "--seed", "7")  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "epoch 2/2" in trained.stdout and "model: models/t/versions/1" in trained.stdout
