"""``python -m ktrdr.research.check``: the prefix-invariance test on a user's strategy and data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ktrdr.research.bars import resample
from ktrdr.research.check import as_of, check, main
from ktrdr.research.indicators import registry
from ktrdr.research.indicators.registry import IndicatorDef
from ktrdr.research.synthetic import random_walk, write_csv
from ktrdr.strategy import load_strategy_text

STRATEGY = """\
name: checked
training_data: {symbols: [AAA], timeframes: [1h, 4h], history_required: 0}
indicators:
  - {id: feature, type: TYPE}
fuzzy_sets:
  feature: {low: [0, 50, 100], high: [90, 150, 300]}
"""


@pytest.fixture
def peek_next_close():
    """A look-ahead indicator for the duration of one test: bar t's value is bar t+1's close."""

    def compute(bars):
        out = np.full(len(bars), np.nan)
        out[:-1] = bars.close[1:]
        return {"value": out}

    defn = registry.register(IndicatorDef("peek_next_close", compute, (), ("value",), "value", lambda p: 0))
    yield defn
    del registry._REGISTRY[defn.name]
    del registry._BY_KEY[registry._key(defn.name)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    base = random_walk("AAA", 24 * 40, 11, start="2024-01-01")
    write_csv(base, tmp_path)
    write_csv(resample(base, "4h"), tmp_path)
    return tmp_path


def write_strategy(tmp_path: Path, indicator: str) -> Path:
    path = tmp_path / "strategy.yaml"
    path.write_text(STRATEGY.replace("TYPE", indicator))
    return path


def test_clean_strategy_exits_0(data_dir, tmp_path, capsys):
    assert main([str(write_strategy(tmp_path, "sma")), "--data", str(data_dir), "--start", "2024-01-05"]) == 0
    assert capsys.readouterr().out.startswith("clean: features of AAA are identical on every prefix (8 cuts")


def test_look_ahead_is_found_with_the_first_differing_row_and_column(
    peek_next_close, data_dir, tmp_path, capsys
):
    path = write_strategy(tmp_path, "peek_next_close")
    assert main([str(path), "--data", str(data_dir), "--cuts", "3"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("look-ahead: AAA row ") and "column '1h_feature_low'" in out
    strategy = load_strategy_text(path.read_text()).strategy
    bars = {"1h": random_walk("AAA", 24 * 40, 11, start="2024-01-01")}
    bars["4h"] = resample(bars["1h"], "4h")
    diff = check(strategy, {"AAA": bars}, None, 3)
    assert diff is not None and diff.row == diff.cut - 1  # the last bar of the prefix sees no next close
    assert np.isfinite(diff.full) and np.isnan(diff.prefix) and diff.column == "1h_feature_low"
    assert f"row {diff.row} " in out


def test_a_forming_slower_bar_is_what_it_was_at_the_cut():
    base = random_walk("AAA", 100, 2, start="2024-01-01")
    four = resample(base, "4h")
    now = as_of({"1h": base, "4h": four}, "1h", 42)  # bars 0..41: the 4h bar of 40..43 is forming
    assert len(now["1h"]) == 42 and now["4h"].time[-1] == base.time[40]
    assert now["4h"].close[-1] == base.close[41] and now["4h"].high[-1] == base.high[40:42].max()
    assert now["4h"].close[-2] == four.close[len(now["4h"]) - 2]  # completed bars unchanged


def test_bad_input_exits_2(tmp_path, capsys):
    assert main([str(write_strategy(tmp_path, "sma")), "--data", str(tmp_path / "none")]) == 2
    assert "no bars for AAA 1h" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.yaml"), "--data", str(tmp_path)]) == 2
