"""Loss and gradients of one training batch: :func:`batch_gradients` picks how.

Both callables have the signature ``(x, y, symbol_index) -> (loss, logits)``: they run the model
in training mode on the batch (the caller puts the model in ``train()`` mode; :class:`MLPGradients`
always applies dropout), write d(loss)/d(parameter) into every parameter's ``.grad``
(replacing what was there: the parameters must be those of a
:class:`~ktrdr.research.optim.FlatParameters`, which owns the ``.grad`` buffer) and return the mean cross-entropy
(weighted by ``class_weights`` when given) and the float32 logits, both detached.

* :class:`AutogradGradients`: any model, via autograd; bf16 autocast when ``amp``.
* :class:`MLPGradients`: the plain ReLU :class:`~ktrdr.research.model.MLP` (no symbol
  embedding, float32) by hand: ``addmm`` forward, dropout as ``bernoulli_`` mask ÷ keep
  probability, and the backward of softmax cross-entropy, ``addmm``, ReLU and dropout written
  out. Same values as autograd up to float32 summation order (tested to 1e-6); same RNG draws on
  CPU (``nn.Dropout`` there draws one ``bernoulli_`` mask per layer, as this does). On a small
  MLP autograd's bookkeeping costs more than the arithmetic; this is ~2–3× cheaper per batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ktrdr.research.model import MLP
from ktrdr.research.optim import FlatParameters

#: ``(x, y, symbol_index) -> (loss, logits)``; see the module docstring.
BatchGradients = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor]
]


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on ``device`` when ``amp``, else a no-op context."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def batch_gradients(
    model: nn.Module, flat: FlatParameters, class_weights: torch.Tensor | None, amp: bool
) -> BatchGradients:
    """:class:`MLPGradients` when it applies to ``model`` (and not ``amp``), else
    :class:`AutogradGradients`. ``flat``: the model's flattened parameters."""
    if not amp and MLPGradients.applies(model):
        return MLPGradients(model, class_weights)
    return AutogradGradients(model, flat, class_weights, amp)


class AutogradGradients:
    """Forward under autocast (when ``amp``), cross-entropy, ``backward()`` into the zeroed
    gradient buffer of ``flat`` (the model's flattened parameters)."""

    def __init__(
        self, model: nn.Module, flat: FlatParameters, class_weights: torch.Tensor | None, amp: bool
    ) -> None:
        self.model, self.flat, self.weights, self.amp = model, flat, class_weights, amp

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, symbol_index: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(x.device, self.amp):
            logits = self.model(x, symbol_index).float()
        loss = F.cross_entropy(logits, y, weight=self.weights)
        self.flat.zero_grad()
        loss.backward()
        return loss.detach(), logits.detach()


class MLPGradients:
    """Hand-written forward and backward of a plain ReLU :class:`MLP`; see the module docstring."""

    @staticmethod
    def applies(model: nn.Module) -> bool:
        """True for an :class:`MLP` without symbol embedding, float32, whose hidden blocks are
        exactly ``Linear → ReLU → Dropout``."""
        if not isinstance(model, MLP) or model.embedding is not None:
            return False
        mods = list(model.net)
        hidden, last = mods[:-1], mods[-1]
        blocks_ok = len(hidden) % 3 == 0 and all(
            type(hidden[i]) is nn.Linear
            and type(hidden[i + 1]) is nn.ReLU
            and type(hidden[i + 2]) is nn.Dropout
            for i in range(0, len(hidden), 3)
        )
        return (
            blocks_ok
            and type(last) is nn.Linear
            and all(p.dtype == torch.float32 for p in model.parameters())
        )

    def __init__(self, model: MLP, class_weights: torch.Tensor | None) -> None:
        if not self.applies(model):
            raise ValueError("MLPGradients needs a float32 ReLU MLP without symbol embedding")
        mods = list(model.net)
        linears = [m for m in mods if isinstance(m, nn.Linear)]
        # Detached aliases of the (flat-buffer) parameters: they follow in-place updates.
        self.layers = [
            (lin.weight.detach(), lin.bias.detach(), lin.weight.grad, lin.bias.grad) for lin in linears
        ]
        if any(g is None for layer in self.layers for g in layer[2:]):
            raise ValueError("MLPGradients writes into existing .grad tensors; flatten the parameters first")
        dropouts = [m.p for m in mods if isinstance(m, nn.Dropout)]
        self.keep = 1.0 - dropouts[0] if dropouts else 1.0
        if any(p != dropouts[0] for p in dropouts):
            raise ValueError("MLPGradients needs one dropout rate for all layers")
        self.weights = class_weights
        self._minus_one = torch.full((1, 1), -1.0, device=linears[0].weight.device)

    @torch.no_grad()
    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, symbol_index: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Forward, keeping each hidden layer's input, ReLU output and dropout mask.
        saved: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
        a = x
        for w, b, _, _ in self.layers[:-1]:
            r = torch.addmm(b, a, w.t()).relu_()
            mask = torch.empty_like(r).bernoulli_(self.keep).div_(self.keep) if self.keep < 1.0 else None
            saved.append((a, r, mask))
            a = r if mask is None else r * mask
        w, b, _, _ = self.layers[-1]
        logits = torch.addmm(b, a, w.t())
        logp = torch.log_softmax(logits, 1)
        loss = F.nll_loss(logp, y, weight=self.weights)

        # d loss / d logits = (softmax − onehot(y)) · c_i, c_i = 1/N, or w_yi / Σ w_y when weighted.
        dz = logp.exp_()
        dz.scatter_add_(1, y.unsqueeze(1), self._minus_one.expand(len(y), 1))
        if self.weights is None:
            dz.mul_(1.0 / len(y))
        else:
            wy = self.weights[y]
            dz.mul_((wy / wy.sum()).unsqueeze(1))

        for i in range(len(self.layers) - 1, -1, -1):
            w, _, gw, gb = self.layers[i]
            a_in = saved[i][0] if i < len(saved) else a
            torch.mm(dz.t(), a_in, out=gw)
            torch.sum(dz, 0, out=gb)
            if i > 0:
                _, r, mask = saved[i - 1]
                da = torch.mm(dz, w)
                if mask is not None:
                    da.mul_(mask)
                dz = torch.ops.aten.threshold_backward(da, r, 0)  # ReLU's backward, as autograd does it
        return loss, logits
