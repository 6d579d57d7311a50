"""``make run``'s program end to end: the daemon starts with its embedded hosts, validates
neuro_mean_reversion, the strategy trains through ``ktrdrctl train`` on the embedded training host,
the model is registered, and the daemon stops cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def test_demo_trains_neuro_mean_reversion_end_to_end(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "ktrdr.demo", "--run-dir", str(run_dir), "--epochs", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "strategies/neuro_mean_reversion.yaml: valid" in out
    assert "majority baseline" in out and "ktrdrd exited 0" in out
    assert "persistence baseline" in out and "\nverdict (test split): " in out
    assert "model: models/neuro_mean_reversion/versions/1" in out
    (model,) = (run_dir / "state" / "models" / "neuro_mean_reversion").iterdir()
    assert sorted(p.name for p in model.iterdir()) == [
        "feature_spec.json",
        "manifest.json",
        "metrics.json",
        "strategy.json",
        "weights.pt",
    ]
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["model"]["n_features"] == 27 and manifest["model"]["symbols"] == ["AAPL", "MSFT", "GOOGL"]
    assert not (run_dir / "runtime" / "ctl.sock").exists()
