"""The developer entry point, end to end on synthetic files: strategy → bars → dataset → model dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ktrdr.research.artifacts import load_model_dir
from ktrdr.research.bars import resample
from ktrdr.research.features import feature_spec
from ktrdr.research.synthetic import gbm_bars, random_walk, write_csv
from ktrdr.research.train import main
from ktrdr.strategy import load_strategy_file
from tests.support.paths import REPO

ROOT = REPO
STRATEGY = ROOT / "strategies" / "neuro_mean_reversion.yaml"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bars")
    for i, sym in enumerate(("AAPL", "MSFT", "GOOGL")):
        h = gbm_bars(sym, "1h", "2023-01-01", "2023-07-01", seed=i, sigma=0.4)
        for b in (h, resample(h, "4h"), resample(h, "1d")):
            write_csv(b, d)
    return d


def test_train_json_summary_and_loadable_model(data_dir, tmp_path, capsys):
    argv = [str(STRATEGY), "--data", str(data_dir), "--start", "2023-02-01", "--end", "2023-07-01",
            "--epochs", "2", "--seed", "3", "--out", str(tmp_path), "--json"]  # fmt: skip
    assert main(argv) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["epochs_trained"] == 2 and s["features"] == 27 and s["device"] == "cpu"
    for part in ("train", "validation", "test"):
        r = s["splits"][part]
        assert r["samples"] > 0 and 0 <= r["accuracy"] <= 1 and 0 < r["baseline_accuracy"] <= 1
        assert r["distribution"]["total"] == r["samples"]
    assert any("output_activation" in w for w in s["warnings"])
    # Samples start at --start; the month before only warms up, and the report says how much.
    assert s["ranges"]["train"]["first"] == "2023-02-01T00:00Z"
    assert s["warmup"]["AAPL"] == {
        "warmup_bars": 235,
        "warmup_required": 235,
        "first_bar": "2023-01-22T05:00Z",  # the files hold more; 235 bars are read
        "last_bar": "2023-06-30T23:00Z",
    }
    assert s["label_source"] == "zigzag" and s["label_horizon"]["AAPL"] > 0 and s["embargo"] > 0
    assert any("label_lookahead: ignored by ZigZag labels" in w for w in s["warnings"])
    test = s["splits"]["test"]
    assert 0 <= test["persistence_accuracy"] <= 1 and test["baseline_class"] in ("buy", "hold", "sell")
    skill = test["skill"]
    assert (
        skill["horizon_bars"] == s["skill_horizon"]
        and skill["decisions"] + skill["no_forward_return"] == test["samples"]
    )
    assert skill["significant"] == (skill["ci_low"] > 0 or skill["ci_high"] < 0)
    assert s["verdict"].startswith(("significant", "not significant")) and s["verdict_split"] == "test"
    strategy = load_strategy_file(STRATEGY).strategy
    loaded = load_model_dir(s["model_dir"], expected=feature_spec(strategy))
    assert loaded.symbols == ("AAPL", "MSFT", "GOOGL") and loaded.manifest["seed"] == 3
    assert len(loaded.manifest["data"]) == 9 and loaded.strategy["name"] == "neuro_mean_reversion"
    assert loaded.metrics["evaluation"]["test"]["accuracy"] == s["splits"]["test"]["accuracy"]
    # Same seed, same data → same metrics.
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["splits"] == s["splits"] and again["model_dir"] != s["model_dir"]


def test_missing_data_file_is_a_clear_usage_error(tmp_path, capsys):
    write_csv(gbm_bars("AAPL", "1h", "2023-01-01", "2023-02-01", seed=0), tmp_path)
    out = tmp_path / "out"
    rc = main(
        [
            str(STRATEGY),
            "--data",
            str(tmp_path),
            "--start",
            "2023-01-10",
            "--end",
            "2023-02-01",
            "--out",
            str(out),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "no bars for AAPL 4h" in err and "AAPL_4h.csv" in err
    assert not out.exists()


def test_module_entry_point_runs(data_dir, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ktrdr.research.train", str(STRATEGY), "--data", str(data_dir),
         "--start", "2023-02-01", "--end", "2023-07-01", "--epochs", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "majority baseline" in proc.stdout and "epoch 1/1" in proc.stderr
    assert len(list(tmp_path.iterdir())) == 1


TINY = """\
name: tiny
training_data: {symbols: [AAA], timeframes: [1h], history_required: 0}
indicators:
  - {id: rsi, type: rsi, params: {period: 14}}
  - {id: dist, type: distance_from_ma, params: {period: 24, ma_type: ema}}
