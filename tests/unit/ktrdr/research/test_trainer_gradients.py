"""The hand-written MLP forward/backward agrees with autograd; the chooser picks it only when valid."""

from __future__ import annotations

import pytest
import torch

from ktrdr.research.gradients import AutogradGradients, MLPGradients, batch_gradients
from ktrdr.research.model import build_model
from ktrdr.research.optim import FlatParameters
from ktrdr.strategy.model import ModelSpec


def _batch(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("hidden", [(16, 8), (12,), (10, 9, 7)])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_mlp_gradients_match_autograd(hidden, dropout, weighted):
    spec = ModelSpec(hidden_layers=hidden, activation="relu", dropout=dropout)
    ours, ref = build_model(spec, 6, seed=0), build_model(spec, 6, seed=0)
    flat_ours, flat_ref = FlatParameters(ours), FlatParameters(ref)
    weights = torch.tensor([0.5, 2.0, 1.25]) if weighted else None
    x, y = _batch()
    flat_ours.grad.fill_(123.0)  # stale values must be replaced, not accumulated into
    ref.train()
    for _ in range(2):  # twice: the second call sees the first one's RNG advance on both sides
        torch.manual_seed(5)
        loss, logits = MLPGradients(ours, weights)(x, y, None)
        rng_after_ours = torch.get_rng_state()
        torch.manual_seed(5)
        ref_loss, ref_logits = AutogradGradients(ref, flat_ref, weights, amp=False)(x, y, None)
        assert torch.equal(rng_after_ours, torch.get_rng_state())  # same random draws (dropout masks)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
        torch.testing.assert_close(logits, ref_logits, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(flat_ours.grad, flat_ref.grad, rtol=1e-6, atol=1e-7)
    assert flat_ref.grad.abs().sum() > 0 and not loss.requires_grad and not logits.requires_grad


def test_dropout_changes_the_gradients():
    spec = ModelSpec(hidden_layers=(16, 8), dropout=0.5)
    model = build_model(spec, 6, seed=0)
    flat = FlatParameters(model)
    step = MLPGradients(model, None)
    x, y = _batch()
    step(x, y, None)
    first = flat.grad.clone()
    step(x, y, None)  # new masks from the advanced RNG
    assert not torch.equal(first, flat.grad)


def test_chooser_uses_autograd_where_the_hand_written_path_does_not_apply():
    x = ModelSpec(hidden_layers=(8,))
    relu = build_model(x, 6, seed=0)
    tanh = build_model(ModelSpec(hidden_layers=(8,), activation="tanh"), 6, seed=0)
    embedded = build_model(ModelSpec(hidden_layers=(8,), symbol_embedding_dim=2), 6, n_symbols=3, seed=0)
    assert isinstance(batch_gradients(relu, FlatParameters(relu), None, amp=False), MLPGradients)
    assert isinstance(batch_gradients(relu, FlatParameters(relu), None, amp=True), AutogradGradients)
    for model in (tanh, embedded):
        assert isinstance(batch_gradients(model, FlatParameters(model), None, amp=False), AutogradGradients)
    with pytest.raises(ValueError, match="ReLU MLP without symbol embedding"):
        MLPGradients(tanh, None)
    with pytest.raises(ValueError, match="flatten the parameters first"):
        MLPGradients(build_model(x, 6, seed=0), None)
