"""The training loop: one readable function, :func:`train`.

Contracts:

* Inputs are tensors (:class:`Split`: ``x`` float32 (N, F), ``y`` int64 (N,) class ids,
  optional ``symbol_index`` int64 (N,)), moved to the device once (CUDA when available, else CPU).
  No DataLoader: each epoch draws one permutation from a seeded ``torch.Generator``, gathers the
  shuffled epoch in one indexing op and slices batches as views (last partial batch kept).
* Seeded and reproducible: ``OptimSpec.seed`` seeds the permutation generator and the global RNG
  (dropout). On CPU the same seed gives bit-identical weights and metrics (threads are set
  explicitly with ``torch.set_num_threads``; torch's default of all cores collapses on a shared box).
  Note: the global torch RNG and thread count are process-wide; a training job owns its process.
* Loss: cross-entropy on logits, weighted by ``class_weights`` when given (training loss only;
  validation loss is always the unweighted mean cross-entropy, so it is comparable across runs).
* Early stopping (``OptimSpec.early_stopping``): an epoch improves when the monitored value beats
  the best so far by more than ``min_delta`` (``val_loss`` lower, ``val_accuracy`` higher); after
  ``patience`` epochs without improvement training stops. The best epoch's weights are kept as a
  deep copy and restored at the end when ``restore_best`` (whether or not training stopped early).
* Progress: ``progress(Progress)`` with a fixed schema, at most every ``progress_interval_s``
  during an epoch and always at each epoch end (then with that epoch's validation metrics).
* Cancellation: ``cancel.is_set()`` is checked before every batch; when set, a checkpoint is
  written (if ``checkpoint_path`` is given) and :class:`Cancelled` is raised.
* Optimizer and lr schedule: :mod:`ktrdr.research.optim`. The model's parameters are re-pointed
  into one flat buffer (values unchanged; they stay there after training); no ``torch.optim``,
  whose first use imports ``torch._dynamo``. Gradient clipping scales the global gradient norm
  like ``torch.nn.utils.clip_grad_norm_``. Gradients: :mod:`ktrdr.research.gradients` (written
  out by hand for the plain ReLU MLP in float32, autograd for anything else).
* Per batch there is no host-device sync: the batch loss and predictions stay on the device
  and are reduced when progress is reported and at epoch end (the non-finite-loss check is at
  epoch end). Epoch loss = sum over batches of batch mean loss × batch size, divided by N.
* Checkpoints hold everything the loop's future depends on (weights, optimizer, scheduler, RNG
  states, the current epoch's permutation and position, per-batch losses and correct count so
  far, history, best state,
  early-stopping counters), so ``train(..., resume=path)`` ends with exactly the weights an
  uninterrupted run ends with. Written atomically (temp file, fsync, rename, then an fsync of the
  directory so the rename survives a crash); loaded with ``weights_only=True``.
* CUDA: bfloat16 autocast when ``mixed_precision`` (default on) and the device is CUDA; CPU runs
  in float32. Inputs reach the GPU from pinned host memory (:meth:`Split.to`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ktrdr.atomicfile import fsync_dir
from ktrdr.research.gradients import autocast, batch_gradients
from ktrdr.research.optim import (
    FlatOptimizer,
    FlatParameters,
    OptimError,
    Scheduler,
    make_optimizer,
    make_scheduler,
)
from ktrdr.strategy.model import OptimSpec

#: Checkpoint layout version; a checkpoint of another version is refused.
CHECKPOINT_VERSION = 2
MONITORS = ("val_loss", "val_accuracy")


class TrainingError(RuntimeError):
    """Training cannot proceed: bad inputs or settings, a non-finite loss, a foreign checkpoint."""


class Cancelled(Exception):
    """Training stopped because the cancel token was set. ``checkpoint``: where the state was saved
    (None when no checkpoint path was given). ``epoch`` (0-based) and ``batch``: the next step."""

    def __init__(self, epoch: int, batch: int, checkpoint: Path | None) -> None:
        super().__init__(f"training cancelled at epoch {epoch + 1}, batch {batch}")
        self.epoch = epoch
        self.batch = batch
        self.checkpoint = checkpoint


class CancelToken(Protocol):
    """Anything with ``is_set()``, e.g. :class:`threading.Event`."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Split:
    """One part of a dataset as tensors. ``symbol_index`` is required for symbol-embedding models."""

    x: torch.Tensor
    y: torch.Tensor
    symbol_index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.dtype != torch.float32 or self.x.dim() != 2:
            raise TrainingError(
                f"x must be a float32 (N, F) tensor, got {self.x.dtype} {tuple(self.x.shape)}"
            )
        n = self.x.shape[0]
        if self.y.dtype != torch.int64 or tuple(self.y.shape) != (n,):
            raise TrainingError(f"y must be an int64 ({n},) tensor, got {self.y.dtype} {tuple(self.y.shape)}")
        s = self.symbol_index
        if s is not None and (s.dtype != torch.int64 or tuple(s.shape) != (n,)):
            raise TrainingError(
                f"symbol_index must be an int64 ({n},) tensor, got {s.dtype} {tuple(s.shape)}"
            )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device) -> Split:
        """The split on ``device``; host tensors bound for CUDA go through pinned memory (one
        asynchronous copy each, ordered on the current stream before any use)."""

        def move(t: torch.Tensor) -> torch.Tensor:
            if device.type == "cuda" and t.device.type == "cpu":
                return t.pin_memory().to(device, non_blocking=True)
            return t.to(device)

        s = self.symbol_index
        return Split(move(self.x), move(self.y), None if s is None else move(s))


