"""A trained model on disk: one directory, written atomically, verified when loaded.

Layout of ``<dir>/``:

* ``weights.pt``: the model's ``state_dict`` (tensors only; loaded with ``weights_only=True``).
* ``strategy.json``: the normalized strategy (every default filled) the model was trained from.
* ``feature_spec.json``: the ordered feature columns (:class:`~ktrdr.research.features.FeatureSpec`).
* ``metrics.json``: training history and evaluation reports (whatever the trainer hands in).
* ``manifest.json``: ``format``, ``created_at`` (UTC ISO-8601 with ``Z``), ``seed``, ``device``,
  ``versions`` (python, torch, numpy, ktrdr), ``model`` (architecture, input size, symbol
  vocabulary in embedding order, parameter count), ``data`` (per series: symbol, timeframe, rows,
  first/last bar open time, sha256 digest of the bars), ``timings`` (seconds per phase).

Writing builds the directory under a temporary name in the same parent, fsyncs every file and the
directory, then renames it into place, so a reader sees either no directory or a complete one.
An existing directory is never overwritten. Loading refuses a directory whose feature spec differs
from the one the caller's feature builder produces (:class:`FeatureSpecMismatch`, naming the
first difference).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ktrdr
from ktrdr.atomicfile import fsync_dir
from ktrdr.research.bars import Bars
from ktrdr.research.features import FeatureSpec, FeatureSpecMismatch
from ktrdr.research.model import MLP, build_model, parameter_count
from ktrdr.research.modeldir import FILES, FORMAT
from ktrdr.strategy.model import ModelSpec

#: Keys of the manifest's ``model`` object that loading reads.
_MODEL_KEYS = (
    "type",
    "hidden_layers",
    "activation",
    "dropout",
    "symbol_embedding_dim",
    "n_features",
    "symbols",
)


class ArtifactError(ValueError):
    """A model directory that cannot be written or read (exists already, missing file, bad format)."""


@dataclass(frozen=True)
class LoadedModel:
    """A model directory read back: the model (eval mode, on ``device``) and its records."""

    path: Path
    model: MLP
    symbols: tuple[str, ...]
    strategy: dict[str, Any]
    feature_spec: FeatureSpec
    metrics: dict[str, Any]
    manifest: dict[str, Any]


def utc_now_iso() -> str:
    """Current UTC time as ISO-8601 with ``Z`` and millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def data_record(bars: Bars) -> dict[str, Any]:
    """The manifest entry identifying one bar series exactly."""
    n = len(bars)
    return {
        "symbol": bars.symbol,
        "timeframe": bars.timeframe,
        "rows": n,
        "first": _iso_ns(int(bars.time[0])) if n else None,
        "last": _iso_ns(int(bars.time[-1])) if n else None,
        "sha256": bars.digest(),
    }


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "ktrdr": ktrdr.__version__,
    }


def save_model_dir(
    path: str | Path,
    model: MLP,
    *,
    model_spec: ModelSpec,
    symbols: Sequence[str],
    strategy: Mapping[str, Any],
    feature_spec: FeatureSpec,
    metrics: Mapping[str, Any],
    seed: int,
    device: str,
    data: Sequence[Bars],
    timings: Mapping[str, float],
) -> Path:
    """Write the model directory ``path`` atomically (module docstring); returns ``path``.
    Raises :class:`ArtifactError` when ``path`` exists or the model and feature spec disagree."""
    dest = Path(path)
    if dest.exists():
        raise ArtifactError(f"{dest} already exists; model directories are never overwritten")
    if model.n_features != len(feature_spec.columns):
        raise ArtifactError(
            f"model takes {model.n_features} features, feature spec has {len(feature_spec.columns)}"
        )
    manifest = {
        "format": FORMAT,
        "created_at": utc_now_iso(),
        "seed": seed,
        "device": device,
        "versions": _versions(),
        "model": {
            "type": model_spec.type,
            "hidden_layers": list(model_spec.hidden_layers),
            "activation": model_spec.activation,
            "dropout": model_spec.dropout,
            "symbol_embedding_dim": model_spec.symbol_embedding_dim,
            "n_features": model.n_features,
            "symbols": list(symbols),
            "parameters": parameter_count(model),
        },
        "data": [data_record(b) for b in data],
        "timings": dict(timings),
    }
    texts = {
        "strategy.json": _dumps(strategy),
        "feature_spec.json": feature_spec.to_json(),
        "metrics.json": _dumps(metrics),
        "manifest.json": _dumps(manifest),
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
    try:
        # clone: each tensor owns its values (the trainer's parameters are views of one buffer)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        with open(tmp / "weights.pt", "wb") as fh:
            torch.save(state, fh)
            _sync(fh)
        for name, text in texts.items():
            with open(tmp / name, "w", encoding="utf-8") as fh:
                fh.write(text)
                _sync(fh)
        fsync_dir(tmp)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(dest.parent)
    return dest


def load_model_dir(
    path: str | Path, *, expected: FeatureSpec | None = None, device: str = "cpu"
) -> LoadedModel:
    """Read a model directory. With ``expected`` (the spec the caller's feature builder produces
    now), a stored spec that differs raises :class:`FeatureSpecMismatch` naming the directory and
    the first difference. Other problems raise :class:`ArtifactError`."""
    d = Path(path)
    missing = [f for f in FILES if not (d / f).is_file()]
    if missing:
        raise ArtifactError(f"{d}: not a model directory (missing {', '.join(missing)})")
    try:
        manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
        strategy = json.loads((d / "strategy.json").read_text(encoding="utf-8"))
        metrics = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
        spec = FeatureSpec.from_json((d / "feature_spec.json").read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{d}: unreadable record: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise ArtifactError(f"{d}: manifest format {got!r}, expected {FORMAT!r}")
    if expected is not None:
        try:
            expected.verify(spec)
        except FeatureSpecMismatch as exc:
            raise FeatureSpecMismatch(f"{d}: the model was trained on other features: {exc}") from None
    m = manifest.get("model")
    if not isinstance(m, dict):
        raise ArtifactError(f"{d}: manifest.json has no 'model' object (got {m!r})")
    absent = [k for k in _MODEL_KEYS if k not in m]
    if absent:
        raise ArtifactError(f"{d}: manifest.json 'model' lacks key(s) {', '.join(absent)}")
    if m["n_features"] != len(spec.columns):
        raise ArtifactError(
            f"{d}: model takes {m['n_features']} features, its feature spec has {len(spec.columns)}"
        )
    model_spec = ModelSpec(
        type=m["type"],
        hidden_layers=tuple(m["hidden_layers"]),
        activation=m["activation"],
        dropout=m["dropout"],
        symbol_embedding_dim=m["symbol_embedding_dim"],
    )
    model = build_model(model_spec, m["n_features"], n_symbols=max(len(m["symbols"]), 1))
    try:
        model.load_state_dict(torch.load(d / "weights.pt", map_location="cpu", weights_only=True))
    except Exception as exc:  # any unpickling/shape error: report it against the file
        raise ArtifactError(f"{d / 'weights.pt'}: cannot load weights: {exc}") from None
    model.to(device).eval()
    return LoadedModel(d, model, tuple(m["symbols"]), strategy, spec, metrics, manifest)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"


def _sync(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())
