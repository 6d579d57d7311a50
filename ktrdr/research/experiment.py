"""One training experiment in memory: bars → dataset → trained model → evaluation of every split.

:func:`fit_and_evaluate` is what the training entry point (:mod:`ktrdr.research.train`) and the
null control (:mod:`ktrdr.research.nulls`) both run, so a null training is exactly the real one on
other prices. It saves nothing; timings are wall seconds per stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ktrdr.research.bars import Bars
from ktrdr.research.datasets import Dataset, build_dataset
from ktrdr.research.datasets import Split as DataSplit
from ktrdr.research.evaluation import evaluate
from ktrdr.research.model import MLP, build_model
from ktrdr.research.trainer import CancelToken, Progress, Split, TrainOptions, TrainResult, train
from ktrdr.strategy import Strategy


@dataclass
class Fitted:
    """A trained model with its dataset, training result and per-split reports."""

    dataset: Dataset
    model: MLP
    result: TrainResult
    reports: dict[str, dict[str, Any]]
    timings: dict[str, float]


def _tensors(part: DataSplit, with_symbols: bool) -> Split:
    return Split(
        torch.from_numpy(part.X.astype("float32", copy=False)),
        torch.from_numpy(part.y.astype("int64", copy=False)),
        torch.from_numpy(part.symbol_index.astype("int64", copy=False)) if with_symbols else None,
    )


def fit_and_evaluate(
    strategy: Strategy,
    data: Mapping[str, Mapping[str, Bars]],
    *,
    start: int | None = None,
    options: TrainOptions | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    resume: Path | None = None,
) -> Fitted:
    """Build the dataset (samples from ``start``, ns), train (continuing from the checkpoint
    ``resume`` when given; ``cancel`` as :func:`~ktrdr.research.trainer.train` takes it), evaluate
    every split with its skill section. Errors of the dataset (:class:`~ktrdr.research.datasets.DatasetError`) and of training
    propagate."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    ds = build_dataset(strategy, data, start=start)
    timings["dataset_s"] = time.perf_counter() - t

    optim = strategy.optim
    embed = strategy.model.symbol_embedding_dim > 0
    parts = {name: _tensors(p, embed) for name, p in ds.parts().items()}
    model = build_model(strategy.model, parts["train"].x.shape[1], n_symbols=len(ds.symbols), seed=optim.seed)
    weights = torch.from_numpy(ds.class_weights).float() if ds.class_weights is not None else None
    t = time.perf_counter()
    result = train(
        model,
        parts["train"],
        parts["validation"] if len(parts["validation"]) else None,
        optim,
        class_weights=weights,
        options=options or TrainOptions(),
        progress=progress,
        cancel=cancel,
        resume=resume,
    )
    timings["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    model.cpu()
    reports = {
        name: evaluate(
            model,
            parts[name].x,
            parts[name].y,
            torch.from_numpy(p.symbol_index),
            symbols=ds.symbols,
            rows=ds.skill_inputs(name),
        )
        for name, p in ds.parts().items()
    }
    timings["evaluate_s"] = time.perf_counter() - t
    return Fitted(ds, model, result, reports, timings)