@dataclass(frozen=True)
class Progress:
    """One progress report. ``epoch`` 1-based; ``batch``: batches done in this epoch (== ``batches``
    at epoch end); ``loss``/``accuracy``: running means over this epoch's batches so far;
    ``val_*``: the last finished epoch's validation metrics (None before the first, or without
    validation data); rates in samples per second; times in seconds."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    samples_per_s: float
    eta_s: float
    elapsed_s: float


@dataclass(frozen=True)
class TrainOptions:
    """How to run (not what to learn). ``device`` None = CUDA when available, else CPU.
    ``threads``: ``torch.set_num_threads`` for this process. ``checkpoint_every``: epochs between
    periodic checkpoints (0 = only on cancel)."""

    device: str | None = None
    threads: int = 1
    mixed_precision: bool = True
    progress_interval_s: float = 0.5
    checkpoint_path: Path | None = None
    checkpoint_every: int = 0
    eval_batch_size: int = 65536


@dataclass
class TrainResult:
    """``history``: per-epoch lists ``train_loss, train_accuracy, val_loss, val_accuracy, lr``
    (val lists empty without validation data). ``best_epoch``: 1-based epoch of the best monitored
    value (None without early stopping). ``samples_per_s``: training samples per second of loop
    time in this call (validation included)."""

    history: dict[str, list[float]]
    epochs_trained: int
    best_epoch: int | None
    best_metric: float | None
    stopped_early: bool
    restored_best: bool
    device: str
    mixed_precision: bool
    train_time_s: float
    samples_per_s: float


@dataclass
class _LoopState:
    """Everything besides model/optimizer/scheduler/RNG that a checkpoint must carry."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches completed in the current epoch
    perm: torch.Tensor | None = None  # the current epoch's permutation (None between epochs)
    losses: torch.Tensor | None = None  # float32 mean loss of each completed batch of this epoch
    correct: int = 0  # correct predictions in this epoch's completed batches
    history: dict[str, list[float]] = field(
        default_factory=lambda: {
            k: [] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")
        }
    )
    best_metric: float | None = None
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    stopped_early: bool = False
    elapsed_s: float = 0.0


