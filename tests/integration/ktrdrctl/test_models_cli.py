"""The model registry through ``ktrdrctl models …`` against a real ktrdrd.

Until the train operation exists, model directories are made by the library
(``ktrdr.research.train.run`` on synthetic bars) and registered through the test plugin's
``ktrdr.test.v1/RegisterModel`` (tests/support/models.py), the way the train operation will call
``ModelRegistry.register``. Expected values come from those directories' own files.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import grpc
import pytest

from ktrdr.daemon.v1 import models_pb2, models_pb2_grpc
from ktrdr.research.modeldir import FILES
from ktrdr.research.synthetic import gbm_bars, write_csv
from ktrdr.research.train import run
from tests.support.models import REGISTER_METHOD
from tests.support.paths import REPO
from tests.support.tinystrategy import SMALLEST_YAML

PLUGINS = {"KTRDR_TEST_PLUGINS": "tests.support.kinds,tests.support.models"}
MODELS = "ktrdr.daemon.v1.ModelsService/"


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> list[Path]:
    """Two model directories of strategy ``t``: 2 epochs with seed 1, 3 epochs with seed 2."""
    base = tmp_path_factory.mktemp("models")
    write_csv(gbm_bars("AAPL", "1h", "2023-01-01", "2023-03-01", seed=1, sigma=0.4), base / "bars")
    (base / "t.yaml").write_text(SMALLEST_YAML)
    dirs = []
    for seed, epochs in ((1, 2), (2, 3)):
        summary = run(
            base / "t.yaml",
            base / "bars",
            "2023-01-15",
            "2023-03-01",
            out_dir=base / "out",
            seed=seed,
            epochs=epochs,
        )
        dirs.append(Path(summary["model_dir"]))
    return dirs


def ktrdrctl(daemon, *argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "ktrdrctl", "--runtime-dir", str(daemon.runtime_dir), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def metrics_of(model_dir: Path) -> dict:
    return json.loads((model_dir / "metrics.json").read_text())


def test_registry_round_trips(daemon_factory, model_dirs, tmp_path) -> None:
    daemon = daemon_factory.start(env=PLUGINS)
    first = daemon.ctl(REGISTER_METHOD, {"path": str(model_dirs[0]), "operation": "operations/op_test"})
    second = daemon.ctl(REGISTER_METHOD, {"path": str(model_dirs[1])})
    assert (first, second) == (
        {"name": "models/t/versions/1", "version": 1},
        {"name": "models/t/versions/2", "version": 2},
    )
    stored = daemon.state_dir / "models" / "t"
    assert sorted(p.name for p in stored.iterdir()) == ["1", "2"]
    assert all((stored / "2" / f).read_bytes() == (model_dirs[1] / f).read_bytes() for f in FILES)

    listed = ktrdrctl(daemon, "models", "list")
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[:3] == ["t", "2", "2"]
    [versions] = json_lines(ktrdrctl(daemon, "models", "list", "t", "--json"))
    assert [v["version"] for v in versions["versions"]] == [2, 1]
    assert versions["versions"][1]["operation"] == "operations/op_test"
    page = daemon.ctl(MODELS + "ListModelVersions", {"parent": "models/t", "pageSize": 1})
    rest = daemon.ctl(
        MODELS + "ListModelVersions", {"parent": "models/t", "pageToken": page["nextPageToken"]}
    )
    assert [v["version"] for v in page["versions"] + rest["versions"]] == [
        2,
        1,
    ] and not rest.get("nextPageToken")

    # show: the newest version by default; metrics beside both baselines, matrix, distribution, manifest
    test = metrics_of(model_dirs[1])["evaluation"]["test"]
    shown = ktrdrctl(daemon, "models", "show", "t")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith("models/t/versions/2")
    test_row = next(line for line in text.splitlines() if line.strip().startswith("test "))
    assert (
        f"{test['accuracy']:.4f}" in test_row
        and f"{test['baseline_accuracy']:.4f} ({test['baseline_class']})" in test_row
    )
    assert f"{test['persistence_accuracy']:.4f}" in test_row
    matrix_rows = [line.split() for line in text.splitlines() if line.strip().startswith("true ")]
    assert [[int(n) for n in row[2:]] for row in matrix_rows] == test["confusion_matrix"]
    assert "class distribution:" in text and f"{test['distribution']['buy_count']} (" in text
    assert ("not significant" if not test["skill"]["significant"] else "significant") in text
    manifest = json.loads((model_dirs[1] / "manifest.json").read_text())
    assert f"seed {manifest['seed']}" in text and manifest["data"][0]["sha256"] in text
    assert "early stopping off" in text and f"torch {manifest['versions']['torch']}" in text

    plot = tmp_path / "curves.png"
    plotted = ktrdrctl(daemon, "models", "show", "t/1", "--plot", str(plot))
    assert plotted.returncode == 0, plotted.stderr
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and plot.stat().st_size > 10_000

    compared = ktrdrctl(daemon, "models", "compare", "t/1", "models/t/versions/2")
    assert compared.returncode == 0, compared.stderr
    header, *rows = compared.stdout.splitlines()
    assert header.split() == ["METRIC", "t/1", "t/2"]
    accuracy = next(r for r in rows if r.startswith("test accuracy "))
    expected = [f"{metrics_of(d)['evaluation']['test']['accuracy']:.4f}" for d in model_dirs]
    assert accuracy.split()[-2:] == expected
    assert next(r for r in rows if r.startswith("seed")).split()[-2:] == ["1", "2"]

    # aliases: set, read through, refuse deleting the version, move, delete
    assert ktrdrctl(daemon, "models", "alias", "t", "1", "champion").returncode == 0
    [aliased] = json_lines(ktrdrctl(daemon, "models", "show", "t@champion", "--json"))
    assert aliased["version"]["version"] == 1 and aliased["version"]["aliases"] == ["champion"]
    assert aliased["version"]["classNames"] == list(test["per_class"])
    refused = ktrdrctl(daemon, "models", "delete", "t/1")
    assert (
        refused.returncode == 1 and "FAILED_PRECONDITION" in refused.stderr and "champion" in refused.stderr
    )
    assert (stored / "1").is_dir()
    assert ktrdrctl(daemon, "models", "alias", "t", "2", "champion").returncode == 0
    deleted = ktrdrctl(daemon, "models", "delete", "t/1")
    assert deleted.returncode == 0, deleted.stderr
    assert not (stored / "1").exists()
    [after] = json_lines(ktrdrctl(daemon, "models", "list", "t", "--json"))
    assert [v["version"] for v in after["versions"]] == [2]

    # export: the archive holds the version's files byte for byte (ctl and gRPC alike)
    archive = tmp_path / "t.tar"
    exported = ktrdrctl(daemon, "models", "export", "t@champion", "-o", str(archive))
    assert exported.returncode == 0, exported.stderr
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(f"t-v2/{f}" for f in FILES)
        for f in FILES:
            assert tar.extractfile(f"t-v2/{f}").read() == (model_dirs[1] / f).read_bytes()
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        stub = models_pb2_grpc.ModelsServiceStub(channel)
        request = models_pb2.ExportModelVersionRequest(name="models/t/versions/2")
        assert b"".join(m.data for m in stub.ExportModelVersion(request, timeout=30)) == archive.read_bytes()

    assert ktrdrctl(daemon, "models", "alias", "--delete", "t", "champion").returncode == 0
    gone = ktrdrctl(daemon, "models", "show", "t@champion")
    assert gone.returncode == 4 and "alias 'champion' of model 't' not found" in gone.stderr

    # unknown names are NOT_FOUND naming what is missing; malformed ones are refused
    for argv, missing in (
        (("show", "nope"), "model 'nope' not found"),
        (("show", "t/9"), "version 9 of model 't' not found"),
        (("delete", "t/1"), "version 1 of model 't' not found"),
        (("alias", "t", "7", "x"), "version 7 of model 't' not found"),
        (("alias", "--delete", "t", "x"), "alias 'x' of model 't' not found"),
    ):
        result = ktrdrctl(daemon, "models", *argv)
        assert result.returncode == 4 and missing in result.stderr, (argv, result.stderr)
    assert ktrdrctl(daemon, "models", "delete", "t@champion").returncode == 2
    bad_alias = ktrdrctl(daemon, "models", "alias", "t", "2", "9lives")
    assert bad_alias.returncode == 1 and "INVALID_ARGUMENT" in bad_alias.stderr
    with pytest.raises(Exception, match="not a token"):
        daemon.ctl(MODELS + "ListModelVersions", {"parent": "models/t", "pageToken": "x"})

    # a directory that is not a model directory is refused and changes nothing
    with pytest.raises(Exception, match="not a model directory"):
        daemon.ctl(REGISTER_METHOD, {"path": str(tmp_path)})
    assert sorted(p.name for p in stored.iterdir()) == ["2"]


def test_a_crash_mid_register_leaves_no_half_version(daemon_factory, model_dirs) -> None:
    """kill -9 after the version's files are in place and before its row: after a restart the
    version does not exist, its directory is gone, and its number is not given again."""
    daemon = daemon_factory.start(env=PLUGINS)
    marker = daemon_factory.base / "placed"
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": REGISTER_METHOD,
        "params": {"path": str(model_dirs[0]), "pauseAt": str(marker)},
    }
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(daemon.ctl_socket))
        sock.sendall(json.dumps(request).encode() + b"\n")
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline, daemon.logs()
            time.sleep(0.02)
        placed = Path(marker.read_text())
        assert placed == daemon.state_dir / "models" / "t" / "1" and (placed / "weights.pt").is_file()
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait(30)

    again = daemon_factory.start(runtime_dir=daemon.runtime_dir, state_dir=daemon.state_dir, env=PLUGINS)
    assert again.ctl(MODELS + "ListModels", {}).get("models", []) == []
    assert not placed.exists() and not any((daemon.state_dir / "models" / ".staging").iterdir())
    assert any("removed incomplete model versions" in r.get("msg", "") for r in again.log_records())
    registered = again.ctl(REGISTER_METHOD, {"path": str(model_dirs[0])})
    assert registered["version"] == 2  # number 1 was reserved before the crash; never reused
