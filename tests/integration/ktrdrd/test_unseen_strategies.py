"""Strategy files nobody on the team wrote (tests/unit/ktrdr/strategy/unseen/, the predecessor's v2
grammar) validated, trained and backtested end to end through real processes: ktrdrd, a ``hostd
training``, synthetic bars imported with ``ktrdrctl data import``, ``ktrdrctl strategies validate``,
``ktrdrctl train`` with tiny settings (``--set``), ``ktrdrctl backtest`` of one of them. Representative files: two
symbols on three timeframes with Aroon/SAR/SuperTrend/ADX; indicators added for the predecessor's
catalogue (Bollinger width, squeeze intensity) with fuzzy sets named ``on``/``off``.

Then the refusals that need the daemon's data: a symbol the cache lacks (``--symbol`` on a file
written ``{mode: single, symbol: X}``), a timeframe it lacks, a warm-up reaching before the stored
history — each named before any training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ktrdr import timeframes
from ktrdr.research.bars import resample
from ktrdr.research.synthetic import gbm_bars, write_csv
from tests.integration.ktrdrd.test_training import (  # noqa: F401  (host and workdir are fixtures)
    ctl,
    host,
    start_daemon,
    workdir,
)

UNSEEN = Path(__file__).parents[2] / "unit" / "ktrdr" / "strategy" / "unseen"
TINY = ("--set", "model.training.epochs=2", "--set", "model.training.early_stopping=false", "--seed", "7")
STORED, START, END, BACKTEST_START = "2023-01-01", "2023-02-15", "2023-04-01", "2023-03-15"
# strategy → (symbols, timeframes) imported for it
TRAINED = {
    "trend_strength_multi_tf": (("AAPL", "MSFT"), ("1h", "4h", "1d")),
    "bollinger_keltner_squeeze": (("SPY", "QQQ"), ("1h", "4h")),
}


def import_series(daemon: Any, into: Path, symbol: str, tfs: tuple[str, ...], start: str = STORED) -> None:
    """Synthetic bars for ``symbol`` at the fastest of ``tfs``, resampled to the others (so that the
    timeframes agree), each imported through ``ktrdrctl data import``."""
    fastest = timeframes.sort_fastest_first(list(tfs))[0]
    base = gbm_bars(symbol, fastest, start, END, seed=sum(map(ord, symbol)), sigma=0.5)
    for tf in tfs:
        csv = write_csv(base if tf == fastest else resample(base, tf), into / tf)
        out = ctl(
            daemon, "data", "import", str(csv), "--symbol", symbol, "--timeframe", tf, "--calendar", "crypto"
        )
        assert out.returncode == 0, out.stderr


def train(daemon: Any, path: Path, *extra: str, start: str = START) -> Any:
    return ctl(
        daemon, "train", str(path), "--start-date", start, "--end-date", END, *TINY, *extra, timeout=300
    )


def test_unseen_strategies_validate_train_and_backtest(daemon_factory, host, workdir: Path) -> None:  # noqa: F811
    daemon = start_daemon(daemon_factory, host.socket)
    files = sorted(UNSEEN.glob("*.yaml"))
    out = ctl(daemon, "strategies", "validate", *map(str, files))
    assert out.returncode == 0 and out.stdout.count(": valid") == len(files), out.stdout + out.stderr
    for name, (symbols, tfs) in TRAINED.items():
        for symbol in symbols:
            import_series(daemon, workdir, symbol, tfs)
        out = train(daemon, UNSEEN / f"{name}.yaml")
        assert out.returncode == 0, out.stderr + out.stdout
    # the multi-timeframe model, on one of its symbols (a backtest costs its permutation test)
    period = ("--start", BACKTEST_START, "--end", END)
    out = ctl(daemon, "backtest", "trend_strength_multi_tf", "--symbol", "MSFT", *period)
    assert out.returncode == 0, out.stderr + out.stdout
    assert f"MSFT 1h: {BACKTEST_START}" in out.stdout and "buy and hold" in out.stdout, out.stdout
    assert "nan" not in out.stdout.lower().split(), out.stdout

    # each refused at the data step, before any training, naming the series and the range
    # a symbol the cache lacks, given on the command line to a {mode: single, symbol: X} file
    out = train(daemon, UNSEEN / "stoch_williams_reversal.yaml", "--symbol", "NODATA")
    assert out.returncode == 1 and "the bar cache lacks NODATA 1h" in out.stderr, out.stderr
    assert "FAILED  data" in out.stdout, out.stdout
    # a timeframe the cache lacks: SPY has 1h and 4h bars only
    daily = ("--set", "training_data.timeframes={mode: single, timeframe: 1d}")
    out = train(daemon, UNSEEN / "stoch_williams_reversal.yaml", "--symbol", "SPY", *daily)
    assert out.returncode == 1 and "the bar cache lacks SPY 1d" in out.stderr, out.stderr
    assert "FAILED  data" in out.stdout, out.stdout
    # a warm-up (SMA 200: 199 bars, + 10 lags + 50 bars of history) reaching before the stored history
    import_series(daemon, workdir, "IWM", ("1d",))
    out = train(daemon, UNSEEN / "long_lookback_daily.yaml", "--symbol", "IWM")
    assert out.returncode == 1 and "the bar cache lacks IWM 1d 2022-" in out.stderr, out.stderr
    assert f".. {STORED}T00:00:00Z (warm-up: 259 bars before {START}T00:00:00Z)" in out.stderr, out.stderr
    assert "FAILED  data" in out.stdout, out.stdout
