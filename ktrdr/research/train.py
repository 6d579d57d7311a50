"""Developer entry point: train a strategy from local bar files, without the daemon.

``python -m ktrdr.research.train STRATEGY --data DIR --start 2023-01-01 --end 2024-01-01
[--json] [--out DIR] [--seed N] [--epochs N] [--threads N] [--device cpu|cuda]
[--null-control N [--jobs J]]``

``DIR`` holds ``{SYMBOL}_{TF}.csv`` (predecessor layout) or ``.parquet`` files. Samples are the base
bars opening in ``[start, end)`` (UTC); bars before ``start`` only warm indicators up (the report
states how many were used and warns when the data do not cover the range). Pipeline: strategy →
bars → features + labels → splits aligned in calendar time → training → evaluation of every split
with its skill section (:mod:`ktrdr.research.skill`, ``docs/evaluation.md``) → model directory
``OUT/<strategy>_<UTC time>`` (default ``OUT`` = ``./models``). Prints a text summary ending in the
skill verdict, or with ``--json`` one JSON object (``summary()``'s keys).

``--null-control N`` then trains the same strategy on N random walks and N block-shuffled series
(:mod:`ktrdr.research.nulls`) and reports where the real result falls among them. The 2N trainings
run in ``--jobs`` spawned processes at a time (default: ``--threads``), which share the
``--threads`` cores: each process uses ``max(1, threads // processes)`` torch threads.

Exit codes: 0 trained, 1 training failed, 2 bad input (strategy, data, arguments, a degenerate
training target).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ktrdr.research import bars as barsmod
from ktrdr.research.allocator import keep_freed_memory
from ktrdr.research.artifacts import save_model_dir
from ktrdr.research.bars import iso_minute
from ktrdr.research.coverage import coverage
from ktrdr.research.datasets import Dataset
from ktrdr.research.experiment import fit_and_evaluate
from ktrdr.research.model import parameter_count
from ktrdr.research.nulls import headline, null_control
from ktrdr.research.skill import verdict
from ktrdr.research.synthetic import to_ns
from ktrdr.research.trainer import CancelToken, Progress, TrainOptions
from ktrdr.strategy import LoadedStrategy, Strategy, data_requirements, load_strategy_file


def select_bars(
    strategy: Strategy, start_ns: int, end_ns: int, read: Callable[[str, str], tuple[barsmod.Bars, str]]
) -> dict[str, dict[str, barsmod.Bars]]:
    """symbol → timeframe → the bars the run needs (warm-up included). ``read(symbol, timeframe)``
    returns a series and the name of where it came from (for the error when it has no bars in the
    window)."""
    out: dict[str, dict[str, barsmod.Bars]] = {}
    for req in data_requirements(strategy, start_ns, end_ns):
        series, source = read(req.symbol, req.timeframe)
        bars = series.between(req.start, req.end)
        if len(bars) == 0:
            raise barsmod.BarsError(
                f"{source}: no bars between {req.to_dict()['start']} and {req.to_dict()['end']}"
            )
        out.setdefault(req.symbol, {})[req.timeframe] = bars
    return out


def load_bars(
    strategy: Strategy, data_dir: Path, start_ns: int, end_ns: int
) -> dict[str, dict[str, barsmod.Bars]]:
    """symbol → timeframe → bars read from ``data_dir``, cut to the strategy's requirements."""

    def read(symbol: str, timeframe: str) -> tuple[barsmod.Bars, str]:
        path = barsmod.find_file(data_dir, symbol, timeframe)
        return barsmod.read_file(path, symbol, timeframe), str(path)

    return select_bars(strategy, start_ns, end_ns, read)


def with_overrides(strategy: Strategy, *, seed: int | None, epochs: int | None) -> Strategy:
    """The strategy with its training seed and/or epoch count replaced (None keeps the strategy's)."""
    optim = strategy.optim
    if seed is not None:
        optim = dataclasses.replace(optim, seed=seed)
    if epochs is not None:
        optim = dataclasses.replace(optim, epochs=epochs)
    return dataclasses.replace(strategy, optim=optim)


@dataclass
class Trained:
    """One finished training: its summary (:func:`summary`) and what the null control reuses."""

    summary: dict[str, Any]
    reports: dict[str, dict[str, Any]]


