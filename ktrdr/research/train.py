"""Developer entry point: train a strategy from local bar files, without the daemon.

``python -m ktrdr.research.train STRATEGY --data DIR --start 2023-01-01 --end 2024-01-01
[--json] [--out DIR] [--seed N] [--epochs N] [--threads N] [--device cpu|cuda]``

``DIR`` holds ``{SYMBOL}_{TF}.csv`` (predecessor layout) or ``.parquet`` files. The run covers base
bars opening in ``[start, end)`` (UTC); warm-up bars before ``start`` are read when the files have
them. Pipeline: strategy → bars → features + labels → chronological splits → :func:`train` →
evaluation of every split → model directory ``OUT/<strategy>_<UTC time>`` (default ``OUT`` =
``./models``). Prints a text summary, or with ``--json`` one JSON object (``summary()``'s keys).
Exit codes: 0 trained, 1 training failed, 2 bad input (strategy, data, arguments).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from ktrdr.research import bars as barsmod
from ktrdr.research.allocator import keep_freed_memory
from ktrdr.research.artifacts import save_model_dir
from ktrdr.research.datasets import Dataset, build_dataset
from ktrdr.research.evaluation import evaluate
from ktrdr.research.model import build_model, parameter_count
from ktrdr.research.synthetic import to_ns
from ktrdr.research.trainer import Progress, Split, TrainOptions, train
from ktrdr.strategy import Strategy, data_requirements, load_strategy_file


def load_bars(
    strategy: Strategy, data_dir: Path, start_ns: int, end_ns: int
) -> dict[str, dict[str, barsmod.Bars]]:
    """symbol → timeframe → bars read from ``data_dir``, cut to the strategy's requirements."""
    out: dict[str, dict[str, barsmod.Bars]] = {}
    for req in data_requirements(strategy, start_ns, end_ns):
        path = barsmod.find_file(data_dir, req.symbol, req.timeframe)
        bars = barsmod.read_file(path, req.symbol, req.timeframe).between(req.start, req.end)
        if len(bars) == 0:
            raise barsmod.BarsError(
                f"{path}: no bars between {req.to_dict()['start']} and {req.to_dict()['end']}"
            )
        out.setdefault(req.symbol, {})[req.timeframe] = bars
    return out


def _tensors(part, with_symbols: bool) -> Split:
    return Split(
        torch.from_numpy(part.X.astype("float32", copy=False)),
        torch.from_numpy(part.y.astype("int64", copy=False)),
        torch.from_numpy(part.symbol_index.astype("int64", copy=False)) if with_symbols else None,
    )


