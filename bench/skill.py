"""Cost of the skill section: evaluation of every split with and without it, same run.

``python -m bench skill [--years Y] [--repeat R] [--seed S]``. Data: ``neuro_mean_reversion`` (3
symbols × 1h/4h/1d) on seeded random walks, as ``bench features`` builds them; the dataset is built
once, the model is the strategy's MLP with its seeded initial weights (evaluation cost does not
depend on training). Timed, alternating, best of R: ``evaluate`` on train, validation and test
without the per-row inputs (accuracy, baselines, per-class, per-symbol: the evaluation before the
skill section existed) and with them (adds the persistence baseline and the skill section with its
exact block bootstrap). The prediction-independent part of the skill section
(:class:`~ktrdr.research.skill.SkillPlan`: known forward returns, one-bar returns, calendar cells,
segments) is built once per split, in the warm-up run, as every evaluation of a dataset's split
shares it; its one-off cost is printed beside. Target: the skill section adds ≤ 10 % to
evaluation time.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.features import make_data, neuro_mean_reversion
from ktrdr.research.allocator import keep_freed_memory
from ktrdr.research.datasets import build_dataset
from ktrdr.research.evaluation import evaluate
from ktrdr.research.model import build_model

TARGET = 1.10


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench skill", description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    keep_freed_memory()  # as the product's compute processes do (ktrdr.research.allocator)
    torch.set_num_threads(1)
    strategy = neuro_mean_reversion()
    ds = build_dataset(strategy, make_data(strategy, int(args.years * 365 * 24), args.seed))
    model = build_model(strategy.model, ds.train.X.shape[1], n_symbols=len(ds.symbols), seed=0)
    parts = {
        name: (torch.from_numpy(p.X), torch.from_numpy(p.y), torch.from_numpy(p.symbol_index))
        for name, p in ds.parts().items()
    }

    def run(with_skill: bool) -> float:
        t0 = time.perf_counter()
        for name, (x, y, si) in parts.items():
            evaluate(model, x, y, si, symbols=ds.symbols, rows=ds.skill_inputs(name) if with_skill else None)
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    plans = [ds.skill_inputs(name).plan for name in parts]  # computed here, cached on the inputs
    t_plan = time.perf_counter() - t0
    run(True)  # warm-up: imports, allocator, and each split's cached plan
    plain, skill = [], []
    for _ in range(args.repeat):
        plain.append(run(False))
        skill.append(run(True))
    t_plain, t_skill = min(plain), min(skill)
    ratio = t_skill / t_plain
    rows = sum(len(p) for p in ds.parts().values())
    print(
        f"evaluation of 3 splits, {rows} rows, neuro_mean_reversion, skill horizon {ds.skill_horizon} bars:"
    )
    print(f"  without skill      {t_plain * 1e3:8.1f} ms")
    print(
        f"  with skill         {t_skill * 1e3:8.1f} ms   ({ratio:.3f}x; target <= {TARGET:.2f}x: "
        f"{'OK' if ratio <= TARGET else 'OVER'})"
    )
    print(
        f"  once per split     {t_plan * 1e3:8.1f} ms   (prediction-independent part of {len(plans)} splits)"
    )
    return 0 if ratio <= TARGET else 1
