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
from ktrdr.research.synthetic import gbm_bars, write_csv
from ktrdr.research.train import main
from ktrdr.strategy import load_strategy_file

ROOT = Path(__file__).resolve().parents[3]
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