def run(
    strategy_path: str | Path,
    data_dir: str | Path,
    start: str,
    end: str,
    *,
    out_dir: str | Path = "models",
    seed: int | None = None,
    epochs: int | None = None,
    options: TrainOptions | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Train and save; returns the summary (see :func:`summary`). Errors propagate."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    loaded = load_strategy_file(strategy_path)
    strategy = loaded.strategy
    optim = strategy.optim
    if seed is not None:
        optim = dataclasses.replace(optim, seed=seed)
    if epochs is not None:
        optim = dataclasses.replace(optim, epochs=epochs)
    strategy = dataclasses.replace(strategy, optim=optim)
    data = load_bars(strategy, Path(data_dir), to_ns(start), to_ns(end))
    timings["load_s"] = time.perf_counter() - t

    t = time.perf_counter()
    ds: Dataset = build_dataset(strategy, data)
    timings["dataset_s"] = time.perf_counter() - t

    symbols = ds.symbols
    embed = strategy.model.symbol_embedding_dim > 0
    parts = {name: _tensors(p, embed) for name, p in ds.parts().items()}
    model = build_model(strategy.model, parts["train"].x.shape[1], n_symbols=len(symbols), seed=optim.seed)
    weights = torch.from_numpy(ds.class_weights).float() if ds.class_weights is not None else None
    t = time.perf_counter()
    val = parts["validation"] if len(parts["validation"]) else None
    result = train(
        model,
        parts["train"],
        val,
        optim,
        class_weights=weights,
        options=options or TrainOptions(),
        progress=progress,
    )
    timings["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    model.cpu()
    reports = {
        name: evaluate(model, parts[name].x, parts[name].y, torch.from_numpy(p.symbol_index), symbols=symbols)
        for name, p in ds.parts().items()
    }
    timings["evaluate_s"] = time.perf_counter() - t

    metrics = {
        "training": {
            "history": result.history,
            "epochs_trained": result.epochs_trained,
            "best_epoch": result.best_epoch,
            "best_metric": result.best_metric,
            "stopped_early": result.stopped_early,
            "restored_best": result.restored_best,
            "samples_per_s": result.samples_per_s,
        },
        "evaluation": reports,
        "embargo": ds.embargo,
        "label_horizon": ds.label_horizon,
    }
    t = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = save_model_dir(
        Path(out_dir) / f"{strategy.name}_{stamp}",
        model,
        model_spec=strategy.model,
        symbols=symbols,
        strategy=strategy.to_dict(),
        feature_spec=ds.feature_spec,
        metrics=metrics,
        seed=optim.seed,
        device=result.device,
        data=[b for per_tf in data.values() for b in per_tf.values()],
        timings=timings,
    )
    timings["save_s"] = time.perf_counter() - t
    return summary(path, strategy, model, result, reports, timings, [str(w) for w in loaded.warnings])


def summary(path, strategy, model, result, reports, timings, warnings) -> dict[str, Any]:
    """``model_dir, strategy, parameters, features, device, epochs_trained, best_epoch,
    samples_per_s, splits{name: {samples, accuracy, baseline_accuracy, loss, macro_f1,
    per_class, distribution}}, timings, warnings``."""
    return {
        "model_dir": str(path),
        "strategy": strategy.name,
        "parameters": parameter_count(model),
        "features": model.n_features,
        "device": result.device,
        "epochs_trained": result.epochs_trained,
        "best_epoch": result.best_epoch,
        "samples_per_s": round(result.samples_per_s, 1),
        "splits": {
            name: {
                k: r[k]
                for k in (
                    "samples",
                    "accuracy",
                    "baseline_accuracy",
                    "loss",
                    "macro_f1",
                    "per_class",
                    "distribution",
                )
            }
            for name, r in reports.items()
        },
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "warnings": warnings,
    }


def _print_text(s: dict[str, Any]) -> None:
    print(f"model: {s['model_dir']}  ({s['parameters']} parameters, {s['features']} features, {s['device']})")
    print(f"epochs: {s['epochs_trained']}  best epoch: {s['best_epoch']}  {s['samples_per_s']:.0f} samples/s")
    for name, r in s["splits"].items():
        loss = "-" if r["loss"] is None else f"{r['loss']:.4f}"
        print(
            f"{name:>10}: n={r['samples']:<7} accuracy {r['accuracy']:.4f}  majority baseline "
            f"{r['baseline_accuracy']:.4f}  loss {loss}  macro-F1 {r['macro_f1']:.4f}"
        )
        for cls, c in r["per_class"].items():
            print(
                f"{'':>12}{cls:<5} {r['distribution'][cls + '_pct']:6.1%} of labels  "
                f"P {c['precision']:.3f}  R {c['recall']:.3f}  F1 {c['f1']:.3f}  n={c['support']}"
            )
    print("timings: " + ", ".join(f"{k} {v:.2f}" for k, v in s["timings"].items()))
    for w in s["warnings"]:
        print(f"warning: {w}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ktrdr.research.train", description=__doc__.split("\n\n")[0])
    p.add_argument("strategy", help="strategy YAML file")
    p.add_argument("--data", required=True, help="directory of {SYMBOL}_{TF}.csv or .parquet files")
    p.add_argument("--start", required=True, help="first base bar open time (ISO-8601, UTC)")
    p.add_argument("--end", required=True, help="end (exclusive) of base bar open times (ISO-8601, UTC)")
    p.add_argument("--out", default="models", help="directory to create the model directory in")
    p.add_argument("--seed", type=int, help="override model.training seed")
    p.add_argument("--epochs", type=int, help="override model.training.epochs")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = p.parse_args(argv)
    keep_freed_memory()

    def show(pr: Progress) -> None:
        if pr.batch == pr.batches:
            val = "" if pr.val_loss is None else f" val_loss {pr.val_loss:.4f} val_acc {pr.val_accuracy:.4f}"
            print(
                f"epoch {pr.epoch}/{pr.epochs} loss {pr.loss:.4f} acc {pr.accuracy:.4f}{val}", file=sys.stderr
            )

    try:
        s = run(
            args.strategy,
            args.data,
            args.start,
            args.end,
            out_dir=args.out,
            seed=args.seed,
            epochs=args.epochs,
            options=TrainOptions(device=args.device, threads=args.threads, progress_interval_s=3600.0),
            progress=None if args.json else show,
        )
    except (ValueError, FileNotFoundError) as exc:  # strategy, bars, features, datasets errors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"training failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        _print_text(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
