"""A normalized strategy read back from its plain data (a model directory's ``strategy.json``):
the exact strategy for every shipped file, and a clear error naming a bad field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ktrdr.strategy import load_strategy_file
from ktrdr.strategy.model import StrategyDictError, strategy_from_dict

ROOT = Path(__file__).resolve().parents[4]
SHIPPED = sorted((ROOT / "strategies").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_strategy_round_trips_through_json(path: Path) -> None:
    strategy = load_strategy_file(path).strategy
    assert strategy_from_dict(json.loads(json.dumps(strategy.to_dict()))) == strategy


def test_optional_parts_and_defaults() -> None:
    strategy = load_strategy_file(ROOT / "strategies" / "macd_trend_mtf.yaml").strategy
    assert strategy.optim.early_stopping is not None and strategy.optim.lr_scheduler is not None
    data = strategy.to_dict()
    data["optim"]["lr_scheduler"] = None
    del data["decisions"]  # a missing field takes its default
    back = strategy_from_dict(data)
    assert back.optim.lr_scheduler is None and back.decisions == type(strategy.decisions)()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["data"].update(colour=1), "strategy.data.colour: unknown field"),
        (lambda d: d.update(data=[]), "strategy.data: expected an object"),
        (lambda d: d["fuzzy"][0].update(sets=5), r"strategy.fuzzy\[0\].sets: expected a list"),
        (lambda d: d.pop("name"), "strategy: .*name"),
    ],
)
def test_bad_data_names_the_field(change, message: str) -> None:
    data = load_strategy_file(SHIPPED[0]).strategy.to_dict()
    change(data)
    with pytest.raises(StrategyDictError, match=message):
        strategy_from_dict(data)
