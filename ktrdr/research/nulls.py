"""The null control: the same strategy trained on prices that hold no edge, to place the real result.

:func:`null_control` trains the strategy (same seed, settings, date range and calendar) on ``n``
**random walks** and ``n`` **block-shuffled** versions of each symbol's base bars and reports where
the real test result falls among those null results.

Null bars (:func:`null_bars`), per symbol, keep the real bars' times, first close, intrabar
ranges and volumes; only the path of closes changes. Each bar opens at the previous close.

* ``random_walk``: log-returns drawn i.i.d. N(0, σ²), σ the standard deviation of the real
  base log-returns (the data's own volatility, no drift).
* ``block_shuffle``: the real bars (log-return, range, volume together) in blocks of ``block``
  bars, blocks in random order: the volatility clustering and return distribution stay, any
  predictability beyond a block is destroyed.

Slower timeframes are resampled from the null base bars. Seeds: null run ``i`` (0-based) of a kind
draws with seed ``1000·i + symbol position``, so a null control is reproducible.

Placement: for the test split's ``mean_return`` (skill) and ``accuracy_edge`` (accuracy minus the
majority baseline), ``quantile`` = (nulls below + ½ · nulls equal) / nulls, the real figure's
empirical quantile in the null distribution (0.5 = typical of noise; near 1 = better than noise).

Processes: trainings run in a pool of ``spawn`` processes (no state inherited from the parent),
``jobs`` at a time; each sets its own torch thread count (``threads_each``), so
``jobs × threads_each`` should not exceed the cores given (:func:`worker_plan`).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ktrdr.research.bars import Bars, resample
from ktrdr.research.trainer import TrainOptions
from ktrdr.strategy import Strategy

KINDS = ("random_walk", "block_shuffle")


def null_bars(bars: Bars, kind: str, seed: int, block: int) -> Bars:
    """Null base bars of one symbol (module docstring)."""
    rng = np.random.default_rng(seed)
    log_ret = np.diff(np.log(bars.close))
    top = np.maximum(bars.open, bars.close)
    bottom = np.minimum(bars.open, bars.close)
    up = np.log(bars.high / top)[1:]
    down = np.log(bottom / bars.low)[1:]
    volume = bars.volume[1:].copy()
    if kind == "random_walk":
        log_ret = rng.normal(0.0, float(log_ret.std()) if log_ret.size else 0.0, log_ret.size)
    elif kind == "block_shuffle":
        starts = np.arange(0, log_ret.size, max(block, 1))
        order = np.concatenate([np.arange(s, min(s + block, log_ret.size)) for s in rng.permutation(starts)])
        log_ret, up, down, volume = log_ret[order], up[order], down[order], volume[order]
    else:
        raise ValueError(f"unknown null kind {kind!r}; known: {', '.join(KINDS)}")
    close = bars.close[0] * np.exp(np.concatenate(([0.0], np.cumsum(log_ret))))
    open_ = np.concatenate(([bars.open[0]], close[:-1]))
    high = np.concatenate(([bars.high[0]], np.maximum(open_, close)[1:] * np.exp(up)))
    low = np.concatenate(([bars.low[0]], np.minimum(open_, close)[1:] * np.exp(-down)))
    high[0], low[0] = max(high[0], open_[0], close[0]), min(low[0], open_[0], close[0])
    volume = np.concatenate(([bars.volume[0]], volume))
    return Bars.from_arrays(
        bars.symbol, bars.timeframe, bars.time, open_, high, low, close, volume, source=f"null {kind}"
    )


def null_data(
    strategy: Strategy, data: Mapping[str, Mapping[str, Bars]], kind: str, seed: int, block: int
) -> dict[str, dict[str, Bars]]:
    """symbol → timeframe → null bars for every symbol of the strategy."""
    base = strategy.data.base_timeframe
    out = {}
    for i, sym in enumerate(strategy.data.symbols):
        b = null_bars(data[sym][base], kind, seed * 1000 + i, block)
        out[sym] = {tf: b if tf == base else resample(b, tf) for tf in strategy.data.timeframes}
    return out


@dataclass(frozen=True)
class NullJob:
    """One null training: everything a spawned process needs (pickled)."""

    strategy: Strategy
    data: dict[str, dict[str, Bars]]
    start: int | None
    kind: str
    seed: int
    block: int
    options: TrainOptions


def headline(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The figures a null control places, from the test split (validation when test is empty)."""
    r = reports["test"] if reports["test"]["samples"] else reports["validation"]
    return {
        "mean_return": r["skill"]["mean_return"],
        "accuracy_edge": r["accuracy"] - r["baseline_accuracy"],
        "accuracy": r["accuracy"],
        "significant": r["skill"]["significant"],
    }


