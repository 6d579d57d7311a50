"""Hand-written training parts vs torch's own, at steady state in a warm process (issue 7 point 8).

With warm workers (``hostd training``) no job pays torch's import or the first ``torch.optim``
optimizer's lazy ``torch._dynamo`` import, so the only question left is the cost per step once
everything is imported and warmed up. This process is such a worker: it imports everything, runs
warm-up steps, then times (median of ``--repeat`` runs of ``--steps`` steps each):

* **gradients**: :class:`~ktrdr.research.gradients.MLPGradients` (forward and backward by hand)
  vs autograd (forward, cross-entropy, ``zero_grad``, ``backward``) on the same model and batch;
* **optimizer**: the flat-buffer Adam of :mod:`ktrdr.research.optim` vs ``torch.optim.Adam`` over
  the model's parameters (torch's default implementation for the device) and vs
  ``torch.optim.Adam`` over the one flat buffer;
* **step**: the trainer's path (both hand-written) vs the plain torch path (autograd +
  ``torch.optim.Adam`` over the parameters).

Each line prints µs per step and the ratio torch ÷ hand-written; point 8 keeps a hand-written part
only where that ratio is ≥ 1.3. Model: the neuro_mean_reversion MLP (F → 50 → 25 → 3, ReLU, dropout
0.2), Adam(lr 1e-3, weight decay 1e-4), ``torch.set_num_threads(--threads)``.

``python -m bench training_host [--features 27] [--batch 32] [--steps 2000] [--repeat 3]
[--threads 1] [--device cpu]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ktrdr.research.allocator import keep_freed_memory
from ktrdr.research.gradients import AutogradGradients, MLPGradients
from ktrdr.research.model import build_model
from ktrdr.research.optim import Adam, FlatParameters
from ktrdr.strategy.model import ModelSpec

MODEL = ModelSpec(hidden_layers=(50, 25), activation="relu", dropout=0.2)
LR, WEIGHT_DECAY = 1e-3, 1e-4
KEEP_THRESHOLD = 1.3


def _batches(
    features: int, batch: int, device: torch.device, n: int = 64
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        x = torch.rand(batch, features, generator=g)
        y = torch.randint(0, 3, (batch,), generator=g)
        out.append((x.to(device), y.to(device)))
    return out


def _time(step: Callable[[int], None], steps: int, repeat: int, device: torch.device) -> float:
    """Median seconds per step over ``repeat`` runs of ``steps`` steps (after a warm-up)."""
    for i in range(min(steps, 300)):
        step(i)
    runs = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(steps):
            step(i)
        if device.type == "cuda":
            torch.cuda.synchronize()
        runs.append((time.perf_counter() - t) / steps)
    return statistics.median(runs)


def _model(features: int, device: torch.device) -> torch.nn.Module:
    model = build_model(MODEL, features, seed=0).to(device)
    model.train()
    return model


def measure(features: int, batch: int, steps: int, repeat: int, device: torch.device) -> dict[str, float]:
    """Seconds per step of each variant (keys: ``grad_hand``, ``grad_autograd``, ``opt_flat``,
    ``opt_torch``, ``opt_torch_flat``, ``step_hand``, ``step_torch``)."""
    data = _batches(features, batch, device)
    pick = len(data)
    out: dict[str, float] = {}

    model = _model(features, device)
    flat = FlatParameters(model)
    hand = MLPGradients(model, None)
    auto = AutogradGradients(model, flat, None, amp=False)
    out["grad_hand"] = _time(lambda i: hand(*data[i % pick], None), steps, repeat, device)
    out["grad_autograd"] = _time(lambda i: auto(*data[i % pick], None), steps, repeat, device)

    flat_adam = Adam(flat, LR, WEIGHT_DECAY)
    out["opt_flat"] = _time(lambda _i: flat_adam.step(), steps, repeat, device)
    on_flat = torch.optim.Adam([flat.data], lr=LR, weight_decay=WEIGHT_DECAY)
    flat.data.grad = flat.grad

    def torch_flat_step(_i: int) -> None:
        on_flat.step()

    out["opt_torch_flat"] = _time(torch_flat_step, steps, repeat, device)

    plain = _model(features, device)
    for p in plain.parameters():
        p.grad = torch.zeros_like(p)
    per_param = torch.optim.Adam(plain.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    out["opt_torch"] = _time(lambda _i: per_param.step(), steps, repeat, device)

    def step_hand(i: int) -> None:
        hand(*data[i % pick], None)
        flat_adam.step()

    out["step_hand"] = _time(step_hand, steps, repeat, device)

    def step_torch(i: int) -> None:
        x, y = data[i % pick]
        per_param.zero_grad()
        F.cross_entropy(plain(x, None), y).backward()
        per_param.step()

    out["step_torch"] = _time(step_torch, steps, repeat, device)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench training_host", description=__doc__.split("\n\n")[0])
    p.add_argument("--features", type=int, default=27)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"training_host: MLP {args.features}→50→25→3, batch {args.batch}, {args.threads} thread(s), {device}, "
        f"{args.steps} steps × {args.repeat}, median; ratio = torch ÷ hand-written (keep if ≥ {KEEP_THRESHOLD})"
    )
    t = measure(args.features, args.batch, args.steps, args.repeat, device)
    rows = (
        ("gradients: MLPGradients vs autograd", "grad_hand", "grad_autograd"),
        ("optimizer: flat Adam vs torch.optim.Adam (per parameter)", "opt_flat", "opt_torch"),
        ("optimizer: flat Adam vs torch.optim.Adam (one flat tensor)", "opt_flat", "opt_torch_flat"),
        ("whole step: hand-written vs autograd + torch.optim.Adam", "step_hand", "step_torch"),
    )
    for label, hand, torch_own in rows:
        ratio = t[torch_own] / t[hand]
        verdict = "keep hand-written" if ratio >= KEEP_THRESHOLD else "use torch's own"
        print(
            f"  {label:<62} {t[hand] * 1e6:8.1f} µs vs {t[torch_own] * 1e6:8.1f} µs  "
            f"ratio {ratio:5.2f}  → {verdict}"
        )
    return 0