def train_on_bars(
    loaded: LoadedStrategy,
    data: Mapping[str, Mapping[str, barsmod.Bars]],
    start_ns: int,
    end_ns: int,
    model_path: Path,
    *,
    seed: int | None = None,
    epochs: int | None = None,
    options: TrainOptions | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    resume: Path | None = None,
    load_s: float = 0.0,
) -> Trained:
    """The one training both the library entry point and the training host run: ``data`` as
    :func:`select_bars` gives it, features + labels → splits → training (continued from ``resume``,
    a checkpoint, when given) → evaluation → the model directory at exactly ``model_path``.
    Raises :class:`~ktrdr.research.trainer.Cancelled` when ``cancel`` is set (after writing the
    checkpoint ``options.checkpoint_path``), ``ValueError`` for bad data, ``TrainingError``."""
    strategy = with_overrides(loaded.strategy, seed=seed, epochs=epochs)
    warmup, coverage_warnings = coverage(strategy, data, start_ns, end_ns)
    options = options or TrainOptions()
    fitted = fit_and_evaluate(
        strategy, data, start=start_ns, options=options, progress=progress, cancel=cancel, resume=resume
    )
    ds, model, result, reports = fitted.dataset, fitted.model, fitted.result, fitted.reports
    timings = {"load_s": load_s, **fitted.timings}
    layout = split_layout(ds, warmup)
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
        **layout,
    }
    t = time.perf_counter()
    path = save_model_dir(
        model_path,
        model,
        model_spec=strategy.model,
        symbols=ds.symbols,
        strategy=strategy.to_dict(),
        feature_spec=ds.feature_spec,
        metrics=metrics,
        seed=strategy.optim.seed,
        device=result.device,
        data=[b for per_tf in data.values() for b in per_tf.values()],
        timings=timings,
    )
    timings["save_s"] = time.perf_counter() - t
    warnings = [str(w) for w in loaded.warnings] + coverage_warnings + list(ds.warnings)
    return Trained(summary(path, strategy, model, result, reports, timings, warnings, layout), reports)


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
    null_runs: int = 0,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train and save into ``out_dir/<strategy>_<UTC time>``; returns the summary (see
    :func:`summary`). With ``null_runs`` > 0, also the null control
    (:func:`ktrdr.research.nulls.null_control`, ``jobs`` processes) under
    ``summary["null_control"]``. Errors propagate."""
    t = time.perf_counter()
    loaded = load_strategy_file(strategy_path)
    strategy = with_overrides(loaded.strategy, seed=seed, epochs=epochs)
    start_ns, end_ns = to_ns(start), to_ns(end)
    data = load_bars(strategy, Path(data_dir), start_ns, end_ns)
    load_s = time.perf_counter() - t
    options = options or TrainOptions()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    trained = train_on_bars(
        loaded,
        data,
        start_ns,
        end_ns,
        Path(out_dir) / f"{strategy.name}_{stamp}",
        seed=seed,
        epochs=epochs,
        options=options,
        progress=progress,
        load_s=load_s,
    )
    s = trained.summary
    if null_runs > 0:
        t = time.perf_counter()
        s["null_control"] = null_control(
            strategy,
            data,
            start=start_ns,
            n=null_runs,
            block=verdict_report(trained.reports)["skill"]["block_bars"],
            real=headline(trained.reports),
            options=options,
            jobs=jobs,
        )
        s["timings"]["null_control_s"] = round(time.perf_counter() - t, 4)
    return s


def split_layout(ds: Dataset, warmup: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How the samples were laid out: warm-up per symbol, calendar ranges of the parts, embargo,
    label and skill horizons (JSON-able; times ISO-8601 UTC)."""
    return {
        "warmup": warmup,
        "ranges": {
            name: None if r is None else {"first": iso_minute(r[0]), "last": iso_minute(r[1])}
            for name, r in ds.ranges.items()
        },
        "embargo": ds.embargo,
        "label_source": ds.label_source,
        "label_horizon": ds.label_horizon,
        "skill_horizon": ds.skill_horizon,
    }


