"""Backtest jobs on a real ``hostd training`` process: a model the library trained on synthetic bars,
uploaded file by file, backtested in a warm worker; the result and artifacts agree with the
library run in this process; a mismatching feature spec, negative fees and a zero-trade period."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from ktrdr.hostd.training.v1 import training_host_pb2 as pb
from ktrdr.jobs import backtest as wire
from ktrdr.jobs import train as train_wire
from ktrdr.research.backtest.job import run_backtest, select_symbol_bars
from ktrdr.research.synthetic import gbm_bars, to_ns
from ktrdr.research.train import select_bars, train_on_bars
from ktrdr.research.trainer import TrainOptions
from ktrdr.strategy import load_strategy_text
from tests.support.traininghost import TrainHost, blob_ref, result_dict, strategy_text

TRAIN_START, TRAIN_END = "2023-02-01", "2023-05-01"
TEST_START, TEST_END = "2023-05-01", "2023-07-01"
BARS = gbm_bars("AAPL", "1h", "2023-01-01", TEST_END, seed=4, sigma=0.4)
BARS_BLOB = train_wire.bars_to_parquet(BARS)
#: The trained strategy, then the same features under other decision rules (a low threshold that
#: trades, and a threshold of 1.0 that never does) and a strategy with another feature.
BASE = strategy_text(epochs=2)
TRADING = BASE + "decisions:\n  confidence_threshold: 0.0\n  direction: long_short\n"
NEVER = BASE + "decisions:\n  confidence_threshold: 1.0\n"
OTHER_FEATURES = BASE.replace("low: {type: triangular", "lowish: {type: triangular")


def _spec(**extra: Any) -> struct_pb2.Struct:
    body = wire.BacktestSpec(
        symbol="AAPL", start_ns=to_ns(TEST_START), end_ns=to_ns(TEST_END), permutations=200, seed=3
    ).to_struct_dict()
    body.update(extra)
    return json_format.ParseDict(body, struct_pb2.Struct())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained in this process by the library on the first three months."""
    loaded = load_strategy_text(BASE)
    start, end = to_ns(TRAIN_START), to_ns(TRAIN_END)
    data = select_bars(loaded.strategy, start, end, lambda _s, _tf: (BARS, "synthetic"))
    path = tmp_path_factory.mktemp("trained") / "model"
    train_on_bars(loaded, data, start, end, path, options=TrainOptions(device="cpu", threads=1))
    return path


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[TrainHost]:
    root = tmp_path_factory.mktemp("bthost")
    (root / "state").mkdir()
    started = TrainHost(root / "state", root)
    for blob in (BARS_BLOB, *(t.encode() for t in (BASE, TRADING, NEVER, OTHER_FEATURES))):
        started.upload(blob)
    for name in train_wire.MODEL_FILES:
        started.upload((model_dir / name).read_bytes())
    yield started
    assert started.stop() == 0


def _inputs(model_dir: Path, strategy: str | None) -> list[pb.JobInput]:
    """The model's files and the bars, and the strategy document unless None (the model's own)."""
    files = {wire.MODEL_PREFIX + n: (model_dir / n).read_bytes() for n in train_wire.MODEL_FILES}
    blobs = {train_wire.bars_role("AAPL", "1h"): BARS_BLOB, **files}
    if strategy is not None:
        blobs[train_wire.ROLE_STRATEGY] = strategy.encode()
    return [pb.JobInput(role=role, blob=blob_ref(data)) for role, data in blobs.items()]


def _start(
    host: TrainHost, job_id: str, model_dir: Path, strategy: str | None, spec: struct_pb2.Struct
) -> pb.Job:
    request = pb.StartJobRequest(
        job_id=job_id, kind=pb.JOB_KIND_BACKTEST, spec=spec, inputs=_inputs(model_dir, strategy)
    )
    return host.unary("StartJob", request, pb.StartJobResponse).job