def run_null_job(job: NullJob) -> dict[str, Any]:
    """Train on one null data set; ``{kind, seed, seconds, mean_return, accuracy_edge, accuracy,
    significant}`` or ``{kind, seed, seconds, error}`` when the null data make no usable dataset.
    ``seconds``: wall time of this job in its process (null data, dataset, training, evaluation)."""
    from ktrdr.research.allocator import keep_freed_memory
    from ktrdr.research.experiment import fit_and_evaluate

    t0 = time.perf_counter()
    keep_freed_memory()
    data = null_data(job.strategy, job.data, job.kind, job.seed, job.block)
    head = {"kind": job.kind, "seed": job.seed}
    try:
        fitted = fit_and_evaluate(job.strategy, data, start=job.start, options=job.options)
    except ValueError as exc:  # a degenerate null target: counted, not fatal
        return {**head, "seconds": round(time.perf_counter() - t0, 3), "error": str(exc)}
    return {**head, "seconds": round(time.perf_counter() - t0, 3), **headline(fitted.reports)}


def worker_plan(runs: int, jobs: int, threads: int) -> tuple[int, int]:
    """(processes, torch threads each): at most ``jobs`` processes (and no more than runs), the
    ``threads`` given shared among them, at least one each."""
    processes = max(1, min(jobs, runs))
    return processes, max(1, threads // processes)


def _quantile(real: float | None, nulls: list[float]) -> float | None:
    if real is None or not nulls:
        return None
    values = np.asarray(nulls)
    return float(((values < real).sum() + 0.5 * (values == real).sum()) / values.size)


def place(real: Mapping[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the real figures fall among the null results, per kind and over all of them."""
    out: dict[str, Any] = {}
    for group in (*KINDS, "all"):
        mine = [r for r in results if "error" not in r and (group == "all" or r["kind"] == group)]
        entry: dict[str, Any] = {
            "runs": len(mine),
            "failed": sum(1 for r in results if "error" in r and (group == "all" or r["kind"] == group)),
        }
        for metric in ("mean_return", "accuracy_edge"):
            values = [float(r[metric]) for r in mine if r[metric] is not None]
            entry[metric] = {
                "real": real[metric],
                "null_median": float(np.median(values)) if values else None,
                "null_max": max(values) if values else None,
                "quantile": _quantile(real[metric], values),
            }
        entry["null_significant"] = sum(1 for r in mine if r["significant"])
        out[group] = entry
    return out


def null_control(
    strategy: Strategy,
    data: Mapping[str, Mapping[str, Bars]],
    *,
    start: int | None,
    n: int,
    block: int,
    real: Mapping[str, Any],
    options: TrainOptions,
    jobs: int,
) -> dict[str, Any]:
    """Train ``n`` nulls of each kind in parallel (module docstring) and place ``real``
    (:func:`headline` of the real run). ``options.threads``: the cores given to all trainings.
    Returns ``n, processes, threads_each, wall_s, overlap`` (the jobs' summed seconds over the
    wall time: how many ran at once on average, process start-up included), ``block_bars``,
    ``placement`` (:func:`place`) and ``runs``."""
    runs = [(kind, i) for kind in KINDS for i in range(n)]
    processes, threads_each = worker_plan(len(runs), jobs, options.threads)
    each = replace(options, threads=threads_each, progress_interval_s=3600.0)
    plain = {s: dict(per_tf) for s, per_tf in data.items()}
    work = [NullJob(strategy, plain, start, kind, seed, block, each) for kind, seed in runs]
    ctx = multiprocessing.get_context("spawn")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
        results = list(pool.map(run_null_job, work))
    wall = time.perf_counter() - t0
    return {
        "n": n,
        "processes": processes,
        "threads_each": threads_each,
        "wall_s": round(wall, 3),
        "overlap": round(sum(r["seconds"] for r in results) / wall, 2),
        "block_bars": block,
        "placement": place(real, results),
        "runs": results,
    }
