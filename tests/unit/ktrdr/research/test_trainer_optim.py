"""The flat-buffer optimizers and schedulers agree with torch.optim's definitions."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from ktrdr.research.model import build_model
from ktrdr.research.optim import (
    FlatParameters,
    OptimError,
    make_optimizer,
    make_scheduler,
)
from ktrdr.strategy.model import LrSchedulerSpec, ModelSpec, OptimSpec

SPEC = ModelSpec(hidden_layers=(16, 8), dropout=0.0)


def _batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + i)
    return torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)


def _backward(model: torch.nn.Module, i: int) -> None:
    x, y = _batch(i)
    F.cross_entropy(model(x), y).backward()


def _torch_optimizer(name: str, params, lr: float, wd: float, momentum: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, foreach=False)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, foreach=False)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=momentum, foreach=False)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=wd, foreach=False)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_updates_match_torch_optim(name, wd):
    ours = build_model(SPEC, 6, seed=0)
    ref = build_model(SPEC, 6, seed=0)
    flat = FlatParameters(ours)
    opt = make_optimizer(flat, OptimSpec(optimizer=name, learning_rate=0.01, weight_decay=wd, momentum=0.9))
    ref_opt = _torch_optimizer(name, ref.parameters(), 0.01, wd, 0.9)
    for i in range(6):
        opt.zero_grad()
        ref_opt.zero_grad()
        _backward(ours, i)
        _backward(ref, i)
        for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-7)
        opt.step()
        ref_opt.step()
    moved = 0.0
    for p, q, p0 in zip(
        ours.parameters(), ref.parameters(), build_model(SPEC, 6, seed=0).parameters(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
        moved += float((p - p0).detach().abs().sum())
    assert moved > 0.01  # the test compares real updates, not untouched weights


def test_parameters_and_grads_live_in_the_flat_buffers():
    model = build_model(SPEC, 6, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    flat = FlatParameters(model)
    assert flat.data.numel() == sum(p.numel() for p in model.parameters())
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    _backward(model, 0)
    assert flat.grad.abs().sum() > 0
    assert torch.equal(torch.cat([p.grad.reshape(-1) for p in model.parameters()]), flat.grad)
    flat.data.add_(1.0)  # the module sees writes to the buffer
    assert torch.equal(next(model.parameters()), before[0] + 1.0)
    flat.zero_grad()
    assert not flat.grad.any() and not any(p.grad.any() for p in model.parameters())


def test_clip_matches_torch_clip_grad_norm():
    ours, ref = build_model(SPEC, 6, seed=0), build_model(SPEC, 6, seed=0)
    flat = FlatParameters(ours)
    _backward(ours, 0)
    _backward(ref, 0)
    norm = flat.clip_grad_norm_(0.05)
    ref_norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.05)
    torch.testing.assert_close(norm, ref_norm, rtol=1e-6, atol=0)
    assert float(norm) > 0.05  # the clip was active
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-8)
    before = flat.grad.clone()
    flat.clip_grad_norm_(1e6)  # below the limit: unchanged
    torch.testing.assert_close(flat.grad, before, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop"])
def test_state_dict_resume_is_exact(name):
    spec = OptimSpec(optimizer=name, learning_rate=0.01, weight_decay=0.01)

    def run(steps: range, model, opt) -> None:
        for i in steps:
            opt.zero_grad()
            _backward(model, i)
            opt.step()

    straight = build_model(SPEC, 6, seed=0)
    opt = make_optimizer(FlatParameters(straight), spec)
    run(range(6), straight, opt)

    first = build_model(SPEC, 6, seed=0)
    opt1 = make_optimizer(FlatParameters(first), spec)
    run(range(3), first, opt1)
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt1.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    second = build_model(SPEC, 6, seed=9)
    opt2 = make_optimizer(FlatParameters(second), spec)
    second.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["opt"])
    run(range(3, 6), second, opt2)
    assert all(torch.equal(a, b) for a, b in zip(straight.parameters(), second.parameters(), strict=True))


def test_load_state_of_another_optimizer_is_refused():
    model = build_model(SPEC, 6, seed=0)
    adam = make_optimizer(FlatParameters(model), OptimSpec(optimizer="adam"))
    sgd = make_optimizer(FlatParameters(model), OptimSpec(optimizer="sgd"))
    with pytest.raises(OptimError, match="Adam optimizer cannot load into SGD"):
        sgd.load_state_dict(adam.state_dict())
    with pytest.raises(OptimError, match="unknown optimizer 'lbfgs'"):
        make_optimizer(FlatParameters(model), OptimSpec(optimizer="lbfgs"))


METRICS = [1.0, 0.9, 0.95, 0.95, 0.96, 0.8, 0.8, 0.81, 0.82, 0.83, 0.7, 0.9, 0.9, 0.9, 0.9]


@pytest.mark.parametrize(
    "spec",
    [
        LrSchedulerSpec(type="step", step_size=3, gamma=0.5),
        LrSchedulerSpec(type="exponential", gamma=0.9),
        LrSchedulerSpec(type="reduce_on_plateau", factor=0.5, patience=1),
        LrSchedulerSpec(type="reduce_on_plateau", factor=0.1, patience=0),
    ],
)
def test_schedulers_match_torch(spec):
    model = build_model(SPEC, 6, seed=0)
    opt = make_optimizer(FlatParameters(model), OptimSpec(optimizer="sgd", learning_rate=0.1))
    sched = make_scheduler(opt, spec)
    ref_opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    if spec.type == "step":
        ref = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=spec.step_size, gamma=spec.gamma)
    elif spec.type == "exponential":
        ref = torch.optim.lr_scheduler.ExponentialLR(ref_opt, gamma=spec.gamma)
    else:
        ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, factor=spec.factor, patience=spec.patience)
    ours, theirs = [], []
    for i, metric in enumerate(METRICS):
        if i == 7:  # a restored copy continues identically
            restored = make_scheduler(opt, spec)
            restored.load_state_dict(sched.state_dict())
            sched = restored
        sched.step(metric)
        ref_opt.step()  # no gradients: changes nothing, keeps torch's call-order check quiet
        ref.step(metric) if spec.type == "reduce_on_plateau" else ref.step()
        ours.append(opt.lr)
        theirs.append(ref_opt.param_groups[0]["lr"])
    assert ours == theirs
    assert len(set(ours)) > 2  # the lr really changed along the sequence


def test_a_training_process_never_imports_torch_dynamo():
    code = (
        "import sys, torch\n"
        "from ktrdr.research.model import build_model\n"
        "from ktrdr.research.trainer import Split, train\n"
        "from ktrdr.strategy.model import LrSchedulerSpec, ModelSpec, OptimSpec\n"
        "x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))\n"
        "m = build_model(ModelSpec(hidden_layers=(8,)), 4, seed=0)\n"
        "sched = LrSchedulerSpec(type='reduce_on_plateau')\n"
        "r = train(m, Split(x, y), Split(x, y), OptimSpec(epochs=2, gradient_clip=1.0, lr_scheduler=sched))\n"
        "assert r.epochs_trained == 2\n"
        "print(sorted(n for n in sys.modules if n.startswith('torch._dynamo')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
