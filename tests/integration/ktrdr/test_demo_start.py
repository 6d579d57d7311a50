"""``make run`` (``python -m ktrdr.demo``) only ever works against the daemon it started itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def demo(run_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
    return subprocess.run(
        [sys.executable, "-m", "ktrdr.demo", "--run-dir", str(run_dir), "--epochs", "1"],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},  # the console scripts run this checkout's code
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_daemon_already_serving_the_run_dir_is_refused_and_left_alone(daemon_factory) -> None:
    run_dir = daemon_factory.base / "demo"
    foreign = daemon_factory.start(runtime_dir=run_dir / "runtime", state_dir=daemon_factory.base / "theirs")
    proc = demo(run_dir)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"another ktrdrd (pid {foreign.proc.pid}) is already serving {run_dir / 'runtime'}" in proc.stderr
    assert "validating" not in proc.stdout and "training" not in proc.stdout
    assert not (run_dir / "state").exists()  # no daemon of its own was started
    assert foreign.proc.poll() is None and foreign.info()["pid"] == foreign.proc.pid


def test_its_own_daemon_failing_to_start_stops_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "runtime").write_text("a file where the runtime dir should be\n")
    proc = demo(run_dir)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ktrdrd exited 1 before it was ready" in proc.stderr
    assert "validating" not in proc.stdout and "training" not in proc.stdout
