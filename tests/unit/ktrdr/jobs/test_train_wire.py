"""The train job's wire description: spec validation naming the key, roles, and the names it shares
with the research core (model files, result keys) staying equal to the core's."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.jobs import train as wire
from ktrdr.research import artifacts
from ktrdr.research import train as research_train
from ktrdr.research.synthetic import gbm_bars, to_ns
from ktrdr.strategy import load_strategy_text
from tests.support.traininghost import END, START, strategy_text

NS = 1_704_067_200_000_000_001  # not representable as a double: must survive as a string


def test_a_spec_round_trips_through_struct_safe_data() -> None:
    spec = wire.TrainSpec(start_ns=NS, end_ns=NS + 10**12, seed=3, epochs=4)
    body = spec.to_struct_dict()
    assert body["start_ns"] == str(NS) and wire.parse_spec(body) == spec
    assert wire.parse_spec({"start_ns": 1, "end_ns": float(2**40)}).end_ns == 2**40


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"end_ns": "5"}, "start_ns"),
        ({"start_ns": "5", "end_ns": "5"}, "end_ns"),
        ({"start_ns": "x", "end_ns": "5"}, "start_ns"),
        ({"start_ns": "1", "end_ns": "5", "epochs": 0}, "epochs"),
        ({"start_ns": "1", "end_ns": "5", "seed": True}, "seed"),
        ({"start_ns": "1", "end_ns": "5", "colour": 1}, "colour"),
        ({"start_ns": "1", "end_ns": "5", "options": {"checkpoint_every": -1}}, "options.checkpoint_every"),
        (
            {"start_ns": "1", "end_ns": "5", "options": {"progress_interval_s": 0}},
            "options.progress_interval_s",
        ),
        ({"start_ns": "1", "end_ns": "5", "options": {"speed": 1}}, "options.speed"),
        ({"start_ns": "1", "end_ns": "5", "options": {"mixed_precision": "yes"}}, "options.mixed_precision"),
    ],
)
def test_a_bad_spec_names_its_key(body: dict[str, object], key: str) -> None:
    with pytest.raises(wire.JobSpecError) as exc:
        wire.parse_spec(body)
    assert exc.value.key == key and str(exc.value).startswith(f"{key}: ")


def test_roles() -> None:
    assert wire.bars_role("EURUSD", "1h") == "bars/EURUSD/1h"
    assert wire.parse_bars_role("bars/BRK.B/4h") == ("BRK.B", "4h")
    wire.check_roles(["strategy", "bars/EURUSD/1h", "checkpoint"])
    for roles, words in (
        (["bars/EURUSD/1h"], "'strategy' input is required"),
        (["strategy", "strategy"], "given twice"),
        (["strategy", "prices/EURUSD"], "bad role 'prices/EURUSD'"),
    ):
        with pytest.raises(wire.JobSpecError, match=words):
            wire.check_roles(roles)
    required = wire.required_bars_roles(["A", "B"], ["1h", "1d"])
    assert wire.missing_bars_roles(required, ["bars/A/1h", "bars/B/1d"]) == ["bars/A/1d", "bars/B/1h"]


def test_bars_round_trip_through_the_parquet_input(tmp_path: Path) -> None:
    bars = gbm_bars("AAPL", "1h", "2024-01-01", "2024-01-10", seed=1)
    path = tmp_path / "blob"
    path.write_bytes(wire.bars_to_parquet(bars))
    back = wire.read_bars_blob(path, "AAPL", "1h", role="bars/AAPL/1h")
    assert back.digest() == bars.digest()
    path.write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="input bars/AAPL/1h: not a Parquet file"):
        wire.read_bars_blob(path, "AAPL", "1h", role="bars/AAPL/1h")


def test_the_names_shared_with_the_research_core_agree(tmp_path: Path) -> None:
    """One real (one-epoch) training through train_on_bars: its summary's keys are RESULT_KEYS
    plus model_dir, and the model directory holds MODEL_FILES."""
    loaded = load_strategy_text(strategy_text(epochs=1))
    start, end = to_ns(START), to_ns(END)
    bars = gbm_bars("AAPL", "1h", "2023-01-01", END, seed=4, sigma=0.4)
    data = research_train.select_bars(loaded.strategy, start, end, lambda s, tf: (bars, "memory"))
    trained = research_train.train_on_bars(loaded, data, start, end, tmp_path / "m")
    assert set(trained.summary) == {*wire.RESULT_KEYS, "model_dir"}
    assert wire.MODEL_FILES == artifacts.FILES
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(wire.MODEL_FILES)
