"""Trainer contracts: determinism, exact resume, best-weight restore, cancellation, progress."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from ktrdr.research.model import build_model
from ktrdr.research.trainer import (
    Cancelled,
    Progress,
    Split,
    TrainingError,
    TrainOptions,
    loss_and_accuracy,
    train,
)
from ktrdr.strategy.model import EarlyStoppingSpec, LrSchedulerSpec, ModelSpec, OptimSpec

SPEC = ModelSpec(hidden_layers=(16, 8), dropout=0.2)


def _data(n: int = 600, f: int = 6, seed: int = 0, symbols: int = 0) -> tuple[Split, Split]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g)
    noise = 0.5 * torch.randn(n, generator=g)
    y = torch.bucketize(x[:, 0] + x[:, 1] + noise, torch.tensor([-0.5, 0.5]))
    s = torch.randint(0, symbols, (n,), generator=g) if symbols else None
    cut = int(n * 0.75)
    return (
        Split(x[:cut], y[:cut], None if s is None else s[:cut]),
        Split(x[cut:], y[cut:], None if s is None else s[cut:]),
    )


def _run(optim: OptimSpec, *, symbols: int = 0, **kw):
    tr, va = _data(symbols=symbols)
    spec = dataclasses.replace(SPEC, symbol_embedding_dim=4 if symbols else 0)
    model = build_model(spec, tr.x.shape[1], n_symbols=max(symbols, 1), seed=optim.seed)
    result = train(model, tr, va, optim, **kw)
    return model, result


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_same_seed_gives_identical_metrics_and_weights(optimizer):
    optim = OptimSpec(epochs=3, batch_size=32, optimizer=optimizer, learning_rate=0.05, seed=7)
    m1, r1 = _run(optim)
    m2, r2 = _run(optim)
    assert r1.history == r2.history
    assert _same_weights(m1, m2)
    _, r3 = _run(dataclasses.replace(optim, seed=8))
    assert r3.history != r1.history
    assert r1.history["train_accuracy"][-1] > 0.5  # it learns the planted signal


def test_learning_reaches_clear_signal_with_symbol_embedding():
    _, r = _run(OptimSpec(epochs=8, learning_rate=0.01, seed=1), symbols=3)
    assert r.history["val_accuracy"][-1] > 0.7


def test_resume_from_epoch_checkpoint_gives_same_final_weights(tmp_path):
    sched = LrSchedulerSpec(type="step", step_size=2, gamma=0.5)
    optim = OptimSpec(epochs=6, learning_rate=0.01, seed=3, lr_scheduler=sched, gradient_clip=1.0)
    straight, r_straight = _run(optim)

    ckpt = tmp_path / "ck.pt"
    _run(dataclasses.replace(optim, epochs=3), options=TrainOptions(checkpoint_path=ckpt, checkpoint_every=3))
    tr, va = _data()
    resumed = build_model(SPEC, tr.x.shape[1], seed=999)  # different init: the checkpoint must win
    r_resumed = train(resumed, tr, va, optim, resume=ckpt)
    assert _same_weights(straight, resumed)
    assert r_resumed.history == r_straight.history
    assert r_resumed.epochs_trained == 6


def test_cancel_mid_epoch_writes_checkpoint_and_resume_is_exact(tmp_path):
    es = EarlyStoppingSpec(monitor="val_accuracy", patience=50, min_delta=0.0)
    plateau = LrSchedulerSpec(type="reduce_on_plateau", factor=0.5, patience=1)
    optim = OptimSpec(epochs=5, learning_rate=0.01, seed=4, early_stopping=es, lr_scheduler=plateau)
    straight, r_straight = _run(optim)

    token = threading.Event()
    seen: list[Progress] = []

    def on_progress(p: Progress) -> None:
        seen.append(p)
        if p.epoch == 3 and p.batch >= 5:
            token.set()

    ckpt = tmp_path / "sub" / "cancel.pt"
    opts = TrainOptions(checkpoint_path=ckpt, progress_interval_s=0.0)
    with pytest.raises(Cancelled) as info:
        _run(optim, options=opts, progress=on_progress, cancel=token)
    assert info.value.checkpoint == ckpt and ckpt.exists()
    assert (info.value.epoch, info.value.batch) == (2, 5)  # checked before every batch
    tr, va = _data()
    resumed = build_model(SPEC, tr.x.shape[1], seed=0)
    r = train(resumed, tr, va, optim, resume=ckpt)
    assert _same_weights(straight, resumed)
    assert r.history == r_straight.history and r.best_epoch == r_straight.best_epoch


def test_cancel_without_checkpoint_path_still_stops():
    token = threading.Event()
    token.set()
    with pytest.raises(Cancelled) as info:
        _run(OptimSpec(epochs=2), cancel=token)
    assert info.value.checkpoint is None and info.value.epoch == 0 and info.value.batch == 0


def test_resume_refuses_checkpoint_of_other_settings(tmp_path):
    ckpt = tmp_path / "ck.pt"
    _run(OptimSpec(epochs=1, seed=1), options=TrainOptions(checkpoint_path=ckpt, checkpoint_every=1))
    tr, va = _data()
    m = build_model(SPEC, tr.x.shape[1], seed=1)
    with pytest.raises(TrainingError, match="other training settings"):
        train(m, tr, va, OptimSpec(epochs=2, seed=1, learning_rate=0.5), resume=ckpt)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="cannot read checkpoint"):
        train(m, tr, va, OptimSpec(epochs=2, seed=1), resume=tmp_path / "junk.pt")


def test_early_stopping_restores_truly_best_weights():
    # A large learning rate makes validation loss bounce, so the best epoch is not the last.
    es = EarlyStoppingSpec(monitor="val_loss", patience=3, min_delta=0.0)
    optim = OptimSpec(epochs=30, learning_rate=0.2, optimizer="sgd", momentum=0.9, seed=5, early_stopping=es)
    model, r = _run(optim)
    assert r.restored_best and r.best_epoch is not None
    assert r.best_epoch < r.epochs_trained  # stopped after patience epochs without improvement
    assert r.stopped_early and r.epochs_trained - r.best_epoch == 3
    _, va = _data()
    val_loss, val_acc = loss_and_accuracy(model, va)
    assert val_loss == r.history["val_loss"][r.best_epoch - 1] == r.best_metric
    assert val_acc == r.history["val_accuracy"][r.best_epoch - 1]
    assert val_loss != r.history["val_loss"][-1]


def test_without_restore_best_the_last_weights_stay():
    es = EarlyStoppingSpec(monitor="val_loss", patience=3, min_delta=0.0, restore_best=False)
    optim = OptimSpec(epochs=30, learning_rate=0.2, optimizer="sgd", momentum=0.9, seed=5, early_stopping=es)
    model, r = _run(optim)
    _, va = _data()
    assert not r.restored_best
    assert loss_and_accuracy(model, va)[0] == r.history["val_loss"][-1]


def test_min_delta_counts_small_gains_as_no_improvement():
    es = EarlyStoppingSpec(monitor="val_accuracy", patience=2, min_delta=1.0)  # nothing can gain 1.0
    _, r = _run(OptimSpec(epochs=20, seed=2, early_stopping=es))
    assert r.best_epoch == 1 and r.epochs_trained == 3 and r.stopped_early


def test_progress_schema_and_epoch_end_reports():
    seen: list[Progress] = []
    _, r = _run(
        OptimSpec(epochs=3, batch_size=64, seed=1),
        progress=seen.append,
        options=TrainOptions(progress_interval_s=3600.0),
    )
    assert [f.name for f in dataclasses.fields(Progress)] == [
        "epoch", "epochs", "batch", "batches", "loss", "accuracy", "val_loss", "val_accuracy",
        "samples_per_s", "eta_s", "elapsed_s",
    ]  # fmt: skip
    # Throttled to nothing within epochs, but every epoch end is reported with its val metrics.
    assert [(p.epoch, p.batch, p.batches) for p in seen] == [(e, 8, 8) for e in (1, 2, 3)]
    assert [p.val_loss for p in seen] == r.history["val_loss"]
    assert [p.loss for p in seen] == r.history["train_loss"]
    assert seen[-1].eta_s == 0.0 and seen[0].eta_s > 0
    assert all(p.samples_per_s > 0 for p in seen)


def test_class_weights_change_training():
    optim = OptimSpec(epochs=2, seed=1)
    tr, va = _data()
    a = build_model(SPEC, 6, seed=1)
    b = build_model(SPEC, 6, seed=1)
    train(a, tr, va, optim)
    train(b, tr, va, optim, class_weights=torch.tensor([1.0, 5.0, 1.0]))
    assert not _same_weights(a, b)
    with pytest.raises(TrainingError, match="3 entries"):
        train(b, tr, va, optim, class_weights=torch.tensor([1.0, 2.0]))


def test_bad_inputs_are_clear_errors():
    tr, va = _data()
    m = build_model(SPEC, 6, seed=0)
    with pytest.raises(TrainingError, match="float32"):
        Split(tr.x.double(), tr.y)
    with pytest.raises(TrainingError, match="int64"):
        Split(tr.x, tr.y.int())
    with pytest.raises(TrainingError, match="unknown optimizer 'lbfgs'"):
        train(m, tr, va, OptimSpec(epochs=1, optimizer="lbfgs"))
    with pytest.raises(TrainingError, match="no validation data"):
        train(m, tr, None, OptimSpec(epochs=1, early_stopping=EarlyStoppingSpec()))
    with pytest.raises(TrainingError, match="unknown lr scheduler"):
        train(m, tr, va, OptimSpec(epochs=1, lr_scheduler=LrSchedulerSpec(type="cosine")))


def test_non_finite_loss_is_an_error():
    tr, va = _data()
    bad = Split(tr.x.clone(), tr.y)
    bad.x[0, 0] = float("nan")
    with pytest.raises(TrainingError, match="loss is nan in epoch 1"):
        train(build_model(SPEC, 6, seed=0), bad, va, OptimSpec(epochs=1))


def test_autograd_path_cancel_and_resume_is_exact(tmp_path):
    # A symbol-embedding model trains through autograd (not the hand-written MLP path).
    optim = OptimSpec(epochs=3, learning_rate=0.01, seed=6, optimizer="adamw", gradient_clip=0.5)
    straight, r_straight = _run(optim, symbols=3)
    token = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.epoch == 2 and p.batch >= 3:
            token.set()

    ckpt = tmp_path / "cancel.pt"
    opts = TrainOptions(checkpoint_path=ckpt, progress_interval_s=0.0)
    with pytest.raises(Cancelled):
        _run(optim, symbols=3, options=opts, progress=on_progress, cancel=token)
    tr, va = _data(symbols=3)
    resumed = build_model(
        dataclasses.replace(SPEC, symbol_embedding_dim=4), tr.x.shape[1], n_symbols=3, seed=0
    )
    r = train(resumed, tr, va, optim, resume=ckpt)
    assert _same_weights(straight, resumed)
    assert r.history == r_straight.history