def verdict_report(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The split a verdict is read from: test, or validation when test is empty."""
    return reports["test"] if reports["test"]["samples"] else reports["validation"]


SPLIT_KEYS = (
    "samples",
    "accuracy",
    "baseline_accuracy",
    "baseline_class",
    "persistence_accuracy",
    "loss",
    "macro_f1",
    "per_class",
    "distribution",
    "skill",
)


def summary(path, strategy, model, result, reports, timings, warnings, layout) -> dict[str, Any]:
    """``model_dir, strategy, parameters, features, device, epochs_trained, best_epoch,
    samples_per_s, splits{name: {samples, accuracy, baseline_accuracy, baseline_class,
    persistence_accuracy, loss, macro_f1 (None when a class is absent), per_class, distribution,
    skill}}, verdict_split (test, or validation when test is empty), verdict (that split's skill
    verdict line), warmup, ranges, embargo, label_source,
    label_horizon, skill_horizon, timings, warnings``."""
    return {
        "model_dir": str(path),
        "strategy": strategy.name,
        "parameters": parameter_count(model),
        "features": model.n_features,
        "device": result.device,
        "epochs_trained": result.epochs_trained,
        "best_epoch": result.best_epoch,
        "samples_per_s": round(result.samples_per_s, 1),
        "splits": {name: {k: r[k] for k in SPLIT_KEYS} for name, r in reports.items()},
        "verdict_split": "test" if reports["test"]["samples"] else "validation",
        "verdict": verdict(verdict_report(reports)["skill"]),
        **layout,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "warnings": warnings,
    }


def _num(x: float | None, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def _print_text(s: dict[str, Any]) -> None:
    print(f"model: {s['model_dir']}  ({s['parameters']} parameters, {s['features']} features, {s['device']})")
    best = (
        s["best_epoch"]
        if s["best_epoch"] is not None
        else "n/a (no early stopping: the last epoch's weights)"
    )
    print(f"epochs: {s['epochs_trained']}  best epoch: {best}  {s['samples_per_s']:.0f} samples/s")
    print(
        "warm-up bars before the start: "
        + ", ".join(f"{k} {w['warmup_bars']} (wanted {w['warmup_required']})" for k, w in s["warmup"].items())
    )
    horizons = ", ".join(f"{k} {h}" for k, h in s["label_horizon"].items())
    measured = " (measured on the data; label_lookahead is not used)" if s["label_source"] == "zigzag" else ""
    print(f"labels: {s['label_source']}, horizon in bars: {horizons}{measured}")
    print(f"parts aligned in calendar time, embargo {s['embargo']} bars at each cut:")
    for name, r in s["ranges"].items():
        print(f"{name:>12}: " + ("empty" if r is None else f"{r['first']} .. {r['last']}"))
    for name, r in s["splits"].items():
        loss = "-" if r["loss"] is None else f"{r['loss']:.4f}"
        print(
            f"{name:>10}: n={r['samples']:<7} accuracy {r['accuracy']:.4f}  majority baseline "
            f"{r['baseline_accuracy']:.4f}  persistence baseline {r['persistence_accuracy']:.4f}  "
            f"loss {loss}  macro-F1 {_num(r['macro_f1'], '.4f')}"
        )
        in_sample = " (in-sample: the model fitted these labels)" if name == "train" else ""
        print(f"{'':>12}skill{in_sample}: {verdict(r['skill'])}")
        for cls, c in r["per_class"].items():
            print(
                f"{'':>12}{cls:<5} {r['distribution'][cls + '_pct']:6.1%} of labels  "
                f"P {_num(c['precision'])}  R {_num(c['recall'])}  F1 {_num(c['f1'])}  n={c['support']}"
            )
    print(f"verdict ({s['verdict_split']} split): {s['verdict']}")
    if "null_control" in s:
        nc = s["null_control"]
        print(
            f"null control: {nc['n']} random walks + {nc['n']} block-shuffled series "
            f"({nc['processes']} processes x {nc['threads_each']} threads, {nc['wall_s']:.1f} s, "
            f"{nc['overlap']:.2f} trainings at once on average)"
        )
        for group, e in nc["placement"].items():
            mr, edge = e["mean_return"], e["accuracy_edge"]
            print(
                f"{group:>14}: {e['runs']} runs ({e['failed']} failed, {e['null_significant']} significant); "
                f"real mean return at quantile {_num(mr['quantile'], '.2f')} (null median "
                f"{_num(mr['null_median'], '+.4%')}), real accuracy edge {_num(edge['real'], '+.4f')} "
                f"at quantile {_num(edge['quantile'], '.2f')}"
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
    p.add_argument(
        "--null-control",
        type=int,
        default=0,
        metavar="N",
        help="also train on N random walks and N block-shuffled series and place the real result",
    )
    p.add_argument(
        "--jobs",
        type=int,
        help="parallel null-control training processes (default: --threads); the --threads cores "
        "are shared among them",
    )
    args = p.parse_args(argv)
    if args.null_control < 0 or (args.jobs is not None and args.jobs < 1) or args.threads < 1:
        p.error("--null-control must be >= 0, --jobs and --threads >= 1")
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
            null_runs=args.null_control,
            jobs=args.jobs or args.threads,
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