class _EpochTally:
    """One epoch's per-batch mean losses and predictions, kept on the device (no sync per batch)
    and reduced on demand. Batches before ``st.batch`` ran before a resume: their losses come
    from ``st.losses`` and their correct count is ``st.correct``."""

    def __init__(self, ys: torch.Tensor, batch_sizes: torch.Tensor, bs: int, st: _LoopState) -> None:
        self.ys, self.batch_sizes, self.bs = ys, batch_sizes, bs
        self.first, self.correct_before = st.batch, st.correct
        self.losses: list[torch.Tensor] = [] if st.losses is None else list(st.losses.to(ys.device).unbind())
        self.preds = torch.empty_like(ys)  # argmax of each batch's logits, written in place

    def sums(self, done: int) -> tuple[float, int]:
        """(sum of per-sample losses, correct count) over the first ``done`` batches; one sync."""
        if done == 0:
            return 0.0, self.correct_before
        loss_sum = (torch.stack(self.losses).double() * self.batch_sizes[:done]).sum()
        lo, hi = self.first * self.bs, done * self.bs
        correct = (self.preds[lo:hi] == self.ys[lo:hi]).sum()
        return loss_sum.item(), self.correct_before + int(correct.item())


def resolve_device(name: str | None) -> torch.device:
    """``None`` → CUDA when available, else CPU; otherwise the named device."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def loss_and_accuracy(
    model: nn.Module, data: Split, *, chunk: int = 65536, amp: bool = False
) -> tuple[float, float]:
    """Mean unweighted cross-entropy and accuracy of ``model`` (put in eval mode) on ``data``,
    which must already be on the model's device. Deterministic for a fixed ``chunk``."""
    model.eval()
    n = len(data)
    loss_sum = torch.zeros((), dtype=torch.float64, device=data.x.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.x.device)
    for i in range(0, n, chunk):
        s = None if data.symbol_index is None else data.symbol_index[i : i + chunk]
        with autocast(data.x.device, amp):
            logits = model(data.x[i : i + chunk], s).float()
        y = data.y[i : i + chunk]
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
    return loss_sum.item() / max(n, 1), correct.item() / max(n, 1)


