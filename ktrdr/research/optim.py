"""Optimizers and learning-rate schedules over one flat parameter buffer.

Why not ``torch.optim``: its first optimizer in a process imports ``torch._dynamo`` (1–2.5 s),
and on a small MLP its per-step Python overhead costs about as much as forward and backward.
Here every trainable parameter of a module is re-pointed into one contiguous tensor
(:class:`FlatParameters`: ``data``) and its gradient into a second one (``grad``), so an update
is a handful of in-place tensor ops on the whole buffer and zeroing gradients is one ``fill_``.

The update rules are torch.optim's (defaults: Adam/AdamW betas (0.9, 0.999), eps 1e-8; RMSprop
alpha 0.99, eps 1e-8, not centred, no momentum; SGD without dampening or Nesterov), so results
agree with ``torch.optim`` to float32 rounding (tested). Contract for all of them:

* ``step()`` applies one update from the gradient buffer; it may overwrite that buffer (weight
  decay is folded into it), which the next ``zero_grad()`` clears anyway.
* ``lr`` is a plain float attribute; the schedulers below change it between epochs.
* ``state_dict()`` / ``load_state_dict()`` carry the step count, ``lr`` and the state buffers
  (tensors, ints, floats only: loadable with ``torch.load(weights_only=True)``), so a resumed
  run continues with bit-identical arithmetic.

The schedulers (:class:`StepLR`, :class:`ExponentialLR`, :class:`ReduceLROnPlateau`) follow
torch's recursive definitions (the lr is multiplied in place, not recomputed in closed form),
so the lr sequence is the one torch's schedulers produce; each ``step(metric)`` is one epoch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ktrdr.strategy.model import LrSchedulerSpec, OptimSpec

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULERS = ("step", "exponential", "reduce_on_plateau")


class OptimError(ValueError):
    """An optimizer or scheduler that cannot be built or restored as asked."""


class FlatParameters:
    """The trainable parameters of ``module`` moved into one flat buffer.

    After construction each parameter is a view into ``data`` (same values as before) and its
    ``.grad`` a view into ``grad`` (zeros); autograd accumulates into those views in place, so
    ``backward()`` fills ``grad``. All parameters must share one dtype and device (move the
    module first: a later ``module.to(...)`` would detach the parameters from the buffer).
    """

    def __init__(self, module: nn.Module) -> None:
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise OptimError("the module has no trainable parameters")
        kinds = {(p.dtype, p.device) for p in params}
        if len(kinds) != 1:
            raise OptimError(f"parameters must share one dtype and device, got {sorted(map(str, kinds))}")
        dtype, device = kinds.pop()
        total = sum(p.numel() for p in params)
        self.data = torch.empty(total, dtype=dtype, device=device)
        self.grad = torch.zeros(total, dtype=dtype, device=device)
        offset = 0
        with torch.no_grad():
            for p in params:
                k = p.numel()
                self.data[offset : offset + k].copy_(p.reshape(-1))
                p.data = self.data[offset : offset + k].view_as(p)
                p.grad = self.grad[offset : offset + k].view_as(p)
                offset += k

    def zero_grad(self) -> None:
        """Set every gradient to zero (one op on the whole buffer)."""
        self.grad.fill_(0)

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Scale the gradients so their global L2 norm is at most ``max_norm``, as
        ``torch.nn.utils.clip_grad_norm_`` over all parameters does (coefficient
        ``max_norm / (norm + 1e-6)`` clamped to 1), without a device sync. Returns the norm."""
        norm = torch.linalg.vector_norm(self.grad)
        self.grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
        return norm


