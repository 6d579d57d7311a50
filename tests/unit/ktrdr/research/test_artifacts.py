"""Model directories: atomic write, exact round trip, feature-spec verification on load."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch

from ktrdr.research.artifacts import ArtifactError, load_model_dir, save_model_dir
from ktrdr.research.features import ColumnSource, FeatureSpec, FeatureSpecMismatch
from ktrdr.research.model import build_model
from ktrdr.research.synthetic import gbm_bars
from ktrdr.strategy.model import ModelSpec

SPEC = ModelSpec(hidden_layers=(5,), dropout=0.1, symbol_embedding_dim=2)


def _col(name: str, set_: str, lag: int = 0) -> ColumnSource:
    return ColumnSource(
        name=name, timeframe="1h", indicator="rsi", type="rsi", params={"period": 14}, output="value",
        transform="none", key="rsi", set=set_, membership="triangular", parameters=(0.0, 20.0, 35.0), lag=lag,
    )  # fmt: skip


FSPEC = FeatureSpec(
    columns=(_col("rsi_low", "low"), _col("rsi_mid", "mid"), _col("rsi_low_lag1", "low", 1)),
    base_timeframe="1h",
    timeframes=("1h",),
    lookback=1,
)


def _save(tmp_path, name="m1"):
    model = build_model(SPEC, 3, n_symbols=2, seed=3)
    bars = gbm_bars("AAA", "1h", "2024-01-01", "2024-01-03", seed=1)
    path = save_model_dir(
        tmp_path / name, model, model_spec=SPEC, symbols=("AAA", "BBB"), strategy={"name": "s", "x": [1, 2]},
        feature_spec=FSPEC, metrics={"test": {"accuracy": 0.5}}, seed=3, device="cpu", data=[bars],
        timings={"train_s": 1.25},
    )  # fmt: skip
    return model, bars, path


def test_round_trip_is_exact(tmp_path):
    model, bars, path = _save(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["weights.pt", "strategy.json", "feature_spec.json", "metrics.json", "manifest.json"]
    )
    assert [p.name for p in tmp_path.iterdir()] == ["m1"]  # no temp directory left behind
    loaded = load_model_dir(path, expected=FSPEC)
    a, b = model.state_dict(), loaded.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert loaded.symbols == ("AAA", "BBB") and loaded.feature_spec == FSPEC
    assert loaded.strategy == {"name": "s", "x": [1, 2]} and loaded.metrics == {"test": {"accuracy": 0.5}}
    m = loaded.manifest
    assert m["seed"] == 3 and m["device"] == "cpu" and m["timings"] == {"train_s": 1.25}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", m["created_at"])
    assert m["data"] == [
        {"symbol": "AAA", "timeframe": "1h", "rows": 48, "first": "2024-01-01T00:00:00Z",
         "last": "2024-01-02T23:00:00Z", "sha256": bars.digest()}
    ]  # fmt: skip
    assert (
        m["versions"]["torch"] == torch.__version__
        and m["model"]["parameters"] == 2 * 2 + 5 * 5 + 5 + 5 * 3 + 3
    )
    x = torch.randn(4, 3)
    s = torch.tensor([0, 1, 1, 0])
    model.eval()
    assert torch.equal(model(x, s), loaded.model(x, s))


def test_feature_spec_mismatch_is_refused_with_the_difference(tmp_path):
    _, _, path = _save(tmp_path)
    other = dataclasses.replace(FSPEC, columns=(FSPEC.columns[1], FSPEC.columns[0], FSPEC.columns[2]))
    with pytest.raises(FeatureSpecMismatch, match=r"m1: the model was trained on other features.*column 0"):
        load_model_dir(path, expected=other)
    with pytest.raises(FeatureSpecMismatch, match="lookback expected 2, got 1"):
        load_model_dir(path, expected=dataclasses.replace(FSPEC, lookback=2))


def test_never_overwrites_and_refuses_inconsistent_input(tmp_path):
    _, _, path = _save(tmp_path)
    before = (path / "manifest.json").read_text()
    with pytest.raises(ArtifactError, match="already exists"):
        _save(tmp_path)
    assert (path / "manifest.json").read_text() == before
    model = build_model(SPEC, 4, n_symbols=2)
    with pytest.raises(ArtifactError, match="model takes 4 features, feature spec has 3"):
        save_model_dir(
            tmp_path / "bad", model, model_spec=SPEC, symbols=("A", "B"), strategy={}, feature_spec=FSPEC,
            metrics={}, seed=0, device="cpu", data=[], timings={},
        )  # fmt: skip
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="Out of range float values"):  # NaN metrics: strict JSON
        save_model_dir(
            tmp_path / "nan", build_model(SPEC, 3, n_symbols=2), model_spec=SPEC, symbols=("A", "B"), strategy={},
            feature_spec=FSPEC, metrics={"loss": float("nan")}, seed=0, device="cpu", data=[], timings={},
        )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1"]


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(ArtifactError, match=r"missing weights\.pt"):
        load_model_dir(tmp_path)
    _, _, path = _save(tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "format": "other/9"}))
    with pytest.raises(ArtifactError, match="format 'other/9'"):
        load_model_dir(path)
    (path / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "model"}))
    with pytest.raises(ArtifactError, match=rf"{re.escape(str(path))}: manifest.json has no 'model' object"):
        load_model_dir(path)
    model = {k: v for k, v in manifest["model"].items() if k not in ("dropout", "symbols")}
    (path / "manifest.json").write_text(json.dumps({**manifest, "model": model}))
    with pytest.raises(ArtifactError, match="'model' lacks key\\(s\\) dropout, symbols"):
        load_model_dir(path)
    (path / "manifest.json").write_text(json.dumps(["not", "a", "manifest"]))
    with pytest.raises(ArtifactError, match="manifest format"):
        load_model_dir(path)
    (path / "manifest.json").write_text(json.dumps(manifest))
    (path / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="cannot load weights"):
        load_model_dir(path)