def train(
    model: nn.Module,
    train_data: Split,
    val_data: Split | None,
    spec: OptimSpec,
    *,
    class_weights: torch.Tensor | None = None,
    options: TrainOptions = TrainOptions(),
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    resume: Path | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``spec.epochs`` epochs (or until early stopping); see the module
    docstring for the contracts. Raises :class:`Cancelled` when cancelled, :class:`TrainingError`
    on bad input or a non-finite loss."""
    _check_settings(train_data, val_data, spec, class_weights)
    torch.set_num_threads(options.threads)
    device = resolve_device(options.device)
    amp = options.mixed_precision and device.type == "cuda"
    model.to(device)
    tr = train_data.to(device)
    va = val_data.to(device) if val_data is not None else None
    weights = class_weights.to(device=device, dtype=torch.float32) if class_weights is not None else None
    try:
        flat = FlatParameters(model)
        opt = make_optimizer(flat, spec)
        sched = make_scheduler(opt, spec.lr_scheduler)
        gen = torch.Generator()
        st = _LoopState()
        if resume is not None:
            st = _load_checkpoint(Path(resume), model, opt, sched, gen, spec, len(tr), device)
    except OptimError as exc:
        raise TrainingError(str(exc)) from None
    gradients = batch_gradients(model, flat, weights, amp)
    if resume is None:
        gen.manual_seed(spec.seed)
        torch.manual_seed(spec.seed)

    es = spec.early_stopping
    n, bs, epochs = len(tr), spec.batch_size, spec.epochs
    batches = math.ceil(n / bs)
    batch_sizes = torch.tensor(
        [min(bs, n - b * bs) for b in range(batches)], dtype=torch.float64, device=device
    )
    t_start = time.perf_counter()
    elapsed_before = st.elapsed_s
    samples_done = 0  # in this call, for the rate
    last_report = t_start

    def checkpoint() -> Path | None:
        st.elapsed_s = elapsed_before + time.perf_counter() - t_start
        if options.checkpoint_path is None:
            return None
        _save_checkpoint(Path(options.checkpoint_path), model, opt, sched, gen, st, spec, n)
        return Path(options.checkpoint_path)

    def report(epoch: int, batch: int, loss: float, acc: float) -> None:
        now = time.perf_counter()
        rate = samples_done / max(now - t_start, 1e-9)
        remaining = (epochs - epoch - 1) * n + (n - min(batch * bs, n))
        h = st.history
        progress(
            Progress(
                epoch=epoch + 1,
                epochs=epochs,
                batch=batch,
                batches=batches,
                loss=loss,
                accuracy=acc,
                val_loss=h["val_loss"][-1] if h["val_loss"] else None,
                val_accuracy=h["val_accuracy"][-1] if h["val_accuracy"] else None,
                samples_per_s=rate,
                eta_s=remaining / rate if rate > 0 else math.inf,
                elapsed_s=elapsed_before + now - t_start,
            )
        )

    while st.epoch < epochs and not st.stopped_early:
        epoch = st.epoch
        if st.perm is None:
            st.perm = torch.randperm(n, generator=gen)
            st.batch, st.losses, st.correct = 0, None, 0
        idx = st.perm.to(device)
        ys = tr.y[idx]
        xb, yb = tr.x[idx].split(bs), ys.split(bs)
        sb = tr.symbol_index[idx].split(bs) if tr.symbol_index is not None else [None] * batches
        tally = _EpochTally(ys, batch_sizes, bs, st)
        losses, pred_b = tally.losses, tally.preds.split(bs)
        model.train()
        for b in range(st.batch, batches):
            if cancel is not None and cancel.is_set():
                st.correct = tally.sums(b)[1]
                st.batch, st.losses = b, torch.stack(losses).cpu() if losses else None
                raise Cancelled(epoch, b, checkpoint())
            loss, logits = gradients(xb[b], yb[b], sb[b])
            if spec.gradient_clip > 0:
                flat.clip_grad_norm_(spec.gradient_clip)
            opt.step()
            losses.append(loss)
            torch.argmax(logits, 1, out=pred_b[b])
            samples_done += len(yb[b])
            if progress is not None and time.perf_counter() - last_report >= options.progress_interval_s:
                last_report = time.perf_counter()
                hi = min(n, (b + 1) * bs)
                loss_sum, correct = tally.sums(b + 1)
                report(epoch, b + 1, loss_sum / hi, correct / hi)

        loss_sum, correct = tally.sums(batches)
        train_loss, train_acc = loss_sum / n, correct / n
        if not math.isfinite(train_loss):
            raise TrainingError(
                f"training loss is {train_loss} in epoch {epoch + 1}; lower the learning rate"
            )
        h = st.history
        h["train_loss"].append(train_loss)
        h["train_accuracy"].append(train_acc)
        h["lr"].append(opt.lr)
        if va is not None:
            val_loss, val_acc = loss_and_accuracy(model, va, chunk=options.eval_batch_size, amp=amp)
            h["val_loss"].append(val_loss)
            h["val_accuracy"].append(val_acc)
        if sched is not None:
            sched.step(h["val_loss"][-1] if va is not None else train_loss)
        if es is not None:
            value = h[es.monitor][-1]
            sign = -1.0 if es.monitor == "val_loss" else 1.0  # so that higher is better
            if st.best_metric is None or sign * value > sign * st.best_metric + es.min_delta:
                st.best_metric, st.best_epoch, st.bad_epochs = value, epoch + 1, 0
                st.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                st.bad_epochs += 1
                st.stopped_early = st.bad_epochs >= es.patience
        st.epoch, st.batch, st.perm, st.losses, st.correct = epoch + 1, 0, None, None, 0
        if progress is not None:
            last_report = time.perf_counter()
            report(epoch, batches, train_loss, train_acc)
        if options.checkpoint_every > 0 and st.epoch % options.checkpoint_every == 0:
            checkpoint()

    restored = bool(es is not None and es.restore_best and st.best_state is not None)
    if restored:
        model.load_state_dict(st.best_state)
    loop_s = time.perf_counter() - t_start
    return TrainResult(
        history=st.history,
        epochs_trained=st.epoch,
        best_epoch=st.best_epoch,
        best_metric=st.best_metric,
        stopped_early=st.stopped_early,
        restored_best=restored,
        device=str(device),
        mixed_precision=amp,
        train_time_s=elapsed_before + loop_s,
        samples_per_s=samples_done / loop_s if loop_s > 0 else 0.0,
    )


def _check_settings(tr: Split, va: Split | None, spec: OptimSpec, class_weights: torch.Tensor | None) -> None:
    if len(tr) == 0:
        raise TrainingError("no training samples")
    if spec.batch_size < 1 or spec.epochs < 1:
        raise TrainingError(f"batch_size and epochs must be >= 1, got {spec.batch_size}, {spec.epochs}")
    if va is not None and va.x.shape[1] != tr.x.shape[1]:
        raise TrainingError(f"validation has {va.x.shape[1]} features, training {tr.x.shape[1]}")
    es = spec.early_stopping
    if es is not None:
        if es.monitor not in MONITORS:
            raise TrainingError(
                f"unknown early-stopping monitor {es.monitor!r}; known: {', '.join(MONITORS)}"
            )
        if va is None or len(va) == 0:
            raise TrainingError(f"early stopping monitors {es.monitor} but there is no validation data")
    if class_weights is not None and tuple(class_weights.shape) != (3,):
        raise TrainingError(f"class_weights must have 3 entries, got shape {tuple(class_weights.shape)}")


def _fingerprint(spec: OptimSpec, n_train: int) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed (epochs may differ: a run can be extended)."""
    d = dataclasses.asdict(spec)
    d.pop("epochs")
    return {"optim": repr(sorted(d.items())), "n_train": n_train}


def _save_checkpoint(
    path: Path,
    model: nn.Module,
    opt: FlatOptimizer,
    sched: Scheduler | None,
    gen: torch.Generator,
    st: _LoopState,
    spec: OptimSpec,
    n: int,
) -> None:
    payload = {
        "version": CHECKPOINT_VERSION,
        "fingerprint": _fingerprint(spec, n),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": gen.get_state(),
        "loop": {f.name: getattr(st, f.name) for f in dataclasses.fields(st)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _load_checkpoint(
    path: Path,
    model: nn.Module,
    opt: FlatOptimizer,
    sched: Scheduler | None,
    gen: torch.Generator,
    spec: OptimSpec,
    n: int,
    device: torch.device,
) -> _LoopState:
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise TrainingError(f"cannot read checkpoint {path}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
        raise TrainingError(f"{path}: not a version-{CHECKPOINT_VERSION} training checkpoint")
    if payload["fingerprint"] != _fingerprint(spec, n):
        raise TrainingError(
            f"{path}: checkpoint was written for other training settings or data; refusing to resume"
        )
    model.load_state_dict(payload["model"])
    opt.load_state_dict(payload["optimizer"])  # OptimError on a mismatch
    if (sched is None) != (payload["scheduler"] is None):
        raise TrainingError(f"{path}: checkpoint scheduler does not match the settings")
    if sched is not None:
        sched.load_state_dict(payload["scheduler"])
    torch.set_rng_state(payload["rng_cpu"].cpu())
    if payload["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in payload["rng_cuda"]])
    gen.set_state(payload["generator"].cpu())
    loop = payload["loop"]
    for key in ("perm", "losses"):
        if loop[key] is not None:
            loop[key] = loop[key].cpu()
    return _LoopState(**loop)