class FlatOptimizer:
    """Base class: ``lr``, ``weight_decay``, step count and named state buffers (``_state``)."""

    #: Names of the state buffers (each shaped like the parameter buffer, zero-initialised).
    buffers: tuple[str, ...] = ()
    #: Whether ``_update`` needs a work buffer (``_scratch``; not state, never saved).
    needs_scratch = False

    def __init__(self, params: FlatParameters, lr: float, weight_decay: float = 0.0) -> None:
        if not lr > 0 or weight_decay < 0:
            raise OptimError(f"need lr > 0 and weight_decay >= 0, got {lr}, {weight_decay}")
        self.params = params
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.steps = 0
        self._state = {name: torch.zeros_like(params.data) for name in self.buffers}
        self._scratch = torch.empty_like(params.data) if self.needs_scratch else None

    def zero_grad(self) -> None:
        self.params.zero_grad()

    def step(self) -> None:
        self.steps += 1
        with torch.no_grad():
            self._update(self.params.data, self.params.grad)

    def _update(self, p: torch.Tensor, g: torch.Tensor) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "lr": self.lr, "steps": self.steps, "state": dict(self._state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` of the same optimizer type and parameter layout."""
        if state.get("type") != type(self).__name__ or state["state"].keys() != self._state.keys():
            raise OptimError(
                f"state of a {state.get('type')} optimizer cannot load into {type(self).__name__}"
            )
        for name, buf in self._state.items():
            src = state["state"][name]
            if src.shape != buf.shape:
                raise OptimError(
                    f"optimizer state {name!r} has shape {tuple(src.shape)}, expected {tuple(buf.shape)}"
                )
            buf.copy_(src)
        self.lr, self.steps = float(state["lr"]), int(state["steps"])


class Adam(FlatOptimizer):
    """``torch.optim.Adam`` (L2 weight decay added to the gradient), betas (0.9, 0.999), eps 1e-8."""

    buffers = ("exp_avg", "exp_avg_sq")
    needs_scratch = True
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    decoupled = False

    def _update(self, p: torch.Tensor, g: torch.Tensor) -> None:
        if self.weight_decay:
            if self.decoupled:
                p.mul_(1 - self.lr * self.weight_decay)
            else:
                g.add_(p, alpha=self.weight_decay)
        m, v, denom = self._state["exp_avg"], self._state["exp_avg_sq"], self._scratch
        m.lerp_(g, 1 - self.beta1)
        v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        bias1 = 1 - self.beta1**self.steps
        bias2_sqrt = (1 - self.beta2**self.steps) ** 0.5
        torch.sqrt(v, out=denom).div_(bias2_sqrt).add_(self.eps)
        p.addcdiv_(m, denom, value=-self.lr / bias1)


class AdamW(Adam):
    """``torch.optim.AdamW``: decoupled weight decay (``p *= 1 - lr * weight_decay``)."""

    decoupled = True


class SGD(FlatOptimizer):
    """``torch.optim.SGD`` with ``momentum`` (no dampening, not Nesterov) and L2 weight decay."""

    def __init__(self, params: FlatParameters, lr: float, weight_decay: float = 0.0, momentum: float = 0.0):
        if momentum < 0:
            raise OptimError(f"momentum must be >= 0, got {momentum}")
        self.buffers = ("momentum_buffer",) if momentum else ()
        self.momentum = float(momentum)
        super().__init__(params, lr, weight_decay)

    def _update(self, p: torch.Tensor, g: torch.Tensor) -> None:
        if self.weight_decay:
            g.add_(p, alpha=self.weight_decay)
        if self.momentum:
            # torch starts the buffer as a copy of the first gradient; 0 * momentum + g is exactly g.
            g = self._state["momentum_buffer"].mul_(self.momentum).add_(g)
        p.add_(g, alpha=-self.lr)


class RMSprop(FlatOptimizer):
    """``torch.optim.RMSprop``: alpha 0.99, eps 1e-8, not centred, no momentum, L2 weight decay."""

    buffers = ("square_avg",)
    needs_scratch = True
    alpha, eps = 0.99, 1e-8

    def _update(self, p: torch.Tensor, g: torch.Tensor) -> None:
        if self.weight_decay:
            g.add_(p, alpha=self.weight_decay)
        sq, avg = self._state["square_avg"], self._scratch
        sq.mul_(self.alpha).addcmul_(g, g, value=1 - self.alpha)
        torch.sqrt(sq, out=avg).add_(self.eps)
        p.addcdiv_(g, avg, value=-self.lr)


def make_optimizer(params: FlatParameters, spec: OptimSpec) -> FlatOptimizer:
    """The optimizer named by ``spec.optimizer`` with ``spec``'s lr, weight decay and momentum (SGD)."""
    name = spec.optimizer.lower()
    lr, wd = spec.learning_rate, spec.weight_decay
    if name == "adam":
        return Adam(params, lr, wd)
    if name == "adamw":
        return AdamW(params, lr, wd)
    if name == "sgd":
        return SGD(params, lr, wd, spec.momentum)
    if name == "rmsprop":
        return RMSprop(params, lr, wd)
    raise OptimError(f"unknown optimizer {spec.optimizer!r}; known: {', '.join(OPTIMIZERS)}")


class Scheduler:
    """Base class. ``step(metric)`` once per epoch; ``metric`` is the epoch's monitored loss
    (only :class:`ReduceLROnPlateau` reads it). State: the plain attributes in ``_fields``."""

    _fields: tuple[str, ...] = ("epoch",)

    def __init__(self, opt: FlatOptimizer) -> None:
        self.opt = opt
        self.epoch = 0

    def step(self, metric: float) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, **{f: getattr(self, f) for f in self._fields}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("type") != type(self).__name__:
            raise OptimError(
                f"state of a {state.get('type')} scheduler cannot load into {type(self).__name__}"
            )
        for f in self._fields:
            setattr(self, f, state[f])


class StepLR(Scheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, opt: FlatOptimizer, step_size: int, gamma: float) -> None:
        if step_size < 1:
            raise OptimError(f"step_size must be >= 1, got {step_size}")
        super().__init__(opt)
        self.step_size, self.gamma = step_size, gamma

    def step(self, metric: float) -> None:
        self.epoch += 1
        if self.epoch % self.step_size == 0:
            self.opt.lr *= self.gamma


class ExponentialLR(Scheduler):
    """Multiply the lr by ``gamma`` every epoch."""

    def __init__(self, opt: FlatOptimizer, gamma: float) -> None:
        super().__init__(opt)
        self.gamma = gamma

    def step(self, metric: float) -> None:
        self.epoch += 1
        self.opt.lr *= self.gamma


class ReduceLROnPlateau(Scheduler):
    """torch's ``ReduceLROnPlateau`` in ``min`` mode with its defaults (relative threshold 1e-4,
    no cooldown, min lr 0, eps 1e-8): after more than ``patience`` epochs whose metric is not
    below ``best * (1 - 1e-4)``, multiply the lr by ``factor``."""

    _fields = ("epoch", "best", "bad_epochs")
    threshold, eps = 1e-4, 1e-8

    def __init__(self, opt: FlatOptimizer, factor: float, patience: int) -> None:
        if not 0 < factor < 1 or patience < 0:
            raise OptimError(f"need 0 < factor < 1 and patience >= 0, got {factor}, {patience}")
        super().__init__(opt)
        self.factor, self.patience = factor, patience
        self.best, self.bad_epochs = math.inf, 0

    def step(self, metric: float) -> None:
        self.epoch += 1
        current = float(metric)
        if current < self.best * (1 - self.threshold):
            self.best, self.bad_epochs = current, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            new_lr = self.opt.lr * self.factor
            if self.opt.lr - new_lr > self.eps:
                self.opt.lr = new_lr
            self.bad_epochs = 0


def make_scheduler(opt: FlatOptimizer, spec: LrSchedulerSpec | None) -> Scheduler | None:
    """The scheduler for ``spec`` (None → no scheduler)."""
    if spec is None:
        return None
    if spec.type == "step":
        return StepLR(opt, spec.step_size, spec.gamma)
    if spec.type == "exponential":
        return ExponentialLR(opt, spec.gamma)
    if spec.type == "reduce_on_plateau":
        return ReduceLROnPlateau(opt, spec.factor, spec.patience)
    raise OptimError(f"unknown lr scheduler {spec.type!r}; known: {', '.join(SCHEDULERS)}")
