"""The backtest job's wire description: spec validation naming the key, roles, and names it shares
with the train job and the research core."""

from __future__ import annotations

from typing import Any

import pytest

from ktrdr.jobs import backtest as wire
from ktrdr.jobs import train as train_wire

NS = 1_704_067_200_000_000_001  # not representable as a double: must survive as a string
BASE: dict[str, Any] = {"symbol": "AAPL", "start_ns": "1", "end_ns": "5"}


def test_a_spec_round_trips_through_struct_safe_data() -> None:
    spec = wire.BacktestSpec(
        symbol="EURUSD",
        start_ns=NS,
        end_ns=NS + 10**12,
        fee_bps=0.0,
        slippage_bps=2.5,
        direction="long_short",
    )
    body = spec.to_struct_dict()
    assert body["start_ns"] == str(NS) and "calendar" not in body and wire.parse_spec(body) == spec
    assert wire.parse_spec(BASE) == wire.BacktestSpec(symbol="AAPL", start_ns=1, end_ns=5)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"symbol": None}, "symbol"),
        ({"symbol": "aapl"}, "symbol"),
        ({"end_ns": "1"}, "end_ns"),
        ({"fee_bps": -0.5}, "fee_bps"),
        ({"slippage_bps": -1}, "slippage_bps"),
        ({"fee_bps": float("nan")}, "fee_bps"),
        ({"fee_bps": "1"}, "fee_bps"),
        ({"initial_cash": 0}, "initial_cash"),
        ({"position_size": 1.5}, "position_size"),
        ({"position_size": 0}, "position_size"),
        ({"direction": "short_only"}, "direction"),
        ({"calendar": "LSE"}, "calendar"),
        ({"permutations": -1}, "permutations"),
        ({"seed": 1.5}, "seed"),
        ({"epochs": 3}, "epochs"),
    ],
)
def test_bad_specs_name_the_key(extra: dict[str, Any], key: str) -> None:
    body = {**BASE, **extra}
    if body["symbol"] is None:
        del body["symbol"]
    with pytest.raises(train_wire.JobSpecError) as exc:
        wire.parse_spec(body)
    assert exc.value.key == key


def test_roles_need_the_strategy_and_every_model_file() -> None:
    assert tuple(f"model/{n}" for n in train_wire.MODEL_FILES) == wire.MODEL_ROLES
    good = [train_wire.ROLE_STRATEGY, *wire.MODEL_ROLES, "bars/AAPL/1h"]
    wire.check_roles(good)
    with pytest.raises(train_wire.JobSpecError, match=r"model/weights\.pt"):
        wire.check_roles([r for r in good if r != "model/weights.pt"])
    with pytest.raises(train_wire.JobSpecError, match="unknown role 'checkpoint'"):
        wire.check_roles([*good, train_wire.ROLE_CHECKPOINT])
    with pytest.raises(train_wire.JobSpecError, match="given twice"):
        wire.check_roles([*good, "bars/AAPL/1h"])
    assert wire.missing_bars("AAPL", ["1h", "1d"], good) == ["bars/AAPL/1d"]


def test_walk_forward_windows_must_tile_the_period_and_name_their_models() -> None:
    windows = [{"start_ns": "1", "end_ns": "3"}, {"start_ns": "3", "end_ns": "5"}]
    spec = wire.parse_spec({**BASE, "windows": windows})
    assert spec.windows == ((1, 3), (3, 5)) and wire.parse_spec(spec.to_struct_dict()) == spec
    for bad, key in (
        ([{"start_ns": "1", "end_ns": "3"}, {"start_ns": "4", "end_ns": "5"}], "windows[1].start_ns"),
        ([{"start_ns": "1", "end_ns": "1"}, {"start_ns": "1", "end_ns": "5"}], "windows[0].end_ns"),
        ([{"start_ns": "1", "end_ns": "3"}], "windows"),
        ([{"start_ns": "1", "end_ns": "5", "x": 1}], "windows[0].x"),
        ([], "windows"),
    ):
        with pytest.raises(train_wire.JobSpecError) as err:
            wire.parse_spec({**BASE, "windows": bad})
        assert err.value.key == key
    [first, second] = wire.model_roles(2)
    assert first[0].startswith("model/0/") and second[0].startswith("model/1/")
    wire.check_roles([*first, *second, "bars/AAPL/1h"], windows=2)
    with pytest.raises(train_wire.JobSpecError, match="missing"):
        wire.check_roles([*first, "bars/AAPL/1h"], windows=2)
    with pytest.raises(train_wire.JobSpecError, match="unknown role"):
        wire.check_roles([*wire.MODEL_ROLES, *first, *second], windows=2)