def _finite_everywhere(value: Any, where: str = "result") -> None:
    """No NaN or infinity anywhere in JSON data (None is the defined "unbounded")."""
    if isinstance(value, float):
        assert math.isfinite(value), where
    elif isinstance(value, dict):
        for k, v in value.items():
            _finite_everywhere(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite_everywhere(v, f"{where}[{i}]")


def _same(mine: Any, theirs: Any, where: str = "") -> None:
    """Equal JSON data, numbers to 1e-12 relative (a Struct carries every number as a double)."""
    if isinstance(mine, dict):
        assert sorted(mine) == sorted(theirs), where
        for k in mine:
            _same(mine[k], theirs[k], f"{where}.{k}")
    elif isinstance(mine, list):
        assert len(mine) == len(theirs), where
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            _same(a, b, f"{where}[{i}]")
    elif isinstance(mine, int | float) and not isinstance(mine, bool):
        assert theirs == pytest.approx(mine, rel=1e-12, abs=1e-12), where
    else:
        assert mine == theirs, where


def test_a_backtest_job_runs_in_steps_and_agrees_with_the_library(
    host: TrainHost, model_dir: Path, tmp_path: Path
) -> None:
    job = _start(host, "bt-1", model_dir, TRADING, _spec())
    assert job.kind == pb.JOB_KIND_BACKTEST
    events = [i.event for i in host.watch("bt-1")[1:]]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    done = host.get("bt-1")
    assert done.state == pb.JOB_STATE_SUCCEEDED, done.error.message
    steps = [e.message for e in events if e.message.startswith("step")]
    assert steps == [
        f"step {k}/4: {name}" for k, name in enumerate(("features", "simulate", "classifier", "artifacts"), 1)
    ]
    fractions = [e.progress.fraction for e in events if e.message.startswith("step")]
    assert fractions == sorted(fractions) and fractions[0] == 0.0

    result = result_dict(done)
    assert tuple(sorted(result)) == tuple(sorted(wire.RESULT_KEYS))
    metrics = result["metrics"]
    assert metrics["trades"] > 0 and result["decisions"]["direction"] == "long_short"
    assert result["classifier"]["samples"] > 0 and "persistence_accuracy" in result["classifier"]
    assert 0 < metrics["uncertainty"]["permutation_p_value"] <= 1
    assert result["range"]["first"].startswith("2023-05-01")

    files = {}
    assert [a.name for a in done.artifacts] == list(wire.ARTIFACTS)
    for artifact in done.artifacts:
        files[artifact.name] = host.download("bt-1", artifact.name)[1]
    assert files[wire.PLOT].startswith(b"\x89PNG\r\n\x1a\n")
    trades = list(csv.DictReader(io.StringIO(files[wire.TRADES].decode())))
    equity = list(csv.DictReader(io.StringIO(files[wire.EQUITY].decode())))
    assert len(trades) == metrics["trades"] and len(equity) == result["range"]["bars"]
    assert float(equity[-1]["equity"]) == pytest.approx(metrics["final_equity"])
    report = json.loads(files[wire.REPORT])
    assert len(report.pop("trades")) == metrics["trades"]
    _same(report, result)  # the report is the result plus the trade list

    # The same job run by the library in this process gives the same figures.
    loaded = load_strategy_text(TRADING)
    spec = wire.parse_spec(json_format.MessageToDict(_spec()))
    bars = select_symbol_bars(
        loaded.strategy, "AAPL", spec.start_ns, spec.end_ns, lambda _s, _tf: (BARS, "x")
    )
    local = run_backtest(loaded.strategy, model_dir, bars, spec, tmp_path / "local")
    _same(local["metrics"], metrics)
    _same(local["classifier"], result["classifier"])


def test_a_strategy_with_other_features_is_refused_naming_the_difference(
    host: TrainHost, model_dir: Path
) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        _start(host, "bt-mismatch", model_dir, OTHER_FEATURES, _spec())
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "other features" in exc.value.details() and "lowish" in exc.value.details()
    with pytest.raises(grpc.RpcError) as gone:
        host.get("bt-mismatch")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_negative_fees_or_slippage_are_invalid_argument(host: TrainHost, model_dir: Path) -> None:
    for key in ("fee_bps", "slippage_bps"):
        with pytest.raises(grpc.RpcError) as exc:
            _start(host, f"bt-neg-{key}", model_dir, BASE, _spec(**{key: -1.0}))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"spec.{key}" in exc.value.details() and ">= 0" in exc.value.details()


def test_missing_model_files_or_bars_are_invalid_argument(host: TrainHost, model_dir: Path) -> None:
    inputs = [i for i in _inputs(model_dir, BASE) if i.role != "model/weights.pt"]
    request = pb.StartJobRequest(job_id="bt-nomodel", kind=pb.JOB_KIND_BACKTEST, spec=_spec(), inputs=inputs)
    with pytest.raises(grpc.RpcError) as exc:
        host.unary("StartJob", request, pb.StartJobResponse)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "model/weights.pt" in exc.value.details()
    with pytest.raises(grpc.RpcError) as exc:
        _start(host, "bt-nobars", model_dir, BASE, _spec(symbol="MSFT"))
    assert "needs input(s) bars/MSFT/1h" in exc.value.details()


def test_a_period_without_trades_has_valid_metrics(host: TrainHost, model_dir: Path) -> None:
    _start(host, "bt-none", model_dir, NEVER, _spec())
    host.watch("bt-none")
    done = host.get("bt-none")
    assert done.state == pb.JOB_STATE_SUCCEEDED, done.error.message
    result = result_dict(done)
    metrics = result["metrics"]
    assert metrics["trades"] == 0 and metrics["total_return"] == 0 and metrics["sharpe"] == 0
    assert metrics["uncertainty"]["permutation_p_value"] == 1.0
    assert result["decisions"]["signals"]["buy"] == result["decisions"]["signals"]["sell"] == 0
    _finite_everywhere(result)
    trades = host.download("bt-none", wire.TRADES)[1].decode().splitlines()
    assert trades == [",".join(wire.TRADE_COLUMNS)]


def test_without_a_strategy_input_the_model_decides_with_its_own(host: TrainHost, model_dir: Path) -> None:
    _start(host, "bt-own", model_dir, None, _spec())
    host.watch("bt-own")
    own = host.get("bt-own")
    _start(host, "bt-base", model_dir, BASE, _spec())
    host.watch("bt-base")
    base = host.get("bt-base")
    assert own.state == base.state == pb.JOB_STATE_SUCCEEDED, own.error.message
    assert result_dict(own)["metrics"] == result_dict(base)["metrics"]
    assert result_dict(own)["decisions"]["confidence_threshold"] == 0.5  # the trained strategy's default