fuzzy_sets:
  rsi: {low: [0, 30, 50], mid: [30, 50, 70], high: [50, 70, 100]}
  dist: {below: [-4, -2, 0], above: [0, 2, 4]}
model:
  features: {lookback_periods: 2}
  training: {epochs: 3, batch_size: 64, learning_rate: 0.01}
training:
  labels: LABELS
"""


def tiny(tmp_path: Path, labels: str = "{source: zigzag, zigzag_threshold: 0.02}") -> tuple[Path, Path]:
    """A one-symbol strategy file and 3000 hourly random-walk bars from 2022-01-01."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("LABELS", labels))
    write_csv(random_walk("AAA", 3000, 5), tmp_path / "bars")
    return path, tmp_path / "bars"


def test_report_warns_when_the_data_do_not_cover_the_range(tmp_path, capsys):
    path, bars = tiny(tmp_path)
    argv = [
        str(path),
        "--data",
        str(bars),
        "--start",
        "2021-12-01",
        "--end",
        "2022-06-01",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "warm-up bars before the start: AAA 0 (wanted 25)" in out
    assert "warning: AAA: 0 warm-up bars before 2021-12-01T00:00Z, 25 wanted" in out
    assert "warning: AAA: data begin at 2022-01-01T00:00Z, after the requested start 2021-12-01T00:00Z" in out
    assert "warning: AAA: data end at 2022-05-06T00:00Z (last bar's close), before the requested end" in out
    assert "persistence baseline" in out and "\nverdict (test split): " in out and "skill: " in out


def test_degenerate_training_target_is_a_clear_usage_error(tmp_path, capsys):
    path, bars = tiny(tmp_path, "{source: forward, zigzag_threshold: 0.5, label_lookahead: 5}")
    argv = [
        str(path),
        "--data",
        str(bars),
        "--start",
        "2022-01-03",
        "--end",
        "2022-05-01",
        "--out",
        str(tmp_path / "m"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "degenerate training target: train part: class buy has 0 of" in err and "label threshold" in err
    assert not (tmp_path / "m").exists()


def test_null_control_trains_in_parallel_processes_and_places_the_real_result(tmp_path, capsys):
    path, bars = tiny(tmp_path)
    argv = [str(path), "--data", str(bars), "--start", "2022-01-03", "--end", "2022-05-01", "--out", str(tmp_path),
            "--json", "--null-control", "1", "--threads", "2", "--jobs", "2"]  # fmt: skip
    assert main(argv) == 0
    s = json.loads(capsys.readouterr().out)
    nc = s["null_control"]
    assert (nc["n"], nc["processes"], nc["threads_each"]) == (1, 2, 1)
    assert sorted(r["kind"] for r in nc["runs"]) == ["block_shuffle", "random_walk"]
    assert nc["wall_s"] > 0 and nc["overlap"] == pytest.approx(
        sum(r["seconds"] for r in nc["runs"]) / nc["wall_s"], abs=0.01
    )
    real = nc["placement"]["all"]["mean_return"]["real"]
    assert real == s["splits"]["test"]["skill"]["mean_return"]
    for group in ("random_walk", "block_shuffle", "all"):
        entry = nc["placement"][group]
        assert entry["runs"] + entry["failed"] == (2 if group == "all" else 1)
        q = entry["mean_return"]["quantile"]
        assert q is None or 0 <= q <= 1
